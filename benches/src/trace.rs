//! Cache trace readers for the simulator: the formats of the public traces `benches/TRACES.md` lists,
//! read from plain, gzip, xz or zstd files (chosen by extension), with errors that name the
//! file and the line or byte offset.

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One request: a key and the size of its object (1 for count-based traces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The object's key.
    pub key: u64,
    /// The object's size in bytes (1 where the trace has none).
    pub size: u32,
}

/// A trace format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LIRS: one decimal key per line; empty lines and `*` lines are skipped.
    Lirs,
    /// ARC: `start count ignored request_no` per line, meaning `count` requests for keys
    /// `start .. start + count`.
    Arc,
    /// A stream of 32-bit big-endian keys (cache2k).
    Be32,
    /// A stream of 64-bit big-endian keys.
    Be64,
    /// libCacheSim oracleGeneral: 24-byte little-endian records
    /// `u32 timestamp, u64 id, u32 size, i64 next access`.
    OracleGeneral,
    /// Text, `key[,size]` per line.
    Csv,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "lirs" => Self::Lirs,
            "arc" => Self::Arc,
            "be32" => Self::Be32,
            "be64" => Self::Be64,
            "oracle-general" => Self::OracleGeneral,
            "csv" => Self::Csv,
            other => {
                return Err(format!(
                    "unknown trace format `{other}` (expected lirs, arc, be32, be64, \
                     oracle-general or csv)"
                ));
            }
        })
    }
}

/// Where in a trace a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A 1-based line of a text trace.
    Line(usize),
    /// A byte offset into a binary trace (after decompression).
    Offset(usize),
    /// The file as a whole.
    File,
}

/// Why a trace could not be read.
#[derive(Debug)]
pub struct TraceError {
    /// The trace file.
    pub path: PathBuf,
    /// Where in it.
    pub location: Location,
    /// What went wrong.
    pub problem: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match self.location {
            Location::Line(line) => write!(f, "{path}, line {line}: {}", self.problem),
            Location::Offset(at) => write!(f, "{path}, byte {at}: {}", self.problem),
            Location::File => write!(f, "{path}: {}", self.problem),
        }
    }
}

impl std::error::Error for TraceError {}

/// Reads the whole trace at `path` in `format`, decompressing `.gz`, `.xz` and `.zst`.
///
/// # Errors
/// An unreadable or corrupt file, a malformed or truncated record, a non-numeric key, or a
/// trace without a single request.
pub fn read(path: &Path, format: Format) -> Result<Vec<Request>, TraceError> {
    let error = |location, problem: String| TraceError {
        path: path.to_path_buf(),
        location,
        problem,
    };
    let bytes = decompressed(path).map_err(|e| error(Location::File, e.to_string()))?;
    let requests = parse(&bytes, format).map_err(|(location, problem)| error(location, problem))?;
    if requests.is_empty() {
        return Err(error(Location::File, "the trace holds no request".into()));
    }
    Ok(requests)
}

fn decompressed(path: &Path) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => flate2::read::MultiGzDecoder::new(file).read_to_end(&mut bytes)?,
        Some("xz") => liblzma::read::XzDecoder::new(file).read_to_end(&mut bytes)?,
        Some("zst" | "zstd") => zstd::Decoder::new(file)?.read_to_end(&mut bytes)?,
        _ => io::BufReader::new(file).read_to_end(&mut bytes)?,
    };
    Ok(bytes)
}

/// Parses a decompressed trace.
///
/// # Errors
/// The location and description of the first bad record.
pub fn parse(bytes: &[u8], format: Format) -> Result<Vec<Request>, (Location, String)> {
    match format {
        Format::Lirs | Format::Arc | Format::Csv => parse_text(bytes, format),
        Format::Be32 => fixed(bytes, 4, |r| Request {
            key: u64::from(u32::from_be_bytes(r.try_into().expect("4 bytes"))),
            size: 1,
        }),
        Format::Be64 => fixed(bytes, 8, |r| Request {
            key: u64::from_be_bytes(r.try_into().expect("8 bytes")),
            size: 1,
        }),
        Format::OracleGeneral => fixed(bytes, 24, |r| Request {
            key: u64::from_le_bytes(r[4..12].try_into().expect("8 bytes")),
            size: u32::from_le_bytes(r[12..16].try_into().expect("4 bytes")),
        }),
    }
}

