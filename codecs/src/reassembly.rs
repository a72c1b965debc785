//! Reassembly of concatenated MO messages (long-sms.md §3), sans-IO.
//!
//! Segments arrive as separate DELIVERs, in any order, possibly repeated.
//! [`Reassembler`] collects them per (caller key, reference, total) and
//! hands back the payloads in `seq` order once all are in. The caller's key
//! is typically (sender number, receiving SP number / service code). Time is
//! passed in: the caller arms a timer for [`Reassembler::poll_timeout`] and
//! calls [`Reassembler::expire`] when it fires.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::udh::{self, Concat, ConcatRef, UdhError};

/// Splits a segment's content into its concatenation element and payload.
///
/// When `udhi_flag` says no header is present (see [`udh::udhi_set`]: bit 0
/// or bit 6), the whole content is the payload. Otherwise the header is
/// parsed and stripped; the payload is a zero-copy slice of `content`.
/// A header without a concatenation element yields `(None, payload)`.
pub fn segment_of(udhi_flag: u8, content: &Bytes) -> Result<(Option<Concat>, Bytes), UdhError> {
    if !udh::udhi_set(udhi_flag) {
        return Ok((None, content.clone()));
    }
    let h = udh::parse(content)?;
    Ok((h.concat, content.slice(h.header_len..)))
}

/// Joins payloads in order; zero-copy for a single part.
pub fn join(parts: &[Bytes]) -> Bytes {
    match parts {
        [] => Bytes::new(),
        [one] => one.clone(),
        _ => {
            let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
            for p in parts {
                out.extend_from_slice(p);
            }
            out.freeze()
        }
    }
}

/// What [`Reassembler::push`] did with a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed<K> {
    /// The last missing segment arrived: every payload in `seq` order
    /// (`parts.len() == total`). Decode [`join`]`(&parts)` with the
    /// message's coding. A `total` of 1 completes at once.
    Complete(Vec<Bytes>),
    /// Stored; `received` of `total` segments are in. `evicted` is the set
    /// dropped to make room when `max_sets` was reached.
    Pending {
        received: u8,
        total: u8,
        evicted: Option<Expired<K>>,
    },
    /// This `seq` was already held for the set; the first copy is kept.
    Duplicate,
    /// The element is unusable (total 0, seq 0 or above total, TS 23.040):
    /// treat the payload as a message of its own.
    Ignored,
}

/// Why an incomplete set was given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryReason {
    /// Its deadline passed.
    Timeout,
    /// It was the oldest set when `max_sets` was reached.
    Evicted,
}

/// An incomplete set given back by [`Reassembler::expire`] or eviction:
/// what arrived, so the caller can deliver it or drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired<K> {
    pub key: K,
    pub reference: ConcatRef,
    pub total: u8,
    /// Index `seq - 1`; `None` for segments that never arrived.
    pub parts: Vec<Option<Bytes>>,
    pub reason: ExpiryReason,
}

impl<K> Expired<K> {
    /// Number of segments that arrived.
    pub fn received(&self) -> usize {
        self.parts.iter().filter(|p| p.is_some()).count()
    }

    /// The `seq` numbers that never arrived.
    pub fn missing(&self) -> Vec<u8> {
        (1..=self.total)
            .filter(|&s| self.parts[s as usize - 1].is_none())
            .collect()
    }

    /// The payloads that arrived, in `seq` order, gaps skipped.
    pub fn arrived(&self) -> Vec<Bytes> {
        self.parts.iter().flatten().cloned().collect()
    }
}

const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SetKey<K> {
    key: K,
    reference: ConcatRef,
    total: u8,
}

#[derive(Debug, Clone)]
struct Set {
    parts: Vec<Option<Bytes>>,
    received: u8,
    deadline: Instant,
    id: u64,
}

/// Collects MO segments until a message is complete. Sans-IO: no clock is
/// read, `now` is passed in.
///
/// A set is given back as expired `ttl` after its most recent new segment
/// (SMSGate keeps fragments 2 hours). At most `max_sets` incomplete sets are
/// held; starting one more evicts the set whose deadline is nearest (the
/// least recently progressed) and returns it in [`Pushed::Pending`].
#[derive(Debug, Clone)]
pub struct Reassembler<K: Hash + Eq + Clone> {
    ttl: Duration,
    max_sets: usize,
    sets: HashMap<SetKey<K>, Set>,
    deadlines: BTreeMap<(Instant, u64), SetKey<K>>,
    next_id: u64,
}

impl<K: Hash + Eq + Clone> Reassembler<K> {
    /// `max_sets` is at least 1; `ttl` is capped at 100 years.
    pub fn new(ttl: Duration, max_sets: usize) -> Self {
        Reassembler {
            ttl: ttl.min(MAX_TTL),
            max_sets: max_sets.max(1),
            sets: HashMap::new(),
            deadlines: BTreeMap::new(),
            next_id: 0,
        }
    }

