//! A linearizability checker for histories of point reads and writes, the oracle of the cluster's
//! consistency tests.
//!
//! Each point is a register: a write sets its value, a read returns the value it holds (`None`: no
//! such point). Linearizability is local (a history is linearizable iff the sub-history of every
//! object is), so points are checked one at a time. The search is Wing & Gong's: repeatedly pick an
//! operation that no pending operation precedes in real time and whose effect fits the register's
//! current value, backtracking when stuck, with memoization of (operations done, register value)
//! as Lowe proposed. A write whose outcome is unknown (it failed or timed out: it may or may not have
//! taken effect) has no response time and may be left out of the linearization.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

/// One operation on one point, as a client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub key: u64,
    pub kind: OpKind,
    pub invoked: Instant,
    /// When the client got the answer; `None` for a write whose outcome is unknown.
    pub returned: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// Sets the point's value (values are unique per history).
    Write(u64),
    /// Returned this value (`None`: the point did not exist).
    Read(Option<u64>),
}

/// Why a history is not linearizable: the point whose operations admit no linearization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: u64,
    pub ops: Vec<Op>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let start = self.ops.iter().map(|o| o.invoked).min();
        let at = |t: Instant| start.map_or(0.0, |s| t.duration_since(s).as_secs_f64() * 1e3);
        writeln!(f, "point {}: no linearization of these {} operations:", self.key, self.ops.len())?;
        for o in &self.ops {
            let end = o.returned.map_or("unknown".to_string(), |r| format!("{:.3} ms", at(r)));
            writeln!(f, "  {:?} invoked {:.3} ms, returned {end}", o.kind, at(o.invoked))?;
        }
        Ok(())
    }
}

/// Checks a whole history (any number of points); the first point without a linearization.
pub fn check(history: &[Op]) -> Result<(), Violation> {
    let mut by_key: BTreeMap<u64, Vec<Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key).or_default().push(op.clone());
    }
    for (key, ops) in by_key {
        if !linearizable(&ops) {
            return Err(Violation { key, ops });
        }
    }
    Ok(())
}

/// Whether the operations of one register (initially absent) admit a linearization.
pub fn linearizable(ops: &[Op]) -> bool {
    assert!(ops.len() <= 128, "the checker handles at most 128 operations per point");
    let mut ops: Vec<&Op> = ops.iter().collect();
    ops.sort_by_key(|o| o.invoked);
    let must: u128 =
        ops.iter().enumerate().filter(|(_, o)| o.returned.is_some()).fold(0, |m, (i, _)| m | 1 << i);
    let mut seen: HashSet<(u128, Option<u64>)> = HashSet::new();
    search(&ops, must, 0, None, &mut seen)
}

/// Depth-first search from the state where the operations in `done` took effect and the register
/// holds `value`.
fn search(
    ops: &[&Op],
    must: u128,
    done: u128,
    value: Option<u64>,
    seen: &mut HashSet<(u128, Option<u64>)>,
) -> bool {
    if done & must == must {
        return true;
    }
    if !seen.insert((done, value)) {
        return false;
    }
    // An operation can come next only if it was invoked before every pending operation returned.
    let horizon =
        ops.iter().enumerate().filter(|(i, _)| done & (1 << i) == 0).filter_map(|(_, o)| o.returned).min();
    for (i, op) in ops.iter().enumerate() {
        if done & (1 << i) != 0 {
            continue;
        }
        if horizon.is_some_and(|h| op.invoked > h) {
            break; // sorted by invocation: no later operation qualifies either
        }
        let next = match op.kind {
            OpKind::Write(v) => Some(v),
            OpKind::Read(r) if r == value => value,
            OpKind::Read(_) => continue,
        };
        if search(ops, must, done | 1 << i, next, seen) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn op(kind: OpKind, from: u64, to: Option<u64>) -> Op {
        let t0 = base();
        Op {
            key: 1,
            kind,
            invoked: t0 + Duration::from_millis(from),
            returned: to.map(|t| t0 + Duration::from_millis(t)),
        }
    }

    fn base() -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    use OpKind::{Read, Write};

    #[test]
    fn sequential_histories() {
        assert!(linearizable(&[
            op(Read(None), 0, Some(1)),
            op(Write(1), 2, Some(3)),
            op(Read(Some(1)), 4, Some(5))
        ]));
        // A read after a completed write must see it.
        assert!(!linearizable(&[op(Write(1), 0, Some(1)), op(Read(None), 2, Some(3))]));
        // A stale read: 2 overwrote 1 before the read began.
        assert!(!linearizable(&[
            op(Write(1), 0, Some(1)),
            op(Write(2), 2, Some(3)),
            op(Read(Some(1)), 4, Some(5)),
        ]));
        // A value nobody wrote.
        assert!(!linearizable(&[op(Read(Some(7)), 0, Some(1))]));
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps the write: both answers are fine.
        assert!(linearizable(&[op(Write(1), 0, Some(10)), op(Read(None), 5, Some(6))]));
        assert!(linearizable(&[op(Write(1), 0, Some(10)), op(Read(Some(1)), 5, Some(6))]));
        // Two overlapping writes, then reads that both saw 2 and then 1: impossible once 1 was seen
        // after 2 by a later read unless 1 came last; reading 2 after that is not.
        assert!(!linearizable(&[
            op(Write(1), 0, Some(10)),
            op(Write(2), 0, Some(10)),
            op(Read(Some(1)), 11, Some(12)),
            op(Read(Some(2)), 13, Some(14)),
        ]));
        // Reads that flip back: the second read began after the first ended.
        assert!(!linearizable(&[
            op(Write(1), 0, Some(100)),
            op(Read(Some(1)), 10, Some(20)),
            op(Read(None), 30, Some(40)),
        ]));
    }

    #[test]
    fn writes_of_unknown_outcome_may_or_may_not_have_happened() {
        assert!(linearizable(&[op(Write(1), 0, None), op(Read(None), 5, Some(6))]));
        assert!(linearizable(&[op(Write(1), 0, None), op(Read(Some(1)), 5, Some(6))]));
        // ... but once seen, it stays (no later read may miss it without another write).
        assert!(!linearizable(&[
            op(Write(1), 0, None),
            op(Read(Some(1)), 5, Some(6)),
            op(Read(None), 7, Some(8)),
        ]));
    }

    #[test]
    fn check_names_the_failing_point() {
        let mut bad = op(Read(Some(9)), 0, Some(1));
        bad.key = 4;
        let good = op(Write(1), 0, Some(1));
        let err = check(&[good, bad]).unwrap_err();
        assert_eq!(err.key, 4);
        assert!(err.to_string().contains("point 4"));
    }

    #[test]
    fn a_long_concurrent_history_is_checked_quickly() {
        // 60 overlapping writes and reads consistent with writes taking effect in invocation order.
        let mut ops = Vec::new();
        for i in 0..30u64 {
            ops.push(op(Write(i + 1), i * 10, Some(i * 10 + 25)));
            ops.push(op(Read(Some(i + 1)), i * 10 + 26, Some(i * 10 + 27)));
        }
        assert!(linearizable(&ops));
    }
}
