//! One L2 shard: entries readers find without a lock (the raw layer), a writer at a time behind
//! the shard's lock, the eviction policy beside it, and the read buffers between the two.
//!
//! A hit counts in the entry's use byte (a hit count for promotion, and a referenced bit) and,
//! if the policy asks to hear of it ([`Policy::hit_reports`], which the writer publishes for
//! readers), appends the key's hash to the reader's ring in the read buffers; the next writer
//! replays the rings through [`Policy::on_access`]. Everything else runs under the lock: storing, removing
//! and evicting, the policy's bookkeeping, and, through [`Tiers`], keeping the tier above
//! (the tiered cache's L1) in step with what leaves the shard.

use core::borrow::Borrow;

use stratacache_alloc::MemoryHandle;

mod published;

use super::buffer::ReadBuffer;
use super::policy::{Entries, EntryInfo, HitReports, Policy, Priority, SlotId};
use super::raw::{
    Epoch, Found, NEVER, NewSlot, OutOfMemory, RawShard, RawWriter, Retired, SegmentVec, Shape,
    Slots, prefetch,
};
use super::tiers::Tiers;
use crate::entry::RemovalCause;
use crate::sync::{AtomicU32, Ordering};
use published::{Hint, encode, wants};

/// The policy's hash for an entry: the stored 32 bits, spread over 64 (policies take bits from
/// anywhere: a sketch's block, a sample's bits).
#[inline]
pub(crate) fn policy_hash(hash: u32) -> u64 {
    let x = u64::from(hash).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

/// The writer's own state: the policy, its per-slot state and the entries' weights.
pub(crate) struct Writer<P: Policy> {
    policy: P,
    metas: SegmentVec<P::Meta>,
    /// Per-slot weights; `None` when every entry weighs one.
    weights: Option<SegmentVec<u32>>,
    weight: u64,
}

/// One shard. See the [module docs](self).
pub(crate) struct Shard<K, V, P: Policy> {
    raw: RawShard<K, V, Writer<P>>,
    reads: ReadBuffer,
    /// The policy's [`HitReports`], as the writer last published them (a mask: see
    /// `published::encode`).
    reports: AtomicU32,
    /// The policy's [`KeyHint`], as the writer last published it.
    hint: Hint,
}

/// An entry that left a shard by eviction (or expiry): its slot stays readable for the
/// operation's epoch, for the listener.
pub(crate) struct Victim<'g> {
    pub(crate) retired: Retired<'g>,
    pub(crate) weight: u64,
    pub(crate) cause: RemovalCause,
}

/// What storing over a present key left: the old slot, readable for the epoch.
pub(crate) struct Replaced<'g> {
    pub(crate) retired: Retired<'g>,
    /// Its deadline ([`NEVER`] for none).
    pub(crate) expires: u64,
}

/// The policy's view of the shard's entries, for one call.
struct View<'a, 'w, K, V, P: Policy, U> {
    slots: Slots<'w, K, V, Writer<P>>,
    metas: &'a mut SegmentVec<P::Meta>,
    weights: Option<&'a SegmentVec<u32>>,
    /// The clock, for expiry (`None`: nothing counts as expired).
    now: Option<u64>,
    tiers: &'a mut U,
    promote_after: u8,
}

impl<K, V, P: Policy, U: Tiers<K, V>> Entries<P::Meta> for View<'_, '_, K, V, P, U> {
    #[inline]
    fn meta(&self, id: SlotId) -> &P::Meta {
        self.metas.get(id as usize)
    }

    #[inline]
    fn meta_mut(&mut self, id: SlotId) -> &mut P::Meta {
        self.metas.get_mut(id as usize)
    }

    #[inline]
    fn hash(&self, id: SlotId) -> u64 {
        policy_hash(self.slots.hash(id))
    }

    #[inline]
    fn weight(&self, id: SlotId) -> u64 {
        self.weights
            .map_or(1, |weights| u64::from(*weights.get(id as usize)))
    }

