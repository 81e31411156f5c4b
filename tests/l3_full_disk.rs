//! A disk that fills up, and one that is read-only, under the persistent L3. First a child
//! process writes under `SyncPolicy::Always` with its file size limited (`RLIMIT_FSIZE`
//! through `prlimit`, with `SIGXFSZ` ignored, so a write past the limit fails as one on a full
//! disk does). Then, where the tests may mount (root), a real small filesystem (tmpfs) that
//! fills up and is then grown, and one remounted read-only. Writes fail with a clear I/O
//! error, reads go on, closing never hangs, and every write that was acknowledged is there
//! afterwards, with its value.
#![cfg(all(feature = "persistent", target_os = "linux"))]

use std::process::Command;

use stratacache::l3::{L3Error, Store, SyncPolicy};

/// Set in the child: the directory to write into.
const CHILD: &str = "STRATACACHE_L3_FULL_CHILD";
/// The most bytes a file of the child's may hold.
const LIMIT: u64 = 96 * 1024;

fn value_of(key: u64) -> Vec<u8> {
    let mut value = format!("value {key} ").into_bytes();
    value.resize(100 + (key as usize * 53) % 900, b'a' + (key % 26) as u8);
    value
}

/// The child's body: runs only when the parent starts this binary with [`CHILD`] set.
#[test]
fn full_disk_child() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    // Segments larger than a file may grow: the first one fills the "disk".
    let (store, _) = Store::builder(&dir)
        .segment_bytes(1 << 20)
        .sync(SyncPolicy::Always)
        .open()
        .expect("the child opens the store");
    let mut acked = 0u64;
    let error = loop {
        match store.put(&acked.to_le_bytes(), &value_of(acked)) {
            Ok(()) => acked += 1,
            Err(error) => break error,
        }
        assert!(acked < 10_000, "the file size limit never stopped a write");
    };
    println!("acked {acked}");
    println!("error {error}");
    assert!(matches!(error, L3Error::Io { .. }), "{error:?}");
    // Later writes fail too, clearly; what was written is still read.
    assert!(store.put(b"later", b"v").is_err());
    assert_eq!(store.get(&0u64.to_le_bytes()).unwrap(), Some(value_of(0)));
    println!("closing");
    drop(store);
    println!("closed");
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    // `trap '' XFSZ` leaves the signal ignored through both execs: the write fails with
    // EFBIG instead of killing the child.
    let script = format!(
        "trap '' XFSZ; exec prlimit --fsize={LIMIT} -- \"$0\" --exact full_disk_child --nocapture --test-threads 1"
    );
    let output = match Command::new("bash")
        .args(["-c", &script])
        .arg(&exe)
        .env(CHILD, dir.path())
        .output()
    {
        Ok(output) => output,
        Err(error) => {
            eprintln!("SKIPPED: bash or prlimit not runnable here: {error}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("prlimit: command not found") {
        eprintln!("SKIPPED: no prlimit (util-linux) on this machine");
        return;
    }
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("closed"),
        "the child hung or died:\n{stdout}"
    );
    let acked: u64 = stdout
        .lines()
        // The harness may print the test's name on the same line first.
        .find_map(|line| line.split("acked ").nth(1))
        .expect("the child told what it wrote")
        .parse()
        .unwrap();
    let error = stdout
        .lines()
        .find_map(|line| line.strip_prefix("error "))
        .unwrap();
    assert!(acked > 10, "{stdout}");
    assert!(error.contains("too large"), "a clear cause: {error}");
    assert!(error.contains(&dir.path().display().to_string()), "{error}");
    // Reopened without the limit: every acknowledged write is there, nothing damaged.
    let (store, report) = Store::builder(dir.path()).open().unwrap();
    assert_eq!(report.corrupt_records, 0, "{report:?}");
    for key in 0..acked {
        assert_eq!(
            store.get(&key.to_le_bytes()).unwrap(),
            Some(value_of(key)),
            "acknowledged key {key}"
        );
    }
    // The disk has room again: writes go on.
    store.put(b"after", b"room again").unwrap();
    assert_eq!(
        store.get(b"after").unwrap().as_deref(),
        Some(&b"room again"[..])
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped; `None` (and a
/// SKIPPED line) where this process may not mount.
struct Mounted {
    dir: tempfile::TempDir,
}

impl Mounted {
    fn new(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root): the small-filesystem test");
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_small_filesystem_that_fills_up_loses_no_acknowledged_write_and_takes_writes_once_grown() {
    let Some(fs) = Mounted::new("256k") else {
        return;
    };
    let dir = fs.path().join("store");
    let (store, _) = Store::builder(&dir)
        .segment_bytes(64 * 1024)
        .sync(SyncPolicy::Always)
        .open()
        .unwrap();
    let mut acked = 0u64;
    let error = loop {
        match store.put(&acked.to_le_bytes(), &value_of(acked)) {
            Ok(()) => acked += 1,
            Err(error) => break error,
        }
        assert!(acked < 10_000, "the filesystem never filled up");
    };
    let message = error.to_string();
    assert!(message.contains("No space left"), "{message}");
    assert!(acked > 10, "{acked}");
    assert_eq!(store.get(&1u64.to_le_bytes()).unwrap(), Some(value_of(1)));
    // Room again: the writer thread's retries get through, and new writes are acknowledged.
    fs.remount("size=4m");
    store.put(b"after", b"room again").unwrap();
    drop(store);
    let (store, report) = Store::builder(&dir).open().unwrap();
    assert_eq!(report.corrupt_records, 0, "{report:?}");
    for key in 0..acked {
        assert_eq!(
            store.get(&key.to_le_bytes()).unwrap(),
            Some(value_of(key)),
            "key {key}"
        );
    }
    assert_eq!(
        store.get(b"after").unwrap().as_deref(),
        Some(&b"room again"[..])
    );
}

#[test]
fn a_read_only_directory_is_a_clear_error_and_its_records_are_all_there_once_writable() {
    let Some(fs) = Mounted::new("1m") else {
        return;
    };
    let dir = fs.path().join("store");
    {
        let (store, _) = Store::builder(&dir).open().unwrap();
        for key in 0..100u64 {
            store.put(&key.to_le_bytes(), &value_of(key)).unwrap();
        }
    }
    fs.remount("ro");
    match Store::builder(&dir).open() {
        Err(error @ L3Error::Io { .. }) => {
            let message = error.to_string();
            assert!(message.contains("Read-only"), "{message}");
            assert!(message.contains(&dir.display().to_string()), "{message}");
        }
        other => panic!("opened a read-only directory: {other:?}"),
    }
    fs.remount("rw");
    let (store, report) = Store::builder(&dir).open().unwrap();
    assert_eq!(report.entries, 100);
    for key in 0..100u64 {
        assert_eq!(store.get(&key.to_le_bytes()).unwrap(), Some(value_of(key)));
    }
}
