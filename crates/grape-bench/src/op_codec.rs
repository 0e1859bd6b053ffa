//! `grape-bench op-codec`: what encoding and decoding one upsert batch costs in the operation codec
//! (the WAL record and, in cluster mode, the Raft entry: decoded once by every replica). Compares the
//! current record form (dense vectors as one byte string) with the earlier one (dense vectors as a
//! list of f32, still read), both produced and read by this binary.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use grape::operation::PointWrite;
use grape::{Operation, PointId, Vector};
use grape_shard::op_codec::{decode_operation, encode_operation};
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Args)]
pub struct OpCodecArgs {
    /// Points per batch.
    #[arg(long, default_value_t = 256)]
    points: usize,
    #[arg(long, default_value_t = 128)]
    dim: usize,
    /// Encodes and decodes timed per form.
    #[arg(long, default_value_t = 2_000)]
    iters: u32,
}

/// The earlier record layout of an upsert: the same as today's but for the dense vector, which was
/// `Vector` variant 0, a list of f32.
#[derive(Serialize)]
enum OldVector<'a> {
    Dense(&'a [f32]),
}

#[derive(Serialize)]
struct OldPoint<'a> {
    id: &'a PointId,
    vectors: BTreeMap<&'a str, OldVector<'a>>,
    #[serde(with = "grape::json_bytes")]
    payload: &'a Option<grape::Payload>,
}

#[derive(Serialize)]
enum OldOperation<'a> {
    Upsert(Vec<OldPoint<'a>>),
}

fn encode_old(points: &[PointWrite]) -> Result<Vec<u8>> {
    let old = OldOperation::Upsert(
        points
            .iter()
            .map(|p| OldPoint {
                id: &p.id,
                vectors: p
                    .vectors
                    .iter()
                    .map(|(k, v)| (k.as_str(), OldVector::Dense(v.as_dense().unwrap_or(&[]))))
                    .collect(),
                payload: &p.payload,
            })
            .collect(),
    );
    Ok(postcard::to_extend(&old, vec![2u8])?)
}

fn time_per_call(iters: u32, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..iters / 10 {
        f()?;
    }
    let started = Instant::now();
    for _ in 0..iters {
        f()?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e6 / f64::from(iters))
}

pub fn run(args: &OpCodecArgs) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let points: Vec<PointWrite> = (0..args.points)
        .map(|i| PointWrite {
            id: PointId::Num(i as u64),
            vectors: BTreeMap::from([(
                String::new(),
                Vector::Dense((0..args.dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect()),
            )]),
            payload: None,
        })
        .collect();
    let op = Operation::Upsert(points.clone());
    let new_bytes = encode_operation(&op)?;
    let old_bytes = encode_old(&points)?;
    // Both forms decode to the same operation.
    anyhow::ensure!(decode_operation(&old_bytes)? == op, "the earlier form does not decode to the batch");
    anyhow::ensure!(decode_operation(&new_bytes)? == op, "the current form does not decode to the batch");

    let encode_new = time_per_call(args.iters, || encode_operation(&op).map(drop).map_err(Into::into))?;
    let encode_prev = time_per_call(args.iters, || encode_old(&points).map(drop))?;
    let decode_new =
        time_per_call(args.iters, || decode_operation(&new_bytes).map(drop).map_err(Into::into))?;
    let decode_prev =
        time_per_call(args.iters, || decode_operation(&old_bytes).map(drop).map_err(Into::into))?;
    let n = args.points as f64;
    for (form, bytes, enc, dec) in [
        ("list of f32 (earlier)", old_bytes.len(), encode_prev, decode_prev),
        ("byte string (current)", new_bytes.len(), encode_new, decode_new),
    ] {
        println!(
            "{form}: {bytes} bytes; encode {enc:.1} us ({:.3} us/point), decode {dec:.1} us ({:.3} us/point)",
            enc / n,
            dec / n
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// It runs, and its check holds: the earlier form it builds is read as the same batch.
    #[test]
    fn runs_and_both_forms_decode_alike() {
        run(&OpCodecArgs { points: 3, dim: 5, iters: 10 }).unwrap();
    }
}
