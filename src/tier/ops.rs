//! The cache's operations, over an L1 guard and a statistics stripe from either front
//! ([`fronts`](super::fronts)): lookups, promotion, insertion in its two parts (storing under
//! the locks, reporting after), and removal. The loader's single flight is in
//! [`read_through`](super::read_through).

use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::raw::epoch;
use super::stats::{Event, Sampler};
use super::{
    Copies, RETIRED_FLOOR, Reclaim, Shared, Stamped, TierSync, deadline_after, l1_hash, nanos,
};
use crate::entry::{InsertOptions, Priority, RemovalCause, Ttl};
use crate::error::InsertError;
use crate::l1;
use crate::l2::{Inserted, NEVER, Policy, StoreAs, Weigher};

/// An L1 guard of the cache's table.
pub(super) type Pin<'g, 'c, K, V> = &'g l1::Guard<'c, K, Stamped<V>, ()>;

/// What an insertion's locked part leaves for its reporting part (see `Cache::store_in`):
/// what it displaced, readable for the epoch of the pin it ran under.
pub(super) struct Stored<'g, K, V, P: Policy> {
    inserted: Inserted<'g, K, V, P>,
    /// The clock when the entry was stored (0 while no entry can expire).
    now: u64,
    /// The removal record this write queued in the persistent tier, to wait for (under its
    /// `SyncPolicy::Always`) once the locks are released.
    ticket: Option<u64>,
    /// L1 copies that could not be placed, dropped with this.
    _declined: Option<Copies<K, V>>,
}

