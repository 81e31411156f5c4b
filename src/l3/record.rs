//! One record of the log: a fixed header, the key, the value (compressed or not), all covered
//! by a CRC32C. Encoding and checked decoding; nothing here touches a file.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "SCL3"
//!      4     1  format version
//!      5     1  flags: tombstone, lz4
//!      6     1  priority (0 Low … 3 Critical)
//!      7     1  reserved (0)
//!      8     4  key length
//!     12     4  stored value length
//!     16     4  value length before compression
//!     20     4  hits (for warming the hottest first)
//!     24     8  expiry, nanoseconds since the Unix epoch (u64::MAX: never)
//!     32     8  sequence number (the higher wins on recovery)
//!     40     4  reserved (0)
//!     44     4  CRC32C of the key, the stored value, then bytes 0..44 (so that the order,
//!               stamped last, costs a checksum of 44 bytes, not of the value again)
//! ```
//! All integers little-endian.

/// The first bytes of every record.
pub(crate) const MAGIC: [u8; 4] = *b"SCL3";
/// The format this build writes and reads. A segment's header says which format its records
/// are in (a newer one is refused there, never guessed at); a record of another version
/// inside a segment of this one is damage.
pub(crate) const VERSION: u8 = 1;
/// Bytes before the key.
pub(crate) const HEADER: usize = 48;
/// The longest key a record holds.
pub const MAX_KEY: usize = 1 << 20;
/// The longest value a record holds (stored or before compression).
pub const MAX_VALUE: usize = 1 << 30;

const TOMBSTONE: u8 = 1;
const LZ4: u8 = 2;
const ZSTD: u8 = 4;
const KNOWN_FLAGS: u8 = TOMBSTONE | LZ4 | ZSTD;

/// How a record's value is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compression {
    /// As it was put.
    #[default]
    None,
    /// lz4 (`lz4_flex`): fast both ways, for values read often.
    Lz4,
    /// zstd (level 3): smaller and slower to read, for cold values.
    Zstd,
}

/// The zstd level used: the library's default, a balance of ratio and speed.
const ZSTD_LEVEL: i32 = 3;

impl Compression {
    /// `value` packed this way, if that saves bytes.
    fn pack(self, value: &[u8]) -> Option<alloc::vec::Vec<u8>> {
        let packed = match self {
            Self::None => return None,
            Self::Lz4 => lz4_flex::block::compress(value),
            Self::Zstd => zstd::bulk::compress(value, ZSTD_LEVEL).ok()?,
        };
        (packed.len() < value.len()).then_some(packed)
    }

    fn flag(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Lz4 => LZ4,
            Self::Zstd => ZSTD,
        }
    }
}

/// What a record says beside its key and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) tombstone: bool,
    /// How the value is stored (`raw_len` is its length as put).
    pub(crate) packing: Compression,
    pub(crate) priority: u8,
    pub(crate) key_len: u32,
    pub(crate) value_len: u32,
    pub(crate) raw_len: u32,
    pub(crate) hits: u32,
    pub(crate) expires: u64,
    pub(crate) seq: u64,
}

impl Header {
    /// The header of a value record (lengths, flags and order are set when it is encoded
    /// and stamped).
    pub(crate) fn value(priority: u8, hits: u32, expires: u64) -> Self {
        Self {
            tombstone: false,
            packing: Compression::None,
            priority,
            key_len: 0,
            value_len: 0,
            raw_len: 0,
            hits,
            expires,
            seq: 0,
        }
    }

    /// The header of a removal record.
    pub(crate) fn removal() -> Self {
        Self {
            tombstone: true,
            expires: u64::MAX,
            ..Self::value(0, 0, u64::MAX)
        }
    }

    /// The record's whole length on disk.
    pub(crate) fn record_len(&self) -> usize {
        HEADER + self.key_len as usize + self.value_len as usize
    }
}

/// Why bytes do not decode as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes end before the record does (a torn write at a log's tail).
    Short,
    /// Not a record's start.
    Magic,
    /// Lengths or flags no writer produces, or a checksum that does not match.
    Corrupt,
}

