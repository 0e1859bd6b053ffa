//! Visited set for graph traversal: a generation-stamped array, reset in O(1) by bumping the generation.
//! Pooled with the rest of a search's working memory (`search::ScratchPool`).

/// Offsets whose stamp equals the current generation are visited. Zero is never a live generation, so a
/// fresh (zeroed) array is all-unvisited.
pub(super) struct VisitedList {
    stamps: Vec<u16>,
    generation: u16,
}

impl VisitedList {
    pub(super) fn new(capacity: usize) -> Self {
        VisitedList { stamps: vec![0; capacity], generation: 0 }
    }

    /// Forgets every mark and makes room for offsets `0..capacity`.
    pub(super) fn reset(&mut self, capacity: usize) {
        if self.stamps.len() < capacity {
            self.stamps.resize(capacity, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamps.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `offset` visited and tells whether it already was.
    #[inline]
    pub(super) fn check_and_mark(&mut self, offset: u32) -> bool {
        let stamp = &mut self.stamps[offset as usize];
        let seen = *stamp == self.generation;
        *stamp = self.generation;
        seen
    }

    /// Starts a new traversal on the same list.
    pub(super) fn clear(&mut self) {
        let capacity = self.stamps.len();
        self.reset(capacity);
    }

    pub(super) fn bytes(&self) -> usize {
        self.stamps.capacity() * std::mem::size_of::<u16>()
    }
}
