//! Scores of the queries that are not "nearest to one vector": recommend with the `best_score` and
//! `sum_scores` strategies, discovery (target + context pairs) and context search (pairs only).
//!
//! The definitions are Qdrant's (`segment::vector_storage::query`): each score is built from the
//! metric's internal similarity to every example (larger is better; Euclid is the negated squared L2
//! distance, Manhattan the negated L1 distance). The result is reported as is, and larger is better
//! for every metric, as in Qdrant, where these queries are not "distance scored".

/// `x / (1 + |x|)`: a sigmoid without an exponent, range (-1, 1).
pub fn fast_sigmoid(x: f32) -> f32 {
    x / (1.0 + x.abs())
}

/// [`fast_sigmoid`] scaled into (0, 1).
pub fn scaled_fast_sigmoid(x: f32) -> f32 {
    0.5 * (fast_sigmoid(x) + 1.0)
}

/// A positive and a negative example.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair<T> {
    pub positive: T,
    pub negative: T,
}

/// `best_score`: a candidate closer to its best positive than to its best negative scores
/// `sigmoid(best positive)` in (0, 1); otherwise `-sigmoid(best negative)` in (-1, 0), so every point
/// won by a positive ranks above every point won by a negative. With no positives every candidate is
/// on the negative side (the least similar to the negatives first).
pub fn best_score(positive: impl IntoIterator<Item = f32>, negative: impl IntoIterator<Item = f32>) -> f32 {
    let best = |it: &mut dyn Iterator<Item = f32>| {
        it.fold(f32::NEG_INFINITY, |m, s| if s.total_cmp(&m).is_gt() { s } else { m })
    };
    let p = best(&mut positive.into_iter());
    let n = best(&mut negative.into_iter());
    if p > n {
        scaled_fast_sigmoid(p)
    } else {
        -scaled_fast_sigmoid(n)
    }
}

/// `sum_scores`: similarities to the positives summed, minus those to the negatives.
pub fn sum_scores(positive: impl IntoIterator<Item = f32>, negative: impl IntoIterator<Item = f32>) -> f32 {
    positive.into_iter().sum::<f32>() - negative.into_iter().sum::<f32>()
}

/// Context search: per pair, 0 when the candidate is more similar to the positive than to the
/// negative, else a loss in (-1, 0) that grows with the difference; summed over pairs (at most 0).
pub fn context_score(pairs: impl IntoIterator<Item = Pair<f32>>) -> f32 {
    pairs.into_iter().map(|p| fast_sigmoid((p.positive - p.negative - f32::EPSILON).min(0.0))).sum()
}

/// Discovery: the rank (+1 per pair whose positive is more similar, -1 per pair whose negative is,
/// 0 on a tie) plus `sigmoid(similarity to the target)` in (0, 1), so the context decides first and
/// the target orders points of equal rank.
pub fn discover_score(target: f32, pairs: impl IntoIterator<Item = Pair<f32>>) -> f32 {
    let rank: i32 = pairs.into_iter().map(|p| p.positive.total_cmp(&p.negative) as i32).sum();
    rank as f32 + scaled_fast_sigmoid(target)
}

/// A query scored against each candidate vector by its similarity to the examples (of type `T`: a
/// dense vector, or any vector kind). Examples are already preprocessed for the metric (normalised
/// for cosine, sparse ones weighted by IDF when the vector asks for it).
#[derive(Debug, Clone, PartialEq)]
pub enum CustomQuery<T = Vec<f32>> {
    BestScore { positive: Vec<T>, negative: Vec<T> },
    SumScores { positive: Vec<T>, negative: Vec<T> },
    Discover { target: T, context: Vec<Pair<T>> },
    Context(Vec<Pair<T>>),
}

