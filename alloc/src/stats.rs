//! What an arena holds, aggregated when read.

/// An [`Arena`](crate::Arena)'s memory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ArenaStats {
    /// Taken from the chunk source.
    pub reserved: usize,
    /// Carved into blocks of some size class (the rest of `reserved` is chunk records,
    /// alignment and the unused tails of chunks).
    pub carved: usize,
    /// In blocks handed out now (block sizes, not the sizes asked for).
    pub in_use: usize,
    /// The budget, when there is one.
    pub limit: Option<usize>,
}

impl ArenaStats {
    /// Reserved but not in use: free blocks, chunk tails and records.
    pub fn fragmentation(&self) -> usize {
        self.reserved.saturating_sub(self.in_use)
    }
}

/// One size class of an [`Arena`](crate::Arena).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassStats {
    /// The bytes of one block.
    pub block_size: usize,
    /// Blocks carved.
    pub blocks: usize,
    /// Of those, handed out now.
    pub in_use: usize,
}