fn fixed(
    bytes: &[u8],
    record: usize,
    decode: impl Fn(&[u8]) -> Request,
) -> Result<Vec<Request>, (Location, String)> {
    let whole = bytes.len() - bytes.len() % record;
    if whole != bytes.len() {
        return Err((
            Location::Offset(whole),
            format!(
                "truncated record: {} bytes left where a record has {record}",
                bytes.len() - whole
            ),
        ));
    }
    Ok(bytes.chunks_exact(record).map(decode).collect())
}

fn number<T: FromStr>(field: &str, what: &str, line: usize) -> Result<T, (Location, String)> {
    field.trim().parse().map_err(|_| {
        (
            Location::Line(line),
            format!("{what} `{field}` is not a number"),
        )
    })
}

fn parse_text(bytes: &[u8], format: Format) -> Result<Vec<Request>, (Location, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        (Location::Line(line), "not UTF-8 text".to_string())
    })?;
    let mut requests = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let line = line.trim();
        if line.is_empty() || (format == Format::Lirs && line == "*") {
            continue;
        }
        match format {
            Format::Lirs => requests.push(Request {
                key: number(line, "key", n)?,
                size: 1,
            }),
            Format::Arc => {
                let mut fields = line.split_whitespace();
                let (Some(start), Some(count)) = (fields.next(), fields.next()) else {
                    return Err((Location::Line(n), "expected `start count ...`".into()));
                };
                let start: u64 = number(start, "start", n)?;
                let count: u64 = number(count, "count", n)?;
                requests.extend(
                    (start..start.saturating_add(count)).map(|key| Request { key, size: 1 }),
                );
            }
            Format::Csv => {
                let mut fields = line.split(',');
                let key = number(fields.next().unwrap_or(""), "key", n)?;
                let size = match fields.next() {
                    Some(size) => number(size, "size", n)?,
                    None => 1,
                };
                requests.push(Request { key, size });
            }
            _ => unreachable!("binary formats are parsed elsewhere"),
        }
    }
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_formats_parse_and_bad_records_name_their_line() {
        let lirs = parse(b"1\n\n*\n22\n", Format::Lirs).unwrap();
        assert_eq!(lirs.iter().map(|r| r.key).collect::<Vec<_>>(), [1, 22]);
        let arc = parse(b"10 3 0 0\n7 1 0 1\n", Format::Arc).unwrap();
        assert_eq!(
            arc.iter().map(|r| r.key).collect::<Vec<_>>(),
            [10, 11, 12, 7]
        );
        let csv = parse(b"5,100\n6\n", Format::Csv).unwrap();
        assert_eq!(
            csv,
            [Request { key: 5, size: 100 }, Request { key: 6, size: 1 }]
        );
        assert_eq!(
            parse(b"1\n2\nx3\n", Format::Lirs).unwrap_err(),
            (Location::Line(3), "key `x3` is not a number".into())
        );
        assert_eq!(
            parse(b"1 2\n5\n", Format::Arc).unwrap_err().0,
            Location::Line(2)
        );
    }

    #[test]
    fn binary_formats_parse_and_truncation_names_its_offset() {
        let be = parse(&[0, 0, 1, 0, 0, 0, 0, 7], Format::Be32).unwrap();
        assert_eq!(be.iter().map(|r| r.key).collect::<Vec<_>>(), [256, 7]);
        let err = parse(&[0, 0, 1, 0, 9], Format::Be32).unwrap_err();
        assert_eq!(err.0, Location::Offset(4));
        let mut record = vec![0u8; 24];
        record[4..12].copy_from_slice(&42u64.to_le_bytes());
        record[12..16].copy_from_slice(&4096u32.to_le_bytes());
        assert_eq!(
            parse(&record, Format::OracleGeneral).unwrap(),
            [Request {
                key: 42,
                size: 4096
            }]
        );
        assert_eq!(
            parse(&record[..23], Format::OracleGeneral).unwrap_err().0,
            Location::Offset(0)
        );
    }

    #[test]
    fn unknown_formats_are_refused_by_name() {
        assert!("lirs".parse::<Format>().is_ok());
        assert!(
            "parquet"
                .parse::<Format>()
                .unwrap_err()
                .contains("`parquet`")
        );
    }
}
