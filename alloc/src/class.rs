//! Size classes: which block size serves a request.
//!
//! Small classes (16 B to 8 KiB) are blocks carved from 64 KiB spans: 16-byte steps up to
//! 128 B, then four steps per power of two, so a request wastes at most a fifth of its block
//! beyond 128 B. Large classes are the powers of two from 16 KiB up, each block carved from a
//! chunk on its own.

/// The block sizes of the small classes, ascending.
pub(crate) const SMALL_SIZES: [usize; SMALL_CLASSES] = [
    16, 32, 48, 64, 80, 96, 112, 128, // 16-byte steps
    160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896,
    1024, // four steps per power of two
    1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
];

/// How many small classes there are.
pub(crate) const SMALL_CLASSES: usize = 32;

/// The largest small block.
pub(crate) const SMALL_MAX: usize = 8192;

/// The largest alignment a small block can promise: spans put their first block on a 1 KiB
/// boundary, and a class whose size is a multiple of the alignment keeps every block on it.
pub(crate) const SMALL_ALIGN_MAX: usize = 1024;

/// The smallest large class, log2.
pub(crate) const LARGE_MIN_SHIFT: u32 = 14;

/// How many large classes there are: 16 KiB up to 2^(usize::BITS - 2).
pub(crate) const LARGE_CLASSES: usize = (usize::BITS - 2 - LARGE_MIN_SHIFT + 1) as usize;

/// The alignment every large block is carved at; larger alignments are refused.
pub(crate) const LARGE_ALIGN_MAX: usize = 4096;

/// The class serving a request of `size` bytes aligned to `align` (a power of two).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A small class, by index into [`SMALL_SIZES`].
    Small(usize),
    /// A large class, by index: its blocks are `1 << (LARGE_MIN_SHIFT + index)` bytes.
    Large(usize),
}

impl Class {
    /// The class for `size` bytes at `align`, or `None` when no class can serve it (an
    /// alignment above [`LARGE_ALIGN_MAX`] or a size beyond the largest class).
    pub(crate) fn of(size: usize, align: usize) -> Option<Self> {
        debug_assert!(align.is_power_of_two());
        let size = size.max(1);
        if size <= SMALL_MAX && align <= SMALL_ALIGN_MAX {
            let first = small_index(size);
            // A class whose size is a multiple of the alignment keeps every block aligned.
            if let Some(offset) = SMALL_SIZES[first..].iter().position(|s| s % align == 0) {
                return Some(Self::Small(first + offset));
            }
        }
        if align > LARGE_ALIGN_MAX {
            return None;
        }
        let bytes = size.max(1 << LARGE_MIN_SHIFT).checked_next_power_of_two()?;
        let index = (bytes.trailing_zeros() - LARGE_MIN_SHIFT) as usize;
        (index < LARGE_CLASSES).then_some(Self::Large(index))
    }

    /// The bytes of one block of this class.
    pub(crate) fn block_size(self) -> usize {
        match self {
            Self::Small(index) => SMALL_SIZES[index],
            Self::Large(index) => large_size(index),
        }
    }
}

/// The bytes an [`Arena`](crate::Arena) gives a request of `layout`: its size class's block
/// size (`None` for a layout no class serves). For sizing collections to their blocks, and
/// for estimating what a set of allocations takes from a budget.
///
/// ```
/// use core::alloc::Layout;
/// assert_eq!(stratacache_alloc::block_size(Layout::new::<[u8; 100]>()), Some(112));
/// assert_eq!(stratacache_alloc::block_size(Layout::new::<[u8; 20_000]>()), Some(32 << 10));
/// ```
pub fn block_size(layout: core::alloc::Layout) -> Option<usize> {
    if layout.size() == 0 {
        return Some(0);
    }
    Class::of(layout.size(), layout.align()).map(Class::block_size)
}

