//! Datasets in the TEXMEX layout made by `shared/bench/make_dataset.py`.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use grape::Distance;

pub struct Dataset {
    pub name: String,
    pub dim: usize,
    pub distance: Distance,
    pub base: Vec<Vec<f32>>,
    pub queries: Vec<Vec<f32>>,
    /// Exact neighbour ids per query, nearest first.
    pub truth: Vec<Vec<u32>>,
}

fn read_rows(path: &Path, what: &str) -> Result<Vec<Vec<u32>>> {
    let bytes = fs::read(path).with_context(|| format!("read {what} {}", path.display()))?;
    let mut rows = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let n = u32::from_le_bytes(bytes[pos..pos + 4].try_into()?) as usize;
        pos += 4;
        let end = pos + n * 4;
        if end > bytes.len() {
            bail!("{} is truncated", path.display());
        }
        rows.push(
            bytes[pos..end].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        );
        pos = end;
    }
    Ok(rows)
}

fn floats(rows: Vec<Vec<u32>>) -> Vec<Vec<f32>> {
    rows.into_iter().map(|r| r.into_iter().map(f32::from_bits).collect()).collect()
}

impl Dataset {
    pub fn load(dir: &Path) -> Result<Dataset> {
        Self::load_with(dir, true)
    }

    /// The dataset, with its base vectors only when `with_base` (searching an existing collection needs
    /// just the queries and the ground truth).
    pub fn load_with(dir: &Path, with_base: bool) -> Result<Dataset> {
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(dir.join("manifest.json"))
                .with_context(|| format!("read {}/manifest.json", dir.display()))?,
        )?;
        let dim = manifest["dim"].as_u64().context("manifest.dim")? as usize;
        let distance = match manifest["metric"].as_str().context("manifest.metric")? {
            "cosine" => Distance::Cosine,
            "l2" | "euclid" | "euclidean" => Distance::Euclid,
            "ip" | "dot" => Distance::Dot,
            other => bail!("unknown metric {other}"),
        };
        let base =
            if with_base { floats(read_rows(&dir.join("base.fvecs"), "base vectors")?) } else { Vec::new() };
        let queries = floats(read_rows(&dir.join("query.fvecs"), "queries")?);
        let truth = read_rows(&dir.join("gt.ivecs"), "ground truth")?;
        if base.iter().chain(&queries).any(|v| v.len() != dim) {
            bail!("vectors do not all have dimension {dim}");
        }
        if truth.len() != queries.len() {
            bail!("{} ground-truth rows for {} queries", truth.len(), queries.len());
        }
        let name = manifest["name"].as_str().unwrap_or("dataset").to_string();
        let count = if with_base { base.len() as u64 } else { manifest["count"].as_u64().unwrap_or(0) };
        Ok(Dataset { name: format!("{name}-{count}"), dim, distance, base, queries, truth })
    }
}

/// Payloads of the base vectors (`payload.jsonl`: line `i` is the object of point `i`).
pub fn load_payloads(dir: &Path, count: usize) -> Result<Vec<grape::Payload>> {
    let path = dir.join("payload.jsonl");
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let payloads: Vec<grape::Payload> = text
        .lines()
        .take(count)
        .map(|l| serde_json::from_str(l).with_context(|| format!("{}: not a JSON object", path.display())))
        .collect::<Result<_>>()?;
    if payloads.len() != count {
        bail!("{} has {} payloads for {count} points", path.display(), payloads.len());
    }
    Ok(payloads)
}

/// Exact top-`k` of every query among the points passing `filter` (brute force, nearest first), and the
/// passing points.
pub fn filtered_truth(
    data: &Dataset,
    payloads: &[grape::Payload],
    filter: &grape::Filter,
    k: usize,
) -> (Vec<Vec<u32>>, Vec<u32>) {
    struct View<'a>(u64, &'a grape::Payload);
    impl grape::PointView for View<'_> {
        fn id(&self) -> grape::PointId {
            grape::PointId::Num(self.0)
        }
        fn payload(&self) -> Option<&grape::Payload> {
            Some(self.1)
        }
        fn has_vector(&self, name: &str) -> bool {
            name.is_empty()
        }
    }
    let passing: Vec<u32> = (0..data.base.len() as u32)
        .filter(|&i| filter.check(&View(u64::from(i), &payloads[i as usize])))
        .collect();
    let score = |q: &[f32], v: &[f32]| -> f32 {
        match data.distance {
            // Larger is better for all four.
            Distance::Euclid => -q.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f32>(),
            Distance::Manhattan => -q.iter().zip(v).map(|(a, b)| (a - b).abs()).sum::<f32>(),
            Distance::Cosine | Distance::Dot => q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>(),
        }
    };
    let truth = data
        .queries
        .iter()
        .map(|q| {
            let mut scored: Vec<(f32, u32)> =
                passing.iter().map(|&i| (score(q, &data.base[i as usize]), i)).collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            scored.into_iter().take(k).map(|(_, i)| i).collect()
        })
        .collect();
    (truth, passing)
}
