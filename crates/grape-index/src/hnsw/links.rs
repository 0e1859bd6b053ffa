//! Adjacency storage of the graph: the level of every offset, level-0 neighbour lists in one flat array
//! with a fixed stride, and upper-level lists in blocks allocated only for the few offsets that have them.
//!
//! Lists are atomics so that parallel builders can read them without locks while others rewrite them
//! (writers hold the node's lock). A list is `count` followed by `capacity` slots; a writer fills the slots
//! with relaxed stores and then publishes the count with a release store, and readers load the count with
//! acquire. So a reader may see a list mid-rewrite (a mix of old and new entries), but every entry it sees
//! was written as part of some published list and therefore names a node that is in the graph.

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

/// Level of an offset that is not in the graph.
pub(super) const ABSENT: u8 = u8::MAX;
/// Highest level a node can get (levels above ~10 have vanishing probability for any real `m`).
pub(super) const MAX_LEVEL: u8 = 32;
/// `upper_start` of a node without upper levels.
const NO_BLOCK: u32 = u32::MAX;

pub(super) struct GraphLinks {
    /// Maximum neighbours on levels >= 1.
    m: usize,
    /// Maximum neighbours on level 0.
    m0: usize,
    /// Level per offset, `ABSENT` if the offset is not in the graph.
    levels: Vec<u8>,
    /// Per offset, stride `1 + m0`: count, then neighbour slots.
    level0: Vec<AtomicU32>,
    /// Per offset, index of its first upper block (level 1; level `l` is block `start + l - 1`).
    upper_start: Vec<u32>,
    /// Blocks of `1 + m`: count, then neighbour slots.
    upper: Vec<AtomicU32>,
    /// Per-offset lock held by whoever rewrites that offset's lists.
    locks: Vec<Mutex<()>>,
}

impl GraphLinks {
    pub(super) fn new(m: usize, m0: usize, capacity: usize) -> Self {
        let mut links = GraphLinks {
            m,
            m0,
            levels: Vec::new(),
            level0: Vec::new(),
            upper_start: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
        };
        links.grow(capacity);
        links
    }

    /// Links read from a file: `level0` has stride `1 + m0` per offset; `upper` holds the blocks of the
    /// nodes with upper levels in offset order (levels 1..=L of the first such node, then the next).
    /// The caller has validated the parts (see `file`).
    pub(super) fn from_parts(
        m: usize,
        m0: usize,
        levels: Vec<u8>,
        level0: Vec<u32>,
        upper: Vec<u32>,
    ) -> Self {
        let mut upper_start = vec![NO_BLOCK; levels.len()];
        let mut block = 0u32;
        for (start, &level) in upper_start.iter_mut().zip(&levels) {
            if level != ABSENT && level > 0 {
                *start = block;
                block += u32::from(level);
            }
        }
        let locks = levels.iter().map(|_| Mutex::new(())).collect();
        GraphLinks {
            m,
            m0,
            levels,
            level0: {
                let mut l0 = crate::mem::huge_page_vec(level0.len());
                l0.extend(level0.into_iter().map(AtomicU32::new));
                l0
            },
            upper_start,
            upper: upper.into_iter().map(AtomicU32::new).collect(),
            locks,
        }
    }

    pub(super) fn m(&self) -> usize {
        self.m
    }

    pub(super) fn m0(&self) -> usize {
        self.m0
    }

    /// Number of addressable offsets (`0..capacity`), in the graph or not.
    pub(super) fn capacity(&self) -> usize {
        self.levels.len()
    }

    /// Makes offsets `0..capacity` addressable.
    pub(super) fn grow(&mut self, capacity: usize) {
        if capacity <= self.capacity() {
            return;
        }
        self.levels.resize(capacity, ABSENT);
        self.level0.resize_with(capacity * (1 + self.m0), || AtomicU32::new(0));
        self.upper_start.resize(capacity, NO_BLOCK);
        self.locks.resize_with(capacity, || Mutex::new(()));
    }

    #[inline]
    pub(super) fn level(&self, offset: u32) -> u8 {
        self.levels[offset as usize]
    }

    pub(super) fn levels(&self) -> &[u8] {
        &self.levels
    }

