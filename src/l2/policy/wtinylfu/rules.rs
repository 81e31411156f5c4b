//! The rules W-TinyLFU and its miniature copies share, so that a miniature cache simulates the
//! policy it sizes.

/// Shares of the shard's weight, in 1/65 536ths.
pub(super) const ONE: u32 = 1 << 16;

/// A candidate is admitted only if the sketch has seen it more than this many times more often
/// than the victim. The candidate's count already includes its latest access and the victim's
/// cannot yet include its next one, so in a loop the candidate leads by one although both are
/// used exactly as often; without the margin every such comparison evicts the entry needed
/// soonest and a loop larger than the cache degrades toward LRU.
pub(super) const ADMIT_MARGIN: u32 = 1;

/// Whether protected, of `protected` weight, outgrows its 80 % of a main region whose
/// probation holds `probation`.
pub(super) fn protected_outgrows(protected: u64, probation: u64) -> bool {
    protected * 5 > (protected + probation) * 4
}
