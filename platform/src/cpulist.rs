//! The kernel's CPU-list format (`0-3,8,10-11`), as in sysfs `cpulist` and `online` files.

use alloc::vec::Vec;
use core::fmt;

/// A CPU list could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CpuListError {
    /// An item is not a number or a `low-high` range of numbers.
    NotANumber {
        /// Byte offset of the item in the list.
        offset: usize,
    },
    /// A range whose end is below its start.
    ReversedRange {
        /// The range's start.
        low: u32,
        /// The range's end.
        high: u32,
    },
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber { offset } => write!(f, "not a CPU number or range at byte {offset}"),
            Self::ReversedRange { low, high } => write!(f, "range {low}-{high} runs backwards"),
        }
    }
}

impl core::error::Error for CpuListError {}

/// Parses a CPU list such as `0-3,8,10-11` (surrounding whitespace allowed, empty = none)
/// into ascending, de-duplicated CPU numbers.
///
/// # Errors
/// [`CpuListError`] naming where the list is malformed.
pub fn parse_cpu_list(list: &str) -> Result<Vec<u32>, CpuListError> {
    let mut cpus = Vec::new();
    let trimmed = list.trim();
    let start = list.len() - list.trim_start().len();
    if trimmed.is_empty() {
        return Ok(cpus);
    }
    let mut offset = start;
    for item in trimmed.split(',') {
        let number = |s: &str, at: usize| {
            s.trim()
                .parse::<u32>()
                .map_err(|_| CpuListError::NotANumber { offset: at })
        };
        match item.split_once('-') {
            Some((low, high)) => {
                let (low, high) = (number(low, offset)?, number(high, offset)?);
                if high < low {
                    return Err(CpuListError::ReversedRange { low, high });
                }
                cpus.extend(low..=high);
            }
            None => cpus.push(number(item, offset)?),
        }
        offset += item.len() + 1;
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn parses_ranges_singles_and_whitespace() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("5").unwrap(), vec![5]);
        assert_eq!(parse_cpu_list(" \n").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("3,1-2,2").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn malformed_lists_say_where() {
        assert_eq!(
            parse_cpu_list("0-3,x").unwrap_err(),
            CpuListError::NotANumber { offset: 4 }
        );
        assert_eq!(
            parse_cpu_list("4-2").unwrap_err(),
            CpuListError::ReversedRange { low: 4, high: 2 }
        );
        assert!(parse_cpu_list("1,,2").is_err());
    }
}
