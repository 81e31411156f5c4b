//! Recovery: every segment read back at open, each key's latest record indexed.

use super::*;

/// Reads every segment back and indexes each key's latest record by `hasher`; the newest
/// segment takes new writes unless full.
pub(super) fn recover(
    dir: &Path,
    ids: &[u64],
    segment_bytes: u64,
    hasher: &crate::hash::FixedState,
) -> Result<(Inner, OpenReport), L3Error> {
    let mut report = OpenReport {
        segments: ids.len(),
        ..OpenReport::default()
    };
    // The winning record of each key, by the key itself (keys are in memory only while
    // opening).
    let mut latest: std::collections::HashMap<Vec<u8>, Loc> = std::collections::HashMap::new();
    let mut segments = BTreeMap::new();
    for (at, &id) in ids.iter().enumerate() {
        let path = dir.join(segment::file_name(id));
        let newest = at + 1 == ids.len();
        let Scanned {
            segment,
            records,
            corrupt,
            dropped_bytes,
            torn_tail,
        } = match segment::scan(&path, id, newest) {
            Ok(scanned) => scanned,
            Err(segment::ScanError::Version(version)) => {
                return Err(L3Error::NewerFormat { path, version });
            }
            Err(segment::ScanError::Io(e)) => {
                return Err(L3Error::io("read a segment", &path, e));
            }
        };
        report.corrupt_records += corrupt;
        report.dropped_bytes += dropped_bytes;
        report.torn_tail |= newest && torn_tail;
        for (offset, header, key) in records {
            let loc = Loc {
                place: Place::Disk {
                    segment: id,
                    offset,
                },
                len: u32::try_from(header.record_len()).expect("bounded by MAX_*"),
                key_len: header.key_len,
                seq: header.seq,
                expires: header.expires,
                tombstone: header.tombstone,
                priority: header.priority,
            };
            match latest.entry(key) {
                std::collections::hash_map::Entry::Occupied(mut held) => {
                    if loc.newer_than(held.get()) {
                        held.insert(loc);
                    }
                }
                std::collections::hash_map::Entry::Vacant(free) => {
                    free.insert(loc);
                }
            }
        }
        segments.insert(id, segment);
    }
    let now = now_nanos();
    let mut next_seq = 0;
    let mut index = Index::with_hasher(crate::hash::FixedState::with_seed(0));
    for (key, loc) in latest {
        next_seq = next_seq.max(loc.seq + 1);
        if loc.tombstone {
            report.tombstones += 1;
        } else if loc.expires <= now {
            report.expired += 1;
            continue;
        } else {
            report.entries += 1;
        }
        if let Place::Disk { segment, .. } = loc.place
            && let Some(segment) = segments.get_mut(&segment)
        {
            segment.live += u64::from(loc.len);
        }
        index
            .entry(hasher.hash_one(&key[..]))
            .or_default()
            .push(loc);
    }
    let disk_bytes = segments.values().map(|s: &Segment| s.len).sum();
    let mut inner = Inner {
        segments,
        active: 0,
        index,
        next_seq,
        disk_bytes,
        entries: report.entries as u64,
        queue: VecDeque::new(),
        queued_bytes: 0,
        enqueued: 0,
        written: 0,
        synced: 0,
        sync_wanted: 0,
        idle: false,
        failure: None,
        failures: 0,
        closing: false,
    };
    match inner.segments.last_key_value() {
        Some((&id, segment)) if segment.len < segment_bytes => inner.active = id,
        last => {
            let id = last.map_or(0, |(&id, _)| id + 1);
            let segment =
                Segment::create(dir, id).map_err(|e| L3Error::io("create a segment", dir, e))?;
            inner.disk_bytes += segment.len;
            inner.segments.insert(id, segment);
            inner.active = id;
        }
    }
    Ok((inner, report))
}
