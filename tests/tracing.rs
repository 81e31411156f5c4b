//! The `tracing` feature: the disk tier's recovery, compaction and warming each emit one event
//! (target `stratacache`) with their figures; lookups and writes emit none.
#![cfg(all(feature = "tracing", feature = "persistent"))]

use std::sync::{Arc, Mutex};

use stratacache::Cache;
use stratacache::l3::Store;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Keeps every event's message and fields, as text.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Text<'a>(&'a mut String);

impl Visit for Text<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Events {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "stratacache"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut text = String::new();
        event.record(&mut Text(&mut text));
        self.0.lock().unwrap().push(text);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn the_slow_paths_emit_events_and_the_fast_ones_none() {
    let events = Events::default();
    let dir = tempfile::tempdir().unwrap();
    tracing::subscriber::with_default(events.clone(), || {
        let (store, _) = Store::builder(dir.path())
            .segment_bytes(4096)
            .open()
            .unwrap();
        let cache: Cache<u64, Vec<u8>> = Cache::builder()
            .capacity(10)
            .build_persistent(store)
            .unwrap();
        for key in 0..200u64 {
            cache.insert(key, vec![1; 100]).unwrap();
            cache.get(&key);
        }
        let quiet = events.0.lock().unwrap().len();
        assert_eq!(
            quiet,
            1,
            "only the opening so far: {:?}",
            events.0.lock().unwrap()
        );
        cache.warm(5);
    });
    let seen = events.0.lock().unwrap().clone();
    assert!(
        seen[0].contains("disk tier recovered") && seen[0].contains("entries=0"),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| e.contains("cache warmed") && e.contains("limit=5")),
        "{seen:?}"
    );
}
