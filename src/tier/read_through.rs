//! The loader's single flight (`get_with` and its kin): a miss loads once however many callers
//! ask, and an entry due for refresh is reloaded by one caller while the others read it.

use alloc::borrow::ToOwned;
use core::borrow::Borrow;
use core::hash::{BuildHasher, Hash};

use super::flight::{self, Role, Settled};
use super::ops::Pin;
use super::raw::epoch;
use super::{Shared, Stamped, WRITE_RECLAIM};
use crate::entry::InsertOptions;
use crate::l1;
use crate::l2::{Policy, Weigher};

impl<K, V, S, W, P> Shared<K, V, S, W, P>
where
    K: Hash + Eq + Clone,
    V: Clone,
    S: BuildHasher,
    W: Weigher<K, V>,
    P: Policy,
{
    /// Takes the refresh of `key`'s entry if it is due (see `CacheBuilder::refresh_after_write`):
    /// its slot and refresh time.
    fn claim_refresh<Q>(&self, l1: Pin<'_, '_, K, V>, hash: u64, key: &Q) -> Option<(u32, u64)>
    where
        K: Borrow<Q>,
        Q: ?Sized + Eq,
    {
        let epoch = epoch(l1);
        let (found, shard) = self.l2.get(hash, key, &epoch)?;
        let due = shard.claim_refresh(&found, self.now())?;
        Some((found.id(), due))
    }

    /// A claimed refresh: runs `init` (no lock or pin held) and stores its value, returned as
    /// made by this call; if `init` fails or declines (or panics), the entry keeps `current`
    /// and its refresh time comes back, for the next loader read to try again.
    #[allow(clippy::too_many_arguments)]
    fn reload<'c, Q, E, G>(
        &'c self,
        pin: &impl Fn() -> G,
        stripe: usize,
        hash: u64,
        key: &Q,
        options: InsertOptions,
        init: impl FnOnce() -> Result<V, E>,
        (id, due): (u32, u64),
        current: V,
    ) -> (V, bool)
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        G: Borrow<l1::Guard<'c, K, Stamped<V>, ()>>,
    {
        // Puts the refresh time back unless disarmed, on the entry if it is still the one
        // claimed (a write since gave the key a new entry, with its own time).
        let put_back = PutBack(Some(|| {
            let l1 = pin();
            let epoch = epoch(l1.borrow());
            if let Some((found, shard)) = self.l2.get(hash, key, &epoch)
                && found.id() == id
            {
                shard.refresh_at(&found, due);
            }
        }));
        let Ok(value) = init() else {
            return (current, false);
        };
        let l1 = pin();
        match self.store_in(
            l1.borrow(),
            hash,
            key.to_owned(),
            value.clone(),
            options,
            false,
        ) {
            Ok(stored) => {
                put_back.disarm();
                drop(self.report(stripe, stored));
            }
            // Refused (too heavy, no clock): the value is still this call's.
            Err(refused) => drop(refused),
        }
        (value, true)
    }

    /// `get_with`'s core: a hit, or the value of the one initialiser run for
    /// concurrent misses on `key` (with whether this caller's made it), or that initialiser's
    /// error (for the waiters that expect its type). `pin` is called for each step, so no L1
    /// pin is held while the initialiser runs or while waiting for it.
    ///
    /// No user code runs while this caller's flight is pending but the initialiser and, for
    /// its value, the weigher and the expiry's hooks: the pin for the re-check is taken before the flight list's lock
    /// (and pins never run user code anyway: see L1's reclamation), and the leader settles its
    /// flight once the value is stored, before the listener hears of what the insertion
    /// displaced and before anything is dropped. A listener or a value's `Drop` may call back
    /// into the cache, even for this key, without waiting on a flight that waits on it.
    pub(super) fn get_or_try_insert_in<'c, Q, E, G>(
        &'c self,
        pin: impl Fn() -> G,
        stripe: usize,
        key: &Q,
        options: InsertOptions,
        init: impl FnOnce() -> Result<V, E>,
    ) -> Result<(V, bool), alloc::sync::Arc<E>>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Hash + Eq,
        G: Borrow<l1::Guard<'c, K, Stamped<V>, ()>>,
        E: Send + Sync + 'static,
    {
        let hash = self.hash_builder.hash_one(key);
        let mut init = Some(init);
        loop {
            let role = {
                // Read before the lookup: whether a look again under the flights' lock is
                // needed (see `flight::Ticket`).
                let ticket = self.flights.ticket(hash);
                let l1 = pin();
                if let Some(value) = self.get_hashed(l1.borrow(), stripe, hash, key) {
                    if self.refresh.is_some()
                        && let Some(claim) = self.claim_refresh(l1.borrow(), hash, key)
                    {
                        drop(l1);
                        let init = init.take().expect("a hit returns");
                        return Ok(
                            self.reload(&pin, stripe, hash, key, options, init, claim, value)
                        );
                    }
                    return Ok((value, false));
                }
                // A quiet point before the flight (see `insert_in`).
                self.l2.prepare_insert(hash, &epoch(l1.borrow()));
                self.flights.join_or_lead(hash, key, Some(ticket), || {
                    self.peek_hashed(l1.borrow(), hash, key, V::clone)
                })
            };
            match role {
                Role::Found(value) => return Ok((value, false)),
                Role::Join(flight) => match flight::wait::<V, E>(&flight) {
                    Settled::Value(value) => return Ok((value, false)),
                    Settled::Failed(error) => return Err(error),
                    // The leader gave up: start over (perhaps as the next leader).
                    Settled::Retry => {}
                },
                Role::Lead(leading) => {
                    let init = init
                        .take()
                        .expect("a caller leads at most once: it returns");
                    // A panic drops `leading`, which wakes the waiters to start over.
                    let value = match init() {
                        Ok(value) => value,
                        Err(error) => {
                            let error = alloc::sync::Arc::new(error);
                            leading.fail(&error);
                            return Err(error);
                        }
                    };
                    // The key is owned only now, for the entry (no lock held).
                    let owned = key.to_owned();
                    let l1 = pin();
                    // A loader's value follows its miss by construction.
                    self.stats.take_miss(stripe, hash);
                    let stored =
                        self.store_in(l1.borrow(), hash, owned, value.clone(), options, true);
                    leading.finish(&value);
                    // A refused insertion (too heavy, no clock) still hands the value out.
                    match stored {
                        Ok(stored) => drop(self.report(stripe, stored)),
                        Err(refused) => {
                            drop(refused);
                            self.reclaim(WRITE_RECLAIM);
                        }
                    }
                    return Ok((value, true));
                }
            }
        }
    }
}

/// Runs its function when dropped, unless disarmed: undoes a step that a failure or a panic
/// left half done.
struct PutBack<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> PutBack<F> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for PutBack<F> {
    fn drop(&mut self) {
        if let Some(undo) = self.0.take() {
            undo();
        }
    }
}
