//! The persistent L3's store on its own: what survives a reopen, what damage does and does
//! not do, compaction, the disk budget and bad settings.
#![cfg(feature = "persistent")]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use stratacache::l3::{Compression, L3Error, PutOptions, Store, SyncPolicy};

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    found.sort();
    found
}

fn open(dir: &Path) -> (Store, stratacache::l3::OpenReport) {
    Store::builder(dir)
        .segment_bytes(4096)
        .sync(SyncPolicy::Never)
        .open()
        .expect("opens")
}

fn value_of(key: u32, version: u32) -> Vec<u8> {
    format!(
        "value of {key} at {version} {}",
        "x".repeat((key % 40) as usize)
    )
    .into_bytes()
}

#[test]
fn a_reopened_store_returns_the_latest_value_of_each_key_and_not_the_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, report) = open(dir.path());
        assert_eq!(report.entries, 0);
        for version in 0..3 {
            for key in 0..200u32 {
                store
                    .put(&key.to_le_bytes(), &value_of(key, version))
                    .unwrap();
            }
        }
        for key in (0..200u32).step_by(3) {
            assert!(store.remove(&key.to_le_bytes()).unwrap());
        }
        assert!(
            !store.remove(&0u32.to_le_bytes()).unwrap(),
            "already removed"
        );
        assert_eq!(store.len(), 200 - 67);
    }
    assert!(segments(dir.path()).len() > 3, "small segments roll over");
    let (store, report) = open(dir.path());
    assert_eq!((report.entries, report.tombstones), (133, 67));
    assert_eq!((report.corrupt_records, report.dropped_bytes), (0, 0));
    for key in 0..200u32 {
        let expected = (key % 3 != 0).then(|| value_of(key, 2));
        assert_eq!(
            store.get(&key.to_le_bytes()).unwrap(),
            expected,
            "key {key}"
        );
    }
    // New writes carry on after the recovered sequence numbers: they win the next reopen.
    store.put(&1u32.to_le_bytes(), b"newest").unwrap();
    drop(store);
    let (store, _) = open(dir.path());
    assert_eq!(
        store.get(&1u32.to_le_bytes()).unwrap().as_deref(),
        Some(&b"newest"[..])
    );
}

#[test]
fn a_torn_tail_is_cut_off_and_reported_and_later_writes_follow_the_good_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        store.put(b"a", b"first").unwrap();
        store.put(b"b", b"second, cut short by a crash").unwrap();
    }
    let last = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);
    let (store, report) = open(dir.path());
    assert!(report.torn_tail);
    assert_eq!(report.corrupt_records, 0, "a torn tail is not damage");
    assert_eq!(report.entries, 1);
    assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"first"[..]));
    assert_eq!(store.get(b"b").unwrap(), None);
    store.put(b"c", b"after the cut").unwrap();
    drop(store);
    let (store, report) = open(dir.path());
    assert!(!report.torn_tail);
    assert_eq!(
        store.get(b"c").unwrap().as_deref(),
        Some(&b"after the cut"[..])
    );
    assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"first"[..]));
}

/// Flips one byte of the file holding `needle`, inside it.
fn damage(dir: &Path, needle: &[u8]) {
    for path in segments(dir) {
        let mut bytes = std::fs::read(&path).unwrap();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            bytes[at + needle.len() / 2] ^= 0x20;
            std::fs::write(&path, bytes).unwrap();
            return;
        }
    }
    panic!("not found");
}

#[test]
fn a_damaged_record_is_never_returned_and_the_records_after_it_survive() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        store.put(b"before", b"intact one").unwrap();
        store.put(b"victim", b"THE DAMAGED VALUE").unwrap();
        store.put(b"after", b"intact two").unwrap();
    }
    damage(dir.path(), b"THE DAMAGED VALUE");
    let (store, report) = open(dir.path());
    assert_eq!(report.corrupt_records, 1);
    assert!(report.dropped_bytes > 0);
    assert_eq!(store.get(b"victim").unwrap(), None);
    assert_eq!(
        store.get(b"before").unwrap().as_deref(),
        Some(&b"intact one"[..])
    );
    assert_eq!(
        store.get(b"after").unwrap().as_deref(),
        Some(&b"intact two"[..])
    );
}