    #[inline]
    fn is_expired(&self, id: SlotId) -> bool {
        self.now.is_some_and(|now| self.slots.expires(id) <= now)
    }

    #[inline]
    fn referenced(&mut self, id: SlotId) -> bool {
        let uses = self.slots.uses(id);
        if uses.take_referenced() {
            return true;
        }
        // An entry with fewer hits than promotion needs has no copy above (a Critical copy
        // saturates the count): no need to ask.
        let hits = uses.hits();
        hits >= self.promote_after && self.used_above(id, hits)
    }
}

impl<K, V, P: Policy, U: Tiers<K, V>> View<'_, '_, K, V, P, U> {
    /// Whether the tier above used entry `id` (with `hits`, enough to have a copy there):
    /// out of line, so the common answer (no copy) costs the hand no call.
    #[inline(never)]
    fn used_above(&mut self, id: SlotId, hits: u8) -> bool {
        let (key, _) = self.slots.entry(id);
        self.tiers.used(self.slots.hash(id), key, hits)
    }
}

impl<K, V, P: Policy> Shard<K, V, P> {
    /// An empty shard evicting by `policy`; per-entry weights if `weighted`; slots in arrays
    /// of `shape`, allocated from `memory`; read buffers of `stripes` stripes; idle deadlines
    /// if `idling`, refresh times if `refreshing`.
    pub(crate) fn new(
        policy: P,
        weighted: bool,
        shape: Shape,
        memory: MemoryHandle,
        stripes: usize,
        idling: bool,
        refreshing: bool,
    ) -> Self {
        let writer = Writer {
            policy,
            metas: SegmentVec::new(shape, memory.clone()),
            weights: weighted.then(|| SegmentVec::new(shape, memory.clone())),
            weight: 0,
        };
        let reports = AtomicU32::new(encode(writer.policy.hit_reports()));
        let hint = Hint::new(writer.policy.key_hint());
        Self {
            raw: RawShard::new(writer, shape, memory, P::MAX_SLOTS, idling, refreshing),
            reads: ReadBuffer::new(stripes),
            reports,
            hint,
        }
    }

    /// The bytes one entry's slot and policy state take.
    pub(crate) fn slot_bytes() -> usize {
        RawShard::<K, V, Writer<P>>::slot_bytes() + core::mem::size_of::<P::Meta>()
    }

