//! Single flight for `get_with`: concurrent callers that miss on one key run its
//! initialiser once; the others wait for the value.
//!
//! Pending keys live in small lists striped by hash, each behind a lock held only to look up,
//! add or remove a pending key (never while an initialiser runs). A flight is a [`Signal`]:
//! waiters park on it under `std` and spin, then yield, without it. It is made by the first
//! caller that joins, so a flight nobody waits for (most misses) allocates nothing and wakes
//! nobody. The leader publishes its value into the cache **before** it takes its key off the
//! pending list, so a caller that finds no pending key and then (under the list's lock) looks
//! in the cache again sees either the flight or the stored value: the initialiser cannot run
//! twice for one miss. That second look is skipped when no flight of the stripe settled since
//! the caller's first lookup began (a [`Ticket`]). The value goes to the waiters in an `Arc`:
//! the leader clones it into one before it takes the flight's lock, and each waiter takes a
//! reference under the lock and makes its own clone after, so no `Clone` (user code) runs
//! under the lock and waiters clone side by side. If the leader's initialiser fails, its error
//! (in an `Arc`) goes to the waiters that expect that error type. If it panics, a drop guard
//! marks the flight abandoned and wakes the waiters, which start over (one of them becomes the
//! next leader); so do a computation's waiters (`and_compute_with`), each of which runs its
//! own.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::any::Any;
use core::borrow::Borrow;

use crate::sync::{Arc, AtomicUsize, Mutex, Ordering, Signal};

/// Where a flight stands.
pub(crate) enum FlightState<V> {
    /// The leader is running the initialiser.
    Running,
    /// The leader stored this value (shared: each waiter clones it outside the flight's lock).
    Done(Arc<V>),
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

impl<V> FlightState<V> {
    /// Whether the leader is done, one way or another (what waiters wait for).
    fn is_settled(&self) -> bool {
        !matches!(self, FlightState::Running)
    }
}

pub(crate) type Flight<V> = Signal<FlightState<V>>;

struct Pending<K, V> {
    hash: u64,
    key: K,
    /// Which flight of its stripe (the stripe's count of flights started when it began).
    id: usize,
    /// Made by the first caller that joins (see the module docs).
    flight: Option<Arc<Flight<V>>>,
}

/// One stripe's pending keys (few at a time: a list) and its count of flights started.
struct List<K, V> {
    pending: Vec<Pending<K, V>>,
    started: usize,
}

/// One stripe of pending keys.
struct Stripe<K, V> {
    list: Mutex<List<K, V>>,
    /// Flights settled in this stripe (wrapping), increased under the lock after the leader
    /// stored its value: see [`Ticket`].
    settled: AtomicUsize,
}

/// The keys whose initialiser is running, striped by hash.
pub(crate) struct Flights<K, V> {
    stripes: Box<[Stripe<K, V>]>,
    mask: usize,
}

/// A stripe's count of settled flights, read before a caller's lookup. Found unchanged under
/// the stripe's lock, it says that no leader of the stripe took its key off the list since the
/// lookup began, and every one that did before had stored its value where the lookup looked
/// (the count's Acquire read pairs with the Release increase): the lookup's miss stands, and
/// the look again under the lock is not needed. (The count wraps: a stale ticket could match
/// only after a multiple of `usize::MAX + 1` settlements in one stripe during one lookup, and
/// would then cost a second run of an initialiser, not a wrong value.)
#[derive(Clone, Copy)]
pub(crate) struct Ticket(usize);

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
        list.extend((0..stripes).map(|_| Stripe {
            list: Mutex::new(List {
                pending: Vec::new(),
                started: 0,
            }),
            settled: AtomicUsize::new(0),
        }));
        Self {
            stripes: list.into_boxed_slice(),
            mask: stripes - 1,
        }
    }

    fn stripe(&self, hash: u64) -> &Stripe<K, V> {
        &self.stripes[(hash >> 32) as usize & self.mask]
    }

    /// The ticket of `hash`'s stripe, for a caller about to look the key up (see [`Ticket`]).
    #[inline]
    pub(crate) fn ticket(&self, hash: u64) -> Ticket {
        // Acquire pairs with the Release increase in `settle`: the value a leader stored
        // before settling is seen by the lookup that follows this read.
        Ticket(self.stripe(hash).settled.load(Ordering::Acquire))
    }

    /// Takes flight `id` of `hash`'s stripe off the pending list and, if anyone joined it,
    /// settles it with `state()`, waking its waiters. The pending entry (with its key) is
    /// dropped after the stripe's lock is released.
    fn settle(&self, hash: u64, id: usize, state: impl FnOnce() -> FlightState<V>) {
        let stripe = self.stripe(hash);
        let pending = {
            let mut list = stripe.list.lock();
            let at = list
                .pending
                .iter()
                .position(|p| p.id == id)
                .expect("a flight stays pending until its leader settles it");
            // Release pairs with the Acquire read of `ticket`; made under the lock, so a
            // caller comparing its ticket under the lock sees it too.
            stripe.settled.fetch_add(1, Ordering::Release);
            list.pending.swap_remove(at)
        };
        if let Some(flight) = &pending.flight {
            // Made before the flight's lock is taken: it may clone the value (user code). If
            // that panics, the guard still settles the flight, and the waiters start over.
            let abandon = AbandonOnUnwind(flight);
            let state = state();
            core::mem::forget(abandon);
            flight.update(|s| *s = state);
        }
        drop(pending);
    }
}