#[test]
fn damage_while_open_reads_as_a_miss_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    store.put(b"key", b"A VALUE ON DISK").unwrap();
    // Written (a queued record is read from memory).
    store.sync().unwrap();
    damage(dir.path(), b"A VALUE ON DISK");
    assert_eq!(store.get(b"key").unwrap(), None);
    assert_eq!(store.stats().corrupt_records, 1);
    assert_eq!(store.len(), 0, "dropped from the index");
}

#[test]
fn a_segment_of_a_newer_format_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        store.put(b"key", b"value").unwrap();
    }
    // The segment's header says a newer format (and its checksum agrees: not a flipped bit).
    let path = segments(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"SCSG");
    bytes[4] = 9;
    let crc = crc32c::crc32c(&bytes[..16]);
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    match Store::builder(dir.path()).open() {
        Err(L3Error::NewerFormat { version: 9, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "nothing cut or rewritten"
    );
}

#[test]
fn a_second_store_on_the_same_directory_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path());
    match Store::builder(dir.path()).open() {
        Err(L3Error::Locked(_)) => {}
        other => panic!("{other:?}"),
    }
    drop(first);
    assert!(Store::builder(dir.path()).open().is_ok());
}

#[test]
fn compaction_frees_the_dead_segments_and_keeps_every_live_value() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    for version in 0..10 {
        for key in 0..50u32 {
            store
                .put(&key.to_le_bytes(), &value_of(key, version))
                .unwrap();
        }
    }
    // Written (the counters show what the writer thread has written).
    store.sync().unwrap();
    let before = store.stats().disk_bytes;
    let report = store.compact().unwrap();
    assert!(report.segments > 0 && report.bytes_freed > 0, "{report:?}");
    assert!(store.stats().disk_bytes < before / 2);
    for key in 0..50u32 {
        assert_eq!(
            store.get(&key.to_le_bytes()).unwrap(),
            Some(value_of(key, 9))
        );
    }
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(report.entries, 50);
    assert_eq!(
        store.get(&7u32.to_le_bytes()).unwrap(),
        Some(value_of(7, 9))
    );
}

#[test]
fn compaction_keeps_a_removal_while_an_older_segment_could_bring_the_value_back() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        // The first segment: the doomed key and enough live keys that it is not compacted.
        store.put(b"doomed", b"must not come back").unwrap();
        for key in 0..30u32 {
            store.put(&key.to_le_bytes(), &[7u8; 100]).unwrap();
        }
        // The next segments: the removal among values overwritten at once (mostly dead).
        store.remove(b"doomed").unwrap();
        for _ in 0..3 {
            for key in 1000..1030u32 {
                store.put(&key.to_le_bytes(), &[1u8; 100]).unwrap();
            }
        }
        let report = store.compact().unwrap();
        assert!(report.segments > 0, "{report:?}");
        assert_eq!(store.get(b"doomed").unwrap(), None);
    }
    let (store, _) = open(dir.path());
    assert_eq!(store.get(b"doomed").unwrap(), None);
}

#[test]
fn the_disk_budget_drops_the_oldest_segments_and_refuses_what_cannot_fit() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::builder(dir.path())
        .segment_bytes(4096)
        .disk_budget(16 * 1024)
        .sync(SyncPolicy::Never)
        .compress_from(None)
        .open()
        .unwrap();
    for key in 0..400u32 {
        store.put(&key.to_le_bytes(), &[3u8; 200]).unwrap();
    }
    store.sync().unwrap();
    let stats = store.stats();
    assert!(stats.disk_bytes <= 16 * 1024, "{stats:?}");
    assert!(stats.evicted_segments > 0);
    assert_eq!(
        store.get(&0u32.to_le_bytes()).unwrap(),
        None,
        "the oldest went"
    );
    assert_eq!(
        store.get(&399u32.to_le_bytes()).unwrap(),
        Some(vec![3u8; 200])
    );
    assert_eq!(stats.entries as usize, store.len());
    match store.put(b"huge", &vec![0u8; 20_000]) {
        Err(L3Error::TooLarge { bytes, .. }) => assert!(bytes > 20_000),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.get(&399u32.to_le_bytes()).unwrap(),
        Some(vec![3u8; 200])
    );
}

