//! A loom model of the async facade's waiting (`src/sync.rs`'s `Signal::poll_until` and
//! `update`, `src/tier/flight.rs`'s hand-over): a task waiting on a flight registers its waker
//! under the state's lock, an update changes the state, releases it, then wakes every
//! registered waker. No wake-up is lost (a lost one leaves `block_on` parked forever, which
//! loom reports), and a leader that is cancelled (its flight abandoned) hands the load to a
//! waiting task, which leads it, whether that task joined before the signal existed (it makes
//! it, under the list's lock) or not.
//!
//! The facade itself runs on thread-local pins and the `blocking` pool, which loom cannot
//! drive; this model keeps the protocol's code shape, with loom's mutexes and wakers.
#![cfg(loom)]

use std::future::poll_fn;
use std::task::{Poll, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Running,
    Done(u64),
    Abandoned,
}

/// `Signal<FlightState<V>>` with its wakers, as in `src/sync.rs`.
struct Signal {
    state: Mutex<State>,
    wakers: Mutex<Vec<Waker>>,
}

impl Signal {
    fn new() -> Self {
        Self {
            state: Mutex::new(State::Running),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// `Signal::update`: change, release the state, then wake every registered waker.
    fn update(&self, to: State) {
        *self.state.lock().unwrap() = to;
        let waiting = std::mem::take(&mut *self.wakers.lock().unwrap());
        waiting.into_iter().for_each(Waker::wake);
    }

    /// `flight::wait_async` over `Signal::poll_until`: the waker is registered while the
    /// state is still locked.
    async fn settled(&self) -> State {
        poll_fn(|cx| {
            let state = self.state.lock().unwrap();
            if *state != State::Running {
                return Poll::Ready(*state);
            }
            let mut wakers = self.wakers.lock().unwrap();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

/// The pending flight of the one key (`Flights`' list), or none; a pending flight's signal is
/// made by the first task that joins it (a flight nobody joins has none).
type Pending = Mutex<Option<Option<Arc<Signal>>>>;

/// What a task that missed does (`join_or_lead`): join the pending flight (making its signal
/// if it is the first to), or lead a new one (`Ok`).
fn join_or_lead(pending: &Pending) -> Result<(), Arc<Signal>> {
    let mut pending = pending.lock().unwrap();
    match &mut *pending {
        Some(signal) => Err(Arc::clone(
            signal.get_or_insert_with(|| Arc::new(Signal::new())),
        )),
        None => {
            *pending = Some(None);
            Ok(())
        }
    }
}

/// `Leading::settle`: off the list, then the state, if anyone joined.
fn settle(pending: &Pending, to: State) {
    let signal = pending
        .lock()
        .unwrap()
        .take()
        .expect("pending until settled");
    if let Some(signal) = signal {
        signal.update(to);
    }
}

#[test]
fn a_waiting_task_is_always_woken_by_the_leaders_value() {
    loom::model(|| {
        let flight = Arc::new(Signal::new());
        let leader = {
            let flight = Arc::clone(&flight);
            thread::spawn(move || flight.update(State::Done(5)))
        };
        let seen = loom::future::block_on(flight.settled());
        assert_eq!(seen, State::Done(5));
        leader.join().unwrap();
    });
}

/// A leader cancelled mid-load abandons its flight; a task waiting on it wakes, starts over
/// and leads the load itself. Every task ends with a value, and at most two loads ran.
#[test]
fn a_cancelled_leader_hands_the_load_to_a_waiting_task() {
    loom::model(|| {
        let pending: Arc<Pending> = Arc::new(Mutex::new(None));
        let loads = Arc::new(AtomicUsize::new(0));
        let cancelled = {
            let (pending, loads) = (Arc::clone(&pending), Arc::clone(&loads));
            thread::spawn(move || {
                if join_or_lead(&pending).is_ok() {
                    loads.fetch_add(1, Ordering::Relaxed);
                    // Dropped mid-load: `Leading`'s drop abandons the flight.
                    settle(&pending, State::Abandoned);
                }
            })
        };
        let value = loom::future::block_on(async {
            loop {
                match join_or_lead(&pending) {
                    Err(flight) => match flight.settled().await {
                        State::Done(value) => break value,
                        State::Abandoned => continue,
                        State::Running => unreachable!(),
                    },
                    Ok(()) => {
                        loads.fetch_add(1, Ordering::Relaxed);
                        settle(&pending, State::Done(7));
                        break 7;
                    }
                }
            }
        });
        cancelled.join().unwrap();
        assert_eq!(value, 7);
        assert!(loads.load(Ordering::Relaxed) <= 2);
        assert!(pending.lock().unwrap().is_none(), "no flight left pending");
    });
}
