//! The entry API: `entry` (on [`Cache`](super::Cache), a handle or a frame) selects a key, then inserts on a miss (`or_insert_with` and
//! its fallible and declining forms, which tell whether this call made the value) or computes
//! the key's next value from its current one (`and_compute_with`, `and_upsert_with`).
//!
//! A computation leads the key's single flight (the one `get_with` uses) while it reads the
//! current value, runs the caller's function and applies its choice, so computations and
//! loaders on one key run one at a time; a plain `insert` or `remove` is not held back.

use alloc::borrow::ToOwned;
use alloc::sync::Arc;
use core::borrow::Borrow;
use core::convert::Infallible;
use core::hash::{BuildHasher, Hash};

use super::flight::{self, Role};
use super::iter::PinFrom;
use super::raw::epoch;
use super::{Reclaim, Shared, Stamped};
use crate::entry::InsertOptions;
use crate::error::InsertError;
use crate::l1;
use crate::l2::{Policy, Weigher};

/// A key of a cache, selected by [`Cache::entry`](super::Cache::entry) (or a handle's or a
/// frame's) for an insertion on a miss or a
/// computation. The key is borrowed: an owned one is made only when a value is stored.
#[must_use = "an entry does nothing until one of its methods is called"]
pub struct EntryRef<'a, Q: ?Sized, K, V, S, W, P: Policy> {
    cache: &'a Shared<K, V, S, W, P>,
    pin: PinFrom<'a, K, V>,
    stripe: usize,
    key: &'a Q,
}

/// A value an [`EntryRef`] found or stored, and whether this call made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched<V> {
    value: V,
    fresh: bool,
}

impl<V> Fetched<V> {
    /// The value.
    pub fn value(&self) -> &V {
        &self.value
    }

    /// The value, owned.
    pub fn into_value(self) -> V {
        self.value
    }

    /// Whether this call made the value (its initialiser ran, or its computation stored it);
    /// `false` if it was in the cache or another caller's initialiser made it.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }
}

/// What [`EntryRef::and_compute_with`]'s function chooses to do with the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeOp<V> {
    /// Leave the key as it is.
    Nop,
    /// Store this value (inserted, or replacing the current one).
    Put(V),
    /// Remove the key.
    Remove,
}

/// What [`EntryRef::and_compute_with`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Computed<V> {
    /// The key had no value and still has none.
    StillNone,
    /// The key had no value; it has this one now.
    Inserted(V),
    /// The key's value was replaced with this one.
    ReplacedWith(V),
    /// The key keeps this value.
    Unchanged(V),
    /// The key's value, this one, was removed.
    Removed(V),
}

impl<'a, Q, K, V, S, W, P> EntryRef<'a, Q, K, V, S, W, P>
where
    K: Hash + Eq + Clone + Borrow<Q>,
    Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    pub(super) fn new(
        cache: &'a Shared<K, V, S, W, P>,
        pin: PinFrom<'a, K, V>,
        stripe: usize,
        key: &'a Q,
    ) -> Self {
        Self {
            cache,
            pin,
            stripe,
            key,
        }
    }

    /// The key's value, or on a miss the value `init` makes, stored (as
    /// [`Cache::get_with`](super::Cache::get_with), whose single flight it shares).
    pub fn or_insert_with(self, init: impl FnOnce() -> V) -> Fetched<V> {
        match self.or_try_insert_with(|| Ok::<V, Infallible>(init())) {
            Ok(fetched) => fetched,
            Err(never) => match *never {},
        }
    }

    /// As [`or_insert_with`](Self::or_insert_with) with an initialiser that may decline:
    /// `None` stores nothing (as [`Cache::optionally_get_with`](super::Cache::optionally_get_with)).
    pub fn or_optionally_insert_with(self, init: impl FnOnce() -> Option<V>) -> Option<Fetched<V>> {
        self.or_try_insert_with(|| init().ok_or(())).ok()
    }

    /// As [`or_insert_with`](Self::or_insert_with) with a fallible initialiser (as
    /// [`Cache::try_get_with`](super::Cache::try_get_with)).
    ///
    /// # Errors
    /// The error of the `init` that ran for this miss, shared with the callers that waited
    /// on it.
    pub fn or_try_insert_with<E>(
        self,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<Fetched<V>, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        self.cache
            .get_or_try_insert_in(
                || self.pin.pin(self.cache),
                self.stripe,
                self.key,
                InsertOptions::new(),
                init,
            )
            .map(|(value, fresh)| Fetched { value, fresh })
    }

    /// Runs `f` on a clone of the key's live value (or `None`) and applies what it chooses:
    /// keep, store a value (with the default options), or remove. Computations and loaders
    /// on one key take turns: a caller that finds another one running waits, then runs its
    /// own `f` on what that one left. `f` runs with no lock and no L1 pin held; if it panics,
    /// nothing changes and the callers waiting take their turn.
    ///
    /// # Errors
    /// A value `f` chose to store that the cache refuses ([`InsertError`], with the owned key
    /// and the value); the key keeps what it had.
    pub fn and_compute_with(
        self,
        f: impl FnOnce(Option<V>) -> ComputeOp<V>,
    ) -> Result<Computed<V>, InsertError<K, V>> {
        self.cache
            .compute_in(|| self.pin.pin(self.cache), self.stripe, self.key, f)
    }

    /// Stores the value `f` makes from a clone of the key's live value (or `None`), and
    /// returns it: [`and_compute_with`](Self::and_compute_with) always putting.
    ///
    /// # Errors
    /// As [`and_compute_with`](Self::and_compute_with).
    pub fn and_upsert_with(self, f: impl FnOnce(Option<V>) -> V) -> Result<V, InsertError<K, V>> {
        match self.and_compute_with(|current| ComputeOp::Put(f(current)))? {
            Computed::Inserted(value) | Computed::ReplacedWith(value) => Ok(value),
            _ => unreachable!("a put inserts or replaces, or is refused"),
        }
    }
}

