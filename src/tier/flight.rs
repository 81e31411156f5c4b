//! Single flight for `get_with`: concurrent callers that miss on one key run its
//! initialiser once; the others wait for the value.
//!
//! Pending keys live in small lists striped by hash, each behind a lock held only to look up,
//! add or remove a pending key (never while an initialiser runs). A flight is a [`Signal`]:
//! waiters park on it under `std` and spin, then yield, without it. The leader publishes its
//! value into the cache **before** it takes its key off the pending list, so a caller that
//! finds no pending key and then (under the list's lock) looks in the cache again sees either
//! the flight or the stored value: the initialiser cannot run twice for one miss. If the
//! leader's initialiser fails, its error (in an `Arc`) goes to the waiters that expect that
//! error type. If it panics, a drop guard marks the flight abandoned and wakes the waiters,
//! which start over (one of them becomes the next leader); so do a computation's waiters
//! (`and_compute_with`), each of which runs its own.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::borrow::Borrow;

use crate::sync::{Arc, Mutex, Signal};

/// Where a flight stands.
pub(crate) enum FlightState<V> {
    /// The leader is running the initialiser.
    Running,
    /// The leader stored this value.
    Done(V),
    /// The leader's initialiser failed with this error: an `alloc::sync::Arc<E>`, for the
    /// waiters that expect an `E`.
    Failed(Box<dyn Any + Send + Sync>),
    /// The leader's initialiser panicked, or its computation hands waiters nothing: waiters
    /// start over.
    Abandoned,
}

/// How a flight ended, for a waiter expecting errors of type `E`.
pub(crate) enum Settled<V, E> {
    /// The leader's value.
    Value(V),
    /// The leader's error.
    Failed(alloc::sync::Arc<E>),
    /// Nothing to take: start over.
    Retry,
}

pub(crate) type Flight<V> = Signal<FlightState<V>>;

struct Pending<K, V> {
    hash: u64,
    key: K,
    flight: Arc<Flight<V>>,
}

/// One stripe of pending keys (few at a time: a list).
type PendingList<K, V> = Mutex<Vec<Pending<K, V>>>;

/// The keys whose initialiser is running, striped by hash.
pub(crate) struct Flights<K, V> {
    stripes: Box<[PendingList<K, V>]>,
    mask: usize,
}

/// What a caller that missed should do; `F` reaches the flights (a borrow, or an owner of
/// them that a leader can take to another thread).
pub(crate) enum Role<F: Borrow<Flights<K, V>>, K, V> {
    /// Run the initialiser, then [`Leading::finish`].
    Lead(Leading<F, K, V>),
    /// Wait for this flight.
    Join(Arc<Flight<V>>),
    /// The value appeared in the cache meanwhile.
    Found(V),
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new(stripes: usize) -> Self {
        let stripes = stripes.next_power_of_two().max(1);
        let mut list = Vec::with_capacity(stripes);
        list.extend((0..stripes).map(|_| Mutex::new(Vec::new())));
        Self {
            stripes: list.into_boxed_slice(),
            mask: stripes - 1,
        }
    }

    fn stripe(&self, hash: u64) -> &PendingList<K, V> {
        &self.stripes[(hash >> 32) as usize & self.mask]
    }

    /// Takes `flight` off the pending list and settles it, waking its waiters. The pending
    /// entry (with its key) is dropped after the stripe's lock is released.
    fn settle(&self, hash: u64, flight: &Arc<Flight<V>>, state: FlightState<V>) {
        let pending = {
            let mut pending = self.stripe(hash).lock();
            let at = pending
                .iter()
                .position(|p| Arc::ptr_eq(&p.flight, flight))
                .expect("a flight stays pending until its leader settles it");
            pending.swap_remove(at)
        };
        flight.update(|s| *s = state);
        drop(pending);
    }
}

impl<K, V> Flights<K, V> {
    /// Joins the flight for `key`, or finds its value with `recheck` (run under the stripe's
    /// lock), or starts a flight and leads it (the pending list keeps an owned copy of the key).
    pub(crate) fn join_or_lead<Q>(
        &self,
        hash: u64,
        key: &Q,
        recheck: impl FnOnce() -> Option<V>,
    ) -> Role<&Self, K, V>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Eq,
    {
        Self::join_or_lead_in(self, hash, key, recheck)
    }