#[test]
fn an_expired_value_is_not_returned_before_or_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, _) = open(dir.path());
        let past = PutOptions {
            expires: Some(SystemTime::now() - Duration::from_secs(1)),
            ..PutOptions::default()
        };
        let future = PutOptions {
            expires: Some(SystemTime::now() + Duration::from_secs(3600)),
            ..PutOptions::default()
        };
        store.put_with(b"gone", b"stale", past).unwrap();
        store.put_with(b"kept", b"fresh", future).unwrap();
        assert_eq!(store.get(b"gone").unwrap(), None);
        assert_eq!(store.get(b"kept").unwrap().as_deref(), Some(&b"fresh"[..]));
    }
    let (store, report) = open(dir.path());
    assert_eq!((report.entries, report.expired), (1, 1));
    assert_eq!(store.get(b"gone").unwrap(), None);
}

#[test]
fn a_compressible_value_takes_less_disk_and_comes_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let value = "the same words again and again ".repeat(100).into_bytes();
    store.put(b"text", &value).unwrap();
    assert!(store.stats().bytes_written < value.len() as u64 / 4);
    assert_eq!(store.get(b"text").unwrap(), Some(value));
}

#[test]
fn each_value_can_choose_its_compression_and_zstd_packs_tighter_than_lz4() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let value: Vec<u8> = (0..3000u32)
        .flat_map(|i| format!("tile {} ", i % 97).into_bytes())
        .collect();
    let mut written = Vec::new();
    for (key, compression) in [
        (&b"none"[..], Compression::None),
        (b"lz4", Compression::Lz4),
        (b"zstd", Compression::Zstd),
    ] {
        let before = store.stats().bytes_written;
        let options = PutOptions {
            compression: Some(compression),
            ..PutOptions::default()
        };
        store.put_with(key, &value, options).unwrap();
        store.sync().unwrap();
        written.push(store.stats().bytes_written - before);
    }
    assert!(written[0] > value.len() as u64, "{written:?}");
    assert!(written[1] < written[0] / 3, "{written:?}");
    assert!(written[2] < written[1], "{written:?}");
    drop(store);
    let (store, _) = open(dir.path());
    for key in [&b"none"[..], b"lz4", b"zstd"] {
        assert_eq!(store.get(key).unwrap().as_deref(), Some(&value[..]));
    }
}

#[test]
fn compaction_recompresses_the_cold_records_it_copies_with_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let value = |key: u32| -> Vec<u8> {
        (0..200u32)
            .flat_map(|i| format!("{key}:{} ", i % 13).into_bytes())
            .collect()
    };
    let raw = PutOptions {
        compression: Some(Compression::None),
        ..PutOptions::default()
    };
    // Forty keys stored raw, then three in four removed: mostly dead segments.
    for key in 0..40u32 {
        store
            .put_with(&key.to_le_bytes(), &value(key), raw)
            .unwrap();
    }
    for key in (0..40u32).filter(|key| key % 4 != 0) {
        store.remove(&key.to_le_bytes()).unwrap();
    }
    store.sync().unwrap();
    let live_raw: u64 = (0..40u32)
        .step_by(4)
        .map(|key| value(key).len() as u64)
        .sum();
    let report = store.compact().unwrap();
    assert!(report.records_moved >= 10, "{report:?}");
    // What was copied forward takes a fraction of its raw size now.
    let after = store.stats().disk_bytes;
    assert!(after < live_raw / 2, "{after} of {live_raw}");
    for key in 0..40u32 {
        let expected = (key % 4 == 0).then(|| value(key));
        assert_eq!(store.get(&key.to_le_bytes()).unwrap(), expected);
    }
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(report.entries, 10);
    for key in (0..40u32).step_by(4) {
        assert_eq!(store.get(&key.to_le_bytes()).unwrap(), Some(value(key)));
    }
}

