//! Tests of the write-ahead log: a model test against a `BTreeMap`, crash recovery from torn and corrupt
//! files, index continuity, the fsync thread's lifecycle, and an (ignored) append throughput measurement.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::format::{HEADER_LEN, RECORD_HEADER_LEN};
use super::{SyncPolicy, Wal, WalError, WalOptions, MAX_RECORD_SIZE};

fn options(capacity: u64, sync: SyncPolicy) -> WalOptions {
    WalOptions { segment_capacity: capacity, segments_ahead: 0, sync }
}

fn open(dir: &Path, capacity: u64) -> Wal {
    match Wal::open(dir, options(capacity, SyncPolicy::Never)) {
        Ok(wal) => wal,
        Err(e) => panic!("opening {}: {e}", dir.display()),
    }
}

/// Payload of record `i` in the fixed-content tests: recognisable and of varying length.
fn payload(i: u64) -> Vec<u8> {
    format!("record {i} ").repeat(1 + (i as usize % 4)).into_bytes()
}

/// Segment files of `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        fs::read_dir(dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    files.retain(|p| {
        p.file_name().and_then(|n| n.to_str()).and_then(super::format::parse_segment_file_name).is_some()
    });
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("list {}: {e}", from.display())) {
        let path = entry.unwrap_or_else(|e| panic!("list: {e}")).path();
        let target = to.join(path.file_name().unwrap_or_default());
        fs::copy(&path, &target).unwrap_or_else(|e| panic!("copy {}: {e}", path.display()));
    }
}

