//! W-TinyLFU's lists under replacements that move an entry to a new slot, as the concurrent
//! table makes them (its readers may still hold the old one).

use alloc::vec::Vec;

use super::*;

/// Entries as the concurrent table keeps them: a replaced entry moves to a new slot, its
/// policy state with it.
#[derive(Default)]
struct Moving {
    metas: Vec<Meta>,
    hashes: Vec<u64>,
    live: Vec<bool>,
}

impl Entries<Meta> for Moving {
    fn meta(&self, id: SlotId) -> &Meta {
        &self.metas[id as usize]
    }
    fn meta_mut(&mut self, id: SlotId) -> &mut Meta {
        &mut self.metas[id as usize]
    }
    fn hash(&self, id: SlotId) -> u64 {
        self.hashes[id as usize]
    }
    fn weight(&self, _: SlotId) -> u64 {
        1
    }
    fn is_expired(&self, _: SlotId) -> bool {
        false
    }
    fn referenced(&mut self, _: SlotId) -> bool {
        false
    }
}

impl Moving {
    fn add(&mut self, hash: u64) -> SlotId {
        self.metas.push(Meta::default());
        self.hashes.push(hash);
        self.live.push(true);
        (self.metas.len() - 1) as SlotId
    }
}

/// Every list walks from its front back to it in `len` steps through entries of its
/// segment, and the lists hold exactly the live entries.
fn assert_lists_whole(policy: &WTinyLfu, entries: &Moving) {
    let mut seen = 0;
    for (list, segment) in [
        (&policy.window, Segment::Window),
        (&policy.probation, Segment::Probation),
        (&policy.protected, Segment::Protected),
        (&policy.critical, Segment::Critical),
    ] {
        let Some(front) = list.front else {
            assert_eq!(list.len, 0, "{segment:?}: empty with a length");
            continue;
        };
        let mut id = front;
        for _ in 0..list.len {
            assert!(
                entries.live[id as usize],
                "{segment:?}: a dead slot {id} is linked"
            );
            assert_eq!(entries.meta(id).segment(), segment, "slot {id}");
            let next = List::next(entries, id);
            assert_eq!(
                entries.meta(next).links().0,
                id,
                "{segment:?}: links disagree"
            );
            id = next;
        }
        assert_eq!(
            id, front,
            "{segment:?}: {} steps do not come round",
            list.len
        );
        seen += list.len;
    }
    assert_eq!(seen, entries.live.iter().filter(|&&l| l).count());
}

#[test]
fn entries_replaced_into_new_slots_keep_every_list_whole() {
    let mut policy = WTinyLfu::default();
    policy.reserve(64);
    let mut entries = Moving::default();
    let mut at: Vec<SlotId> = Vec::new();
    let hash = |key: u64| key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (key >> 7);
    for key in 0..48u64 {
        let id = entries.add(hash(key));
        policy.on_insert(
            &mut entries,
            id,
            EntryInfo::new(hash(key), 1, Priority::High),
        );
        at.push(id);
        while policy.resident() > 32 {
            let victim = policy.evict(&mut entries, false).expect("a victim");
            entries.live[victim as usize] = false;
        }
        assert_lists_whole(&policy, &entries);
    }
    // Replace every live key many times in a fixed scramble: fronts, backs and middles of
    // every list, the window's newest, singletons.
    let mut replace = |policy: &mut WTinyLfu, key: u64, priority: Priority| {
        let old = at[key as usize];
        if !entries.live[old as usize] {
            return;
        }
        let new = entries.add(hash(key));
        entries.metas[new as usize] = core::mem::take(&mut entries.metas[old as usize]);
        entries.live[old as usize] = false;
        let info = EntryInfo::new(hash(key), 1, priority);
        policy.on_replace(&mut entries, old, new, 1, info);
        at[key as usize] = new;
        assert_lists_whole(policy, &entries);
    };
    for round in 0..400u64 {
        let priority = if round % 11 == 0 {
            Priority::Critical
        } else {
            Priority::High
        };
        replace(&mut policy, (round * 7 + round / 5) % 48, priority);
    }
    // Then every key in turn, three times: each main-region entry is promoted, and protected
    // outgrows its share, so the rebalance moves its oldest back to probation.
    for _ in 0..3 {
        for key in 0..48 {
            replace(&mut policy, key, Priority::High);
        }
    }
    let (protected, probation) = (policy.protected.len, policy.probation.len);
    assert!(
        probation > 0 && protected * 5 <= (protected + probation) * 4,
        "protected {protected}, probation {probation}: the rebalance ran"
    );
}
