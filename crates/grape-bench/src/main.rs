//! `grape-bench`: benchmarks of the embedded engine on fvecs datasets (see benches/README.md).

mod ann;
mod dataset;
mod load;
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
    /// Search QPS, latency and recall of a running server over REST, with concurrent clients.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ann(args) => ann::run(&args),
        Command::Open(args) => open::run(&args),
        Command::Load(args) => load::run(&args),
    }
}