fn flip_byte(path: &Path, offset: u64) {
    let mut data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    data[offset as usize] ^= 0x40;
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Writes records 1..=n with `payload` into a log of the given capacity and returns the directory.
fn write_log(n: u64, capacity: u64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = open(tmp.path(), capacity);
    for i in 1..=n {
        assert_eq!(wal.append(&payload(i)).ok(), Some(i));
    }
    tmp
}

fn assert_records(wal: &Wal, range: std::ops::RangeInclusive<u64>) {
    let got = wal.read_from(1).unwrap_or_else(|e| panic!("read_from: {e}"));
    let want: Vec<(u64, Vec<u8>)> = range.map(|i| (i, payload(i))).collect();
    assert_eq!(got, want);
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    AppendBatch(Vec<Vec<u8>>),
    /// Truncate up to `last_index - back` (saturating).
    Truncate {
        back: u64,
    },
    /// Reset the next index to `next_index + ahead` (meaningful only for an empty log).
    Reset {
        ahead: u64,
    },
    Reopen,
    ReadFrom {
        back: u64,
    },
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let record = proptest::collection::vec(any::<u8>(), 0..120);
    prop_oneof![
        6 => record.clone().prop_map(Op::Append),
        3 => proptest::collection::vec(record, 0..6).prop_map(Op::AppendBatch),
        2 => (0u64..6).prop_map(|back| Op::Truncate { back }),
        1 => (0u64..4).prop_map(|ahead| Op::Reset { ahead }),
        2 => Just(Op::Reopen),
        1 => (0u64..10).prop_map(|back| Op::ReadFrom { back }),
    ]
}

/// The log against a model: every record ever appended, and the highest index truncation allowed to drop.
struct Model {
    records: BTreeMap<u64, Vec<u8>>,
    next: u64,
    truncated_through: u64,
}

impl Model {
    fn check(&self, wal: &Wal) -> Result<(), TestCaseError> {
        prop_assert_eq!(wal.last_index(), self.next.checked_sub(1).filter(|&i| i > 0));
        let stored: Vec<(u64, Vec<u8>)> =
            wal.read_from(1).map_err(|e| TestCaseError::fail(format!("read_from: {e}")))?;
        let first = wal.first_index();
        prop_assert_eq!(first, stored.first().map(|(i, _)| *i));
        // Every record above the truncation point is kept; what is kept is exactly what was appended.
        let lowest_kept = first.unwrap_or(self.next);
        prop_assert!(
            lowest_kept <= self.truncated_through + 1,
            "a record above the truncation point is gone"
        );
        let want: Vec<(u64, Vec<u8>)> =
            self.records.range(lowest_kept..).map(|(i, r)| (*i, r.clone())).collect();
        prop_assert_eq!(stored, want);
        Ok(())
    }
}

fn run_model(ops: Vec<Op>, segments_ahead: usize) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let opts = WalOptions { segment_capacity: 256, segments_ahead, sync: SyncPolicy::Never };
    let reopen = || Wal::open(tmp.path(), opts.clone()).map_err(|e| TestCaseError::fail(e.to_string()));
    let mut wal = reopen()?;
    let mut model = Model { records: BTreeMap::new(), next: 1, truncated_through: 0 };
    for op in ops {
        match op {
            Op::Append(r) => {
                let index = wal.append(&r).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(index, model.next);
                model.records.insert(index, r);
                model.next += 1;
            }
            Op::AppendBatch(rs) => {
                let refs: Vec<&[u8]> = rs.iter().map(Vec::as_slice).collect();
                let first = wal.append_batch(&refs).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(first, model.next);
                for r in rs {
                    model.records.insert(model.next, r);
                    model.next += 1;
                }
            }
            Op::Truncate { back } => {
                let up_to = (model.next - 1).saturating_sub(back);
                wal.truncate_prefix(up_to).map_err(|e| TestCaseError::fail(e.to_string()))?;
                model.truncated_through = model.truncated_through.max(up_to);
                if up_to + 1 >= model.next {
                    prop_assert_eq!(wal.first_index(), None, "truncating everything leaves no record");
                }
                // The oldest remaining segment holds a record above `up_to`, or is the only one.
                let bases: Vec<u64> = segment_files(tmp.path())
                    .iter()
                    .filter_map(|p| p.file_name()?.to_str().and_then(super::format::parse_segment_file_name))
                    .collect();
                if let [_, second, ..] = bases[..] {
                    prop_assert!(second - 1 > up_to, "a segment of truncated records survived: {:?}", bases);
                }
            }
            Op::Reset { ahead } => {
                let next = model.next + ahead;
                let result = wal.reset_next_index(next);
                if wal.first_index().is_none() || ahead == 0 {
                    result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                    if ahead > 0 {
                        model.next = next;
                        model.truncated_through = model.truncated_through.max(next - 1);
                    }
                } else {
                    prop_assert!(matches!(result, Err(WalError::InvalidRequest(_))));
                }
            }
            Op::Reopen => {
                drop(wal);
                wal = reopen()?;
            }
            Op::ReadFrom { back } => {
                let from = model.next.saturating_sub(back).max(1);
                let got = wal.read_from(from).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want: Vec<(u64, Vec<u8>)> =
                    model.records.range(from..).map(|(i, r)| (*i, r.clone())).collect();
                let lowest = wal.first_index().unwrap_or(model.next);
                let want: Vec<_> = want.into_iter().filter(|(i, _)| *i >= lowest).collect();
                prop_assert_eq!(got, want);
            }
        }
        model.check(&wal)?;
        // Sealed segments of records above the truncation point, plus the active one, plus spares.
        prop_assert!(wal.disk_bytes() >= HEADER_LEN);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn wal_matches_model(ops in proptest::collection::vec(op_strategy(), 1..60), ahead in 0usize..3) {
        run_model(ops, ahead)?;
    }
}

#[test]
fn wal_torn_tail_is_dropped_at_every_byte() {
    let n = 12;
    let template = write_log(n, 256);
    let files = segment_files(template.path());
    assert!(files.len() >= 3, "the test needs rotation, got {} segments", files.len());
    let last = files.last().cloned().unwrap_or_default();
    let len = fs::metadata(&last).map(|m| m.len()).unwrap_or(0);
    let record_len = (RECORD_HEADER_LEN + payload(n).len()) as u64;
    let record_start = len - record_len;
    assert!(record_start >= HEADER_LEN);
    for cut in record_start..len {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        copy_dir(template.path(), tmp.path());
        let name = last.file_name().unwrap_or_default();
        let file = fs::OpenOptions::new().write(true).open(tmp.path().join(name));
        file.and_then(|f| f.set_len(cut)).unwrap_or_else(|e| panic!("truncate: {e}"));
        let wal = open(tmp.path(), 256);
        assert_records(&wal, 1..=n - 1);
        assert_eq!(wal.last_index(), Some(n - 1), "cut at {cut}");
        assert_eq!(wal.append(&payload(n)).ok(), Some(n));
        drop(wal);
        let wal = open(tmp.path(), 256);
        assert_records(&wal, 1..=n);
    }
}

#[test]
fn wal_flipped_byte_in_last_record_drops_it() {
    let n = 12;
    let tmp = write_log(n, 256);
    let last = segment_files(tmp.path()).pop().unwrap_or_default();
    let len = fs::metadata(&last).map(|m| m.len()).unwrap_or(0);
    flip_byte(&last, len - 3);
    let wal = open(tmp.path(), 256);
    assert_records(&wal, 1..=n - 1);
    assert_eq!(wal.append(b"again").ok(), Some(n));
}

#[test]
fn wal_flipped_byte_in_middle_segment_is_corruption() {
    let tmp = write_log(12, 256);
    let files = segment_files(tmp.path());
    assert!(files.len() >= 3);
    let middle = &files[files.len() / 2];
    let len = fs::metadata(middle).map(|m| m.len()).unwrap_or(0);
    // A payload byte, a record header byte and a segment header byte.
    for offset in [len - 2, HEADER_LEN + 1, 14] {
        let copy = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        copy_dir(tmp.path(), copy.path());
        flip_byte(&copy.path().join(middle.file_name().unwrap_or_default()), offset);
        match Wal::open(copy.path(), options(256, SyncPolicy::Never)) {
            Err(WalError::Corrupt { segment, .. }) => {
                assert_eq!(Some(segment.as_str()), middle.file_name().and_then(|n| n.to_str()))
            }
            other => panic!("flip at {offset}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn wal_missing_middle_segment_is_corruption() {
    let tmp = write_log(12, 256);
    let files = segment_files(tmp.path());
    fs::remove_file(&files[1]).unwrap_or_else(|e| panic!("remove: {e}"));
    let result = Wal::open(tmp.path(), options(256, SyncPolicy::Never));
    assert!(matches!(result, Err(WalError::Corrupt { .. })), "{result:?}");
}

#[test]
fn wal_next_index_survives_truncating_everything() {
    let n = 10;
    let tmp = write_log(n, 256);
    let wal = open(tmp.path(), 256);
    wal.truncate_prefix(n).unwrap_or_else(|e| panic!("truncate: {e}"));
    assert_eq!(wal.first_index(), None);
    assert_eq!(wal.last_index(), Some(n));
    assert_eq!(segment_files(tmp.path()).len(), 1);
    assert_eq!(wal.disk_bytes(), HEADER_LEN);
    drop(wal);
    let wal = open(tmp.path(), 256);
    assert_eq!((wal.first_index(), wal.last_index()), (None, Some(n)));
    assert_eq!(wal.read_from(1).ok(), Some(vec![]));
    assert_eq!(wal.append(b"next").ok(), Some(n + 1));
    // Truncating again with nothing new to drop changes nothing.
    wal.truncate_prefix(n).unwrap_or_else(|e| panic!("truncate: {e}"));
    assert_eq!(wal.first_index(), Some(n + 1));
}

#[test]
fn wal_truncate_keeps_the_active_segment_with_newer_records() {
    let tmp = write_log(12, 256);
    let wal = open(tmp.path(), 256);
    let before = segment_files(tmp.path()).len();
    wal.truncate_prefix(11).unwrap_or_else(|e| panic!("truncate: {e}"));
    let after = segment_files(tmp.path());
    assert!(after.len() < before);
    let first = wal.first_index().unwrap_or(0);
    assert!(first <= 12);
    let got = wal.read_from(12).unwrap_or_default();
    assert_eq!(got, vec![(12, payload(12))]);
}

#[test]
fn wal_reset_next_index() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = open(tmp.path(), 256);
    wal.reset_next_index(101).unwrap_or_else(|e| panic!("reset: {e}"));
    assert_eq!((wal.first_index(), wal.last_index()), (None, Some(100)));
    assert_eq!(wal.append(b"a").ok(), Some(101));
    assert!(matches!(wal.reset_next_index(500), Err(WalError::InvalidRequest(_))));
    assert!(matches!(wal.reset_next_index(0), Err(WalError::InvalidRequest(_))));
    assert!(wal.reset_next_index(102).is_ok(), "resetting to the next index is a no-op");
    // Lowering is allowed once the log is empty (restoring an older snapshot).
    wal.truncate_prefix(101).unwrap_or_else(|e| panic!("truncate: {e}"));
    wal.reset_next_index(7).unwrap_or_else(|e| panic!("reset: {e}"));
    drop(wal);
    let wal = open(tmp.path(), 256);
    assert_eq!(wal.append(b"b").ok(), Some(7));
    assert_eq!(segment_files(tmp.path()).len(), 1);
}

#[test]
fn wal_interrupted_reset_is_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = open(tmp.path(), 256);
    let old = segment_files(tmp.path()).pop().unwrap_or_default();
    let saved = fs::read(&old).unwrap_or_default();
    wal.reset_next_index(50).unwrap_or_else(|e| panic!("reset: {e}"));
    drop(wal);
    // A crash before the old empty segment was deleted leaves both: the newer one wins.
    fs::write(&old, &saved).unwrap_or_else(|e| panic!("write: {e}"));
    let wal = open(tmp.path(), 256);
    assert_eq!(wal.append(b"x").ok(), Some(50));
    assert_eq!(segment_files(tmp.path()).len(), 1);
}

#[test]
fn wal_large_records_get_their_own_segment() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = open(tmp.path(), 256);
    let big = vec![7u8; 1000];
    assert_eq!(wal.append(b"small").ok(), Some(1));
    assert_eq!(wal.append_batch(&[&big, b"after", &big]).ok(), Some(2));
    assert_eq!(segment_files(tmp.path()).len(), 4, "small | big | after | big");
    drop(wal);
    let wal = open(tmp.path(), 256);
    let got = wal.read_from(2).unwrap_or_default();
    assert_eq!(got, vec![(2, big.clone()), (3, b"after".to_vec()), (4, big)]);
}

#[test]
fn wal_rejects_records_over_one_gib() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = open(tmp.path(), 256);
    // Zeroed allocation: the pages are never touched, so this costs no memory.
    let huge = vec![0u8; MAX_RECORD_SIZE + 1];
    match wal.append_batch(&[b"ok", &huge]) {
        Err(WalError::RecordTooLarge { size, max }) => {
            assert_eq!((size, max), (MAX_RECORD_SIZE + 1, 1 << 30))
        }
        other => panic!("expected RecordTooLarge, got {other:?}"),
    }
    assert_eq!(wal.last_index(), None, "nothing of a rejected batch is written");
    assert_eq!(wal.append(b"fine").ok(), Some(1));
}

