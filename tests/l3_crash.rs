//! Crash test of the persistent L3: a child process writes under `SyncPolicy::Always` and is
//! killed with SIGKILL at a random moment, many times over one directory; after each kill,
//! every write the child was told had succeeded is there, with its value, and nothing read is
//! a value that was never put.
#![cfg(all(feature = "persistent", unix))]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stratacache::l3::{Store, SyncPolicy};

/// Set in the child: the directory to write into, and the first key to write.
const CHILD: &str = "STRATACACHE_L3_CRASH_CHILD";

fn value_of(key: u64) -> Vec<u8> {
    // Sizes vary so kills land inside records of every length.
    let mut value = format!("value {key} ").into_bytes();
    value.resize(16 + (key as usize * 37) % 3000, b'a' + (key % 26) as u8);
    value
}

/// The child's body: runs only when the parent starts this binary with [`CHILD`] set.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (dir, first) = spec.split_once('|').expect("dir|first");
    let first: u64 = first.parse().expect("a key");
    let (store, _) = Store::builder(dir)
        .segment_bytes(64 * 1024)
        .sync(SyncPolicy::Always)
        .open()
        .expect("the child opens the store");
    let mut out = std::io::stdout().lock();
    for key in first.. {
        store.put(&key.to_le_bytes(), &value_of(key)).unwrap();
        use std::io::Write;
        // Acknowledged: the parent may count on it from here.
        writeln!(out, "ack {key}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn every_write_acknowledged_under_sync_always_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let rounds: u64 = std::env::var("STRATACACHE_CRASH_ROUNDS").map_or(12, |r| r.parse().unwrap());
    let mut acked: Vec<u64> = Vec::new();
    let mut next = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, format!("{}|{next}", dir.path().display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Let it write for a random while (xorshift), then kill it mid-write.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(20 + seed % 120);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut keys = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(key) = line.strip_prefix("ack ") {
                    keys.push(key.parse::<u64>().unwrap());
                }
            }
            keys
        });
        let started = Instant::now();
        while started.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let keys = reader.join().unwrap();
        if let Some(&last) = keys.last() {
            next = last + 1;
        }
        acked.extend(keys);
        let (store, report) = Store::builder(dir.path())
            .segment_bytes(64 * 1024)
            .open()
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        assert_eq!(report.corrupt_records, 0, "round {round}: {report:?}");
        for &key in &acked {
            assert_eq!(
                store.get(&key.to_le_bytes()).unwrap(),
                Some(value_of(key)),
                "round {round}: acknowledged key {key} lost ({report:?})"
            );
        }
        // A write the kill interrupted may be there or not, but never damaged.
        if let Some(value) = store.get(&next.to_le_bytes()).unwrap() {
            assert_eq!(value, value_of(next));
        }
    }
    assert!(
        acked.len() as u64 >= rounds,
        "the child wrote too little to test: {}",
        acked.len()
    );
}
