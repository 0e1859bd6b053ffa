//! `grape-bench`: benchmarks of the embedded engine on fvecs datasets (see benches/README.md).

mod ann;
mod cluster;
mod dataset;
mod hybrid;
mod load;
mod load_grpc;
mod log_commit;
mod op_codec;
mod open;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "grape-bench", about = "Grape benchmarks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Recall, QPS and latency of HNSW search through the embedded API.
    Ann(ann::AnnArgs),
    /// Time until an existing database is ready to serve (open + first search).
    Open(open::OpenArgs),
    /// Search QPS, latency and recall of a running server over REST or gRPC, with concurrent clients.
    Load(load::LoadArgs),
    /// Dense-only, sparse-only and hybrid (dense + sparse prefetches, RRF) queries, single thread.
    Hybrid(hybrid::HybridArgs),
    /// Cluster mode on in-process clusters: quorum throughput, replication lag, elections, many shards.
    Cluster(cluster::ClusterArgs),
    /// One durable Raft log append: a redb commit (as cluster mode's log writer does it) vs a bare
    /// file append + fdatasync.
    LogCommit(log_commit::LogCommitArgs),
    /// Encode and decode cost of one upsert batch in the operation codec, current vs earlier form.
    OpCodec(op_codec::OpCodecArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ann(args) => ann::run(&args),
        Command::Open(args) => open::run(&args),
        Command::Load(args) => load::run(&args),
        Command::Hybrid(args) => hybrid::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::LogCommit(args) => log_commit::run(&args),
        Command::OpCodec(args) => op_codec::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    #[test]
    fn ann_takes_one_filter_form() {
        let ann = |extra: &[&str]| {
            let args = ["grape-bench", "ann", "--dataset", "d"].iter().chain(extra);
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Ann(a) => (a.filter, a.filter_json),
                _ => unreachable!("parsed as ann"),
            })
        };
        assert_eq!(ann(&["--filter", "a = 1"]).unwrap(), (Some("a = 1".into()), None));
        assert_eq!(ann(&["--filter-json", "{}"]).unwrap(), (None, Some("{}".into())));
        assert!(ann(&["--filter", "a = 1", "--filter-json", "{}"]).is_err());
    }
}