#[test]
fn settings_that_cannot_work_and_a_directory_that_cannot_be_made_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::builder(dir.path()).segment_bytes(100).open(),
        Err(L3Error::Options(_))
    ));
    assert!(matches!(
        Store::builder(dir.path())
            .segment_bytes(1 << 20)
            .disk_budget(1 << 20)
            .open(),
        Err(L3Error::Options(_))
    ));
    let file = dir.path().join("a file");
    std::fs::write(&file, b"not a directory").unwrap();
    match Store::builder(file.join("store")).open() {
        Err(error @ L3Error::Io { .. }) => {
            assert!(
                error.to_string().contains("create the directory"),
                "{error}"
            );
        }
        other => panic!("{other:?}"),
    }
    match Store::builder(dir.path())
        .open()
        .unwrap()
        .0
        .put(&vec![0; (1 << 20) + 1], b"v")
    {
        Err(L3Error::TooLarge { bytes, limit }) => {
            assert_eq!(
                (bytes, limit),
                ((1 << 20) + 1, stratacache::l3::MAX_KEY as u64)
            );
        }
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever bytes are flipped or cut, opening never fails or panics, and every value it
    /// returns is one that was put under that key.
    #[test]
    fn random_damage_never_returns_a_value_that_was_not_put(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = open(dir.path());
            for version in 0..3 {
                for key in 0..40u32 {
                    store.put(&key.to_le_bytes(), &value_of(key, version)).unwrap();
                }
            }
        }
        let files = segments(dir.path());
        for (at, mask) in flips {
            let path = at.get(&files);
            let mut bytes = std::fs::read(path).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
            std::fs::write(path, bytes).unwrap();
        }
        if let Some(cut) = cut {
            let path = files.last().unwrap();
            let len = std::fs::metadata(path).unwrap().len() as usize;
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(cut.index(len + 1) as u64).unwrap();
        }
        let (store, _) = open(dir.path());
        for key in 0..40u32 {
            if let Some(value) = store.get(&key.to_le_bytes()).unwrap() {
                prop_assert!((0..3).any(|v| value == value_of(key, v)), "key {} read {:?}", key, value);
            }
        }
        // It still takes writes, and they survive.
        store.put(b"after", b"damage").unwrap();
        drop(store);
        let (store, _) = open(dir.path());
        prop_assert_eq!(store.get(b"after").unwrap(), Some(b"damage".to_vec()));
    }
}

#[test]
fn threads_putting_reading_removing_and_compacting_only_ever_read_values_that_were_put() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = open(dir.path());
    let store = std::sync::Arc::new(store);
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..600u32 {
                    let key = (i * 7 + t) % 64;
                    match i % 5 {
                        0 | 1 => store.put(&key.to_le_bytes(), &value_of(key, i)).unwrap(),
                        2 => {
                            store.remove(&key.to_le_bytes()).unwrap();
                        }
                        3 if t == 0 && i % 50 == 3 => {
                            store.compact().unwrap();
                        }
                        _ => {
                            if let Some(value) = store.get(&key.to_le_bytes()).unwrap() {
                                let text = String::from_utf8(value).unwrap();
                                assert!(
                                    text.starts_with(&format!("value of {key} at ")),
                                    "key {key} read {text}"
                                );
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let len = store.len();
    let stats = store.stats();
    assert_eq!(stats.corrupt_records, 0);
    drop(store);
    let (store, report) = open(dir.path());
    assert_eq!(
        report.entries, len,
        "the count kept while open matches the disk"
    );
    assert_eq!(store.len(), len);
}