    /// The entry for `key`, if present (expired or not: the caller, who has the clock,
    /// decides). Takes no lock and writes nothing.
    #[inline(always)]
    pub(crate) fn get<'g, Q>(
        &'g self,
        hash: u32,
        key: &Q,
        epoch: &Epoch<'g>,
    ) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        self.raw.find(hash, key, epoch)
    }

    /// Moves the idle deadline of an entry this shard's `get` found (see
    /// `RawShard::idle_until`).
    pub(crate) fn idle_until(&self, found: &Found<'_, K, V>, at: u64, slack: u64) {
        self.raw.idle_until(found, at, slack);
    }

    /// Sets the idle deadline of an entry this shard's `get` found (see `RawShard::idle_at`).
    pub(crate) fn idle_at(&self, found: &Found<'_, K, V>, at: u64, slack: u64) {
        self.raw.idle_at(found, at, slack);
    }

    /// Takes the refresh of an entry this shard's `get` found, if due (see
    /// `RawShard::claim_refresh`).
    pub(crate) fn claim_refresh(&self, found: &Found<'_, K, V>, now: u64) -> Option<u64> {
        self.raw.claim_refresh(found, now)
    }

    /// Puts back the refresh time of an entry this shard's `get` found.
    pub(crate) fn refresh_at(&self, found: &Found<'_, K, V>, at: u64) {
        self.raw.refresh_at(found, at);
    }

    /// Every entry the shard indexes, as a reader sees them (see `RawShard::for_each_live`).
    pub(crate) fn for_each_live<'g>(&'g self, epoch: &Epoch<'g>, f: impl FnMut(Found<'g, K, V>)) {
        self.raw.for_each_live(epoch, f);
    }

    /// Records a hit on the entry of `hash` for the policy, if it asks to hear of it (see the
    /// module docs); if the reader's ring is full and no writer holds the lock, replays the
    /// rings now (with the tiers beside L2 that `tiers` makes: only then, so a hit builds
    /// nothing).
    #[inline]
    pub(crate) fn record_hit<U: Tiers<K, V>>(
        &self,
        stripe: usize,
        hash: u32,
        tiers: impl FnOnce() -> U,
        promote_after: u8,
    ) {
        // Relaxed: a hint the writer publishes; a hit filtered by a stale one is a lost record.
        let reports = self.reports.load(Ordering::Relaxed);
        if !wants(reports, policy_hash(hash)) {
            return;
        }
        if self.reads.record(stripe, hash)
            && let Some(mut writer) = self.try_lock(promote_after)
        {
            writer.replay(&mut tiers());
        }
    }

    /// Prefetches what an insertion of `hash` into this shard reads first ([`KeyHint`]): a
    /// lookup that missed calls it, since an insertion usually follows.
    #[inline]
    pub(crate) fn prefetch_insert(&self, hash: u32) {
        self.hint.prefetch(policy_hash(hash));
    }

    /// Takes the writer's lock.
    pub(crate) fn lock(&self, promote_after: u8) -> ShardWriter<'_, K, V, P> {
        ShardWriter {
            raw: self.raw.lock(),
            reads: &self.reads,
            reports: &self.reports,
            hint: &self.hint,
            promote_after,
            leftover: None,
        }
    }

    /// Takes the writer's lock if no other writer holds it.
    pub(crate) fn try_lock(&self, promote_after: u8) -> Option<ShardWriter<'_, K, V, P>> {
        Some(ShardWriter {
            raw: self.raw.try_lock()?,
            reads: &self.reads,
            reports: &self.reports,
            hint: &self.hint,
            promote_after,
            leftover: None,
        })
    }

    /// The key and value of a slot retired under the epoch `'g`.
    pub(crate) fn retired_entry<'g>(&'g self, retired: &Retired<'g>) -> (&'g K, &'g V) {
        self.raw.retired_entry(retired)
    }

    /// Drops the keys and values of up to `max` retired entries no reader can see any more
    /// (user code runs: hold no lock). Returns how many.
    pub(crate) fn reclaim(&self, max: usize) -> usize {
        self.raw.reclaim(max)
    }

    /// Entries retired and not reclaimed yet.
    pub(crate) fn retired(&self) -> usize {
        self.raw.retired()
    }

    /// Hands the entries retired into the writer's limbo to the collector, if any wait and no
    /// writer is busy (a busy one hands them over itself, batch by batch).
    pub(crate) fn hand_over(&self, epoch: &Epoch<'_>) {
        if self.raw.has_limbo()
            && let Some(mut writer) = self.raw.try_lock()
        {
            writer.hand_over(epoch);
        }
    }

    /// Whether the memory refused the shard more slots: it lives on what it has, and what it
    /// retires must come back soon (see [`ShardWriter::short_of_slots`]).
    pub(crate) fn is_limited(&self) -> bool {
        self.raw.is_limited()
    }

    /// Heap bytes held (takes the lock).
    pub(crate) fn heap_bytes(&self) -> usize {
        let writer = self.raw.lock();
        let state = writer.state_ref();
        self.raw.heap_bytes()
            + self.reads.heap_bytes()
            + state.metas.heap_bytes()
            + state.weights.as_ref().map_or(0, SegmentVec::heap_bytes)
            + state.policy.heap_bytes()
    }
}

/// A shard's writer: the shard locked, with the policy at hand.
pub(crate) struct ShardWriter<'a, K, V, P: Policy> {
    raw: RawWriter<'a, K, V, Writer<P>>,
    reads: &'a ReadBuffer,
    reports: &'a AtomicU32,
    promote_after: u8,
    /// The key and value of a retired entry whose slot was reused before a quiet point
    /// dropped them: the caller drops them outside every lock ([`take_leftover`]).
    ///
    /// [`take_leftover`]: Self::take_leftover
    leftover: Option<(K, V)>,
    hint: &'a Hint,
}

