//! Quantized scores against plain references: int8 against exact float scores (within the quantization
//! error), binary popcount scoring against the decoded planes, product lookup tables against the decoded
//! vectors; and recall of each method, with re-scoring, against brute force.

use grape_types::{Distance, QuantizationConfig};
use proptest::prelude::*;

use super::binary::{BinaryParams, PAIR_WEIGHT};
use super::*;
use crate::distance::score;

struct Rows(Vec<Vec<f32>>);

impl VectorRows for Rows {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn dim(&self) -> usize {
        self.0.first().map_or(0, Vec::len)
    }
    fn has(&self, _: u32) -> bool {
        true
    }
    fn row(&self, offset: u32, buf: &mut Vec<f32>) {
        buf.clear();
        buf.extend(&self.0[offset as usize]);
    }
}

fn config(json: &str) -> QuantizationConfig {
    serde_json::from_str(json).unwrap()
}

const DISTANCES: [Distance; 3] = [Distance::Dot, Distance::Euclid, Distance::Manhattan];

fn bit(row: &[u8], start: usize, i: usize) -> f32 {
    if row[start + i / 8] & (1 << (i % 8)) != 0 {
        1.0
    } else {
        -1.0
    }
}

/// The binary planes of a code as signs, with their weights and whether they are pair planes.
fn planes(p: &BinaryParams, code: &[u8]) -> Vec<(f32, bool, Vec<f32>)> {
    let dim = p.mean.len();
    let second = dim.div_ceil(64) * 8;
    let mut out = vec![(1.0, false, (0..dim).map(|i| bit(code, 0, i)).collect())];
    match p.encoding {
        grape_types::quantization::BinaryEncoding::OneBit => {}
        grape_types::quantization::BinaryEncoding::TwoBits => {
            out.push((1.0, false, (0..dim).map(|i| bit(code, second, i)).collect()))
        }
        grape_types::quantization::BinaryEncoding::OneAndHalfBits => {
            out.push((PAIR_WEIGHT, true, (0..dim.div_ceil(2)).map(|i| bit(code, second, i)).collect()))
        }
    }
    out
}