/// Settles a flight as abandoned when dropped: armed while the leader's clone of its value
/// (user code) runs, so a panic there still wakes the waiters instead of leaving them parked.
struct AbandonOnUnwind<'a, V>(&'a Flight<V>);

impl<V> Drop for AbandonOnUnwind<'_, V> {
    fn drop(&mut self) {
        self.0.update(|s| *s = FlightState::Abandoned);
    }
}

impl<K, V> Flights<K, V> {
    /// Joins the flight for `key`, or finds its value with `recheck` (run under the stripe's
    /// lock, unless `ticket`, read before the caller's lookup, shows no flight of the stripe
    /// settled since), or starts a flight and leads it (the pending list keeps an owned copy
    /// of the key).
    pub(crate) fn join_or_lead<Q>(
        &self,
        hash: u64,
        key: &Q,
        ticket: Option<Ticket>,
        recheck: impl FnOnce() -> Option<V>,
    ) -> Role<&Self, K, V>
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Eq,
    {
        Self::join_or_lead_in(self, hash, key, ticket, recheck)
    }

    /// [`join_or_lead`](Self::join_or_lead) through `flights`, which a leader keeps.
    pub(crate) fn join_or_lead_in<F, Q>(
        flights: F,
        hash: u64,
        key: &Q,
        ticket: Option<Ticket>,
        recheck: impl FnOnce() -> Option<V>,
    ) -> Role<F, K, V>
    where
        F: Borrow<Self>,
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K> + Eq,
    {
        let stripe = flights.borrow().stripe(hash);
        let mut list = stripe.list.lock();
        if let Some(p) = list
            .pending
            .iter_mut()
            .find(|p| p.hash == hash && p.key.borrow() == key)
        {
            let flight = p
                .flight
                .get_or_insert_with(|| Arc::new(Signal::new(FlightState::Running)));
            return Role::Join(Arc::clone(flight));
        }
        // A leader stores its value before it leaves this list: look again, under the lock,
        // unless no leader left since the caller's lookup began. Relaxed: every increase is
        // made under this lock.
        let quiet =
            ticket.is_some_and(|Ticket(seen)| seen == stripe.settled.load(Ordering::Relaxed));
        if !quiet && let Some(value) = recheck() {
            return Role::Found(value);
        }
        let id = list.started;
        list.started = id.wrapping_add(1);
        list.pending.push(Pending {
            hash,
            key: key.to_owned(),
            id,
            flight: None,
        });
        drop(list);
        Role::Lead(Leading {
            flights,
            hash,
            id,
            settled: false,
            _types: core::marker::PhantomData,
        })
    }
}