impl<K, V, P: Policy> Drop for ShardWriter<'_, K, V, P> {
    fn drop(&mut self) {
        let policy = &self.raw.state_ref().policy;
        self.hint.publish(policy.key_hint());
        // Publishes the policy's wishes for the readers' next hits.
        let reports = encode(policy.hit_reports());
        // Relaxed: a hint (see `Shard::record_hit`); stored only when it changed.
        if self.reports.load(Ordering::Relaxed) != reports {
            self.reports.store(reports, Ordering::Relaxed);
        }
    }
}

impl<'a, K, V, P: Policy> ShardWriter<'a, K, V, P> {
    /// Entries in the shard.
    pub(crate) fn len(&self) -> usize {
        self.raw.len()
    }

    /// Hands the entries retired into limbo to the collector now (a partial batch).
    pub(crate) fn hand_over(&mut self, epoch: &Epoch<'_>) {
        self.raw.hand_over(epoch);
    }

    /// Whether a shard the memory refused more slots holds so many entries that too few slots
    /// are on their way back for the next insertions: a retired slot returns only after its
    /// readers are gone and a quiet point reclaims it, so such a shard keeps a headroom of
    /// slots (a quarter of them, between 16 and 512, at most half) evicted ahead of need.
    pub(crate) fn short_of_slots(&self) -> bool {
        if !self.raw.is_limited() {
            return false;
        }
        let slots = self.raw.slot_capacity();
        let headroom = (slots / 4).clamp(16, 512).min(slots / 2);
        slots.saturating_sub(self.raw.len()) < headroom
    }

    /// The entries' total weight.
    pub(crate) fn weight(&self) -> u64 {
        self.raw.state_ref().weight
    }

    /// Runs `f` with the policy and its view of the entries.
    fn with_policy<R, U: Tiers<K, V>>(
        &mut self,
        now: Option<u64>,
        tiers: &mut U,
        f: impl FnOnce(&mut P, &mut View<'_, '_, K, V, P, U>) -> R,
    ) -> R {
        let promote_after = self.promote_after;
        let (state, slots) = self.raw.split();
        let Writer {
            policy,
            metas,
            weights,
            ..
        } = state;
        let mut view = View {
            slots,
            metas,
            weights: weights.as_ref(),
            now,
            tiers,
            promote_after,
        };
        f(policy, &mut view)
    }

    /// Tells the policy of the hits readers recorded since the last replay.
    #[inline]
    pub(crate) fn replay(&mut self, tiers: &mut impl Tiers<K, V>) {
        // The common case, nothing recorded since the last replay, costs no call.
        if self.reads.is_pending() {
            self.replay_recorded(tiers);
        }
    }

    /// [`replay`](Self::replay)'s work, once a reader recorded a hit.
    #[inline(never)]
    fn replay_recorded(&mut self, tiers: &mut impl Tiers<K, V>) {
        const BATCH: usize = 32;
        let reads = self.reads;
        let mut ids = [0u32; BATCH];
        let mut batch = 0;
        // Tell the policy of a batch of hits (the use is told now: it must not count again as
        // a mark).
        let flush = |this: &mut Self, tiers: &mut _, ids: &[u32]| {
            this.with_policy(None, tiers, |policy, view| {
                let all = policy.hit_reports() == HitReports::All;
                for &id in ids {
                    // A policy told of every hit is told of this one: its mark is consumed.
                    // One told of a sample reads the mark too.
                    if all {
                        view.slots.uses(id).take_referenced();
                    }
                    policy.on_access(view, id);
                }
            });
        };
        reads.replay(|hash| {
            // A hash whose entry left since is dropped.
            if let Some(id) = self.raw.find_hash(hash) {
                ids[batch] = id;
                batch += 1;
                if batch == BATCH {
                    flush(self, tiers, &ids);
                    batch = 0;
                }
            }
        });
        if batch > 0 {
            flush(self, tiers, &ids[..batch]);
        }
    }

