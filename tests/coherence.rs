//! Coherence over a real `redis-server` (started by each test on a free loopback port;
//! SKIPPED where there is none): two members see each other's writes within a bounded time,
//! concurrent writers (in one process and in two) end agreeing, the server killed and
//! restarted mid-test, a flood of invalidations, a member in another process, and the remote
//! tier.
#![cfg(feature = "redis")]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use stratacache::Cache;
use stratacache::coherence::{Coherence, CoherenceBuilder, Coherent};

/// A `redis-server` of the test's own, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        Self::on(port)
    }

    fn on(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            eprintln!(
                "SKIPPED: no redis-server here (Debian's package redis-server): the coherence tests"
            );
            return None;
        };
        let server = Self { child, port };
        let until = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A member joined with `settings`, once connected.
fn joined<V: Clone + Send + Sync + 'static>(settings: CoherenceBuilder) -> Coherent<u64, V> {
    let member = Cache::builder()
        .capacity(100_000)
        .build()
        .unwrap()
        .coherent(settings)
        .unwrap();
    wait_until("connected", || member.stats().connected);
    member
}

fn member(server: &Server, group: &str) -> Coherent<u64, String> {
    joined(Coherence::builder(server.url(), group).retry_after(Duration::from_millis(50)))
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_write_in_one_member_invalidates_the_others_copy_within_a_bounded_time() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "world"), member(&server, "world"));
    b.cache().insert(7, String::from("old")).unwrap();
    let started = Instant::now();
    let version = a.insert(7, String::from("new")).unwrap();
    assert!(version.is_some());
    wait_until("b drops its old copy", || b.cache().get(&7).is_none());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        a.cache().get(&7).as_deref(),
        Some("new"),
        "the writer keeps its value"
    );
    // A member of another group is not touched.
    let other = member(&server, "elsewhere");
    other.cache().insert(7, String::from("theirs")).unwrap();
    a.remove(&7);
    wait_until("b sees the removal", || b.stats().applied >= 2);
    assert_eq!(other.cache().get(&7).as_deref(), Some("theirs"));
}

#[test]
fn concurrent_writers_in_two_members_end_agreeing_on_the_last_version() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "race"), member(&server, "race"));
    let writers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(who, member)| {
            std::thread::spawn(move || {
                for round in 0..300u64 {
                    let key = round % 10;
                    member.insert(key, format!("{who}:{round}")).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    // Quiet: every invalidation delivered (each member applied or ignored the other's 300).
    wait_until("all invalidations seen", || {
        let (sa, sb) = (a.stats(), b.stats());
        sa.applied + sa.ignored >= 300 && sb.applied + sb.ignored >= 300
    });
    for key in 0..10u64 {
        let (va, vb) = (a.cache().get(&key), b.cache().get(&key));
        // At most one member holds the key (the last writer), never two different values.
        assert!(
            va.is_none() || vb.is_none() || va == vb,
            "key {key}: {va:?} / {vb:?}"
        );
    }
}

#[test]
fn the_server_killed_and_restarted_mid_test_drops_what_may_be_stale_and_publishes_the_gap() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "fault"), member(&server, "fault"));
    b.cache().insert(1, String::from("b's copy")).unwrap();
    b.cache().insert(2, String::from("b's other copy")).unwrap();
    let port = server.port;
    let _ = server.child.kill();
    let _ = server.child.wait();
    wait_until("a notices", || !a.stats().connected);
    // Both keep serving and writing locally.
    assert_eq!(
        a.insert(1, String::from("written in the gap")).unwrap(),
        None
    );
    assert_eq!(b.cache().get(&2).as_deref(), Some("b's other copy"));
    assert!(a.stats().unpublished >= 1);
    let server = Server::on(port).expect("restarts");
    wait_until("both reconnect", || {
        a.stats().connected && b.stats().connected
    });
    // b dropped what it held (it may have missed invalidations), and a's gap write reached it.
    wait_until("b dropped its copies", || {
        b.cache().get(&1).is_none() && b.cache().get(&2).is_none()
    });
    let (sa, sb) = (a.stats(), b.stats());
    assert!(sa.reconnects >= 1 && sb.reconnects >= 1, "{sa:?} {sb:?}");
    assert!(sb.dropped_on_reconnect >= 2, "{sb:?}");
    assert!(sa.disconnected_for > Duration::ZERO);
    assert!(a.health().is_healthy(), "{}", a.health());
    // After the gap, coherence works as before.
    b.cache().insert(3, String::from("old")).unwrap();
    a.insert(3, String::from("new")).unwrap();
    wait_until("b drops key 3", || b.cache().get(&3).is_none());
    drop(server);
}

