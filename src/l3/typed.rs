//! Values of the user's own types in the persistent tier, through serde (feature `serde`).

use core::borrow::Borrow;
use core::fmt;
use core::hash::{Hash, Hasher};
use core::ops::Deref;
use std::sync::Arc;
use std::vec::Vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{Codec, CodecError, sealed};

/// A value of a serde type, with its bytes in the compact `postcard` format made when it is
/// wrapped (feature `serde`).
///
/// A cache encodes what it evicts under the evicting shard's lock, where no user code may run,
/// and a type's `Serialize` is user code: so the bytes are made here, by [`Serde::new`], on
/// the caller's thread and outside every lock, and the cache only copies them. That costs the
/// bytes' memory beside the value (shared by clones); decoding (`Deserialize`) runs on a
/// reader's thread outside every lock. Hashing and equality are the value's, so a `Serde<K>`
/// can be a key.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = std::env::temp_dir().join(format!("stratacache-serde-{}", std::process::id()));
/// use serde::{Deserialize, Serialize};
/// use stratacache::Cache;
/// use stratacache::l3::{Serde, Store};
///
/// #[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
/// struct Player {
///     name: String,
///     hp: u32,
/// }
///
/// let (store, _) = Store::builder(&dir).open()?;
/// let cache: Cache<u64, Serde<Player>> = Cache::builder().capacity(1).build_persistent(store)?;
/// cache.insert(7, Serde::new(Player { name: "Ada".into(), hp: 90 })?)?;
/// cache.insert(8, Serde::new(Player { name: "Bo".into(), hp: 70 })?)?; // evicts 7 to disk
/// let back = cache.get(&7).expect("read back from the disk tier");
/// assert_eq!(back.hp, 90);
/// # drop(cache); std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Serde<T> {
    value: T,
    bytes: Arc<[u8]>,
}

impl<T: Serialize> Serde<T> {
    /// Wraps `value`, serializing it now.
    ///
    /// # Errors
    /// [`CodecError`] when the value does not serialize (a `Serialize` that fails, or a
    /// sequence of unknown length, which postcard cannot write).
    pub fn new(value: T) -> Result<Self, CodecError> {
        let bytes = postcard::to_allocvec(&value).map_err(|_| CodecError {
            reason: "the value does not serialize with postcard",
        })?;
        Ok(Self {
            value,
            bytes: bytes.into(),
        })
    }
}

impl<T> Serde<T> {
    /// The value.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The value's bytes, as the disk tier stores them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl<T> Deref for Serde<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Borrow<T> for Serde<T> {
    fn borrow(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Serde<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Serde<T> {}

impl<T: Hash> Hash for Serde<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T: fmt::Debug> fmt::Debug for Serde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T> sealed::Sealed for Serde<T> {}

impl<T: DeserializeOwned> Codec for Serde<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.bytes);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let value = postcard::from_bytes(bytes).map_err(|_| CodecError {
            reason: "postcard cannot read the bytes as this type",
        })?;
        Ok(Self {
            value,
            bytes: bytes.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    struct Tile {
        x: i32,
        y: i32,
        name: String,
    }

    #[test]
    fn a_wrapped_value_reads_back_from_its_bytes() {
        let tile = Tile {
            x: -3,
            y: 7,
            name: String::from("grass"),
        };
        let wrapped = Serde::new(tile.clone()).unwrap();
        let mut out = Vec::new();
        wrapped.encode(&mut out);
        assert_eq!(out, wrapped.bytes());
        let back = Serde::<Tile>::decode(&out).unwrap();
        assert_eq!(*back, tile);
        assert_eq!(back.bytes(), wrapped.bytes());
        // Bytes of another shape are an error, never a panic.
        assert!(Serde::<Tile>::decode(&out[..2]).is_err());
        assert!(Serde::<Tile>::decode(&[0xff; 3]).is_err());
    }
}
