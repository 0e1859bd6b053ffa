//! `grape-bench open`: how long an existing database takes to be ready to serve (open + first search).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use grape::{Database, SearchRequest};

#[derive(Args)]
pub struct OpenArgs {
    /// Database directory written before (e.g. by `grape-bench ann --data-dir`).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long, default_value = "bench")]
    collection: String,
    /// Drop the OS page cache first (Linux, needs root), to measure a cold open.
    #[arg(long)]
    cold: bool,
}

pub fn run(args: &OpenArgs) -> Result<()> {
    if args.cold {
        // Written files must reach the disk before their cached pages can be dropped.
        std::process::Command::new("sync").status().context("sync")?;
        std::fs::write("/proc/sys/vm/drop_caches", "3").context("drop the page cache (needs root)")?;
    }
    let started = Instant::now();
    let db = Database::open(&args.data_dir)?;
    let c = db.collection(&args.collection)?;
    let opened = started.elapsed().as_secs_f64();
    let dim = c.config().params.vectors.iter().next().map(|(_, p)| p.size).context("no vectors")?;
    c.search(&SearchRequest::new(vec![0.5; dim], 10))?;
    let ready = started.elapsed().as_secs_f64();
    let info = c.info()?;
    println!(
        "{} points: opened in {opened:.3} s, first search answered at {ready:.3} s ({})",
        info.points_count,
        if args.cold { "cold page cache" } else { "warm page cache" }
    );
    db.close()?;
    Ok(())
}
