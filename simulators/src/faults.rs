//! Fault knobs. Set from the config file, replaced at run time through the
//! admin endpoint or `SimHandle::set_faults`. Every random decision is
//! drawn from the connection's seeded RNG, so a run replays with `--seed`.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::rng::Rng;

/// Uniform delay range applied to each response.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayRange {
    #[serde(with = "humantime_serde")]
    pub min: Duration,
    #[serde(with = "humantime_serde")]
    pub max: Duration,
}

impl DelayRange {
    pub fn sample(&self, rng: &mut Rng) -> Duration {
        if self.max <= self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_nanos() as u64;
        self.min + Duration::from_nanos(rng.below(span + 1))
    }
}

/// Answer a chosen status for a fraction of submits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorInjection {
    /// Protocol status written in the submit response (CMPP Result, SMGP
    /// Status, SGIP Result).
    pub code: u32,
    /// Fraction of submits, 0.0–1.0.
    pub fraction: f64,
}

/// Split outbound bytes into random chunks of 1..=`max_chunk` bytes, each
/// its own write: clients see partial frames and several frames per read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FragmentWrites {
    pub max_chunk: usize,
}

/// Every fault knob. All default to "off".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Delay each response by a duration drawn from this range. Scheduled
    /// per response; the reader is never blocked.
    pub response_delay: Option<DelayRange>,
    /// Fraction of submit responses never sent.
    pub drop_response: f64,
    /// Answer an error code for a fraction of submits.
    pub error: Option<ErrorInjection>,
    /// Close the connection after this many PDUs received on it.
    pub disconnect_after_pdus: Option<u64>,
    /// Close each connection this long after its login.
    #[serde(with = "humantime_serde")]
    pub disconnect_every: Option<Duration>,
    /// Send the report immediately, before the submit response.
    pub report_before_response: bool,
    /// Send reports on another connection of the same account when there
    /// is one.
    pub report_on_other_connection: bool,
    /// Write in random small chunks (partial and sticky packets).
    pub fragment_writes: Option<FragmentWrites>,
}

impl Faults {
    pub fn validate(&self) -> Result<(), String> {
        let frac = |name: &str, f: f64| {
            if (0.0..=1.0).contains(&f) {
                Ok(())
            } else {
                Err(format!("faults.{name}: {f} is not a fraction in 0..=1"))
            }
        };
        frac("drop_response", self.drop_response)?;
        if let Some(e) = &self.error {
            frac("error.fraction", e.fraction)?;
        }
        if let Some(d) = &self.response_delay {
            if d.max < d.min {
                return Err("faults.response_delay: max < min".into());
            }
        }
        if let Some(f) = &self.fragment_writes {
            if f.max_chunk == 0 {
                return Err("faults.fragment_writes.max_chunk is 0".into());
            }
        }
        if self.disconnect_after_pdus == Some(0) {
            return Err("faults.disconnect_after_pdus is 0".into());
        }
        if self.disconnect_every == Some(Duration::ZERO) {
            return Err("faults.disconnect_every is 0".into());
        }
        Ok(())
    }

    pub fn is_quiet(&self) -> bool {
        *self == Faults::default()
    }
}

/// What a corrupt frame on demand looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CorruptKind {
    /// A header declaring a length below the header size: a framing error.
    #[default]
    Length,
    /// Random bytes.
    Garbage,
    /// A well-framed DELIVER whose body is truncated: a body decode error.
    Body,
}

/// The live fault set, replaced atomically; connections re-read it when
/// the generation changes.
#[derive(Debug)]
pub struct FaultState {
    current: RwLock<Arc<Faults>>,
    generation: AtomicU64,
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        FaultState {
            current: RwLock::new(Arc::new(faults)),
            generation: AtomicU64::new(0),
        }
    }

    pub fn get(&self) -> Arc<Faults> {
        self.current.read().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn set(&self, faults: Faults) -> Result<(), String> {
        faults.validate()?;
        if let Ok(mut g) = self.current.write() {
            *g = Arc::new(faults);
        }
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A connection's cached view of the faults.
pub(crate) struct FaultView {
    pub faults: Arc<Faults>,
    generation: u64,
}

impl FaultView {
    pub fn new(state: &FaultState) -> Self {
        FaultView {
            generation: state.generation(),
            faults: state.get(),
        }
    }

    /// Cheap check (one atomic load) once per batch.
    pub fn refresh(&mut self, state: &FaultState) {
        let g = state.generation();
        if g != self.generation {
            self.generation = g;
            self.faults = state.get();
        }
    }
}
