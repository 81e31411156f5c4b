//! The writer thread: the only one that appends to segments. It takes the queued records in
//! batches, places them (rolling segments over and dropping the oldest for the disk budget,
//! under the lock), writes each batch with one positional write per segment outside the lock,
//! then points the index at the written records. It syncs as the policy says, when a sync is
//! asked for, and before it ends.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::string::ToString;
use std::sync::{Arc, MutexGuard};
use std::time::Instant;
use std::vec::Vec;

use core::sync::atomic::Ordering;
use core::time::Duration;

use super::segment::Segment;
use super::store::{Inner, Queued, Shared, wait};
use super::{L3Error, SyncPolicy};

/// The most bytes one batch writes.
const BATCH_BYTES: usize = 4 << 20;
/// How long the thread waits before trying again after a failed write.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// One contiguous write: the records `parts`, `len` bytes in all, at `offset` of segment
/// `segment`. Placed under the lock; their bytes are gathered outside it.
struct Run {
    segment: u64,
    file: Arc<File>,
    offset: u64,
    len: u64,
    parts: Vec<Arc<[u8]>>,
}

/// The thread's body: runs until the store closes and its queue is written.
pub(super) fn run(shared: &Shared) {
    let mut inner = shared.lock();
    let mut last_sync = Instant::now();
    // Segments written since the last sync.
    let mut dirty: BTreeSet<u64> = BTreeSet::new();
    // Whether a segment was created since the last sync (its name needs the directory's).
    let mut created = false;
    loop {
        inner = wait_for_work(shared, inner, &dirty, last_sync);
        if !inner.queue.is_empty() {
            let batch = take_batch(&mut inner);
            let active_before = inner.active;
            match place(shared, &mut inner, &batch) {
                Ok((runs, lens)) => {
                    created |= inner.active != active_before;
                    drop(inner);
                    let result = write(&runs);
                    inner = shared.lock();
                    match result {
                        Ok(()) => {
                            landed(shared, &mut inner, &batch, &runs);
                            dirty.extend(runs.iter().map(|run| run.segment));
                            inner.failure = None;
                        }
                        Err(error) => {
                            undo(&mut inner, lens, &runs, &batch);
                            inner = failed(shared, inner, batch, &error);
                            continue;
                        }
                    }
                }
                Err(error) => {
                    inner = failed(shared, inner, batch, &error);
                    continue;
                }
            }
        }
        let due = match shared.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(period) => last_sync.elapsed() >= period || inner.closing,
            SyncPolicy::Never => false,
        } || inner.sync_wanted > inner.synced;
        if due && (inner.synced < inner.written || !dirty.is_empty()) {
            let files: Vec<(Arc<File>, std::path::PathBuf)> = dirty
                .iter()
                .filter_map(|id| inner.segments.get(id))
                .map(|s| (Arc::clone(&s.file), s.path.clone()))
                .collect();
            let through = inner.written;
            drop(inner);
            let result = sync(shared, &files, created);
            inner = shared.lock();
            match result {
                Ok(()) => {
                    inner.synced = inner.synced.max(through);
                    dirty.clear();
                    created = false;
                    last_sync = Instant::now();
                }
                Err(error) => {
                    inner.failure = Some((error.kind(), error.to_string()));
                    inner.failures += 1;
                }
            }
        } else if shared.sync == SyncPolicy::Never && inner.sync_wanted <= inner.synced {
            // Nothing is promised beyond the write itself.
            inner.synced = inner.written;
        }
        shared.progress.notify_all();
        if inner.closing && inner.queue.is_empty() {
            break;
        }
    }
}

/// Waits until there is a batch to write, a sync to make, or the store closes.
fn wait_for_work<'a>(
    shared: &Shared,
    mut inner: MutexGuard<'a, Inner>,
    dirty: &BTreeSet<u64>,
    last_sync: Instant,
) -> MutexGuard<'a, Inner> {
    loop {
        if !inner.queue.is_empty() || inner.closing || inner.sync_wanted > inner.synced {
            return inner;
        }
        // Writes wake the thread only while it waits (a wake-up is a system call).
        inner.idle = true;
        match shared.sync {
            SyncPolicy::Every(period) if !dirty.is_empty() => {
                let left = period.saturating_sub(last_sync.elapsed());
                if left.is_zero() {
                    inner.idle = false;
                    return inner;
                }
                inner = shared
                    .work
                    .wait_timeout(inner, left)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            _ => inner = wait(&shared.work, inner),
        }
        inner.idle = false;
    }
}

/// Takes up to [`BATCH_BYTES`] of queued records (at least one).
fn take_batch(inner: &mut Inner) -> Vec<Queued> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while let Some(record) = inner.queue.front() {
        if !batch.is_empty() && bytes + record.bytes.len() > BATCH_BYTES {
            break;
        }
        bytes += record.bytes.len();
        batch.push(inner.queue.pop_front().expect("a front"));
    }
    inner.queued_bytes -= bytes;
    batch
}

/// Where each record of `batch` goes: runs of contiguous bytes, and each touched segment's
/// length before (to undo the placement if the write fails). Rolls segments over and drops
/// the oldest for the disk budget as needed.
#[allow(clippy::type_complexity)]
fn place(
    shared: &Shared,
    inner: &mut Inner,
    batch: &[Queued],
) -> Result<(Vec<Run>, Vec<(u64, u64)>), L3Error> {
    let mut runs: Vec<Run> = Vec::new();
    let mut lens: Vec<(u64, u64)> = Vec::new();
    for (placed, record) in batch.iter().enumerate() {
        let len = record.bytes.len() as u64;
        if let Err(error) = make_room(shared, inner, len) {
            undo(inner, lens, &runs, &batch[..placed]);
            return Err(error);
        }
        let id = inner.active;
        let segment = inner.segments.get_mut(&id).expect("the active segment");
        if !lens.iter().any(|&(s, _)| s == id) {
            lens.push((id, segment.len));
        }
        let offset = segment.len;
        segment.len += len;
        segment.in_flight += 1;
        inner.disk_bytes += len;
        match runs.last_mut() {
            Some(run) if run.segment == id && run.offset + run.len == offset => {
                run.len += len;
                run.parts.push(Arc::clone(&record.bytes));
            }
            _ => runs.push(Run {
                segment: id,
                file: Arc::clone(&segment.file),
                offset,
                len,
                parts: std::vec![Arc::clone(&record.bytes)],
            }),
        }
    }
    Ok((runs, lens))
}