/// The leader's side of a flight. Dropped without [`finish`](Self::finish) (the initialiser
/// panicked or failed), it abandons the flight and wakes the waiters.
pub(crate) struct Leading<F: Borrow<Flights<K, V>>, K, V> {
    flights: F,
    hash: u64,
    id: usize,
    settled: bool,
    _types: core::marker::PhantomData<fn(K) -> V>,
}

impl<F: Borrow<Flights<K, V>>, K, V> Leading<F, K, V> {
    /// Hands `value` to the waiters (a clone, made only if anyone waits, and under no lock).
    pub(crate) fn finish(mut self, value: &V)
    where
        V: Clone,
    {
        self.settle(|| FlightState::Done(Arc::new(value.clone())));
    }

    /// Hands `error` to the waiters that expect its type (the others start over).
    pub(crate) fn fail<E: Send + Sync + 'static>(mut self, error: &alloc::sync::Arc<E>) {
        self.settle(|| FlightState::Failed(Box::new(alloc::sync::Arc::clone(error))));
    }

    /// Ends the flight handing nothing: the waiters start over.
    pub(crate) fn pass(mut self) {
        self.settle(|| FlightState::Abandoned);
    }

    fn settle(&mut self, state: impl FnOnce() -> FlightState<V>) {
        assert!(!self.settled, "settled once");
        self.settled = true;
        self.flights.borrow().settle(self.hash, self.id, state);
    }
}

impl<F: Borrow<Flights<K, V>>, K, V> Drop for Leading<F, K, V> {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.flights
                .borrow()
                .settle(self.hash, self.id, || FlightState::Abandoned);
        }
    }
}

/// Waits for `flight` to settle: the leader's value, its error if it is an `E`, or nothing.
/// The value is cloned after the flight's lock is released.
pub(crate) fn wait<V: Clone, E: 'static>(flight: &Flight<V>) -> Settled<V, E> {
    let taken = taken(&flight.wait_until(FlightState::is_settled));
    taken.cloned()
}

/// Waits for `flight` to settle, taking nothing from it (a computation's waiter, which starts
/// over whatever the leader did).
pub(crate) fn wait_out<V>(flight: &Flight<V>) {
    drop(flight.wait_until(FlightState::is_settled));
}

/// [`wait`] for a task: a future that is ready once `flight` settles (the async facade). It
/// holds no lock between polls; dropped, it leaves the flight as it is.
#[cfg(all(feature = "async", not(loom)))]
pub(crate) async fn wait_async<V: Clone, E: 'static>(flight: &Flight<V>) -> Settled<V, E> {
    let taken = core::future::poll_fn(|cx| {
        flight
            .poll_until(cx, FlightState::is_settled)
            .map(|state| taken(&state))
    })
    .await;
    taken.cloned()
}

/// What a settled flight hands a waiter expecting errors of type `E`, taken under the flight's
/// lock: a reference to the value, not a clone of it (no user code runs under the lock).
fn taken<V, E: 'static>(state: &FlightState<V>) -> Settled<Arc<V>, E> {
    match state {
        FlightState::Done(value) => Settled::Value(Arc::clone(value)),
        FlightState::Failed(error) => error
            .downcast_ref::<alloc::sync::Arc<E>>()
            .map_or(Settled::Retry, |error| {
                Settled::Failed(alloc::sync::Arc::clone(error))
            }),
        FlightState::Abandoned => Settled::Retry,
        FlightState::Running => unreachable!("waited until settled"),
    }
}

impl<V: Clone, E> Settled<Arc<V>, E> {
    /// The waiter's own clone of the value, made outside the flight's lock. The reference is
    /// dropped here, so the value's `Drop` may run here too (when the flight is gone).
    fn cloned(self) -> Settled<V, E> {
        match self {
            Settled::Value(shared) => Settled::Value(V::clone(&shared)),
            Settled::Failed(error) => Settled::Failed(error),
            Settled::Retry => Settled::Retry,
        }
    }
}
