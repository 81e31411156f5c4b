//! Fuzzes the persistent store's reader (recovery's segment scan, the record decoder, the
//! positional reads) through the public API. A store is written once with known records;
//! each input then damages a copy of its segment files (bytes overwritten, cut, or appended,
//! as the input says) and the copy is opened and every key read. Whatever the damage: no
//! panic, and every value returned is one that was put under that key.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stratacache::l3::{Compression, PutOptions, Store, SyncPolicy};

const KEYS: u32 = 24;

/// The values ever put under `key` (a key is rewritten once, some are removed).
fn versions(key: u32) -> [Vec<u8>; 2] {
    let text = |round: u32| {
        format!("{key}/{round} ")
            .repeat(1 + (key as usize * 7) % 60)
            .into_bytes()
    };
    [text(0), text(1)]
}

/// A directory holding the known store: its segment files, by name and bytes.
fn template() -> &'static Vec<(PathBuf, Vec<u8>)> {
    static TEMPLATE: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        {
            let (store, _) = Store::builder(dir.path())
                .segment_bytes(4096)
                .sync(SyncPolicy::Never)
                .open()
                .unwrap();
            let packings = [Compression::None, Compression::Lz4, Compression::Zstd];
            for round in 0..2u32 {
                for key in 0..KEYS {
                    let options = PutOptions {
                        compression: Some(packings[(key % 3) as usize]),
                        ..PutOptions::default()
                    };
                    let value = &versions(key)[round as usize];
                    store.put_with(&key.to_le_bytes(), value, options).unwrap();
                }
            }
            for key in (0..KEYS).step_by(5) {
                store.remove(&key.to_le_bytes()).unwrap();
            }
        }
        let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "seg"))
            .map(|path| {
                (
                    PathBuf::from(path.file_name().unwrap()),
                    std::fs::read(&path).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    })
}

/// Writes the template into `dir`, damaged as `data` says: a sequence of commands, each a
/// byte choosing what to do and where, then its operands.
fn damaged(dir: &Path, data: &[u8]) {
    let mut files: Vec<(PathBuf, Vec<u8>)> = template().clone();
    let mut input = data.iter().copied();
    while let (Some(op), Some(file)) = (input.next(), input.next()) {
        let (_, bytes) = &mut files[file as usize % template().len()];
        let at = |hi: u8, lo: u8, len: usize| (usize::from(hi) << 8 | usize::from(lo)) % len.max(1);
        match op % 4 {
            // Overwrite one byte.
            0 => {
                let (Some(hi), Some(lo), Some(value)) = (input.next(), input.next(), input.next())
                else {
                    break;
                };
                let at = at(hi, lo, bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte = value;
                }
            }
            // Cut the file.
            1 => {
                let (Some(hi), Some(lo)) = (input.next(), input.next()) else {
                    break;
                };
                let at = at(hi, lo, bytes.len());
                bytes.truncate(at);
            }
            // Append what follows (up to a length byte's worth).
            2 => {
                let Some(len) = input.next() else { break };
                bytes.extend(input.by_ref().take(usize::from(len)));
            }
            // Flip a bit.
            _ => {
                let (Some(hi), Some(lo), Some(bit)) = (input.next(), input.next(), input.next())
                else {
                    break;
                };
                let at = at(hi, lo, bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << (bit % 8);
                }
            }
        }
    }
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().unwrap();
    damaged(dir.path(), data);
    // A damaged directory may be refused (a segment header from a newer format), never a panic.
    let Ok((store, _report)) = Store::builder(dir.path()).sync(SyncPolicy::Never).open() else {
        return;
    };
    for key in 0..KEYS {
        if let Ok(Some(value)) = store.get(&key.to_le_bytes()) {
            assert!(
                versions(key).contains(&value),
                "key {key}: a value never put ({} bytes)",
                value.len()
            );
        }
    }
    // The store still takes writes after whatever it recovered.
    store.put(b"after", b"recovery").unwrap();
    assert_eq!(
        store.get(b"after").unwrap().as_deref(),
        Some(&b"recovery"[..])
    );
});