impl<K, V, S, W, P> Shared<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    pub(super) fn get_in<Q>(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        sampler: &Sampler,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        #[cfg(feature = "metrics")]
        if sampler.tick() && sampler.rearm(self.metrics_on) {
            return self.get_timed(l1, stripe, hash, key);
        }
        #[cfg(not(feature = "metrics"))]
        let _ = sampler;
        self.get_hashed(l1, stripe, hash, key)
    }

    /// A lookup timed into the metrics' histogram, labelled with the tier that answered (told
    /// by which of this stripe's counters moved).
    #[cfg(feature = "metrics")]
    #[inline(never)]
    #[cold]
    fn get_timed<Q>(&self, l1: Pin<'_, '_, K, V>, stripe: usize, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let name = self.metrics_name.unwrap_or("unnamed");
        let tiers = [Event::L1Hit, Event::L2Hit, Event::L3Hit];
        let before = tiers.map(|tier| self.stats.get(stripe, tier));
        let started = std::time::Instant::now();
        let found = self.get_hashed(l1, stripe, hash, key);
        let after = tiers.map(|tier| self.stats.get(stripe, tier));
        let tier = match (found.is_some(), before != after) {
            (false, _) => "miss",
            (true, true) if after[0] != before[0] => "l1",
            (true, true) if after[1] != before[1] => "l2",
            (true, true) => "l3",
            (true, false) => "unknown",
        };
        super::export::record(name, started, tier);
        found
    }

    #[inline]
    pub(super) fn get_hashed<Q>(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.get_from(l1, stripe, hash, key, true)
    }

    /// A lookup in L1 and L2, and with `below` in the persistent tier (which reads the disk);
    /// without `below`, a miss where that tier may hold the key is not counted (the caller
    /// asks it next).
    #[inline]
    pub(super) fn get_from<Q>(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        key: &Q,
        below: bool,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        if self.l1_on
            && let Some(copy) = l1.get_hashed(l1_hash(hash), key, true)
            && (copy.expires == NEVER || copy.expires > self.now())
        {
            self.stats.add(stripe, Event::L1Hit, 1);
            // L2's policy counts the use too (its entry stays, as hot as it is).
            self.l2.shard_of(hash).record_hit(
                stripe,
                hash as u32,
                || self.tier_sync(l1),
                self.promote_after,
            );
            return Some(copy.value.clone());
        }
        self.get_l2(l1, stripe, hash, key, below)
    }

    /// The L2 half of a lookup (no lock), and the persistent tier's with `below`.
    #[inline(always)]
    fn get_l2<Q>(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        key: &Q,
        below: bool,
    ) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let epoch = epoch(l1);
        // The shard found once: a miss prefetches for the insertion there too.
        let shard = self.l2.shard_of(hash);
        let Some(found) = shard.get(hash as u32, key, &epoch) else {
            #[cfg(feature = "persistent")]
            if self.l3.is_some() {
                if !below {
                    return None;
                }
                if let Some(value) = self.read_back(l1, stripe, hash, key) {
                    return Some(value);
                }
            }
            #[cfg(not(feature = "persistent"))]
            let _ = below;
            self.stats.miss(stripe, hash);
            // An insertion usually follows a miss: its first cache miss starts now.
            shard.prefetch_insert(hash as u32);
            return None;
        };
        let expires = found.expires();
        // An L1 copy's deadline: the entry's, or in a cache with a time to idle a 32nd of it
        // from now, so that a read after it comes back here and pushes the idle deadline on.
        let mut copy_expires = expires;
        if expires != NEVER || self.expiry.is_some() {
            let now = self.now();
            if expires <= now {
                self.stats.miss(stripe, hash);
                self.reclaim_expired(l1, stripe, hash, key, now);
                return None;
            }
            if self.idle.is_some() || self.expiry.is_some() {
                copy_expires = self.on_read(&found, shard, expires, now);
            }
        }
        let (before, hits) = found.uses().record(self.promote_after);
        shard.record_hit(
            stripe,
            hash as u32,
            || self.tier_sync(l1),
            self.promote_after,
        );
        let value = found.value().clone();
        self.stats.add(stripe, Event::L2Hit, 1);
        if hits >= self.promote_after
            && self.l1_on
            && (before < self.promote_after || self.promotes_again(stripe))
            && self.promotion_budget(stripe)
        {
            self.promote(
                l1,
                stripe,
                hash,
                found.key(),
                found.id(),
                copy_expires,
                &value,
            );
        }
        Some(value)
    }

    /// Copies the entry a reader found (slot `id`, still holding `value`) into L1, under its
    /// shard's lock if no writer holds it, and only if the entry is still the one indexed: see
    /// the module docs of `tier`.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn promote(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        key: &K,
        id: u32,
        expires: u64,
        value: &V,
    ) {
        let l1_hash = l1_hash(hash);
        // L1 may decline the copy (its set is full of recently used copies): asked first, so
        // that a declined promotion clones nothing and takes no lock.
        if !l1.admits_hashed(l1_hash) {
            return;
        }
        // The copy is made before the lock is taken: cloning is user code.
        let copy = Stamped {
            value: value.clone(),
            expires,
        };
        let key = key.clone();
        let shard = self.l2.shard_of(hash);
        let Some(writer) = shard.try_lock(self.promote_after) else {
            return; // a writer is busy: promote another time (the copy dropped, no lock held)
        };
        if !writer.holds(hash as u32, id) {
            drop(writer);
            return; // written or removed since the read
        }
        let placed = l1.insert_hashed(l1_hash, key, copy);
        drop(writer);
        // A copy L1 had no memory for is dropped here, under no lock.
        if placed.is_ok() {
            self.stats.add(stripe, Event::Promotion, 1);
        }
    }

    /// A miss in L2 looks in the persistent tier: a live value found there is taken back into
    /// L2 if, under the shard lock, the key is still absent there and the store's record is
    /// still the one read (else the lookup is a miss: a write raced it).
    #[inline(never)]
    #[cfg(feature = "persistent")]
    fn read_back<Q>(&self, l1: Pin<'_, '_, K, V>, stripe: usize, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let back = self.l3.as_ref()?.fetch(hash, key, self.now())?;
        let copy = back.value.clone();
        if !self.take_back(l1, stripe, hash, back) {
            return None;
        }
        self.stats.add(stripe, Event::L3Hit, 1);
        Some(copy)
    }

    /// Takes a value read from the persistent tier into L2 (at the priority its record
    /// kept), if under the shard lock the key is absent there and the record still current;
    /// whether it did.
    #[cfg(feature = "persistent")]
    fn take_back(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        back: super::persist::Back<K, V>,
    ) -> bool {
        let Some(l3) = self.l3.as_ref() else {
            return false;
        };
        let now = self.now();
        let (seq, expires, key_bytes) = (back.seq, back.expires, &back.key_bytes);
        if expires <= now {
            return false;
        }
        let ttl = if expires == NEVER {
            crate::entry::Ttl::Never
        } else {
            crate::entry::Ttl::For(core::time::Duration::from_nanos(expires - now))
        };
        let options = InsertOptions {
            ttl,
            priority: back.priority,
            ..InsertOptions::new()
        };
        let admit = |present: bool| !present && l3.still_holds(hash, key_bytes, seq);
        let entry = (back.key, back.value);
        match self.store_if(l1, hash, entry, options, true, Some(&admit)) {
            Ok(stored) if stored.inserted.refused.is_none() => {
                drop(self.report(stripe, stored));
                true
            }
            // A write raced the read.
            Ok(stored) => {
                drop(stored);
                self.reclaim(super::WRITE_RECLAIM);
                false
            }
            Err(_) => false,
        }
    }

    /// Loads up to `limit` of the persistent tier's values into L2, Critical ones first, then
    /// the newest (see `Cache::warm`); how many it took.
    #[cfg(feature = "persistent")]
    pub(super) fn warm_in(&self, l1: Pin<'_, '_, K, V>, stripe: usize, limit: usize) -> usize {
        let Some(l3) = self.l3.as_ref() else {
            return 0;
        };
        let mut taken = 0;
        for (hash, seq) in l3.store.warm_order(limit) {
            if let Some(back) = l3.fetch_order(hash, seq, self.now()) {
                taken += usize::from(self.take_back(l1, stripe, hash, back));
            }
        }
        slow_path!(info, taken, limit, "cache warmed from the disk tier");
        taken
    }

    /// Under the persistent tier's `SyncPolicy::Always`, waits (holding no lock) until the
    /// removal record a write queued there is on disk.
    #[inline]
    fn wait_durable(&self, ticket: Option<u64>) {
        #[cfg(feature = "persistent")]
        if let (Some(ticket), Some(l3)) = (ticket, &self.l3) {
            let _ = l3.store.wait_synced(ticket);
        }
        #[cfg(not(feature = "persistent"))]
        let _ = ticket;
    }

    pub(super) fn tier_sync<'g, 'c>(
        &'g self,
        l1: &'g l1::Guard<'c, K, Stamped<V>, ()>,
    ) -> TierSync<'g, 'c, K, V> {
        TierSync {
            l1,
            promote_after: self.promote_after,
            #[cfg(feature = "persistent")]
            below: self.l3.as_ref().map(|l3| super::persist::Below {
                l3,
                around: self,
                promoting: false,
                through: None,
                ticket: None,
            }),
        }
    }

    /// Whether an L2 hit on an entry that earned its promotion earlier (its copy has since
    /// left L1, or L1 declined it) tries again: one in `promote_after / 2` of this thread's L2
    /// hits, so such an entry comes back in proportion to how often it is read. Without this,
    /// every entry that once reached `promote_after` hits would try on each of its L2 hits,
    /// and a working set larger than L1 would churn it: most copies evicted before their
    /// first L1 hit, each costing an allocation, an eviction and a deferred free.
    #[inline]
    fn promotes_again(&self, stripe: usize) -> bool {
        self.stats.get(stripe, Event::L2Hit) & self.promote_again == 0
    }

    /// Whether this thread may promote now. A promotion costs an allocation, an L1 eviction and
    /// a deferred free; it pays off only through later L1 hits. So each thread may promote
    /// at most once per two of its L1 hits, beyond a first allowance of one L1 capacity (to
    /// fill it). A skewed workload earns far more than it spends; one with no hot set, where
    /// every copy would be evicted before its first L1 hit, stops churning L1 after the
    /// allowance.
    ///
    /// Every promotion also retires the copy it displaces; while more retired copies wait to
    /// be freed than L1 holds (nobody wrote, collected or ended a frame lately), promotions
    /// stop, so the memory they hold stays bounded.
    #[inline]
    fn promotion_budget(&self, stripe: usize) -> bool {
        let spent = self.stats.get(stripe, Event::Promotion);
        let earned = self.stats.get(stripe, Event::L1Hit) / 2 + self.l1.capacity();
        spent < earned && self.l1.retired() < self.l1.capacity().max(RETIRED_FLOOR)
    }

    /// Removes `key` from both tiers if it has expired by `now`.
    #[inline(never)]
    fn reclaim_expired<Q>(&self, l1: Pin<'_, '_, K, V>, stripe: usize, hash: u64, key: &Q, now: u64)
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let epoch = epoch(l1);
        let expired = self
            .l2
            .remove_expired(hash, key, now, &epoch, &mut self.tier_sync(l1));
        if let Some((key, value)) = expired {
            self.stats.add(stripe, Event::Expired, 1);
            self.notify(key, value, RemovalCause::Expired);
        }
    }

    /// Applies `f` to the live value for `key` without counting a use or promoting: L1's copy
    /// if it has one, else L2's.
    pub(super) fn peek_with<Q, R>(
        &self,
        l1: Pin<'_, '_, K, V>,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        self.peek_hashed(l1, hash, key, f)
    }

    /// [`peek_with`](Self::peek_with) for a key whose hash is known.
    pub(super) fn peek_hashed<Q, R>(
        &self,
        l1: Pin<'_, '_, K, V>,
        hash: u64,
        key: &Q,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let alive = |expires: u64| expires == NEVER || expires > self.now();
        if self.l1_on
            && let Some(copy) = l1.get_hashed(l1_hash(hash), key, false)
            && alive(copy.expires)
        {
            return Some(f(&copy.value));
        }
        let epoch = epoch(l1);
        let (found, _) = self.l2.get(hash, key, &epoch)?;
        alive(found.expires()).then(|| f(found.value()))
    }

    pub(super) fn insert_in(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        key: K,
        value: V,
        options: InsertOptions,
    ) -> Result<(), InsertError<K, V>> {
        // A quiet point (no lock, no flight): a shard living on its memory budget gets its
        // retired slots back here.
        let hash = self.hash_builder.hash_one(&key);
        self.l2.prepare_insert(hash, &epoch(l1));
        let follows_miss = self.stats.take_miss(stripe, hash);
        let stored = self.store_in(l1, hash, key, value, options, follows_miss)?;
        self.report(stripe, stored)
    }

    /// An insertion's locked part: the entry (of `hash`, the key's hash) stored in L2, L1
    /// kept in step, victims taken; `follows_miss` as [`EntryInfo::follows_miss`](crate::policy::EntryInfo::follows_miss).
    /// Nothing of what it displaced has been shown to the listener or dropped yet: that is
    /// [`report`](Self::report)'s part, which runs user code, so a `get_with` leader
    /// settles its flight between the two.
    #[inline]
    pub(super) fn store_in<'g>(
        &'g self,
        l1: Pin<'g, '_, K, V>,
        hash: u64,
        key: K,
        value: V,
        options: InsertOptions,
        follows_miss: bool,
    ) -> Result<Stored<'g, K, V, P>, InsertError<K, V>> {
        self.store_if(l1, hash, (key, value), options, follows_miss, None)
    }

    /// [`store_in`](Self::store_in), and for a value read back from a tier below, only if
    /// `admit` (asked under the shard lock, given whether the key is in L2) says so: refused,
    /// the entry comes back in [`Stored`]'s `inserted.refused`. Always inlined: its result
    /// is large, and a call returning it costs more than the copy of the code.
    #[inline(always)]
    pub(super) fn store_if<'g>(
        &'g self,
        l1: Pin<'g, '_, K, V>,
        hash: u64,
        (key, value): (K, V),
        options: InsertOptions,
        follows_miss: bool,
        admit: Option<&dyn Fn(bool) -> bool>,
    ) -> Result<Stored<'g, K, V, P>, InsertError<K, V>> {
        let Some((expires, now)) = self.deadline(options.ttl) else {
            return Err(InsertError::NoClock { key, value });
        };
        // The deadline reads may move: the time to idle's, and the `Expiry`'s (below).
        let mut idle = self.idle_deadline(now);
        if options.ttl == Ttl::CacheDefault
            && let Some(expiry) = &self.expiry
        {
            // The entry's own time to live (user code: before any lock), kept as a deadline
            // reads may move. The earliest deadline ends the entry.
            let left = self
                .l2
                .get(hash, &key, &epoch(l1))
                .map(|(found, _)| found.expires())
                .filter(|&deadline| deadline > now);
            let chosen = match left {
                None => expiry.expire_after_create(&key, &value),
                Some(deadline) => expiry.expire_after_update(
                    &key,
                    &value,
                    (deadline != NEVER).then(|| core::time::Duration::from_nanos(deadline - now)),
                ),
            };
            if let Some(ttl) = chosen {
                idle = idle.min(deadline_after(now, nanos(ttl)));
            }
        }
        // A Critical entry's L1 copies are made before any lock is taken (cloning is user code).
        // With per-socket replicas, one copy per replica.
        let mut copies = (self.l1_on && options.priority == Priority::Critical).then(|| {
            (0..self.l1.replicas())
                .map(|_| {
                    let stamped = Stamped {
                        value: value.clone(),
                        expires: self.copy_deadline(expires.min(idle), now),
                    };
                    (key.clone(), stamped)
                })
                .collect::<Copies<K, V>>()
        });
        let how = StoreAs {
            weight: options.weight,
            priority: options.priority,
            expires,
            idle,
            refresh: self
                .refresh
                .map_or(NEVER, |after| deadline_after(now, after)),
            now,
            follows_miss,
        };
        // A write-through's record is made here, before the lock (encoding, compression).
        #[cfg(feature = "persistent")]
        let through = match (&self.l3, admit) {
            (Some(l3), None) => l3.through(hash, (&key, &value), (expires, now), &options),
            _ => None,
        };
        let epoch = epoch(l1);
        let mut sync = self.tier_sync(l1);
        #[cfg(feature = "persistent")]
        if let Some(below) = sync.below.as_mut() {
            // A value read back from the store stays there too.
            below.promoting = admit.is_some();
            below.through = through;
        }
        let inserted = self.l2.insert(
            hash,
            (key, value),
            how,
            &epoch,
            &mut sync,
            // Under the writer lock, like every L1 change: see the module docs. The shard
            // already dropped a replaced entry's copy; a Critical entry gets its new one.
            (
                |writer: &mut _, id| {
                    if let Some(copies) = copies.as_mut() {
                        // Its count now says "may have a copy", so its eviction invalidates it.
                        writer.saturate_hits(id);
                        copies.place(|replica, key, stamped| {
                            l1.insert_at_hashed(replica, l1_hash(hash), key, stamped)
                                .map(drop)
                        });
                    }
                },
                admit,
            ),
        )?;
        Ok(Stored {
            inserted,
            now,
            ticket: sync.ticket(),
            _declined: copies,
        })
    }

    /// An insertion's reporting part: statistics, the listener (for the replaced value and
    /// each victim), and the reclamation of what this and other writes retired (their `Drop`
    /// runs here). Holds no lock.
    #[inline(always)]
    pub(super) fn report(
        &self,
        stripe: usize,
        stored: Stored<'_, K, V, P>,
    ) -> Result<(), InsertError<K, V>> {
        // Reclaims even if the listener panics, after what the insertion displaced is
        // reported.
        let _reclaim = Reclaim(self);
        let Stored {
            inserted,
            now,
            ticket,
            ..
        } = stored;
        self.wait_durable(ticket);
        if inserted.refused.is_none() {
            self.stats.add(stripe, Event::Insert, 1);
        }
        // An insertion over an entry whose time had run out (not yet reclaimed) ends that
        // entry by expiry, not replacement.
        let replaced = inserted.replaced.map(|(key, old, old_expires)| {
            let cause = if old_expires <= now && old_expires != NEVER {
                RemovalCause::Expired
            } else {
                RemovalCause::Replaced
            };
            (key, old, cause)
        });
        match replaced {
            Some((_, _, RemovalCause::Expired)) => self.stats.add(stripe, Event::Expired, 1),
            Some(_) => self.stats.add(stripe, Event::Replaced, 1),
            None => {}
        }
        for (_, _, cause) in inserted.victims.iter() {
            let event = match cause {
                RemovalCause::Expired => Event::Expired,
                _ => Event::EvictedCapacity,
            };
            self.stats.add(stripe, event, 1);
        }
        if self.listener.is_some() {
            if let Some((key, old, cause)) = replaced {
                self.notify(key, old, cause);
            }
            for (key, value, cause) in inserted.victims.iter() {
                self.notify(key, value, cause);
            }
        }
        match inserted.refused {
            Some((key, value)) => Err(InsertError::OutOfMemory { key, value }),
            None => Ok(()),
        }
    }

    pub(super) fn remove_in<Q>(&self, l1: Pin<'_, '_, K, V>, stripe: usize, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hash_builder.hash_one(key);
        // Readers may still be reading the entry: the caller gets a clone, and the entry is
        // dropped once they are gone.
        self.remove_hashed(l1, stripe, hash, key, None, V::clone)
    }

    /// Removes `key` (of `hash`), counted and told to the listener, and applies `f` to its
    /// value; with `only`, only if the key still lives in that slot (an entry `retain` judged
    /// is left as it is if it was replaced since).
    pub(super) fn remove_hashed<Q, R>(
        &self,
        l1: Pin<'_, '_, K, V>,
        stripe: usize,
        hash: u64,
        key: &Q,
        only: Option<u32>,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let _reclaim = Reclaim(self);
        let epoch = epoch(l1);
        let mut sync = self.tier_sync(l1);
        let removed = self.l2.remove(hash, key, only, &epoch, &mut sync);
        self.wait_durable(sync.ticket());
        let (key, value) = removed?;
        self.report_removal(stripe, key, value);
        Some(f(value))
    }

    /// A removal's reporting part: counted and told to the listener.
    pub(super) fn report_removal(&self, stripe: usize, key: &K, value: &V) {
        self.stats.add(stripe, Event::Removed, 1);
        self.notify(key, value, RemovalCause::Removed);
    }

    pub(super) fn clear_in(&self, l1: Pin<'_, '_, K, V>, stripe: usize) {
        let _reclaim = Reclaim(self);
        let epoch = epoch(l1);
        self.l2
            .clear(&epoch, &mut self.tier_sync(l1), |key, value| {
                self.stats.add(stripe, Event::Removed, 1);
                self.notify(key, value, RemovalCause::Removed);
            });
        // The persistent tier is emptied too: nothing it held may come back.
        #[cfg(feature = "persistent")]
        if let Some(l3) = &self.l3 {
            let _ = l3.store.clear();
        }
    }

    pub(super) fn evict_expired_in(&self, l1: Pin<'_, '_, K, V>, stripe: usize) -> usize {
        // Relaxed: the flag is a hint; an entry stored with a deadline set it first.
        if self.expiring.load(core::sync::atomic::Ordering::Relaxed) == 0 {
            return 0;
        }
        let _reclaim = Reclaim(self);
        let now = self.now();
        let mut count = 0;
        let epoch = epoch(l1);
        self.l2
            .drain_expired(now, &epoch, &mut self.tier_sync(l1), |key, value| {
                count += 1;
                self.stats.add(stripe, Event::Expired, 1);
                self.notify(key, value, RemovalCause::Expired);
            });
        count
    }

    /// What a read of a live entry (deadline `expires`) does to its own deadline: the time to
    /// idle pushes it on, an `Expiry`'s read hook sets it. The deadline of an L1 copy made now.
    #[inline(never)]
    fn on_read(
        &self,
        found: &crate::l2::Found<'_, K, V>,
        shard: &crate::l2::Shard<K, V, P>,
        expires: u64,
        now: u64,
    ) -> u64 {
        let idle = self.idle_deadline(now);
        // Once per 1/32 of the time to idle at most, a write.
        let slack = self.idle.map_or(0, |idle| idle / 32);
        let Some(expiry) = &self.expiry else {
            shard.idle_until(found, idle, slack);
            return self.copy_deadline(expires, now);
        };
        // User code, with no lock held.
        let left = (expires != NEVER).then(|| core::time::Duration::from_nanos(expires - now));
        let own = expiry
            .expire_after_read(found.key(), found.value(), left)
            .map_or(NEVER, |ttl| deadline_after(now, nanos(ttl)));
        let moved = idle.min(own);
        shard.idle_at(found, moved, slack);
        self.copy_deadline(expires.min(moved), now)
    }
}