/// A record decoded from bytes, borrowing them.
#[derive(Debug)]
pub(crate) struct Decoded<'a> {
    pub(crate) header: Header,
    pub(crate) key: &'a [u8],
    /// The value as stored (compressed as `header.packing` says).
    pub(crate) value: &'a [u8],
}

impl Decoded<'_> {
    /// The value as it was put: decompressed if it was stored compressed.
    pub(crate) fn value(&self) -> Result<alloc::vec::Vec<u8>, DecodeError> {
        let len = self.header.raw_len as usize;
        let raw = match self.header.packing {
            Compression::None => return Ok(self.value.to_vec()),
            Compression::Lz4 => lz4_flex::block::decompress(self.value, len).ok(),
            Compression::Zstd => zstd::bulk::decompress(self.value, len).ok(),
        };
        // It passed its checksum, so a failure here is a writer's bug or another build's.
        raw.filter(|raw| raw.len() == len)
            .ok_or(DecodeError::Corrupt)
    }
}

/// Appends a record to `out`: `value` is compressed as `packing` says where that saves bytes.
/// `header`'s lengths and flags are set here. Returns the CRC32C of the key and the stored
/// value, for [`restamp`].
pub(crate) fn encode(
    out: &mut alloc::vec::Vec<u8>,
    mut header: Header,
    key: &[u8],
    value: &[u8],
    packing: Compression,
) -> u32 {
    let compressed = packing.pack(value);
    let stored = compressed.as_deref().unwrap_or(value);
    header.packing = if compressed.is_some() {
        packing
    } else {
        Compression::None
    };
    header.key_len = u32::try_from(key.len()).expect("checked against MAX_KEY");
    header.value_len = u32::try_from(stored.len()).expect("checked against MAX_VALUE");
    header.raw_len = u32::try_from(value.len()).expect("checked against MAX_VALUE");
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push((u8::from(header.tombstone) * TOMBSTONE) | header.packing.flag());
    out.push(header.priority);
    out.push(0);
    out.extend_from_slice(&header.key_len.to_le_bytes());
    out.extend_from_slice(&header.value_len.to_le_bytes());
    out.extend_from_slice(&header.raw_len.to_le_bytes());
    out.extend_from_slice(&header.hits.to_le_bytes());
    out.extend_from_slice(&header.expires.to_le_bytes());
    out.extend_from_slice(&header.seq.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(key);
    out.extend_from_slice(stored);
    let payload = crc32c::crc32c(&out[start + HEADER..]);
    restamp(&mut out[start..], header.seq, payload);
    payload
}

/// Sets the sequence number of the record `bytes` (as [`encode`] wrote it, with the CRC32C of
/// its payload `payload`) and its checksum: a writer encodes outside its lock and stamps the
/// order under it, without checksumming the value again.
pub(crate) fn restamp(bytes: &mut [u8], seq: u64, payload: u32) {
    bytes[32..40].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c_append(payload, &bytes[..44]);
    bytes[44..48].copy_from_slice(&crc.to_le_bytes());
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

/// The header at the start of `bytes`, checked for everything but the checksum.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    if bytes.len() < HEADER {
        // A torn header still shows its magic: a prefix of it is a tail, not garbage.
        let n = bytes.len().min(4);
        return if bytes[..n] == MAGIC[..n] {
            Err(DecodeError::Short)
        } else {
            Err(DecodeError::Magic)
        };
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if bytes[4] != VERSION {
        return Err(DecodeError::Corrupt);
    }
    let flags = bytes[5];
    let packing = match flags & (LZ4 | ZSTD) {
        0 => Compression::None,
        LZ4 => Compression::Lz4,
        ZSTD => Compression::Zstd,
        _ => return Err(DecodeError::Corrupt),
    };
    let header = Header {
        tombstone: flags & TOMBSTONE != 0,
        packing,
        priority: bytes[6],
        key_len: u32_at(bytes, 8),
        value_len: u32_at(bytes, 12),
        raw_len: u32_at(bytes, 16),
        hits: u32_at(bytes, 20),
        expires: u64_at(bytes, 24),
        seq: u64_at(bytes, 32),
    };
    let plausible = flags & !KNOWN_FLAGS == 0
        && bytes[7] == 0
        && header.priority <= 3
        && header.key_len as usize <= MAX_KEY
        && header.value_len as usize <= MAX_VALUE
        && header.raw_len as usize <= MAX_VALUE
        && (header.packing != Compression::None || header.raw_len == header.value_len)
        && u32_at(bytes, 40) == 0;
    if !plausible {
        return Err(DecodeError::Corrupt);
    }
    Ok(header)
}

/// The record at the start of `bytes`, its checksum verified.
pub(crate) fn decode(bytes: &[u8]) -> Result<Decoded<'_>, DecodeError> {
    let header = decode_header(bytes)?;
    let len = header.record_len();
    if bytes.len() < len {
        return Err(DecodeError::Short);
    }
    let key = &bytes[HEADER..HEADER + header.key_len as usize];
    let value = &bytes[HEADER + header.key_len as usize..len];
    let crc = crc32c::crc32c_append(
        crc32c::crc32c_append(crc32c::crc32c(key), value),
        &bytes[..44],
    );
    if crc != u32_at(bytes, 44) {
        return Err(DecodeError::Corrupt);
    }
    Ok(Decoded { header, key, value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn header(seq: u64) -> Header {
        Header {
            tombstone: false,
            packing: Compression::None,
            priority: 2,
            key_len: 0,
            value_len: 0,
            raw_len: 0,
            hits: 7,
            expires: u64::MAX,
            seq,
        }
    }

    #[test]
    fn a_record_decodes_to_what_was_encoded() {
        let mut out = Vec::new();
        encode(&mut out, header(9), b"key", b"value", Compression::None);
        let decoded = decode(&out).expect("a whole record");
        assert_eq!(decoded.key, b"key");
        assert_eq!(decoded.value().unwrap(), b"value");
        assert_eq!(decoded.header.seq, 9);
        assert_eq!(decoded.header.hits, 7);
        assert_eq!(decoded.header.record_len(), out.len());
    }

    #[test]
    fn a_compressible_value_is_stored_compressed_and_comes_back_whole() {
        let value = alloc::vec![b'a'; 4096];
        for packing in [Compression::Lz4, Compression::Zstd] {
            let mut out = Vec::new();
            encode(&mut out, header(1), b"k", &value, packing);
            let decoded = decode(&out).unwrap();
            assert_eq!(decoded.header.packing, packing);
            assert!(out.len() < 1024, "{packing:?}: {}", out.len());
            assert_eq!(decoded.value().unwrap(), value);
        }
        // Random bytes do not shrink: stored as they are.
        let noise: Vec<u8> = (0..256u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for packing in [Compression::Lz4, Compression::Zstd] {
            let mut plain = Vec::new();
            encode(&mut plain, header(2), b"k", &noise, packing);
            assert_eq!(decode(&plain).unwrap().header.packing, Compression::None);
        }
    }

    #[test]
    fn a_restamped_record_carries_its_new_order_and_a_valid_checksum() {
        let mut out = Vec::new();
        let payload = encode(&mut out, header(1), b"key", b"value", Compression::None);
        restamp(&mut out, 77, payload);
        let decoded = decode(&out).expect("the checksum follows the new order");
        assert_eq!((decoded.header.seq, decoded.key), (77, &b"key"[..]));
    }

    #[test]
    fn every_flipped_bit_is_caught() {
        let mut out = Vec::new();
        encode(
            &mut out,
            header(3),
            b"some key",
            b"some value",
            Compression::None,
        );
        for bit in 0..out.len() * 8 {
            let mut bad = out.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad).is_err(), "bit {bit} flipped went unnoticed");
        }
    }

    #[test]
    fn a_cut_record_reads_as_short_and_another_version_as_damage() {
        let mut out = Vec::new();
        encode(&mut out, header(4), b"key", b"value", Compression::None);
        for cut in 1..out.len() {
            assert_eq!(
                decode(&out[..cut]).unwrap_err(),
                DecodeError::Short,
                "cut at {cut}"
            );
        }
        let mut newer = out.clone();
        newer[4] = VERSION + 1;
        assert_eq!(decode(&newer).unwrap_err(), DecodeError::Corrupt);
    }
}