fn vectors(n: usize, dim: usize) -> impl Strategy<Value = Vec<Vec<f32>>> {
    prop::collection::vec(prop::collection::vec(-2.0f32..2.0, dim), n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    /// int8 scores are the exact scores up to the rounding of both sides to a step of the range (the
    /// query is clamped into the data's range, as the encoding clamps it).
    #[test]
    fn int8_scores_track_exact((data, q) in (1usize..70).prop_flat_map(|d| (vectors(20, d), prop::collection::vec(-2.0f32..2.0, d)))) {
        let dim = q.len();
        let (lo, hi) = data.iter().flatten().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
        let q: Vec<f32> = q.iter().map(|x| x.clamp(lo, hi)).collect();
        let rows = Rows(data);
        for distance in DISTANCES {
            let qv = QuantizedVectors::build(&config(r#"{"scalar": {"type": "int8"}}"#), distance, &rows, 0).unwrap();
            let Quantizer::Int8(p) = qv.quantizer() else { panic!("int8 expected") };
            let scorer = qv.query_scorer(&q);
            for (i, v) in rows.0.iter().enumerate() {
                let exact = score(distance, &q, v);
                // Each component moves by at most step / 2 (the query is inside the range, -2..2).
                let e = p.step / 2.0;
                let bound = match distance {
                    Distance::Dot | Distance::Cosine => dim as f32 * (4.0 * e + e * e),
                    Distance::Euclid => dim as f32 * (16.0 * e + 4.0 * e * e),
                    Distance::Manhattan => dim as f32 * 2.0 * e,
                } + 1e-3;
                let got = scorer.score(i as u32);
                prop_assert!((got - exact).abs() <= bound, "{distance:?}: {got} vs {exact} (bound {bound})");
            }
        }
    }

    /// Popcount scoring equals scoring the decoded planes against the (quantized) query.
    #[test]
    fn binary_scores_match_decoded_planes(
        (data, q, enc, qenc) in (1usize..150).prop_flat_map(|d| (
            vectors(12, d),
            prop::collection::vec(-2.0f32..2.0, d),
            prop::sample::select(vec!["one_bit", "two_bits", "one_and_half_bits"]),
            prop::sample::select(vec!["binary", "scalar4bits", "scalar8bits"]),
        ))
    ) {
        let rows = Rows(data);
        let cfg = config(&format!(r#"{{"binary": {{"encoding": "{enc}", "query_encoding": "{qenc}"}}}}"#));
        for distance in DISTANCES {
            let qv = QuantizedVectors::build(&cfg, distance, &rows, 0).unwrap();
            let Quantizer::Binary(p) = qv.quantizer() else { panic!("binary expected") };
            let scorer = qv.query_scorer(&q);
            let mut qcode = vec![0u8; qv.code_len()];
            p.encode(&q, &mut qcode);
            // A scan's block of consecutive rows scores as the rows one by one.
            let all: Vec<u32> = (0..rows.len() as u32).collect();
            let mut many = vec![0f32; all.len()];
            scorer.score_many(&all, &mut many);
            for (&i, m) in all.iter().zip(&many) {
                prop_assert_eq!(*m, scorer.score(i), "{}/{} score_many", enc, qenc);
            }
            let centred = matches!(distance, Distance::Euclid | Distance::Manhattan);
            let qc: Vec<f32> = q.iter().zip(&p.mean).map(|(x, m)| if centred { x - m } else { *x }).collect();
            for i in 0..rows.len() as u32 {
                let code = qv.codes().bytes()[i as usize * qv.code_len()..][..qv.code_len()].to_vec();
                let want: f32 = if qenc == "binary" {
                    planes(p, &qcode).iter().zip(planes(p, &code)).map(|((w, _, a), (_, _, b))| {
                        w * a.iter().zip(&b).map(|(x, y)| x * y).sum::<f32>()
                    }).sum()
                } else {
                    let levels = if qenc == "scalar4bits" { 4 } else { 8 };
                    planes(p, &code).iter().map(|(w, pairs, b)| {
                        let y: Vec<f32> = if *pairs { qc.chunks(2).map(|c| c.iter().sum()).collect() } else { qc.clone() };
                        let (lo, hi) = y.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
                        let max = ((1u32 << levels) - 1) as f32;
                        let step = if hi > lo { (hi - lo) / max } else { 1.0 };
                        w * y.iter().zip(b).map(|(v, s)| (lo + step * ((v - lo) / step).round().clamp(0.0, max)) * s).sum::<f32>()
                    }).sum()
                };
                let got = scorer.score(i);
                prop_assert!((got - want).abs() <= 1e-3 * (1.0 + want.abs()), "{enc}/{qenc} {distance:?}: {got} vs {want}");
            }
        }
    }

    /// Lookup-table scores equal the metric between the query and the decoded code.
    #[test]
    fn product_table_matches_decoded(
        (data, q, ratio) in (1usize..5).prop_flat_map(|m| (
            vectors(40, 16 * m),
            prop::collection::vec(-2.0f32..2.0, 16 * m),
            prop::sample::select(vec!["x4", "x8", "x16", "x32", "x64"]),
        ))
    ) {
        let rows = Rows(data);
        for distance in DISTANCES {
            let cfg = config(&format!(r#"{{"product": {{"compression": "{ratio}"}}}}"#));
            let qv = QuantizedVectors::build(&cfg, distance, &rows, 7).unwrap();
            let Quantizer::Product(p) = qv.quantizer() else { panic!("product expected") };
            let scorer = qv.query_scorer(&q);
            for i in 0..rows.len() as u32 {
                let code = &qv.codes().bytes()[i as usize * qv.code_len()..][..qv.code_len()];
                let want = score(distance, &q, &p.decode(code));
                let got = scorer.score(i);
                prop_assert!((got - want).abs() <= 1e-3 * (1.0 + want.abs()), "{ratio} {distance:?}: {got} vs {want}");
            }
        }
    }
}

/// Clustered data: `n` points around 400 centres in `dim` dimensions, unit length.
fn clustered(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> =
        (0..400).map(|_| (0..dim).map(|_| rng.gen_range(-1.0..1.0)).collect()).collect();
    (0..n)
        .map(|i| {
            let mut v: Vec<f32> = centres[i % 400].iter().map(|c| c + rng.gen_range(-0.5..0.5)).collect();
            crate::distance::normalize(&mut v);
            v
        })
        .collect()
}

/// Exact scan over codes for `k * oversampling` candidates, re-scored with the originals.
#[test]
fn recall_with_rescoring_per_method() {
    let (dim, k) = (64, 10);
    let mut data = clustered(2030, dim, 1);
    let queries = data.split_off(2000);
    let rows = Rows(data.clone());
    for (json, oversampling, min_recall) in [
        (r#"{"scalar": {"type": "int8", "quantile": 0.99}}"#, 2, 0.99),
        (r#"{"binary": {}}"#, 10, 0.85),
        (r#"{"binary": {"encoding": "one_and_half_bits"}}"#, 10, 0.9),
        (r#"{"binary": {"encoding": "two_bits"}}"#, 10, 0.9),
        (r#"{"binary": {"encoding": "two_bits", "query_encoding": "scalar8bits"}}"#, 5, 0.9),
        (r#"{"binary": {"query_encoding": "scalar4bits"}}"#, 5, 0.9),
        (r#"{"product": {"compression": "x16"}}"#, 5, 0.9),
    ] {
        let qv = QuantizedVectors::build(&config(json), Distance::Cosine, &rows, 3).unwrap();
        let mut hits = 0;
        for q in &queries {
            let top = |scores: Vec<(f32, usize)>, n: usize| {
                let mut s = scores;
                s.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                s.into_iter().take(n).map(|x| x.1).collect::<Vec<_>>()
            };
            let truth =
                top(data.iter().enumerate().map(|(i, v)| (score(Distance::Cosine, q, v), i)).collect(), k);
            let scorer = qv.query_scorer(q);
            let candidates =
                top((0..data.len()).map(|i| (scorer.score(i as u32), i)).collect(), k * oversampling);
            let found =
                top(candidates.iter().map(|&i| (score(Distance::Cosine, q, &data[i]), i)).collect(), k);
            hits += found.iter().filter(|i| truth.contains(i)).count();
        }
        let recall = hits as f64 / (k * queries.len()) as f64;
        assert!(recall >= min_recall, "{json}: recall {recall} < {min_recall}");
    }
}

#[test]
fn consecutive_offsets() {
    assert!(consecutive(&[]) && consecutive(&[7]) && consecutive(&[3, 4, 5]));
    assert!(
        !consecutive(&[5, 4, 3])
            && !consecutive(&[3, 5, 4])
            && !consecutive(&[1, 3])
            && !consecutive(&[4, 4])
    );
}

#[test]
fn parameters_roundtrip_and_sizes() {
    let rows = Rows(clustered(300, 96, 5));
    for (json, code_len) in [
        (r#"{"scalar": {"type": "int8"}}"#, 4 + 96),
        (r#"{"binary": {}}"#, 16),
        (r#"{"binary": {"encoding": "two_bits"}}"#, 32),
        (r#"{"binary": {"encoding": "one_and_half_bits"}}"#, 24),
        (r#"{"product": {"compression": "x16"}}"#, 24),
        (r#"{"product": {"compression": "x64"}}"#, 6),
    ] {
        let qv = QuantizedVectors::build(&config(json), Distance::Dot, &rows, 0).unwrap();
        assert_eq!(qv.code_len(), code_len, "{json}");
        let q = qv.quantizer();
        assert_eq!(&Quantizer::from_bytes(q.kind(), &q.to_bytes(), 96).unwrap(), q);
        let bytes = q.to_bytes();
        assert!(Quantizer::from_bytes(q.kind(), &bytes[..bytes.len() - 1], 96).is_err());
    }
    let bad = QuantizedVectors::build(
        &config(r#"{"product": {"compression": "x32"}}"#),
        Distance::Dot,
        &Rows(clustered(10, 12, 1)),
        0,
    );
    assert!(matches!(bad, Err(crate::IndexError::InvalidQuantization(_))));
}
