//! Whether a shard's callers store what they miss: what a miniature cache that lacks a key the
//! shard holds assumes when that key is read.

/// Stores judged before the older judgements fade by half.
const FADE_AFTER: u32 = 64;

/// How many of a shard's sampled stores of new keys followed a miss on the same key by the
/// same caller (read-through: `get`, miss, `insert`), and how many followed none (a writer
/// storing keys that no reader asked for).
///
/// A miniature cache at another share than the shard's may lack a key the shard holds. When
/// that key is read, the miniature cache misses; a read-through caller would then have stored
/// the key, so the miniature cache takes it in. A caller that only reads would not: taking the
/// key in would credit the miniature cache with a key it could never have got back, and a
/// large window, which loses a reader's keys to a writer's stream, would look as good as the
/// small one that kept them (`tests/adaptation.rs`).
#[derive(Debug, Clone, Default)]
pub(super) struct Callers {
    /// Stores of new keys that followed a miss (fading).
    after_miss: u32,
    /// Stores of new keys that followed none (fading).
    blind: u32,
}

impl Callers {
    /// The shard stored a sampled key it did not hold, after a miss on it or not.
    pub(super) fn stored(&mut self, after_miss: bool) {
        if after_miss {
            self.after_miss += 1;
        } else {
            self.blind += 1;
        }
        if self.after_miss + self.blind >= FADE_AFTER {
            self.after_miss /= 2;
            self.blind /= 2;
        }
    }

    /// Whether the callers store what they miss: at least half the recent stores followed a
    /// miss (so, with nothing seen yet, they are taken to).
    pub(super) fn read_through(&self) -> bool {
        self.after_miss >= self.blind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_after_misses_mark_read_through_callers_and_blind_stores_a_writer() {
        let mut callers = Callers::default();
        assert!(callers.read_through(), "taken as read-through until seen");
        callers.stored(false);
        assert!(
            !callers.read_through(),
            "a writer storing keys nobody asked for"
        );
        callers.stored(true);
        assert!(callers.read_through(), "one each way: half");
        for _ in 0..1_000 {
            callers.stored(false);
        }
        assert!(callers.blind < FADE_AFTER, "judgements fade");
        for _ in 0..FADE_AFTER / 2 {
            callers.stored(true);
        }
        assert!(
            callers.read_through(),
            "a phase of read-through outweighs the faded writer"
        );
    }
}
