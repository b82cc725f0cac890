//! Fault injection and counting: the faults in force, the seeded draws of
//! latency jitter and corrupted bits, and the per-kind counters.

use super::{DiskFaults, DiskStats, Errno};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::Mutex;
use std::time::Duration;

/// The class of an operation, for which fault applies to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Read,
    Write,
    Sync,
    Other,
}

/// Faults and counters shared by every FUSE worker thread.
#[derive(Debug)]
pub struct Injector {
    faults: Mutex<DiskFaults>,
    stats: Mutex<DiskStats>,
    rng: Mutex<ChaCha8Rng>,
}

fn bump(map: &mut std::collections::BTreeMap<String, u64>, kind: &str) {
    match map.get_mut(kind) {
        Some(n) => *n += 1,
        None => {
            map.insert(kind.to_string(), 1);
        }
    }
}

pub fn errno_of(e: Errno) -> i32 {
    match e {
        Errno::Eio => libc::EIO,
        Errno::Enospc => libc::ENOSPC,
    }
}

impl Injector {
    pub fn new(seed: u64) -> Injector {
        Injector {
            faults: Mutex::new(DiskFaults::default()),
            stats: Mutex::new(DiskStats::default()),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x6469_736b)),
        }
    }

    pub fn set(&self, faults: DiskFaults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
    }

    pub fn stats(&self) -> DiskStats {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn faults(&self) -> DiskFaults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts one operation of `kind`, sleeps its latency (on this worker
    /// thread), and returns the errno it must fail with, if any.
    pub fn enter(&self, kind: &str, class: Class) -> Option<i32> {
        let faults = self.faults();
        let failure = match class {
            Class::Read => faults.read,
            Class::Write => faults.write,
            Class::Sync => faults.fsync,
            Class::Other => None,
        };
        let delay = faults.latency.map(|base| match faults.jitter {
            Some(j) if !j.is_zero() => {
                let spread = j.as_nanos() as i128;
                let d: i128 = self
                    .rng
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .random_range(-spread..=spread);
                let total = base.as_nanos() as i128 + d;
                Duration::from_nanos(total.clamp(0, u64::MAX as i128) as u64)
            }
            Some(_) | None => base,
        });
        {
            let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
            bump(&mut s.ops, kind);
            if delay.is_some() {
                bump(&mut s.delayed, kind);
            }
            if failure.is_some() {
                bump(&mut s.failed, kind);
            }
        }
        if let Some(d) = delay {
            std::thread::sleep(d);
        }
        failure.map(errno_of)
    }

    /// With the `corrupt` probability, flips one seeded bit of `data`.
    pub fn corrupt(&self, data: &mut [u8]) {
        let Some(p) = self.faults().corrupt else {
            return;
        };
        if data.is_empty() || p <= 0.0 {
            return;
        }
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        if rng.random::<f64>() < p {
            let bit = rng.random_range(0..data.len() * 8);
            data[bit / 8] ^= 1 << (bit % 8);
            drop(rng);
            self.stats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .corrupted += 1;
        }
    }
}
