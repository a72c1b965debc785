//! Priority lanes per link: `otp`, `notify`, `marketing`.
//!
//! **Policy: strict priority for `otp`, weighted round robin between
//! `notify` and `marketing`.**
//!
//! * `otp` is small, interactive and latency-bound (a user is waiting for the
//!   code), so it always goes first: an otp message waits behind at most the
//!   messages already in the link's window, never behind any queue. Strict
//!   priority cannot starve the others in practice because otp volume is tiny
//!   and is capped upstream by business rules.
//! * Between `notify` and `marketing` strict priority *would* starve
//!   marketing for as long as notifications keep coming (a bill run), which
//!   turns into expired campaigns. A weighted share (default 4 notify : 1
//!   marketing when both are backlogged) keeps notify fast and marketing
//!   moving; an idle lane's share goes to the other.
//!
//! Lanes are bounded: the backlog itself stays in the store; a lane holds
//! only what the dispatcher has claimed for this link, so memory is bounded
//! whatever the backlog.

use std::collections::VecDeque;

use super::types::Priority;

#[derive(Debug, Clone)]
pub struct Lanes<T> {
    queues: [VecDeque<T>; 3],
    capacity: usize,
    notify_weight: u32,
    marketing_weight: u32,
    /// Credits left in the current notify/marketing round.
    credits: [u32; 2],
}

impl<T> Lanes<T> {
    /// `capacity` per lane; weights must be ≥ 1 (clamped).
    pub fn new(capacity: usize, notify_weight: u32, marketing_weight: u32) -> Self {
        let nw = notify_weight.max(1);
        let mw = marketing_weight.max(1);
        Lanes {
            queues: [VecDeque::new(), VecDeque::new(), VecDeque::new()],
            capacity: capacity.max(1),
            notify_weight: nw,
            marketing_weight: mw,
            credits: [nw, mw],
        }
    }

    /// Items lane `p` can still take.
    pub fn room(&self, p: Priority) -> usize {
        self.capacity.saturating_sub(self.queues[p.index()].len())
    }

    pub fn has_room(&self, p: Priority) -> bool {
        self.queues[p.index()].len() < self.capacity
    }

    /// Queues `item`; gives it back if the lane is full.
    pub fn push(&mut self, p: Priority, item: T) -> Result<(), T> {
        if !self.has_room(p) {
            return Err(item);
        }
        self.queues[p.index()].push_back(item);
        Ok(())
    }

    /// Puts an item back at the head of its lane (a dispatch that could not
    /// go out keeps its place). Ignores capacity.
    pub fn push_front(&mut self, p: Priority, item: T) {
        self.queues[p.index()].push_front(item);
    }

    pub fn len(&self, p: Priority) -> usize {
        self.queues[p.index()].len()
    }

    pub fn total(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// The next item per the policy in the module docs.
    pub fn pop(&mut self) -> Option<(Priority, T)> {
        if let Some(t) = self.queues[Priority::Otp.index()].pop_front() {
            return Some((Priority::Otp, t));
        }
        let n_ready = !self.queues[Priority::Notify.index()].is_empty();
        let m_ready = !self.queues[Priority::Marketing.index()].is_empty();
        let pick = match (n_ready, m_ready) {
            (false, false) => return None,
            (true, false) => Priority::Notify,
            (false, true) => Priority::Marketing,
            (true, true) => {
                if self.credits == [0, 0] {
                    self.credits = [self.notify_weight, self.marketing_weight];
                }
                if self.credits[0] > 0 {
                    self.credits[0] -= 1;
                    Priority::Notify
                } else {
                    self.credits[1] -= 1;
                    Priority::Marketing
                }
            }
        };
        self.queues[pick.index()].pop_front().map(|t| (pick, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Priority::*;

    #[test]
    fn otp_never_waits_behind_marketing_backlog() {
        let mut l = Lanes::new(100_000, 4, 1);
        for i in 0..50_000 {
            l.push(Marketing, i).unwrap();
        }
        l.pop();
        l.push(Otp, -1).unwrap();
        assert_eq!(l.pop(), Some((Otp, -1)));
    }

    #[test]
    fn notify_and_marketing_share_by_weight() {
        let mut l = Lanes::new(1000, 4, 1);
        for i in 0..100 {
            l.push(Notify, i).unwrap();
            l.push(Marketing, i).unwrap();
        }
        let first10: Vec<Priority> = (0..10).map(|_| l.pop().unwrap().0).collect();
        assert_eq!(
            first10,
            vec![
                Notify, Notify, Notify, Notify, Marketing, Notify, Notify, Notify, Notify,
                Marketing
            ]
        );
    }

    #[test]
    fn idle_lane_gives_its_share_away() {
        let mut l = Lanes::new(10, 4, 1);
        for i in 0..5 {
            l.push(Marketing, i).unwrap();
        }
        let got: Vec<i32> = std::iter::from_fn(|| l.pop().map(|x| x.1)).collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn lanes_are_bounded_and_fifo() {
        let mut l = Lanes::new(2, 1, 1);
        l.push(Notify, 1).unwrap();
        l.push(Notify, 2).unwrap();
        assert_eq!(l.push(Notify, 3), Err(3));
        assert!(l.has_room(Otp));
        l.push_front(Notify, 0);
        assert_eq!(l.pop(), Some((Notify, 0)));
        assert_eq!(l.pop(), Some((Notify, 1)));
        assert_eq!(l.total(), 1);
    }
}