    /// Adds one segment. `payload` is the content after the UDH (see
    /// [`segment_of`]).
    pub fn push(&mut self, key: K, concat: Concat, payload: Bytes, now: Instant) -> Pushed<K> {
        if !concat.is_usable() {
            return Pushed::Ignored;
        }
        if concat.total == 1 {
            return Pushed::Complete(vec![payload]);
        }
        let total = concat.total;
        let idx = concat.seq as usize - 1;
        let sk = SetKey {
            key,
            reference: concat.reference,
            total,
        };
        // Cannot overflow in practice (ttl is capped); never panic if it does.
        let deadline = now.checked_add(self.ttl).unwrap_or(now);
        if let Some(set) = self.sets.get_mut(&sk) {
            if set.parts[idx].is_some() {
                return Pushed::Duplicate;
            }
            set.parts[idx] = Some(payload);
            set.received += 1;
            let old = (set.deadline, set.id);
            if set.received == total {
                self.deadlines.remove(&old);
                let parts = self
                    .sets
                    .remove(&sk)
                    .map(|s| s.parts.into_iter().flatten().collect())
                    .unwrap_or_default();
                return Pushed::Complete(parts);
            }
            let received = set.received;
            set.deadline = deadline;
            let new = (deadline, set.id);
            if old != new {
                self.deadlines.remove(&old);
                self.deadlines.insert(new, sk);
            }
            return Pushed::Pending {
                received,
                total,
                evicted: None,
            };
        }
        let evicted = if self.sets.len() >= self.max_sets {
            self.pop_first(ExpiryReason::Evicted)
        } else {
            None
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut parts = vec![None; total as usize];
        parts[idx] = Some(payload);
        self.deadlines.insert((deadline, id), sk.clone());
        self.sets.insert(
            sk,
            Set {
                parts,
                received: 1,
                deadline,
                id,
            },
        );
        Pushed::Pending {
            received: 1,
            total,
            evicted,
        }
    }

    /// The earliest deadline of an incomplete set, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.keys().next().map(|&(t, _)| t)
    }

    /// Gives back every set whose deadline is at or before `now`, earliest
    /// first.
    pub fn expire(&mut self, now: Instant) -> Vec<Expired<K>> {
        let mut out = Vec::new();
        while self.poll_timeout().is_some_and(|t| t <= now) {
            match self.pop_first(ExpiryReason::Timeout) {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Number of incomplete sets held.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    fn pop_first(&mut self, reason: ExpiryReason) -> Option<Expired<K>> {
        let (_, sk) = self.deadlines.pop_first()?;
        let set = self.sets.remove(&sk)?;
        Some(Expired {
            key: sk.key,
            reference: sk.reference,
            total: sk.total,
            parts: set.parts,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(r: u8, total: u8, seq: u8) -> Concat {
        Concat {
            reference: ConcatRef::Eight(r),
            total,
            seq,
        }
    }

    #[test]
    fn out_of_order_and_duplicate() {
        let t = Instant::now();
        let mut r = Reassembler::new(Duration::from_secs(10), 8);
        let p = |s: &'static str| Bytes::from_static(s.as_bytes());
        assert!(matches!(
            r.push("a", c(1, 3, 3), p("c"), t),
            Pushed::Pending { received: 1, .. }
        ));
        assert_eq!(r.push("a", c(1, 3, 3), p("x"), t), Pushed::Duplicate);
        assert!(matches!(
            r.push("a", c(1, 3, 1), p("a"), t),
            Pushed::Pending { received: 2, .. }
        ));
        assert_eq!(
            r.push("a", c(1, 3, 2), p("b"), t),
            Pushed::Complete(vec![p("a"), p("b"), p("c")])
        );
        assert!(r.is_empty());
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.push("a", c(1, 0, 1), p("a"), t), Pushed::Ignored);
        assert_eq!(r.push("a", c(1, 2, 3), p("a"), t), Pushed::Ignored);
    }

    #[test]
    fn segment_of_strips_header() {
        let content = Bytes::from_static(&[5, 0, 3, 0x2a, 2, 1, b'h', b'i']);
        let (concat, payload) = segment_of(1, &content).unwrap();
        assert_eq!(concat, Some(c(0x2a, 2, 1)));
        assert_eq!(&payload[..], b"hi");
        let (concat, payload) = segment_of(0, &content).unwrap();
        assert_eq!(concat, None);
        assert_eq!(payload, content);
        assert_eq!(segment_of(0x40, &Bytes::new()), Err(UdhError::Empty));
    }
}
