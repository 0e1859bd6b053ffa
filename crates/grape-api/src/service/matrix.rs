//! Distance matrix (Qdrant's `/points/search/matrix/{pairs,offsets}`): a random sample of the points
//! passing a filter, and for each sampled point its `limit` nearest other sampled points.
//!
//! As in Qdrant, the sample is drawn among the points that have the vector, sorted by id, and each
//! neighbour list is a nearest search restricted to the sample (the point itself excluded), scored
//! with the metric's convention (distances for Euclid and Manhattan). Grape computes the neighbour
//! lists exactly, comparing every pair of sampled vectors (`sample²` scores).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use grape::filter::Condition;
use grape::{
    Collection, Filter, PointId, Result, ScoredPoint, ScrollRequest, VectorsConfig, WithPayload, WithVector,
};
use grape_collection::collection::compare_scored;
use grape_index::distance::MetricKernel;

use super::vector_of;
use crate::error::ApiError;
use crate::Service;

#[derive(Debug, Clone, PartialEq)]
pub struct MatrixQuery {
    pub sample: usize,
    pub limit: usize,
    pub using: String,
    pub filter: Option<Filter>,
    /// The shard keys sampled (custom sharding; `None`: every shard).
    pub shard_key: Option<grape::ShardKeySelector>,
}

/// Sampled ids (ascending) and, per sampled point, its neighbours as (index into `ids`, score), best
/// first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    pub ids: Vec<PointId>,
    pub rows: Vec<Vec<(usize, f32)>>,
}

impl Service {
    /// Computes a distance matrix over a sample of one collection.
    pub async fn distance_matrix(
        &self,
        collection: String,
        req: MatrixQuery,
        consistency: grape::ReadConsistency,
    ) -> Result<Matrix, ApiError> {
        let keys = req.shard_key.clone();
        self.with_shards_at(collection, keys, consistency, move |_, c| distance_matrix(c, &req)).await
    }
}

const PAGE: usize = 1024;

pub fn distance_matrix(c: &Collection, req: &MatrixQuery) -> Result<Matrix> {
    let distance =
        c.config().params.vectors.get(&req.using).ok_or_else(|| VectorsConfig::missing(&req.using))?.distance;
    if req.sample == 0 || req.limit == 0 {
        return Ok(Matrix::default());
    }
    let mut sample = reservoir_sample(c, req)?;
    // Fewer than two points have no pairs.
    if sample.len() < 2 {
        return Ok(Matrix::default());
    }
    sample.sort_unstable_by_key(|s| s.0);
    let kernel = MetricKernel::new(distance);
    let smaller_is_better = distance.is_distance_like();
    let rows = sample
        .iter()
        .enumerate()
        .map(|(i, (_, a))| {
            let mut row: Vec<(usize, ScoredPoint)> = sample
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, (id, b))| {
                    let score = distance.postprocess(kernel.score(a, b));
                    (
                        j,
                        ScoredPoint {
                            id: *id,
                            version: 0,
                            score,
                            payload: None,
                            vector: None,
                            order_value: None,
                        },
                    )
                })
                .collect();
            row.sort_by(|x, y| compare_scored(&x.1, &y.1, smaller_is_better));
            row.truncate(req.limit);
            row.into_iter().map(|(j, p)| (j, p.score)).collect()
        })
        .collect();
    Ok(Matrix { ids: sample.into_iter().map(|s| s.0).collect(), rows })
}

/// A uniform random sample (reservoir sampling) of up to `req.sample` points passing the filter
/// that have the vector, with their vectors.
fn reservoir_sample(c: &Collection, req: &MatrixQuery) -> Result<Vec<(PointId, Vec<f32>)>> {
    let mut filter = req.filter.clone().unwrap_or_default();
    filter.must.get_or_insert_with(Vec::new).push(Condition::HasVector { has_vector: req.using.clone() });
    let mut scroll = ScrollRequest {
        offset: None,
        limit: PAGE,
        with_payload: WithPayload::Enable(false),
        with_vector: WithVector::Include(vec![req.using.clone()]),
        filter: Some(filter),
    };
    let mut rng = Rng::new();
    let mut sample: Vec<(PointId, Vec<f32>)> = Vec::with_capacity(req.sample.min(PAGE));
    let mut seen = 0u64;
    loop {
        let page = c.scroll(&scroll)?;
        for record in page.points {
            let id = record.id;
            let Some(grape::Vector::Dense(v)) = vector_of(record, &req.using) else { continue };
            seen += 1;
            if sample.len() < req.sample {
                sample.push((id, v));
            } else {
                let j = rng.below(seen);
                if j < req.sample as u64 {
                    sample[j as usize] = (id, v);
                }
            }
        }
        match page.next_page_offset {
            Some(next) => scroll.offset = Some(next),
            None => break,
        }
    }
    Ok(sample)
}

/// xorshift64*: enough randomness for sampling, seeded from the process's random hasher keys.
struct Rng(u64);

impl Rng {
    fn new() -> Self {
        Rng(RandomState::new().hash_one(std::time::Instant::now()) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (n > 0), up to a negligible modulo bias.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
