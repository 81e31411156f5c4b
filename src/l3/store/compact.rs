//! Compaction: the live records of mostly dead segments copied forward (cold ones
//! recompressed), the segments then deleted.

use super::*;

impl Store {
    /// Rewrites the live records of every sealed segment at most half live (read outside the
    /// store's lock, then queued for the writer thread like any write, keeping their sequence
    /// numbers), waits until the copies are on disk, then deletes the segments.
    ///
    /// # Errors
    /// [`L3Error::Io`] when a read, the copies' write or a deletion fails; what was compacted
    /// before stays compacted, and no record is lost.
    pub fn compact(&self) -> Result<CompactionReport, L3Error> {
        let shared = &*self.shared;
        // What is queued now is written first, so the segments show it.
        let inner = shared.lock();
        let target = inner.enqueued;
        let inner = self.sync_through(inner, target)?;
        let mut report = CompactionReport::default();
        let now = now_nanos();
        // Sealed segments, with no record on its way in, at most half live.
        let candidates: Vec<u64> = inner
            .segments
            .values()
            .filter(|s| {
                s.id != inner.active
                    && s.in_flight == 0
                    && s.live * 2 <= s.len - SEGMENT_HEADER as u64
            })
            .map(|s| s.id)
            .collect();
        // The records to move, chosen under the lock, read outside it (a cache's writers take
        // this lock under their shard locks), then moved under it if still current.
        let mut moving: Vec<(u64, Loc, bool, Arc<File>)> = Vec::new();
        for &id in &candidates {
            let oldest = inner.segments.first_key_value().map(|(&first, _)| first) == Some(id);
            let file = Arc::clone(&inner.segments[&id].file);
            moving.extend(
                inner
                    .index
                    .iter()
                    .flat_map(|(&hash, locs)| locs.iter().map(move |loc| (hash, loc.clone())))
                    .filter(|(_, loc)| {
                        matches!(loc.place, Place::Disk { segment, .. } if segment == id)
                    })
                    .map(|(hash, loc)| (hash, loc, oldest, Arc::clone(&file))),
            );
        }
        drop(inner);
        let mut read = Vec::with_capacity(moving.len());
        for (hash, loc, oldest, file) in moving {
            let Place::Disk { offset, .. } = loc.place else {
                continue;
            };
            let bytes = segment::read_record(&file, offset, loc.len)
                .map_err(|e| L3Error::io("read a record", &shared.dir, e))?;
            shared
                .counters
                .bytes_read
                .fetch_add(u64::from(loc.len), Ordering::Relaxed);
            let bytes = self.cold(bytes);
            read.push((hash, loc, oldest, bytes));
        }
        let mut inner = shared.lock();
        for (hash, loc, oldest, bytes) in read {
            let current = inner
                .index
                .get(&hash)
                .is_some_and(|locs| locs.iter().any(|l| l.is(&loc)));
            if !current {
                continue; // superseded meanwhile: nothing to keep
            }
            // Dropped: removals nothing older can be under, and expired values.
            let droppable = (loc.tombstone && oldest) || (!loc.tombstone && loc.expires <= now);
            if droppable || record::decode(&bytes).is_err() {
                if !droppable {
                    shared.counters.corrupt.fetch_add(1, Ordering::Relaxed);
                }
                Shared::forget(&mut inner, hash, &loc);
                continue;
            }
            // The copy keeps the record's sequence number: the index swaps the place.
            Shared::unlink(&mut inner, hash, &loc);
            let bytes: Arc<[u8]> = bytes.into();
            inner.enqueued += 1;
            let ticket = inner.enqueued;
            let copy = Loc {
                place: Place::Queued {
                    bytes: Arc::clone(&bytes),
                    ticket,
                },
                len: u32::try_from(bytes.len()).expect("no longer than the record read"),
                ..loc
            };
            inner.index.entry(hash).or_default().push(copy);
            inner.queued_bytes += bytes.len();
            inner.queue.push_back(Queued {
                hash,
                ticket,
                bytes,
            });
            report.records_moved += 1;
        }
        let target = inner.enqueued;
        let mut inner = self.sync_through(inner, target)?;
        for id in candidates {
            // Sealed: nothing lands in it any more, and its live records were copied.
            if let Some(segment) = inner.segments.remove(&id) {
                inner.disk_bytes -= segment.len;
                report.bytes_freed += segment.len;
                fs::remove_file(&segment.path)
                    .map_err(|e| L3Error::io("delete a segment", &segment.path, e))?;
            }
            report.segments += 1;
            shared.counters.compactions.fetch_add(1, Ordering::Relaxed);
        }
        slow_path!(
            info,
            segments = report.segments,
            records_moved = report.records_moved,
            bytes_freed = report.bytes_freed,
            "disk tier compacted"
        );
        Ok(report)
    }

    /// A record a compaction copies forward, recompressed with zstd where its value is at
    /// least [`compress_from`](StoreBuilder::compress_from) bytes and that saves bytes: it
    /// outlived its segment, so it is read rarely. The same order, priority and expiry; the
    /// bytes as they were otherwise (a damaged record stays so, for the caller to drop).
    fn cold(&self, bytes: Vec<u8>) -> Vec<u8> {
        let Ok(decoded) = record::decode(&bytes) else {
            return bytes;
        };
        let header = decoded.header;
        let worth = !header.tombstone
            && header.packing != Compression::Zstd
            && self
                .compress_from
                .is_some_and(|from| header.raw_len as usize >= from);
        if !worth {
            return bytes;
        }
        let Ok(value) = decoded.value() else {
            return bytes;
        };
        let mut packed = Vec::new();
        record::encode(&mut packed, header, decoded.key, &value, Compression::Zstd);
        if packed.len() < bytes.len() {
            packed
        } else {
            bytes
        }
    }
}