    /// Puts an absent offset in the graph at `level`, with empty lists. The offset must be addressable.
    pub(super) fn add_node(&mut self, offset: u32, level: u8) {
        debug_assert_eq!(self.levels[offset as usize], ABSENT);
        self.levels[offset as usize] = level;
        if level > 0 {
            let block = self.upper.len() / (1 + self.m);
            self.upper_start[offset as usize] = block as u32;
            self.upper.resize_with(self.upper.len() + level as usize * (1 + self.m), || AtomicU32::new(0));
        }
    }

    /// The list (count slot first) of `offset` at `level`; the node must have that level.
    #[inline]
    fn list(&self, offset: u32, level: usize) -> &[AtomicU32] {
        if level == 0 {
            let start = offset as usize * (1 + self.m0);
            &self.level0[start..start + 1 + self.m0]
        } else {
            let block = self.upper_start[offset as usize] as usize + level - 1;
            let start = block * (1 + self.m);
            &self.upper[start..start + 1 + self.m]
        }
    }

    /// Replaces `out` with the neighbours of `offset` at `level`.
    #[inline]
    pub(super) fn neighbours_into(&self, offset: u32, level: usize, out: &mut Vec<u32>) {
        let list = self.list(offset, level);
        let count = (list[0].load(Ordering::Acquire) as usize).min(list.len() - 1);
        out.clear();
        out.extend(list[1..=count].iter().map(|n| n.load(Ordering::Relaxed)));
    }

    /// The neighbour slots of `offset` at `level` (the count slot excluded).
    #[inline]
    pub(super) fn neighbours(&self, offset: u32, level: usize) -> &[AtomicU32] {
        let list = self.list(offset, level);
        let count = (list[0].load(Ordering::Acquire) as usize).min(list.len() - 1);
        &list[1..=count]
    }

    /// Calls `f` with each neighbour of `offset` at `level`.
    #[inline]
    pub(super) fn for_each_neighbour(&self, offset: u32, level: usize, mut f: impl FnMut(u32)) {
        for n in self.neighbours(offset, level) {
            f(n.load(Ordering::Relaxed));
        }
    }

    /// Number of neighbours of `offset` at `level`.
    pub(super) fn count(&self, offset: u32, level: usize) -> usize {
        self.list(offset, level)[0].load(Ordering::Acquire) as usize
    }

    /// Overwrites the list of `offset` at `level`. The caller holds `lock(offset)` (or `&mut self`), and
    /// every neighbour is a node of the graph with at least that level.
    pub(super) fn set_neighbours(
        &self,
        offset: u32,
        level: usize,
        neighbours: impl ExactSizeIterator<Item = u32>,
    ) {
        let list = self.list(offset, level);
        let count = neighbours.len().min(list.len() - 1);
        for (slot, n) in list[1..].iter().zip(neighbours) {
            slot.store(n, Ordering::Relaxed);
        }
        list[0].store(count as u32, Ordering::Release);
    }

    /// Appends one neighbour if there is room; the caller holds `lock(offset)`.
    pub(super) fn push_neighbour(&self, offset: u32, level: usize, neighbour: u32) -> bool {
        let list = self.list(offset, level);
        let count = list[0].load(Ordering::Relaxed) as usize;
        if count + 1 >= list.len() {
            return false;
        }
        list[1 + count].store(neighbour, Ordering::Relaxed);
        list[0].store(count as u32 + 1, Ordering::Release);
        true
    }

    pub(super) fn lock(&self, offset: u32) -> MutexGuard<'_, ()> {
        self.locks[offset as usize].lock()
    }

    /// Prefetches the level-0 list of `offset`, to be read soon.
    #[inline(always)]
    pub(super) fn prefetch(&self, offset: u32) {
        let start = offset as usize * (1 + self.m0);
        if let Some(list) = self.level0.get(start..start + 1 + self.m0) {
            crate::distance::prefetch_bytes(list.as_ptr().cast(), std::mem::size_of_val(list));
        }
    }

    pub(super) fn ram_bytes(&self) -> usize {
        self.levels.capacity()
            + (self.level0.capacity() + self.upper_start.capacity() + self.upper.capacity()) * 4
            + self.locks.capacity() * std::mem::size_of::<Mutex<()>>()
    }

    /// Number of upper blocks in use.
    pub(super) fn upper_blocks(&self) -> usize {
        self.upper.len() / (1 + self.m)
    }
}