    /// [`join_or_lead`](Self::join_or_lead) through `flights`, which a leader keeps.
    pub(crate) fn join_or_lead_in<F, Q>(
        flights: F,
        hash: u64,
        key: &Q,
        recheck: impl FnOnce() -> Option<V>,
    ) -> Role<F, K, V>
    where
        F: Borrow<Self>,
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Eq,
    {
        let mut pending = flights.borrow().stripe(hash).lock();
        if let Some(p) = pending
            .iter()
            .find(|p| p.hash == hash && p.key.borrow() == key)
        {
            return Role::Join(Arc::clone(&p.flight));
        }
        // A leader stores its value before it leaves this list: look again, under the lock.
        if let Some(value) = recheck() {
            return Role::Found(value);
        }
        let flight = Arc::new(Signal::new(FlightState::Running));
        pending.push(Pending {
            hash,
            key: key.to_owned(),
            flight: Arc::clone(&flight),
        });
        drop(pending);
        Role::Lead(Leading {
            flights,
            hash,
            flight: Some(flight),
            _types: core::marker::PhantomData,
        })
    }
}

/// The leader's side of a flight. Dropped without [`finish`](Self::finish) (the initialiser
/// panicked or failed), it abandons the flight and wakes the waiters.
pub(crate) struct Leading<F: Borrow<Flights<K, V>>, K, V> {
    flights: F,
    hash: u64,
    flight: Option<Arc<Flight<V>>>,
    _types: core::marker::PhantomData<fn(K) -> K>,
}

impl<F: Borrow<Flights<K, V>>, K, V> Leading<F, K, V> {
    /// Hands `value` to the waiters.
    pub(crate) fn finish(mut self, value: V) {
        self.settle(FlightState::Done(value));
    }

    /// Hands `error` to the waiters that expect its type (the others start over).
    pub(crate) fn fail<E: Send + Sync + 'static>(mut self, error: &alloc::sync::Arc<E>) {
        self.settle(FlightState::Failed(Box::new(alloc::sync::Arc::clone(
            error,
        ))));
    }

    /// Ends the flight handing nothing: the waiters start over.
    pub(crate) fn pass(mut self) {
        self.settle(FlightState::Abandoned);
    }

    fn settle(&mut self, state: FlightState<V>) {
        let flight = self.flight.take().expect("settled once");
        self.flights.borrow().settle(self.hash, &flight, state);
    }
}

impl<F: Borrow<Flights<K, V>>, K, V> Drop for Leading<F, K, V> {
    fn drop(&mut self) {
        if let Some(flight) = self.flight.take() {
            self.flights
                .borrow()
                .settle(self.hash, &flight, FlightState::Abandoned);
        }
    }
}

/// Waits for `flight` to settle: the leader's value, its error if it is an `E`, or nothing.
pub(crate) fn wait<V: Clone, E: 'static>(flight: &Flight<V>) -> Settled<V, E> {
    settled(&flight.wait_until(|s| !matches!(s, FlightState::Running)))
}

/// [`wait`] for a task: a future that is ready once `flight` settles (the async facade). It
/// holds no lock between polls; dropped, it leaves the flight as it is.
#[cfg(all(feature = "async", not(loom)))]
pub(crate) async fn wait_async<V: Clone, E: 'static>(flight: &Flight<V>) -> Settled<V, E> {
    core::future::poll_fn(|cx| {
        flight
            .poll_until(cx, |s| !matches!(s, FlightState::Running))
            .map(|state| settled(&state))
    })
    .await
}

/// What a settled flight hands a waiter expecting errors of type `E`.
fn settled<V: Clone, E: 'static>(state: &FlightState<V>) -> Settled<V, E> {
    match state {
        FlightState::Done(value) => Settled::Value(value.clone()),
        FlightState::Failed(error) => error
            .downcast_ref::<alloc::sync::Arc<E>>()
            .map_or(Settled::Retry, |error| {
                Settled::Failed(alloc::sync::Arc::clone(error))
            }),
        FlightState::Abandoned => Settled::Retry,
        FlightState::Running => unreachable!("waited until settled"),
    }
}