impl<K, V, S, W, P> Shared<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    /// `and_compute_with`'s core: leads `key`'s flight (waiting for any other first), reads,
    /// runs `f`, applies its choice, and ends the flight handing nothing (each waiter computes
    /// on what this one left). The flight ends once the choice is applied, before the listener
    /// hears of what it displaced.
    fn compute_in<'c, Q, G>(
        &'c self,
        pin: impl Fn() -> G,
        stripe: usize,
        key: &Q,
        f: impl FnOnce(Option<V>) -> ComputeOp<V>,
    ) -> Result<Computed<V>, InsertError<K, V>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        G: Borrow<l1::Guard<'c, K, Stamped<V>, ()>>,
    {
        let hash = self.hash_builder.hash_one(key);
        let leading = loop {
            let role = {
                let l1 = pin();
                // A quiet point before the flight (see `insert_in`).
                self.l2.prepare_insert(hash, &epoch(l1.borrow()));
                self.flights.join_or_lead(hash, key, None, || None)
            };
            match role {
                Role::Lead(leading) => break leading,
                // Another computation or loader: wait, then compute on what it left.
                Role::Join(flight) => flight::wait_out(&flight),
                Role::Found(_) => {}
            }
        };
        let current = self.peek_hashed(pin().borrow(), hash, key, V::clone);
        // The caller's code, with this flight pending and nothing else held (a panic drops
        // `leading`, which wakes the waiters).
        let op = f(current.clone());
        match (op, current) {
            (ComputeOp::Nop, current) => {
                leading.pass();
                Ok(current.map_or(Computed::StillNone, Computed::Unchanged))
            }
            (ComputeOp::Put(value), current) => {
                let l1 = pin();
                let owned = key.to_owned();
                let stored = self.store_in(
                    l1.borrow(),
                    hash,
                    owned,
                    value.clone(),
                    InsertOptions::new(),
                    current.is_none(),
                );
                leading.pass();
                self.report(stripe, stored?)?;
                Ok(match current {
                    Some(_) => Computed::ReplacedWith(value),
                    None => Computed::Inserted(value),
                })
            }
            (ComputeOp::Remove, None) => {
                leading.pass();
                Ok(Computed::StillNone)
            }
            (ComputeOp::Remove, Some(_)) => {
                let _reclaim = Reclaim(self);
                let l1 = pin();
                let epoch = epoch(l1.borrow());
                let removed =
                    self.l2
                        .remove(hash, key, None, &epoch, &mut self.tier_sync(l1.borrow()));
                leading.pass();
                Ok(match removed {
                    Some((key, value)) => {
                        self.report_removal(stripe, key, value);
                        Computed::Removed(value.clone())
                    }
                    // Removed meanwhile by a plain call.
                    None => Computed::StillNone,
                })
            }
        }
    }
}