    /// Makes sure the policy's per-slot state (and the weights) cover slot `id`.
    fn cover(&mut self, id: u32) -> Result<(), OutOfMemory> {
        let state = self.raw.state();
        while state.metas.capacity() <= id as usize {
            state.metas.grow(|_| P::Meta::default())?;
        }
        if let Some(weights) = state.weights.as_mut() {
            while weights.capacity() <= id as usize {
                weights.grow(|_| 0)?;
            }
        }
        Ok(())
    }

    /// The key and value of a retired entry this writer reused the slot of, to be dropped
    /// outside every lock.
    pub(crate) fn take_leftover(&mut self) -> Option<(K, V)> {
        self.leftover.take()
    }

    /// A slot for a new entry, its per-slot state ready: a free one, a new one, or (when the
    /// memory refuses more) one whose readers are gone, its old contents kept aside
    /// ([`take_leftover`](Self::take_leftover)).
    fn take_slot(&mut self, epoch: &Epoch<'_>) -> Result<NewSlot, OutOfMemory> {
        let slot = match self.raw.take_slot(epoch) {
            Ok(slot) => slot,
            Err(refused) => {
                if self.leftover.is_some() {
                    return Err(refused);
                }
                let Some((slot, key, value)) = self.raw.take_ready_slot() else {
                    return Err(refused);
                };
                self.leftover = Some((key, value));
                slot
            }
        };
        if self.cover(slot.id()).is_err() {
            self.raw.return_slot(slot);
            return Err(OutOfMemory);
        }
        Ok(slot)
    }

