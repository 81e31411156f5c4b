//! Hashing: the default hasher and the bits each tier takes from a hash.

/// The default hasher builder: foldhash's fast variant (hashbrown's default too). Its seed is
/// chosen per process without an OS random source (address-space layout, plus the clock under
/// `std`); use [`foldhash::fast::FixedState::with_seed`] for a fixed seed.
pub type DefaultHashBuilder = foldhash::fast::RandomState;

pub use foldhash::fast::FixedState;