impl<T> CustomQuery<T> {
    /// The score of one candidate; `similarity` compares an example with the candidate.
    pub fn score(&self, similarity: impl Fn(&T) -> f32) -> f32 {
        let sim = |v: &T| similarity(v);
        let pair = |p: &Pair<T>| Pair { positive: sim(&p.positive), negative: sim(&p.negative) };
        match self {
            CustomQuery::BestScore { positive, negative } => {
                best_score(positive.iter().map(sim), negative.iter().map(sim))
            }
            CustomQuery::SumScores { positive, negative } => {
                sum_scores(positive.iter().map(sim), negative.iter().map(sim))
            }
            CustomQuery::Discover { target, context } => {
                discover_score(sim(target), context.iter().map(pair))
            }
            CustomQuery::Context(pairs) => context_score(pairs.iter().map(pair)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-6
    }

    fn pairs(v: &[(f32, f32)]) -> Vec<Pair<f32>> {
        v.iter().map(|&(positive, negative)| Pair { positive, negative }).collect()
    }

    #[test]
    fn sigmoids() {
        assert_eq!(fast_sigmoid(0.0), 0.0);
        assert!(close(fast_sigmoid(1.0), 0.5));
        assert!(close(fast_sigmoid(-3.0), -0.75));
        assert!(close(scaled_fast_sigmoid(0.0), 0.5));
        assert!(close(scaled_fast_sigmoid(1.0), 0.75));
        assert!(close(scaled_fast_sigmoid(-3.0), 0.125));
    }

    #[test]
    fn best_score_by_hand() {
        // Best positive 0.5 beats best negative 0.1: sigmoid(0.5) = 0.5 * (0.5 / 1.5 + 1) = 2/3.
        assert!(close(best_score([0.5, 0.2], [0.1]), 2.0 / 3.0));
        // Best negative 0.6 wins: -sigmoid(0.6) = -0.5 * (0.6 / 1.6 + 1) = -0.6875.
        assert!(close(best_score([0.1], [0.6, -0.2]), -0.6875));
        // A tie goes to the negative side.
        assert!(close(best_score([0.3], [0.3]), -scaled_fast_sigmoid(0.3)));
        // Only negatives: -sigmoid(best negative); the least similar ranks first.
        assert!(close(best_score([], [-3.0]), -0.125));
        assert!(best_score([], [-3.0]) > best_score([], [0.6]));
        // Only positives.
        assert!(close(best_score([1.0], []), 0.75));
        // Negative similarities (Euclid): -4 is better than -9.
        assert!(close(best_score([-4.0, -16.0], [-9.0]), scaled_fast_sigmoid(-4.0)));
        // Any positive-won point ranks above any negative-won point.
        assert!(best_score([-100.0], [-200.0]) > best_score([0.99], [1.0]));
    }

    #[test]
    fn sum_scores_by_hand() {
        assert!(close(sum_scores([0.5, 0.2], [0.1, 0.3]), 0.3));
        assert!(close(sum_scores([], [0.25]), -0.25));
        assert!(close(sum_scores([2.0], []), 2.0));
    }

    #[test]
    fn context_score_by_hand() {
        // Closer to the positive: no loss.
        assert_eq!(context_score(pairs(&[(0.9, 0.1)])), 0.0);
        // Closer to the negative by 0.4: fast_sigmoid(-0.4) = -0.4 / 1.4.
        assert!(close(context_score(pairs(&[(0.1, 0.5)])), -0.4 / 1.4));
        // Summed over pairs.
        assert!(close(context_score(pairs(&[(0.9, 0.1), (0.1, 0.5), (0.0, 1.0)])), -0.4 / 1.4 - 0.5));
        // Equal similarities are a (tiny) loss, never a gain.
        assert!(context_score(pairs(&[(0.3, 0.3)])) < 0.0);
    }

    #[test]
    fn discover_score_by_hand() {
        // Target similarity 1.0 -> 0.75; ranks +1, -1 and 0 (tie) cancel out.
        assert!(close(discover_score(1.0, pairs(&[(0.9, 0.1), (0.1, 0.5), (0.3, 0.3)])), 0.75));
        assert!(close(discover_score(1.0, pairs(&[(0.9, 0.1), (0.8, 0.2)])), 2.75));
        assert!(close(discover_score(-3.0, pairs(&[(0.1, 0.9)])), -1.0 + 0.125));
        // Context first: a better rank beats any target similarity.
        assert!(discover_score(-1000.0, pairs(&[(1.0, 0.0)])) > discover_score(1000.0, pairs(&[(0.0, 1.0)])));
        assert!(close(discover_score(0.0, []), 0.5));
    }

    #[test]
    fn custom_query_scores_vectors() {
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let candidate = [1.0f32, 2.0];
        let sim = |e: &Vec<f32>| dot(e, &candidate);
        let p1 = vec![1.0, 0.0]; // sim 1
        let p2 = vec![0.0, 1.0]; // sim 2
        let n1 = vec![1.0, 1.0]; // sim 3
        let q = CustomQuery::BestScore { positive: vec![p1.clone(), p2.clone()], negative: vec![n1.clone()] };
        assert!(close(q.score(sim), -scaled_fast_sigmoid(3.0)));
        let q = CustomQuery::SumScores { positive: vec![p1.clone(), p2.clone()], negative: vec![n1.clone()] };
        assert!(close(q.score(sim), 0.0));
        let q = CustomQuery::Discover {
            target: p2.clone(),
            context: vec![Pair { positive: p2.clone(), negative: p1.clone() }],
        };
        assert!(close(q.score(sim), 1.0 + scaled_fast_sigmoid(2.0)));
        let q = CustomQuery::Context(vec![Pair { positive: p1, negative: n1 }]);
        assert!(close(q.score(sim), fast_sigmoid(-2.0 - f32::EPSILON)));
    }
}