    /// Stores `key` and `value` as `info` says, expiring at `expires` ([`NEVER`] for never);
    /// the key's 32-bit hash is `hash`. When the key was present, the tier above drops its
    /// copy, the old slot is retired and returned (readable for the epoch); the policy is told
    /// of the new entry or of the replacement. Returns the new entry's id.
    ///
    /// # Errors
    /// The key and value, when the shard's memory cannot hold the entry (the caller evicts
    /// and retries, or gives up); the shard is unchanged.
    #[inline(always)]
    pub(crate) fn store<'g>(
        &mut self,
        hash: u32,
        (key, value): (K, V),
        info: EntryInfo,
        deadlines: (u64, u64, u64),
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Result<(u32, Option<Replaced<'g>>), (K, V)>
    where
        K: Eq,
    {
        let weight = u32::try_from(info.weight).expect("the caller checked the weight");
        // The slot first: growing the slots may rebuild the index, which moves buckets.
        let Ok(slot) = self.take_slot(epoch) else {
            return Err((key, value));
        };
        let present = self.raw.find(hash, &key);
        if present.is_none() && self.raw.reserve_index(hash, epoch).is_err() {
            self.raw.return_slot(slot);
            return Err((key, value));
        }
        let (hits, old_expires) = match present {
            Some((_, old)) => {
                let slots = self.raw.slots();
                (slots.uses(old).hits(), slots.expires(old))
            }
            None => (0, NEVER),
        };
        // The tier below forgets its older copy before the new one is visible.
        tiers.written(&key);
        let new = match self.raw.fill(slot, hash, (key, value), deadlines, hits) {
            Ok(new) => new,
            Err((slot, key, value)) => {
                self.raw.return_slot(slot);
                return Err((key, value));
            }
        };
        let state = self.raw.state();
        if let Some(weights) = state.weights.as_mut() {
            *weights.get_mut(new as usize) = weight;
        }
        state.weight += u64::from(weight);
        let Some((bucket, old)) = present else {
            *state.metas.get_mut(new as usize) = P::Meta::default();
            self.raw.publish(hash, new);
            self.with_policy(None, tiers, |policy, view| {
                policy.on_insert(view, new, info);
            });
            return Ok((new, None));
        };
        // The policy's state moves with the entry.
        let meta = core::mem::take(state.metas.get_mut(old as usize));
        *state.metas.get_mut(new as usize) = meta;
        let old_weight = state
            .weights
            .as_ref()
            .map_or(1, |weights| u64::from(*weights.get(old as usize)));
        state.weight -= old_weight;
        // The new value replaces any copy above.
        let slots = self.raw.slots();
        tiers.evicted(hash, slots.entry(old).0, hits);
        let retired = self.raw.replace(bucket, old, new, epoch);
        self.with_policy(None, tiers, |policy, view| {
            policy.on_replace(view, old, new, old_weight, info);
        });
        Ok((
            new,
            Some(Replaced {
                retired,
                expires: old_expires,
            }),
        ))
    }

    /// Whether `key` (of 32-bit hash `hash`) has an entry.
    pub(crate) fn contains(&self, hash: u32, key: &K) -> bool
    where
        K: Eq,
    {
        self.raw.find(hash, key).is_some()
    }

    /// Whether entry `id` is still the one indexed under `hash` (nothing replaced or removed
    /// it since a reader found it).
    pub(crate) fn holds(&self, hash: u32, id: u32) -> bool {
        self.raw.holds(hash, id)
    }

    /// The use byte of live entry `id` (to saturate a Critical entry's hits).
    pub(crate) fn saturate_hits(&self, id: u32) {
        self.raw.slots().uses(id).saturate();
    }

    /// Evicts the policy's next victim with the clock at `now` (expired entries go first);
    /// with `spare_critical`, never a `Critical` entry. `tiers` drops its copy.
    #[inline(always)]
    pub(crate) fn evict<'g>(
        &mut self,
        now: u64,
        spare_critical: bool,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Option<Victim<'g>> {
        // The policy asks after deadlines only where an entry may have one.
        let judged = self.raw.slots().may_expire().then_some(now);
        let id = self.with_policy(judged, tiers, |policy, view| {
            policy.evict(view, spare_critical)
        })?;
        // The slot read once: what the tiers are told and what the index needs.
        let (hash, expires) = {
            let slots = self.raw.slots();
            let leaving = slots.leaving(id);
            let expires = slots.expires(id);
            if expires == NEVER || expires > now {
                tiers.spilled(leaving.key, leaving.value, expires);
            }
            tiers.evicted(leaving.hash, leaving.key, leaving.hits);
            (leaving.hash, expires)
        };
        Some(self.retire_unlinked(id, (hash, expires), None, now, epoch))
    }

