//! Fault injection and counting: the faults in force, the seeded draws of
//! latency jitter and corrupted bits, and the per-kind counters.

use super::{DiskFaults, DiskStats, Errno};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    base: Instant,
    /// Nanoseconds after `base` of the last request.
    last: AtomicU64,
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
            base: Instant::now(),
            last: AtomicU64::new(0),
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
        let since = self.base.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
        self.last.fetch_max(since, Ordering::Relaxed);
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

    /// When the last request arrived.
    pub fn last_request(&self) -> Instant {
        self.base + Duration::from_nanos(self.last.load(Ordering::Relaxed))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_apply_by_class_and_are_counted() {
        let inj = Injector::new(1);
        assert_eq!(inj.enter("write", Class::Write), None);
        inj.set(DiskFaults {
            write: Some(Errno::Enospc),
            fsync: Some(Errno::Eio),
            ..DiskFaults::default()
        });
        assert_eq!(inj.enter("write", Class::Write), Some(libc::ENOSPC));
        assert_eq!(inj.enter("fsyncdir", Class::Sync), Some(libc::EIO));
        assert_eq!(inj.enter("read", Class::Read), None);
        assert_eq!(inj.enter("rename", Class::Other), None);
        let s = inj.stats();
        assert_eq!(s.ops.get("write"), Some(&2));
        assert_eq!(s.failed.get("write"), Some(&1));
        assert_eq!(s.failed.get("fsyncdir"), Some(&1));
        assert_eq!(s.failed.get("read"), None);
    }

    #[test]
    fn jitter_keeps_at_least_latency_minus_jitter_and_corruption_is_seeded() {
        let draws = |seed| {
            let inj = Injector::new(seed);
            inj.set(DiskFaults {
                latency: Some(Duration::from_micros(300)),
                jitter: Some(Duration::from_micros(200)),
                ..DiskFaults::default()
            });
            (0..20)
                .map(|_| {
                    let t = Instant::now();
                    inj.enter("getattr", Class::Other);
                    t.elapsed()
                })
                .collect::<Vec<_>>()
        };
        let d = draws(5);
        assert!(d.iter().all(|x| *x >= Duration::from_micros(100)), "{d:?}");
        let inj = Injector::new(5);
        inj.set(DiskFaults {
            corrupt: Some(1.0),
            ..DiskFaults::default()
        });
        let mut a = vec![0u8; 64];
        inj.corrupt(&mut a);
        let inj2 = Injector::new(5);
        inj2.set(DiskFaults {
            corrupt: Some(1.0),
            ..DiskFaults::default()
        });
        let mut b = vec![0u8; 64];
        inj2.corrupt(&mut b);
        assert_eq!(a, b, "the same seed flips the same bit");
        assert_eq!(a.iter().map(|x| x.count_ones()).sum::<u32>(), 1);
        assert_eq!(inj.stats().corrupted, 1);
    }
}
