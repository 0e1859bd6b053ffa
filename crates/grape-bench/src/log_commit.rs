//! `grape-bench log-commit`: what one durable Raft log append costs on this disk, with the log's
//! storage (a redb transaction holding one entry, as cluster mode's log writer commits it, with the
//! oldest entries removed as purges do) and, for comparison, a bare file append + `fdatasync`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use redb::{Database, Durability, TableDefinition};

const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("raft_log");

#[derive(Args)]
pub struct LogCommitArgs {
    /// Directory for the two files (removed afterwards).
    #[arg(long, default_value = "/tmp/grape-log-commit")]
    dir: PathBuf,
    /// Bytes per entry (a batch of 85 128-d points is ~45 KB).
    #[arg(long, default_value_t = 45_000)]
    entry_bytes: usize,
    #[arg(long, default_value_t = 500)]
    commits: u64,
    /// Entries kept in the redb log (older ones removed in the same transaction).
    #[arg(long, default_value_t = 100)]
    keep: u64,
}

fn summary(name: &str, mut us: Vec<u128>, cpu_s: f64) -> serde_json::Value {
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: p50 {} us, p90 {} us, p99 {} us; process CPU {:.0} us per commit",
        at(0.5),
        at(0.9),
        at(0.99),
        cpu_s * 1e6 / us.len() as f64
    );
    serde_json::json!({"name": name, "p50_us": at(0.5), "p90_us": at(0.9), "p99_us": at(0.99), "cpu_us_per_commit": cpu_s * 1e6 / us.len() as f64})
}

/// CPU time of this process so far (user + system), from /proc (Linux).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

pub fn run(args: &LogCommitArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let value = vec![0x5au8; args.entry_bytes];
    let mut results = Vec::new();
    let db_path = args.dir.join("log.redb");
    let _ = std::fs::remove_file(&db_path);
    let db = Database::create(&db_path)?;
    for durable in [true, false] {
        let base = if durable { 0 } else { 1 << 32 };
        let (mut times, cpu) = (Vec::new(), cpu_seconds());
        for i in 0..args.commits {
            let started = Instant::now();
            let mut tx = db.begin_write()?;
            if !durable {
                tx.set_durability(Durability::None);
            }
            {
                let mut log = tx.open_table(LOG)?;
                log.insert((1, base + i), &value[..])?;
                if i >= args.keep {
                    log.remove((1, base + i - args.keep))?;
                }
            }
            tx.commit()?;
            times.push(started.elapsed().as_micros());
        }
        let name = if durable { "redb durable commit" } else { "redb commit without fsync" };
        results.push(summary(name, times, cpu_seconds() - cpu));
    }
    drop(db);
    let file_path = args.dir.join("log.bin");
    let mut file = std::fs::File::create(&file_path)?;
    let (mut times, cpu) = (Vec::new(), cpu_seconds());
    for _ in 0..args.commits {
        let started = Instant::now();
        file.write_all(&value)?;
        file.sync_data()?;
        times.push(started.elapsed().as_micros());
    }
    results.push(summary("file append + fdatasync", times, cpu_seconds() - cpu));
    std::fs::remove_dir_all(&args.dir)?;
    println!("{}", serde_json::to_string_pretty(&results)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap().path().join("log-commit");
        let args = LogCommitArgs { dir: dir.clone(), entry_bytes: 1_000, commits: 5, keep: 2 };
        run(&args).unwrap();
        assert!(!dir.exists(), "its files are removed");
    }
}