#[test]
fn wal_spare_segments_are_used_and_replenished() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let opts = WalOptions { segment_capacity: 256, segments_ahead: 2, sync: SyncPolicy::Never };
    let spares = |dir: &Path| {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().contains("spare"))
                    .count()
            })
            .unwrap_or(0)
    };
    let wal = Wal::open(tmp.path(), opts.clone()).unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(spares(tmp.path()), 2);
    for i in 1..=12 {
        assert_eq!(wal.append(&payload(i)).ok(), Some(i));
    }
    assert!(spares(tmp.path()) < 2, "rotation uses spares");
    wal.truncate_prefix(3).unwrap_or_else(|e| panic!("truncate: {e}"));
    assert_eq!(spares(tmp.path()), 2, "truncation replenishes spares");
    let expected_bytes: u64 = fs::read_dir(tmp.path())
        .map(|rd| rd.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    assert_eq!(wal.disk_bytes(), expected_bytes);
    drop(wal);
    let wal = Wal::open(tmp.path(), opts).unwrap_or_else(|e| panic!("open: {e}"));
    let first = wal.first_index().unwrap_or(0);
    assert!(first <= 4);
    assert_records(&wal, first..=12);
}

#[test]
fn wal_interval_policy_syncs_and_its_thread_stops_on_drop() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = Wal::open(tmp.path(), options(1 << 20, SyncPolicy::IntervalMs(5)))
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(wal.append(b"a").ok(), Some(1));
    assert_eq!(wal.append(b"b").ok(), Some(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while wal.synced_index() < 2 {
        assert!(Instant::now() < deadline, "the background thread never synced");
        std::thread::sleep(Duration::from_millis(2));
    }
    let shared = wal.shared_weak();
    drop(wal);
    // Drop joined the thread, which held the only other reference to the shared state.
    assert!(shared.upgrade().is_none(), "the fsync thread outlived the Wal");
}

#[test]
fn wal_close_rejects_further_use() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = Wal::open(tmp.path(), options(1 << 20, SyncPolicy::IntervalMs(1000)))
        .unwrap_or_else(|e| panic!("open: {e}"));
    assert_eq!(wal.append(b"a").ok(), Some(1));
    let shared = wal.shared_weak();
    assert!(wal.close().is_ok());
    assert!(wal.close().is_ok());
    assert_eq!(wal.synced_index(), 1);
    assert!(matches!(wal.append(b"b"), Err(WalError::Closed)));
    assert!(matches!(wal.read_from(1), Err(WalError::Closed)));
    assert_eq!(Arc::strong_count(&shared.upgrade().unwrap_or_else(|| panic!("alive"))), 2);
}

