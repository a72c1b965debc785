//! Reading an outbox table (status events, dead letters) in id order without
//! skipping rows that commit late.
//!
//! The relays publish `events` and `dead_letters` by row id: "everything
//! after position N". Ids come from a sequence, and a sequence hands them out
//! when a row is inserted, not when its transaction commits. On PostgreSQL
//! two transactions can commit out of id order (the accept of a batch and the
//! recorder's write run on different connections): a reader may see id 101
//! while 100 is still uncommitted, and a cursor moved past 101 would never
//! come back for 100. (SQLite has one writer, so its ids commit in order; the
//! guard costs nothing there.)
//!
//! [`GapGuard`] therefore only lets a reader advance over consecutive ids. At
//! a hole it stops and waits; the hole is either a transaction still in
//! flight (its rows show up within milliseconds) or ids that will never
//! commit (a rolled-back transaction; PostgreSQL does not reuse sequence
//! values). A hole still there after [`GapGuard::wait`] is taken for the
//! latter, logged, and passed over.

use std::time::{Duration, Instant};

/// How long a hole in the ids may stay before it counts as rolled back.
/// Longer than any transaction smsgw holds open while the database is up.
pub const GAP_WAIT: Duration = Duration::from_secs(10);

/// Tracks how far an outbox reader may advance; see the module docs.
#[derive(Debug, Clone)]
pub struct GapGuard {
    /// Every id up to here has been admitted (published) or passed over.
    position: i64,
    /// The first missing id of the hole the reader waits at, and since when.
    hole: Option<(i64, Instant)>,
    wait: Duration,
}

/// What [`GapGuard::admit`] decided for one batch.
#[derive(Debug, PartialEq, Eq)]
pub struct Admitted {
    /// How many of the batch's rows (a prefix) may be published now.
    pub rows: usize,
    /// Id ranges passed over as never committed, `(first, last)` inclusive.
    pub skipped: Vec<(i64, i64)>,
}

impl GapGuard {
    /// A guard for a reader that has published everything up to `position`.
    pub fn new(position: i64, wait: Duration) -> GapGuard {
        GapGuard {
            position,
            hole: None,
            wait,
        }
    }

    /// Everything up to here may be recorded as the reader's cursor.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Whether the reader is waiting at a hole (it should read again soon
    /// rather than idle).
    pub fn waiting(&self) -> bool {
        self.hole.is_some()
    }

    /// Given the ids (ascending, all above [`position`](Self::position)) of
    /// a batch just read, decides how many of them may be published now,
    /// and advances the position over them. Rows after a fresh hole are
    /// held back; they are read again next time.
    pub fn admit(&mut self, ids: &[i64], now: Instant) -> Admitted {
        let mut skipped = Vec::new();
        let mut next = self.position + 1;
        for (i, &id) in ids.iter().enumerate() {
            debug_assert!(id >= next, "ids must ascend above the position");
            if id != next {
                let overdue = match self.hole {
                    Some((first, since)) if first == next => now.duration_since(since) >= self.wait,
                    _ => {
                        self.hole = Some((next, now));
                        false
                    }
                };
                if !overdue {
                    self.position = next - 1;
                    return Admitted { rows: i, skipped };
                }
                skipped.push((next, id - 1));
                self.hole = None;
            }
            next = id + 1;
        }
        if !ids.is_empty() {
            self.hole = None;
        }
        self.position = next - 1;
        Admitted {
            rows: ids.len(),
            skipped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(pos: i64) -> GapGuard {
        GapGuard::new(pos, Duration::from_secs(10))
    }

    #[test]
    fn consecutive_ids_go_through() {
        let mut g = guard(4);
        let t = Instant::now();
        let a = g.admit(&[5, 6, 7], t);
        assert_eq!(
            a,
            Admitted {
                rows: 3,
                skipped: vec![]
            }
        );
        assert_eq!(g.position(), 7);
        assert!(!g.waiting());
    }

    #[test]
    fn a_hole_holds_back_what_follows_until_it_fills() {
        let mut g = guard(0);
        let t = Instant::now();
        // 3 is still uncommitted: 1 and 2 go, 4 and 5 wait
        assert_eq!(g.admit(&[1, 2, 4, 5], t).rows, 2);
        assert_eq!(g.position(), 2);
        assert!(g.waiting());
        // later read, 3 committed meanwhile
        let a = g.admit(&[3, 4, 5], t + Duration::from_millis(5));
        assert_eq!(
            a,
            Admitted {
                rows: 3,
                skipped: vec![]
            }
        );
        assert_eq!(g.position(), 5);
        assert!(!g.waiting());
    }

    #[test]
    fn a_hole_at_the_start_of_a_batch_admits_nothing() {
        let mut g = guard(10);
        let t = Instant::now();
        assert_eq!(g.admit(&[12], t).rows, 0);
        assert_eq!(g.position(), 10);
        assert_eq!(g.admit(&[12], t + Duration::from_secs(9)).rows, 0);
    }

    #[test]
    fn an_overdue_hole_is_passed_over_and_reported() {
        let mut g = guard(10);
        let t = Instant::now();
        assert_eq!(g.admit(&[13, 14], t).rows, 0);
        let a = g.admit(&[13, 14, 16], t + Duration::from_secs(10));
        // 11..=12 never committed; 15 is a fresh hole and holds 16 back
        assert_eq!(
            a,
            Admitted {
                rows: 2,
                skipped: vec![(11, 12)]
            }
        );
        assert_eq!(g.position(), 14);
        assert!(g.waiting());
        // the fresh hole gets its own full wait
        assert_eq!(g.admit(&[16], t + Duration::from_secs(15)).rows, 0);
        let a = g.admit(&[16], t + Duration::from_secs(20));
        assert_eq!(
            a,
            Admitted {
                rows: 1,
                skipped: vec![(15, 15)]
            }
        );
        assert_eq!(g.position(), 16);
    }

    #[test]
    fn an_empty_read_keeps_the_hole_clock_running() {
        let mut g = guard(0);
        let t = Instant::now();
        assert_eq!(g.admit(&[2], t).rows, 0);
        assert_eq!(g.admit(&[], t + Duration::from_secs(5)).rows, 0);
        assert!(g.waiting());
        assert_eq!(g.admit(&[2], t + Duration::from_secs(10)).rows, 1);
    }
}