/// The bytes an [`Arena`](crate::Arena) takes from its budget to hold `count` blocks of each
/// layout at once, in whole spans for the small classes (each span's header and tail
/// counted) and whole blocks for the large ones; `None` when a layout has no class or the
/// total overflows. Chunk records and the alignment at chunk ends are not counted: leave a
/// span's worth spare per chunk.
///
/// ```
/// use core::alloc::Layout;
/// use stratacache_alloc::{SPAN_BYTES, footprint};
///
/// // A span holds 1,344 blocks of 48 B: 2,000 of them take two spans.
/// assert_eq!(footprint([(Layout::new::<[u8; 48]>(), 2000)]), Some(2 * SPAN_BYTES));
/// assert_eq!(footprint([(Layout::new::<[u8; 20_000]>(), 3)]), Some(3 * (32 << 10)));
/// ```
pub fn footprint(
    requests: impl IntoIterator<Item = (core::alloc::Layout, usize)>,
) -> Option<usize> {
    let mut small = [0usize; SMALL_CLASSES];
    let mut total = 0usize;
    for (layout, count) in requests {
        if layout.size() == 0 || count == 0 {
            continue;
        }
        match Class::of(layout.size(), layout.align())? {
            Class::Small(index) => small[index] = small[index].checked_add(count)?,
            class @ Class::Large(_) => {
                total = total.checked_add(class.block_size().checked_mul(count)?)?;
            }
        }
    }
    for (index, &count) in small.iter().enumerate() {
        let per_span =
            crate::raw::span::blocks_per_span(SMALL_SIZES[index], crate::raw::span::SPAN);
        let spans = count.div_ceil(per_span);
        total = total.checked_add(spans.checked_mul(crate::raw::span::SPAN)?)?;
    }
    Some(total)
}

/// The bytes of one block of large class `index`.
pub(crate) const fn large_size(index: usize) -> usize {
    1 << (LARGE_MIN_SHIFT as usize + index)
}

/// The first small class at least `size` bytes (`1..=SMALL_MAX`).
fn small_index(size: usize) -> usize {
    if size <= 128 {
        return size.div_ceil(16) - 1;
    }
    // Beyond 128 B: four classes per power of two, the power's own size the last of its four.
    let shift = usize::BITS - 1 - (size - 1).leading_zeros(); // floor(log2(size - 1)), >= 7
    let step = 1usize << (shift - 2);
    let quarter = (size - 1 - (1 << shift)) / step; // 0..=3
    8 + (shift as usize - 7) * 4 + quarter
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_small_size_gets_the_smallest_class_that_fits_it() {
        // Every size natively; a sample under Miri, which is slow.
        let step = if cfg!(miri) { 61 } else { 1 };
        for size in (1..=SMALL_MAX).step_by(step) {
            let Some(Class::Small(index)) = Class::of(size, 1) else {
                panic!("{size} B is small");
            };
            assert!(
                SMALL_SIZES[index] >= size,
                "{size} B in a {} B block",
                SMALL_SIZES[index]
            );
            assert!(
                index == 0 || SMALL_SIZES[index - 1] < size,
                "{size} B fits the smaller {} B class",
                SMALL_SIZES[index - 1]
            );
        }
    }

    #[test]
    fn aligned_requests_get_a_class_that_is_a_multiple_of_the_alignment() {
        for align in [2, 8, 16, 32, 64, 128, 512, 1024] {
            for size in [1, 17, 100, 129, 1000, 5000] {
                let class = Class::of(size, align).unwrap();
                assert_eq!(class.block_size() % align, 0, "{size} B at {align}");
                assert!(class.block_size() >= size);
            }
        }
        assert_eq!(
            Class::of(100, 2048),
            Some(Class::Large(0)),
            "past 1 KiB: large"
        );
        assert_eq!(Class::of(8, 8192), None, "past 4 KiB: refused");
    }

    #[test]
    fn large_classes_are_powers_of_two_and_the_largest_is_bounded() {
        assert_eq!(Class::of(SMALL_MAX + 1, 8), Some(Class::Large(0)));
        assert_eq!(Class::of(16 << 10, 8).unwrap().block_size(), 16 << 10);
        assert_eq!(Class::of((16 << 10) + 1, 8).unwrap().block_size(), 32 << 10);
        assert_eq!(Class::of(3 << 20, 8).unwrap().block_size(), 4 << 20);
        assert_eq!(Class::of(usize::MAX, 8), None);
        assert_eq!(
            Class::of(usize::MAX / 2, 8),
            None,
            "beyond the largest class"
        );
    }
}