#[test]
fn wal_concurrent_appends_reads_and_truncation() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let wal = Arc::new(
        Wal::open(tmp.path(), options(512, SyncPolicy::Always)).unwrap_or_else(|e| panic!("open: {e}")),
    );
    let writers: Vec<_> = (0..3u8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..40u8 {
                    let record = vec![t, i];
                    match wal.append(&record) {
                        Ok(index) => mine.push((index, record)),
                        Err(e) => panic!("append: {e}"),
                    }
                }
                mine
            })
        })
        .collect();
    let reader = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            for _ in 0..20 {
                let records = wal.read_from(1).unwrap_or_else(|e| panic!("read: {e}"));
                let indexes: Vec<u64> = records.iter().map(|(i, _)| *i).collect();
                assert!(indexes.windows(2).all(|w| w[1] == w[0] + 1), "gap in {indexes:?}");
                if let Some(&last) = indexes.last() {
                    wal.truncate_prefix(last.saturating_sub(5)).unwrap_or_else(|e| panic!("truncate: {e}"));
                }
            }
        })
    };
    let mut all: Vec<(u64, Vec<u8>)> =
        writers.into_iter().flat_map(|h| h.join().unwrap_or_else(|_| panic!("writer panicked"))).collect();
    reader.join().unwrap_or_else(|_| panic!("reader panicked"));
    all.sort();
    assert_eq!(all.iter().map(|(i, _)| *i).collect::<Vec<_>>(), (1..=120).collect::<Vec<_>>());
    let first = wal.first_index().unwrap_or(121);
    let stored = wal.read_from(1).unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(stored, all.into_iter().filter(|(i, _)| *i >= first).collect::<Vec<_>>());
}

/// Append throughput with fsync per append: `cargo test -p grape-shard --release wal_append_throughput --
/// --ignored --nocapture`.
#[test]
#[ignore = "measurement, not a check"]
fn wal_append_throughput() {
    let dir = std::env::var_os("WAL_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let record = vec![0xA5u8; 1024];
    for (batch, total) in [(1usize, 2_000usize), (100, 50_000)] {
        let tmp = tempfile::tempdir_in(&dir).unwrap_or_else(|e| panic!("tempdir: {e}"));
        let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap_or_else(|e| panic!("open: {e}"));
        let records: Vec<&[u8]> = vec![&record; batch];
        let start = Instant::now();
        for _ in 0..total / batch {
            wal.append_batch(&records).unwrap_or_else(|e| panic!("append: {e}"));
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "SyncPolicy::Always, 1 KiB records, batch {batch:>3}: {:>9.0} appends/s ({:.0} fsyncs/s)",
            total as f64 / secs,
            (total / batch) as f64 / secs
        );
    }
}