#[test]
fn a_member_started_while_redis_is_down_serves_locally_and_joins_later() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let a: Coherent<u64, String> = Cache::builder()
        .capacity(100)
        .build()
        .unwrap()
        .coherent(Coherence::builder(url, "late").retry_after(Duration::from_millis(50)))
        .unwrap();
    assert!(!a.stats().connected);
    assert_eq!(a.insert(1, String::from("local")).unwrap(), None);
    assert_eq!(a.cache().get(&1).as_deref(), Some("local"));
    let Some(server) = Server::on(port) else {
        return;
    };
    wait_until("a connects", || a.stats().connected);
    let b = member(&server, "late");
    b.cache().insert(5, String::from("b's")).unwrap();
    a.insert(5, String::from("a's")).unwrap();
    wait_until("b drops key 5", || b.cache().get(&5).is_none());
}

#[test]
fn a_flood_of_invalidations_is_applied_in_full() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "flood"), member(&server, "flood"));
    for key in 0..5_000u64 {
        b.cache().insert(key, String::from("stale")).unwrap();
    }
    let writers: Vec<_> = (0..4u64)
        .map(|part| {
            let a = a.clone();
            std::thread::spawn(move || {
                for key in (part..5_000).step_by(4) {
                    a.insert(key, String::from("fresh")).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    wait_until("b applied all 5,000", || b.stats().applied >= 5_000);
    assert_eq!(b.cache().len(), 0);
    assert_eq!(a.stats().published, 5_000);
}

/// Set in the child: the Redis URL; the child writes key 42 once and exits.
const CHILD: &str = "STRATACACHE_COHERENCE_CHILD";

#[test]
fn coherence_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    let member: Coherent<u64, String> = joined(Coherence::builder(url, "processes"));
    member
        .insert(42, String::from("from the child"))
        .unwrap()
        .expect("published");
}

#[test]
fn a_write_in_another_process_invalidates_this_ones_copy() {
    let Some(server) = Server::start() else {
        return;
    };
    let here = member(&server, "processes");
    here.cache().insert(42, String::from("old")).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "coherence_child", "--test-threads", "1"])
        .env(CHILD, server.url())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the other process's write reaches here", || {
        here.cache().get(&42).is_none()
    });
}

#[test]
fn a_value_loaded_before_an_invalidation_arrived_is_not_stored() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "fill"), member(&server, "fill"));
    let first = a.insert(9, String::from("v1")).unwrap().unwrap();
    let second = a.insert(9, String::from("v2")).unwrap().unwrap();
    wait_until("b applied both", || b.stats().applied >= 2);
    // b had loaded the source's v1 before the second write's invalidation arrived: refused.
    assert!(!b.fill(9, String::from("v1"), first).unwrap());
    assert_eq!(b.cache().get(&9), None);
    // What it loads now, at the newest version, is stored.
    assert!(b.fill(9, String::from("v2"), second).unwrap());
    assert_eq!(b.cache().get(&9).as_deref(), Some("v2"));
}

#[test]
fn a_reconnection_drops_only_the_key_range_that_may_be_stale() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let port = server.port;
    let shared: Coherent<u64, String> = Cache::builder()
        .capacity(1_000)
        .build()
        .unwrap()
        // Keys below 100 are written by other members; the rest only here.
        .coherent_dropping(
            Coherence::builder(server.url(), "ranges").retry_after(Duration::from_millis(50)),
            |&key| key < 100,
        )
        .unwrap();
    wait_until("connected", || shared.stats().connected);
    shared.cache().insert(1, String::from("shared")).unwrap();
    shared.cache().insert(500, String::from("mine")).unwrap();
    let _ = server.child.kill();
    let _ = server.child.wait();
    wait_until("disconnected", || !shared.stats().connected);
    let _server = Server::on(port).expect("restarts");
    wait_until("reconnected", || shared.stats().connected);
    assert_eq!(shared.cache().get(&1), None, "the shared range is dropped");
    assert_eq!(
        shared.cache().get(&500).as_deref(),
        Some("mine"),
        "the rest is kept"
    );
    assert_eq!(shared.stats().dropped_on_reconnect, 1);
}

#[test]
fn a_value_shared_by_one_member_is_read_by_another_from_the_remote_tier_and_kept_locally() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "remote"), member(&server, "remote"));
    let version = a.insert_shared(1, String::from("v1")).unwrap().unwrap();
    assert_eq!(b.get_shared(&1).unwrap().as_deref(), Some("v1"));
    assert_eq!(b.cache().get(&1).as_deref(), Some("v1"), "filled locally");
    assert_eq!(b.get_shared(&1).unwrap().as_deref(), Some("v1"));
    let stats = b.stats();
    assert_eq!(
        (stats.fetched, stats.fetch_misses),
        (1, 0),
        "the second read was local"
    );
    assert_eq!(a.stats().shared, 1);
    // A newer shared write replaces both the remote value and b's copy.
    let newer = a.insert_shared(1, String::from("v2")).unwrap().unwrap();
    assert!(newer > version);
    wait_until("b drops v1", || b.cache().get(&1).is_none());
    assert_eq!(b.get_shared(&1).unwrap().as_deref(), Some("v2"));
    assert_eq!(b.get_shared(&2).unwrap(), None);
    assert_eq!(b.stats().fetch_misses, 1);
}