    /// Unlinks live entry `id` (the policy forgot it already) and retires it.
    #[inline(always)]
    fn unlink<'g>(
        &mut self,
        id: u32,
        bucket: Option<usize>,
        now: u64,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Victim<'g> {
        let (hash, expires) = {
            let slots = self.raw.slots();
            let leaving = slots.leaving(id);
            tiers.evicted(leaving.hash, leaving.key, leaving.hits);
            (leaving.hash, slots.expires(id))
        };
        self.retire_unlinked(id, (hash, expires), bucket, now, epoch)
    }

    /// Takes live entry `id` (of 32-bit hash and deadline `hash_expires`; the policy and the
    /// tiers told already) off the index and the shard's weight, and retires it.
    #[inline(always)]
    fn retire_unlinked<'g>(
        &mut self,
        id: u32,
        (hash, expires): (u32, u64),
        bucket: Option<usize>,
        now: u64,
        epoch: &Epoch<'g>,
    ) -> Victim<'g> {
        let state = self.raw.state();
        let weight = state
            .weights
            .as_ref()
            .map_or(1, |weights| u64::from(*weights.get(id as usize)));
        state.weight -= weight;
        let retired = self.raw.remove(id, hash, bucket, epoch);
        Victim {
            retired,
            weight,
            cause: if expires <= now && expires != NEVER {
                RemovalCause::Expired
            } else {
                RemovalCause::Capacity
            },
        }
    }

    /// Removes `key` (the policy is told), returning its retired slot and weight; with
    /// `only`, only if the key still lives in that slot (a `retain` that judged that entry).
    pub(crate) fn remove<'g, Q>(
        &mut self,
        hash: u32,
        key: &Q,
        only: Option<u32>,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Option<Victim<'g>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (bucket, id) = self.raw.find(hash, key)?;
        if only.is_some_and(|only| only != id) {
            return None; // replaced since the caller saw slot `only`
        }
        tiers.written(self.raw.slots().entry(id).0);
        self.with_policy(None, tiers, |policy, view| policy.on_remove(view, id));
        Some(self.unlink(id, Some(bucket), 0, epoch, tiers))
    }

    /// Removes `key` if it has expired by `now`.
    pub(crate) fn remove_expired<'g, Q>(
        &mut self,
        hash: u32,
        key: &Q,
        now: u64,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> Option<Victim<'g>>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let (bucket, id) = self.raw.find(hash, key)?;
        if self.raw.slots().expires(id) > now {
            return None;
        }
        self.with_policy(None, tiers, |policy, view| policy.on_remove(view, id));
        Some(self.unlink(id, Some(bucket), now, epoch, tiers))
    }

    /// Removes every entry that has expired by `now`, each handed to `out`.
    pub(crate) fn drain_expired<'g>(
        &mut self,
        now: u64,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
        mut out: impl FnMut(Victim<'g>),
    ) {
        for id in self.raw.live_ids() {
            if self.raw.slots().expires(id) <= now {
                self.with_policy(None, tiers, |policy, view| policy.on_remove(view, id));
                out(self.unlink(id, None, now, epoch, tiers));
            }
        }
    }

    /// Shows every live entry (key, value, deadline) to `f`.
    #[cfg(feature = "persistent")]
    pub(crate) fn for_each_entry(&self, f: &mut impl FnMut(&K, &V, u64)) {
        let slots = self.raw.slots();
        for id in self.raw.live_ids() {
            let (key, value) = slots.entry(id);
            f(key, value, slots.expires(id));
        }
    }

    /// Removes every entry (the policy forgets everything), returning their retired slots.
    pub(crate) fn clear<'g>(
        &mut self,
        epoch: &Epoch<'g>,
        tiers: &mut impl Tiers<K, V>,
    ) -> alloc::vec::Vec<Retired<'g>> {
        for id in self.raw.live_ids() {
            let slots = self.raw.slots();
            tiers.evicted(slots.hash(id), slots.entry(id).0, slots.uses(id).hits());
        }
        let state = self.raw.state();
        state.policy.clear();
        state.weight = 0;
        self.raw.clear(epoch)
    }

    /// Sizes the index for `slots` now (see [`Table::size_indexes`](super::Table)).
    pub(crate) fn size_index(
        &mut self,
        slots: usize,
        epoch: &Epoch<'_>,
    ) -> Result<(), OutOfMemory> {
        self.raw.size_index(slots, epoch)
    }

    /// Sizes the index and slots for `entries` now, and tells the policy.
    pub(crate) fn reserve(&mut self, entries: usize, epoch: &Epoch<'_>) -> Result<(), OutOfMemory> {
        let entries = u32::try_from(entries).map_err(|_| OutOfMemory)?;
        // The index first: one allocation, which an absurd size fails at once (the slots come
        // in segments, which would fill memory before failing).
        self.raw.size_index(entries as usize, epoch)?;
        self.raw.size_slots(entries as usize, epoch)?;
        let slots = self.raw.slot_capacity();
        if slots > 0 {
            self.cover(u32::try_from(slots - 1).map_err(|_| OutOfMemory)?)?;
        }
        self.raw.state().policy.reserve(entries as usize);
        Ok(())
    }
}

/// Entry information with the priority a [`crate::InsertOptions`] gives.
pub(crate) fn info(hash: u32, weight: u64, priority: Priority) -> EntryInfo {
    EntryInfo::new(policy_hash(hash), weight, priority)
}
