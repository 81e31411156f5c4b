//! How keys and values become the bytes of the persistent store's records, and back.

use core::fmt;
use std::boxed::Box;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

/// A type the persistent tier can store: its bytes, and the value back from them.
///
/// Byte buffers pass through as they are (`Vec<u8>`, `[u8; N]`, `Box<[u8]>`, `Arc<[u8]>`); strings are
/// their UTF-8; integers and `bool` are little-endian of fixed width; a type of your own goes
/// through serde as [`Serde<T>`](super::Serde) (feature `serde`). The trait is sealed: a cache
/// encodes what it evicts under the evicting shard's lock (so that the store sees the cache's
/// writes in their order), where no user code may run, so `Serde` serializes when a value is
/// wrapped, outside every lock.
pub trait Codec: Sized + sealed::Sealed {
    /// Appends the value's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// The value `bytes` hold.
    ///
    /// # Errors
    /// [`CodecError`] for bytes `encode` never writes (they passed the record's checksum, so
    /// a different type wrote them).
    fn decode(bytes: &[u8]) -> Result<Self, CodecError>;
}

pub(super) mod sealed {
    /// Implemented by the crate's codecs only (see [`Codec`](super::Codec)).
    pub trait Sealed {}

    impl Sealed for std::vec::Vec<u8> {}
    impl<const N: usize> Sealed for [u8; N] {}
    impl Sealed for std::boxed::Box<[u8]> {}
    impl Sealed for std::sync::Arc<[u8]> {}
    impl Sealed for std::string::String {}
    impl Sealed for std::sync::Arc<str> {}
    impl Sealed for bool {}
    impl Sealed for u8 {}
    impl Sealed for u16 {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
    impl Sealed for u128 {}
    impl Sealed for i8 {}
    impl Sealed for i16 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for i128 {}
}

/// Bytes a [`Codec`] cannot read: the record is treated as absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodecError {
    /// What was wrong, for the reader of a log.
    pub reason: &'static str,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes that do not decode: {}", self.reason)
    }
}

impl core::error::Error for CodecError {}

impl Codec for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.to_vec())
    }
}

impl Codec for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.into())
    }
}

impl Codec for Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        Ok(bytes.into())
    }
}

impl<const N: usize> Codec for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        bytes.try_into().map_err(|_| CodecError {
            reason: "not the array's length",
        })
    }
}

impl Codec for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| CodecError {
                reason: "not UTF-8",
            })
    }
}

impl Codec for Arc<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        core::str::from_utf8(bytes)
            .map(Arc::from)
            .map_err(|_| CodecError {
                reason: "not UTF-8",
            })
    }
}

impl Codec for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }

    fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(CodecError {
                reason: "not a bool",
            }),
        }
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
                bytes.try_into().map(<$t>::from_le_bytes).map_err(|_| CodecError {
                    reason: concat!("not the length of a ", stringify!($t)),
                })
            }
        }
    )*};
}

integers!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    fn round_trip<T: Codec + PartialEq + fmt::Debug>(value: T) {
        let mut out = Vec::new();
        value.encode(&mut out);
        assert_eq!(T::decode(&out).unwrap(), value);
    }

    #[test]
    fn every_provided_codec_reads_back_what_it_wrote() {
        round_trip(std::vec![1u8, 2, 3]);
        round_trip([9u8; 40]);
        round_trip(Box::<[u8]>::from(&b"boxed"[..]));
        round_trip(Arc::<[u8]>::from(&b"shared"[..]));
        round_trip(String::from("héllo"));
        round_trip(Arc::<str>::from("shared str"));
        round_trip(true);
        round_trip(u64::MAX - 7);
        round_trip(-3i32);
        round_trip(u128::MAX / 3);
    }

    #[test]
    fn bytes_a_codec_never_writes_are_an_error() {
        assert!(u64::decode(&[1, 2, 3]).is_err());
        assert!(<[u8; 4]>::decode(&[1, 2, 3]).is_err());
        assert!(String::decode(&[0xff, 0xfe]).is_err());
        assert!(bool::decode(&[2]).is_err());
        let error = i16::decode(&[]).unwrap_err();
        assert!(error.to_string().contains("i16"), "{error}");
    }
}
