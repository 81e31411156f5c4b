//! Segment files: a directory of append-only logs named by a rising id, each a small header
//! and then records back to back. Reading one back (recovery) checks every record, steps over
//! damaged ones to the next record that verifies, and cuts a torn tail.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use super::record::{self, DecodeError, Decoded, MAGIC};

/// The bytes every segment starts with: "SCSG", the format version of its records, three
/// reserved bytes, the segment's id, and a CRC32C of those 16 bytes (so that a flipped bit
/// is not read as a newer format), then four reserved bytes.
pub(crate) const SEGMENT_HEADER: usize = 24;
const SEGMENT_MAGIC: [u8; 4] = *b"SCSG";

/// The header of segment `id`.
fn header(id: u64) -> [u8; SEGMENT_HEADER] {
    let mut header = [0u8; SEGMENT_HEADER];
    header[..4].copy_from_slice(&SEGMENT_MAGIC);
    header[4] = record::VERSION;
    header[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32c::crc32c(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

/// The file name of segment `id`.
pub(crate) fn file_name(id: u64) -> String {
    std::format!("{id:016x}.seg")
}

/// The id a segment file name carries, if it is one.
pub(crate) fn id_of(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// One open segment.
pub(crate) struct Segment {
    pub(crate) id: u64,
    pub(crate) path: PathBuf,
    /// Shared with readers between their lookup and their read: a segment deleted meanwhile
    /// stays readable through it.
    pub(crate) file: Arc<File>,
    /// Bytes written (the next record's offset).
    pub(crate) len: u64,
    /// Bytes of records the index still points at.
    pub(crate) live: u64,
    /// Records placed here by the writer thread and not yet written (a compaction leaves such
    /// a segment alone).
    pub(crate) in_flight: u32,
}

impl Segment {
    /// Creates segment `id` in `dir` (it must not exist).
    pub(crate) fn create(dir: &Path, id: u64) -> io::Result<Self> {
        let path = dir.join(file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        if let Err(error) = file.write_all_at(&header(id), 0) {
            // A full disk, say: no half-made segment is left to block the next try.
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Err(error);
        }
        Ok(Self {
            id,
            path,
            file: Arc::new(file),
            len: SEGMENT_HEADER as u64,
            live: 0,
            in_flight: 0,
        })
    }
}

/// What reading a segment back found.
pub(crate) struct Scanned {
    pub(crate) segment: Segment,
    /// Each verified record: its offset, header and key.
    pub(crate) records: Vec<(u64, record::Header, Vec<u8>)>,
    /// Damaged stretches stepped over (each counted once).
    pub(crate) corrupt: u64,
    /// Bytes dropped: damaged stretches and a torn tail.
    pub(crate) dropped_bytes: u64,
    /// Whether the segment ended in a record cut short (a write a crash interrupted).
    pub(crate) torn_tail: bool,
}

/// Why a segment could not be read back at all.
pub(crate) enum ScanError {
    Io(io::Error),
    /// A segment of another format version: refused, not skipped (a newer build wrote data
    /// this one would lose).
    Version(u8),
}

impl From<io::Error> for ScanError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// Opens segment `id` at `path` and checks every record. The segment's length is set to the
/// end of its last good record; `cut_tail` truncates the file there (the segment that will
/// take new writes), so that they follow good data.
pub(crate) fn scan(path: &Path, id: u64, cut_tail: bool) -> Result<Scanned, ScanError> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut bytes = Vec::new();
    (&file).read_to_end(&mut bytes)?;
    let mut scanned = Scanned {
        segment: Segment {
            id,
            path: path.to_path_buf(),
            file: Arc::new(file),
            len: SEGMENT_HEADER as u64,
            live: 0,
            in_flight: 0,
        },
        records: Vec::new(),
        corrupt: 0,
        dropped_bytes: 0,
        torn_tail: false,
    };
    let header_ok = bytes.len() >= SEGMENT_HEADER
        && bytes[..4] == SEGMENT_MAGIC
        && bytes[8..16] == id.to_le_bytes()
        && bytes[16..20] == crc32c::crc32c(&bytes[..16]).to_le_bytes();
    if header_ok && bytes[4] != record::VERSION {
        // A whole segment of another format (its header verifies): refused, not skipped.
        return Err(ScanError::Version(bytes[4]));
    }
    if !header_ok {
        // A segment whose header was torn (created, then a crash) or damaged: its records
        // are still read, and the header is written again below if it takes writes.
        scanned.corrupt += u64::from(bytes.len() > SEGMENT_HEADER);
    }
    let mut at = SEGMENT_HEADER.min(bytes.len());
    let mut end = SEGMENT_HEADER;
    // Where the damage after the last good record began, and whether it began as a record
    // cut short (what a crash mid-write leaves at a tail).
    let mut damage: Option<bool> = None;
    while at < bytes.len() {
        match record::decode(&bytes[at..]) {
            Ok(Decoded { header, key, .. }) => {
                if damage.take().is_some() {
                    scanned.corrupt += 1;
                }
                scanned.dropped_bytes += (at - end) as u64;
                scanned.records.push((at as u64, header, key.to_vec()));
                at += header.record_len();
                end = at;
            }
            Err(error) => {
                // Step to the next place a record could start: a length field damaged into
                // "too long" must not hide the good records after it.
                damage.get_or_insert(error == DecodeError::Short);
                at = next_magic(&bytes, at + 1);
            }
        }
    }
    if end < bytes.len() {
        scanned.dropped_bytes += (bytes.len() - end) as u64;
        match damage {
            Some(true) => scanned.torn_tail = true,
            _ => scanned.corrupt += 1,
        }
    }
    scanned.segment.len = end as u64;
    if cut_tail {
        if !header_ok {
            scanned.segment.file.write_all_at(&header(id), 0)?;
        }
        if (end as u64) < bytes.len() as u64 {
            scanned.segment.file.set_len(end as u64)?;
        }
    }
    Ok(scanned)
}

/// The first offset at or after `from` where the record magic starts, or the end.
fn next_magic(bytes: &[u8], from: usize) -> usize {
    bytes
        .get(from..)
        .and_then(|rest| rest.windows(4).position(|w| w == MAGIC))
        .map_or(bytes.len(), |at| from + at)
}

/// Reads the record of `len` bytes at `offset` of `file` and verifies it.
pub(crate) fn read_record(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut bytes = std::vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, offset)?;
    Ok(bytes)
}