#[test]
fn a_plain_write_or_a_removal_deletes_the_remote_value() {
    let Some(server) = Server::start() else {
        return;
    };
    let (a, b) = (member(&server, "remote"), member(&server, "remote"));
    a.insert_shared(1, String::from("shared")).unwrap();
    a.insert(1, String::from("local only")).unwrap();
    a.insert_shared(2, String::from("shared")).unwrap();
    a.remove(&2);
    assert_eq!(b.get_shared(&1).unwrap(), None, "older than a's last write");
    assert_eq!(b.get_shared(&2).unwrap(), None);
    assert_eq!(a.get_shared(&1).unwrap().as_deref(), Some("local only"));
}

#[test]
fn remote_values_live_as_long_as_the_groups_ttl_and_not_below_its_floor() {
    let Some(server) = Server::start() else {
        return;
    };
    let a: Coherent<u64, String> =
        joined(Coherence::builder(server.url(), "ttl").remote_ttl(Duration::from_millis(100)));
    let b = member(&server, "ttl");
    a.insert_shared(1, String::from("brief")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(b.get_shared(&1).unwrap(), None, "expired in Redis");
    // A group-wide invalidation (after a gap too long to replay) raises the group's floor:
    // values stored before it are stale. Raised here by hand.
    let c = member(&server, "floor");
    c.insert_shared(1, String::from("before")).unwrap();
    let raised = Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .args(["SET", "stratacache:{floor}:floor", "1000000"])
        .output();
    let Ok(raised) = raised else {
        eprintln!("SKIPPED: no redis-cli here: the floor half of this test");
        return;
    };
    assert!(raised.status.success());
    let d = member(&server, "floor");
    assert_eq!(d.get_shared(&1).unwrap(), None);
}

#[test]
fn the_remote_tier_out_of_reach_or_holding_another_type_is_a_clear_error() {
    let Some(mut server) = Server::start() else {
        return;
    };
    let a = member(&server, "errors");
    let raw: Coherent<u64, Vec<u8>> = joined(Coherence::builder(server.url(), "errors"));
    raw.insert_shared(9, vec![0xff, 0xfe]).unwrap();
    let error = a.get_shared(&9).unwrap_err();
    assert!(
        matches!(
            error,
            stratacache::coherence::CoherenceError::Undecodable(_)
        ),
        "{error}"
    );
    a.insert_shared(1, String::from("kept")).unwrap();
    let _ = server.child.kill();
    let _ = server.child.wait();
    wait_until("a notices", || !a.stats().connected);
    assert_eq!(
        a.get_shared(&1).unwrap().as_deref(),
        Some("kept"),
        "a local hit"
    );
    let error = a.get_shared(&2).unwrap_err();
    assert!(
        matches!(error, stratacache::coherence::CoherenceError::Redis(_)),
        "{error}"
    );
}

/// Set for the child process of the cross-process race: the Redis URL.
const RACE_CHILD: &str = "STRATACACHE_COHERENCE_RACE_CHILD";
/// Rounds each process of the race writes, over `RACE_KEYS` keys.
const RACE_ROUNDS: u64 = 300;
const RACE_KEYS: u64 = 10;

/// Writes `RACE_ROUNDS` shared values as `who`, then waits until the other process's writes
/// have all reached `member` (applied, or ignored as older than its own).
fn race(member: &Coherent<u64, String>, who: &str) {
    for round in 0..RACE_ROUNDS {
        member
            .insert_shared(round % RACE_KEYS, format!("{who}:{round}"))
            .unwrap();
    }
    wait_until("the other process's writes arrive", || {
        let stats = member.stats();
        stats.applied + stats.ignored >= RACE_ROUNDS
    });
}

#[test]
fn coherence_race_child() {
    let Ok(url) = std::env::var(RACE_CHILD) else {
        return;
    };
    let member: Coherent<u64, String> = joined(Coherence::builder(url, "race-processes"));
    // Subscribed: the parent may start (invalidations published before are not replayed).
    println!("RACE READY");
    race(&member, "child");
    // What this process holds, for the parent to compare.
    for key in 0..RACE_KEYS {
        println!("RACE {key} {:?}", member.cache().get(&key));
    }
}

#[test]
fn concurrent_writers_in_two_processes_end_agreeing_on_the_last_version() {
    let Some(server) = Server::start() else {
        return;
    };
    let here = member(&server, "race-processes");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "coherence_race_child", "--test-threads", "1"])
        .args(["--nocapture"])
        .env(RACE_CHILD, server.url())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Both start writing once the child is subscribed.
    for line in lines.by_ref() {
        if line.unwrap().contains("RACE READY") {
            break;
        }
    }
    race(&here, "parent");
    let stdout: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success(), "{stdout:?}");
    let theirs: Vec<&str> = stdout
        .iter()
        .filter_map(|line| line.strip_prefix("RACE "))
        .collect();
    assert_eq!(theirs.len(), RACE_KEYS as usize, "{stdout:?}");
    // The remote tier holds each key's last version (one script orders every write); each
    // process holds that value or nothing, never an older one.
    let judge = member(&server, "race-processes");
    for (key, theirs) in (0..RACE_KEYS).zip(theirs) {
        let last = judge.get_shared(&key).unwrap();
        assert!(last.is_some(), "key {key}: no last version");
        let mine = here.cache().get(&key);
        assert!(
            mine.is_none() || mine == last,
            "key {key}: {mine:?} here, {last:?} last"
        );
        assert!(
            theirs == format!("{key} None") || theirs == format!("{key} {:?}", last),
            "key {key}: {theirs} in the child, {last:?} last"
        );
    }
}

