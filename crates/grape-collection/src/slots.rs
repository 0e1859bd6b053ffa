//! Slot routing: every point id hashes to one of 65,536 slots; a slot table maps slots to shards.

use grape_types::PointId;

pub const SLOT_COUNT: usize = 65_536;

/// Maps each slot to a shard. The default layout gives each shard one contiguous range of slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotTable {
    shard_of_slot: Vec<u32>,
    shards: u32,
}

impl SlotTable {
    pub fn contiguous(shards: u32) -> SlotTable {
        let shards = shards.max(1);
        let shard_of_slot = (0..SLOT_COUNT as u64)
            .map(|slot| (slot * u64::from(shards) / SLOT_COUNT as u64) as u32)
            .collect();
        SlotTable { shard_of_slot, shards }
    }

    pub fn slot(id: &PointId) -> u16 {
        (id.stable_hash() % SLOT_COUNT as u64) as u16
    }

    pub fn shard_for(&self, id: &PointId) -> u32 {
        self.shard_of_slot[Self::slot(id) as usize]
    }

    pub fn shard_count(&self) -> u32 {
        self.shards
    }
}

/// The shard of `id` among `shards` shards that split the slots into contiguous ranges, as
/// [`SlotTable::contiguous`] does, without the table.
pub fn contiguous_shard(shards: u32, id: &PointId) -> u32 {
    (u64::from(SlotTable::slot(id)) * u64::from(shards.max(1)) / SLOT_COUNT as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_balanced() {
        let t = SlotTable::contiguous(3);
        let mut counts = [0usize; 3];
        for id in 0..30_000u64 {
            counts[t.shard_for(&PointId::Num(id)) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        for id in 0..1000u64 {
            assert_eq!(contiguous_shard(3, &PointId::Num(id)), t.shard_for(&PointId::Num(id)));
        }
    }
}
