//! What can go wrong with the persistent store.

use core::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Why the persistent store refused or failed an operation. Nothing acknowledged is lost
/// with any of them: a failed write leaves the key's previous value.
#[derive(Debug)]
#[non_exhaustive]
pub enum L3Error {
    /// The operating system refused: `op` on `path`.
    Io {
        /// What the store was doing.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// Another store (in this process or another) has the directory open.
    Locked(PathBuf),
    /// A segment was written by a newer format version than this build reads: the directory
    /// is left as it is.
    NewerFormat {
        /// The segment.
        path: PathBuf,
        /// Its format version.
        version: u8,
    },
    /// A key, value or record larger than the store can hold.
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The most allowed.
        limit: u64,
    },
    /// Settings that cannot work.
    Options(&'static str),
}

impl L3Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for L3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { op, path, source } => {
                write!(f, "could not {op} ({}): {source}", path.display())
            }
            Self::Locked(dir) => write!(
                f,
                "{} is open in another store (its LOCK file is held)",
                dir.display()
            ),
            Self::NewerFormat { path, version } => write!(
                f,
                "{} was written in format version {version}, newer than this build reads ({})",
                path.display(),
                super::record::VERSION
            ),
            Self::TooLarge { bytes, limit } => {
                write!(f, "{bytes} bytes is more than the store can hold ({limit})")
            }
            Self::Options(why) => f.write_str(why),
        }
    }
}

impl core::error::Error for L3Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