/// Rolls the active segment over if a record of `len` bytes does not fit it, and drops the
/// oldest segments while the disk budget has no room for it.
fn make_room(shared: &Shared, inner: &mut Inner, len: u64) -> Result<(), L3Error> {
    let active = &inner.segments[&inner.active];
    if active.len > super::segment::SEGMENT_HEADER as u64 && active.len + len > shared.segment_bytes
    {
        roll(shared, inner)?;
    }
    if let Some(budget) = shared.disk_budget {
        while inner.disk_bytes + len > budget && inner.segments.len() > 1 {
            evict_oldest(shared, inner)?;
        }
    }
    Ok(())
}

/// Writes the runs.
fn write(runs: &[Run]) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buffer = Vec::new();
    for run in runs {
        buffer.clear();
        for part in &run.parts {
            buffer.extend_from_slice(part);
        }
        run.file.write_all_at(&buffer, run.offset)?;
    }
    Ok(())
}

/// Points the index at the written records.
fn landed(shared: &Shared, inner: &mut Inner, batch: &[Queued], runs: &[Run]) {
    let mut records = batch.iter();
    for run in runs {
        let mut offset = run.offset;
        let end = run.offset + run.len;
        while offset < end {
            let record = records.next().expect("every placed record is in a run");
            Shared::land(inner, record.hash, record.ticket, run.segment, offset);
            offset += record.bytes.len() as u64;
        }
        shared
            .counters
            .bytes_written
            .fetch_add(run.len, Ordering::Relaxed);
    }
    inner.written += batch.len() as u64;
}

/// Gives the segments the lengths they had before a failed write, and cuts their files back.
fn undo(inner: &mut Inner, lens: Vec<(u64, u64)>, runs: &[Run], batch: &[Queued]) {
    let mut records = batch.iter();
    for run in runs {
        let mut placed = 0;
        while placed < run.len as usize {
            placed += records
                .next()
                .expect("every placed record is in a run")
                .bytes
                .len();
            if let Some(segment) = inner.segments.get_mut(&run.segment) {
                segment.in_flight -= 1;
            }
        }
    }
    for (id, len) in lens {
        if let Some(segment) = inner.segments.get_mut(&id) {
            inner.disk_bytes -= segment.len - len;
            segment.len = len;
            let _ = segment.file.set_len(len);
        }
    }
}

/// After a failed placement or write: the batch goes back to the queue's front, the failure is
/// told to waiting writes, and the thread waits a little before trying again (or gives up if
/// the store is closing).
fn failed<'a>(
    shared: &'a Shared,
    mut inner: MutexGuard<'a, Inner>,
    batch: Vec<Queued>,
    error: &dyn core::fmt::Display,
) -> MutexGuard<'a, Inner> {
    let kind = std::io::ErrorKind::Other;
    inner.failure = Some((kind, error.to_string()));
    inner.failures += 1;
    slow_path!(warn, %error, queued = batch.len(), "disk tier write failed; retrying");
    if inner.closing {
        // Nobody waits any more; the records stay readable until the store drops.
        return inner;
    }
    for record in batch.into_iter().rev() {
        inner.queued_bytes += record.bytes.len();
        inner.queue.push_front(record);
    }
    shared.progress.notify_all();
    shared
        .work
        .wait_timeout(inner, RETRY_AFTER)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .0
}

/// Syncs `files` and, if a segment was created, the directory.
fn sync(
    shared: &Shared,
    files: &[(Arc<File>, std::path::PathBuf)],
    created: bool,
) -> std::io::Result<()> {
    for (file, _) in files {
        file.sync_data()?;
    }
    if created {
        File::open(&shared.dir)?.sync_all()?;
    }
    Ok(())
}

/// Seals the active segment and starts the next.
fn roll(shared: &Shared, inner: &mut Inner) -> Result<(), L3Error> {
    let id = inner.active + 1;
    let segment = Segment::create(&shared.dir, id)
        .map_err(|e| L3Error::io("create a segment", &shared.dir, e))?;
    inner.disk_bytes += segment.len;
    inner.segments.insert(id, segment);
    inner.active = id;
    Ok(())
}

/// Drops the oldest segment and every index entry into it.
fn evict_oldest(shared: &Shared, inner: &mut Inner) -> Result<(), L3Error> {
    let (&id, _) = inner
        .segments
        .first_key_value()
        .expect("more than one segment");
    let segment = inner.segments.remove(&id).expect("present");
    let mut lost = 0;
    inner.index.retain(|_, locs| {
        locs.retain(|loc| {
            let gone =
                matches!(loc.place, super::store::Place::Disk { segment, .. } if segment == id);
            lost += u64::from(gone && !loc.tombstone);
            !gone
        });
        !locs.is_empty()
    });
    inner.entries -= lost;
    inner.disk_bytes -= segment.len;
    shared
        .counters
        .evicted_segments
        .fetch_add(1, Ordering::Relaxed);
    fs::remove_file(&segment.path).map_err(|e| L3Error::io("delete a segment", &segment.path, e))
}
