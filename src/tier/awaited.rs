//! What the async facade (`crate::future`) asks of the tiered cache: the steps of a lookup and
//! of a single-flight load, each of which returns at once, so that the facade does its waiting
//! in futures (on a flight) and its blocking on a thread pool (the persistent tier's disk).

use alloc::borrow::ToOwned;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::flight::{self, Flights, Leading, Role, Settled};
use super::stats::thread_stripe;
use super::{Cache, Shared};
use crate::InsertOptions;
use crate::l2::Weigher;
use crate::l2::policy::Policy;

/// The cache's flights, through an owner a leader can take to another thread.
pub(crate) struct OwnedFlights<K, V, S, W, P: Policy>(Arc<Shared<K, V, S, W, P>>);

impl<K, V, S, W, P: Policy> Borrow<Flights<K, V>> for OwnedFlights<K, V, S, W, P> {
    fn borrow(&self) -> &Flights<K, V> {
        &self.0.flights
    }
}

/// A leader of a load, which may finish on another thread.
pub(crate) type Lead<K, V, S, W, P> = Leading<OwnedFlights<K, V, S, W, P>, K, V>;

/// What a caller that missed in memory does next.
pub(crate) enum Next<K, V, S, W, P: Policy> {
    /// The value appeared meanwhile.
    Found(V),
    /// Wait for this flight ([`Cache::wait_flight`]).
    Join(Arc<flight::Flight<V>>),
    /// Load the value, then [`Cache::finish_lead`].
    Lead(Lead<K, V, S, W, P>),
}

impl<K, V, S, W, P> Cache<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    /// Whether a miss in memory may be answered by the persistent tier (whose reads block).
    pub(crate) fn has_tier_below(&self) -> bool {
        #[cfg(feature = "persistent")]
        return self.shared.l3.is_some();
        #[cfg(not(feature = "persistent"))]
        false
    }

    /// A lookup in L1 and L2 only: it never reads the disk. A miss is counted only where no
    /// persistent tier could answer it (the caller asks that one next, with `get`).
    pub(crate) fn get_in_memory<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        self.get_in_memory_hashed(self.hash_of(key), key)
    }

    /// [`get_in_memory`](Self::get_in_memory) of a key of hash `hash` ([`hash_of`](Self::hash_of)).
    pub(crate) fn get_in_memory_hashed<Q>(&self, hash: u64, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let shared = &*self.shared;
        shared.get_from(&shared.l1.pin(), thread_stripe(), hash, key, false)
    }

    /// The hash the cache files `key` under: a load hashes its key once for all its steps.
    pub(crate) fn hash_of<Q: ?Sized + Hash>(&self, key: &Q) -> u64 {
        self.shared.hash_builder.hash_one(key)
    }

    /// The flights' ticket for a key of hash `hash`, read before a lookup (see
    /// [`flight::Ticket`]).
    pub(crate) fn flight_ticket(&self, hash: u64) -> flight::Ticket {
        self.shared.flights.ticket(hash)
    }

    /// Joins the load of `key` (of hash `hash`), finds its value in memory (unless `ticket`,
    /// read before the caller's lookup, shows no flight settled since), or leads its load.
    pub(crate) fn join_or_lead<Q>(
        &self,
        key: &Q,
        hash: u64,
        ticket: Option<flight::Ticket>,
    ) -> Next<K, V, S, W, P>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    {
        let shared = &*self.shared;
        let l1 = shared.l1.pin();
        // A quiet point before the flight (see `insert_in`).
        shared.l2.prepare_insert(hash, &super::raw::epoch(&l1));
        let owner = OwnedFlights(Arc::clone(&self.shared));
        let role = Flights::join_or_lead_in(owner, hash, key, ticket, || {
            shared.peek_hashed(&l1, hash, key, V::clone)
        });
        match role {
            Role::Found(value) => Next::Found(value),
            Role::Join(flight) => Next::Join(flight),
            Role::Lead(leading) => Next::Lead(leading),
        }
    }

    /// Waits (as a future) for a flight to settle.
    pub(crate) async fn wait_flight<E: 'static>(flight: &flight::Flight<V>) -> Settled<V, E> {
        flight::wait_async(flight).await
    }

    /// The leader's end of a load: stores `value` under `key` (of hash `hash`) with `options`,
    /// hands it to the waiters, then reports what the insertion displaced (the listener,
    /// drops). The same order as `get_with`'s: no user code runs while the flight is pending.
    /// Blocks where the persistent tier makes an insertion wait for the disk.
    pub(crate) fn finish_lead(
        &self,
        leading: Lead<K, V, S, W, P>,
        key: K,
        hash: u64,
        value: V,
        options: InsertOptions,
    ) {
        let shared = &*self.shared;
        let stripe = thread_stripe();
        let l1 = shared.l1.pin();
        shared.stats.take_miss(stripe, hash);
        let stored = shared.store_in(&l1, hash, key, value.clone(), options, true);
        leading.finish(&value);
        match stored {
            Ok(stored) => drop(shared.report(stripe, stored)),
            Err(refused) => {
                drop(refused);
                shared.reclaim(super::WRITE_RECLAIM);
            }
        }
    }
}