/// Clients connected to the server on `port`, as `INFO clients` counts them (through
/// redis-cli).
fn connected_clients(port: u16) -> Option<usize> {
    let output = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO", "clients"])
        .output()
        .ok()?;
    String::from_utf8(output.stdout)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("connected_clients:"))?
        .trim()
        .parse()
        .ok()
}

#[test]
fn a_burst_of_remote_reads_holds_no_more_connections_than_the_bound() {
    let Some(server) = Server::start() else {
        return;
    };
    let refused = Cache::<u64, String>::builder()
        .capacity(10)
        .build()
        .unwrap()
        .coherent(Coherence::builder(server.url(), "pool").max_connections(0));
    assert!(refused.is_err(), "zero connections is refused");
    let member: Coherent<u64, String> =
        joined(Coherence::builder(server.url(), "pool").max_connections(2));
    let Some(before) = connected_clients(server.port) else {
        eprintln!("SKIPPED: no redis-cli here: the connection bound test");
        return;
    };
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let done = std::sync::Arc::clone(&done);
        let port = server.port;
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(connected_clients(port).unwrap_or(0));
            }
            most
        })
    };
    let readers: Vec<_> = (0..16u64)
        .map(|reader| {
            let member = member.clone();
            std::thread::spawn(move || {
                for key in 0..100u64 {
                    // Every key is absent: each call reads the remote tier.
                    assert_eq!(member.get_shared(&(reader * 1_000 + key)).unwrap(), None);
                }
            })
        })
        .collect();
    for reader in readers {
        reader.join().unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().unwrap();
    // Before: the subscriber (and redis-cli's own connection, counted by every sample alike).
    // The burst adds at most the bound's two.
    assert!(
        most <= before + 2,
        "{most} clients at most, {before} before the burst"
    );
    assert!(most > before, "the burst was seen");
    assert_eq!(member.stats().fetch_misses, 1_600);
}

#[test]
fn a_write_that_times_out_while_connected_is_published_with_the_next_one() {
    let Some(server) = Server::start() else {
        return;
    };
    let writer: Coherent<u64, String> =
        joined(Coherence::builder(server.url(), "paused").max_connections(1));
    let reader = member(&server, "paused");
    reader.cache().insert(5, String::from("old")).unwrap();
    // Redis holds back every command that may write for 1.5 s (the subscribers are not
    // touched): the writer's one connection is held by the first write, and the second waits
    // for it past the pool's second.
    let paused = Command::new("redis-cli")
        .args([
            "-p",
            &server.port.to_string(),
            "CLIENT",
            "PAUSE",
            "1500",
            "WRITE",
        ])
        .output();
    if !paused.is_ok_and(|out| out.status.success()) {
        eprintln!("SKIPPED: no redis-cli here: the timed-out write test");
        return;
    }
    let first = {
        let writer = writer.clone();
        std::thread::spawn(move || writer.insert(1, String::from("slow")).unwrap())
    };
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        writer.insert(5, String::from("new")).unwrap(),
        None,
        "not published: no connection came back within the pool's wait"
    );
    assert!(
        first.join().unwrap().is_some(),
        "the first write waited out the pause"
    );
    let stats = writer.stats();
    assert!(
        stats.connected && stats.reconnects == 0,
        "the link stayed up: {stats:?}"
    );
    assert_eq!(stats.unpublished, 1);
    // The next write that is published (the first one, if it ended after the second gave up,
    // or this one) takes the deferred one with it.
    writer
        .insert(2, String::from("next"))
        .unwrap()
        .expect("published");
    wait_until("the deferred write reaches the reader", || {
        reader.cache().get(&5).is_none()
    });
}
