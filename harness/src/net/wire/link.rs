//! One directed pair of wire endpoints: whether it is cut, how it is
//! degraded, and what it did to each packet. Pure decisions from a seeded
//! random stream; no sockets, no clock reads (the caller passes `now`).

use super::stats::{Fidelity, PairCounters};
use crate::plan::{Degradation, Distribution};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, Instant};

/// The longest a bandwidth cap may queue a packet before dropping it, like
/// a router's finite buffer.
pub(super) const QUEUE_LIMIT: Duration = Duration::from_millis(500);

/// What happens to one packet.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Fate {
    /// Discarded: `why` says by what.
    Discard(Discard),
    /// Delivered `copies` times (2 when duplicated) at `due` (`None`: now),
    /// with the payload bit `flip` flipped when corrupted.
    Deliver {
        due: Option<Instant>,
        copies: u8,
        flip: Option<usize>,
    },
}

/// Why a packet was discarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Discard {
    /// The pair is cut (a partition).
    Partition,
    /// `loss` chose it.
    Loss,
    /// The bandwidth cap's queue was full.
    Overflow,
}

/// State of one directed pair.
pub(super) struct Link {
    pub cut: bool,
    pub degradation: Option<Degradation>,
    rng: ChaCha8Rng,
    /// When the bandwidth cap lets the next packet start.
    next_free: Option<Instant>,
    pub counters: PairCounters,
    /// What the current degradation really did (`None` when undegraded).
    pub fidelity: Option<Fidelity>,
    /// Finished fidelity windows, oldest first.
    pub past: Vec<Fidelity>,
    /// Which degradation window a delayed packet belongs to, so its delay is
    /// only counted against the window it was sent under.
    pub window: u64,
}

impl Link {
    pub fn new(seed: u64) -> Link {
        Link {
            cut: false,
            degradation: None,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_free: None,
            counters: PairCounters::default(),
            fidelity: None,
            past: Vec::new(),
            window: 0,
        }
    }

    /// Sets (or with `None` removes) the degradation; a new fidelity window
    /// starts with it.
    pub fn degrade(&mut self, d: Option<Degradation>, elapsed: Duration) {
        if let Some(mut f) = self.fidelity.take() {
            f.until_s = Some(elapsed.as_secs_f64());
            self.past.push(f);
        }
        self.window += 1;
        self.next_free = None;
        self.fidelity = d.as_ref().map(|d| Fidelity::new(d, elapsed));
        self.degradation = d;
    }

    /// Decides the fate of one packet of `len` bytes whose payload (after
    /// the IP header) is `payload` bytes long, arriving at `now`.
    pub fn decide(&mut self, now: Instant, len: usize, payload: usize) -> Fate {
        self.counters.packets += 1;
        self.counters.bytes += len as u64;
        if self.cut {
            self.counters.partitioned += 1;
            return Fate::Discard(Discard::Partition);
        }
        let Some(d) = self.degradation.as_ref() else {
            return Fate::Deliver {
                due: None,
                copies: 1,
                flip: None,
            };
        };
        if let Some(f) = self.fidelity.as_mut() {
            f.packets += 1;
        }
        if d.loss.is_some_and(|p| self.rng.random_bool(p)) {
            self.counters.lost += 1;
            if let Some(f) = self.fidelity.as_mut() {
                f.lost += 1;
            }
            return Fate::Discard(Discard::Loss);
        }
        let mut delay = sample_delay(&mut self.rng, d);
        if let Some(rate) = d.bandwidth {
            let start = self.next_free.map_or(now, |t| t.max(now));
            if start.saturating_duration_since(now) > QUEUE_LIMIT {
                self.counters.overflowed += 1;
                return Fate::Discard(Discard::Overflow);
            }
            let send = Duration::from_secs_f64(len as f64 / rate as f64);
            self.next_free = Some(start + send);
            delay += (start + send) - now;
        }
        let reordered = d.reorder.is_some_and(|p| self.rng.random_bool(p));
        // Each packet's delay is drawn on its own (as netem does), so jitter
        // alone reorders packets whose delays cross; `reorder` holds chosen
        // packets back further.
        let mut due = (!delay.is_zero()).then(|| now + delay);
        if reordered {
            self.counters.reordered += 1;
            due = Some(due.unwrap_or(now) + d.gap.unwrap_or(Degradation::DEFAULT_GAP));
        }
        if due.is_some() {
            self.counters.delayed += 1;
        }
        let copies = if d.duplicate.is_some_and(|p| self.rng.random_bool(p)) {
            self.counters.duplicated += 1;
            2
        } else {
            1
        };
        let flip = if payload > 0 && d.corrupt.is_some_and(|p| self.rng.random_bool(p)) {
            self.counters.corrupted += 1;
            Some(self.rng.random_range(0..payload * 8))
        } else {
            None
        };
        Fate::Deliver { due, copies, flip }
    }
}

/// `latency` with `jitter` drawn from the distribution, never below zero.
fn sample_delay(rng: &mut ChaCha8Rng, d: &Degradation) -> Duration {
    let Some(latency) = d.latency else {
        return Duration::ZERO;
    };
    let Some(jitter) = d.jitter.filter(|j| !j.is_zero()) else {
        return latency;
    };
    let spread = match d.distribution {
        Distribution::Uniform => rng.random_range(-1.0..=1.0),
        Distribution::Normal => standard_normal(rng),
    };
    let secs = latency.as_secs_f64() + spread * jitter.as_secs_f64();
    Duration::from_secs_f64(secs.max(0.0))
}

/// One draw of N(0, 1) (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn degraded(d: Degradation) -> Link {
        let mut l = Link::new(7);
        l.degrade(Some(d), Duration::ZERO);
        l
    }

    #[test]
    fn an_undegraded_link_delivers_at_once_and_a_cut_one_discards() {
        let now = Instant::now();
        let mut l = Link::new(1);
        assert_eq!(
            l.decide(now, 100, 80),
            Fate::Deliver {
                due: None,
                copies: 1,
                flip: None
            }
        );
        l.cut = true;
        assert_eq!(l.decide(now, 100, 80), Fate::Discard(Discard::Partition));
        assert_eq!(l.counters.packets, 2);
        assert_eq!(l.counters.partitioned, 1);
    }

    #[test]
    fn loss_duplicate_reorder_and_corrupt_happen_near_their_probability() {
        let now = Instant::now();
        let mut l = degraded(Degradation {
            loss: Some(0.2),
            duplicate: Some(0.1),
            reorder: Some(0.05),
            corrupt: Some(0.01),
            ..Degradation::default()
        });
        let n = 20_000u64;
        for _ in 0..n {
            let _ = l.decide(now, 100, 80);
        }
        let c = l.counters;
        let ratio = |x: u64, of: u64| x as f64 / of as f64;
        assert!((ratio(c.lost, n) - 0.2).abs() < 0.02, "{c:?}");
        let kept = n - c.lost;
        assert!((ratio(c.duplicated, kept) - 0.1).abs() < 0.02, "{c:?}");
        assert!((ratio(c.reordered, kept) - 0.05).abs() < 0.01, "{c:?}");
        assert!((ratio(c.corrupted, kept) - 0.01).abs() < 0.005, "{c:?}");
        let f = l.fidelity.as_ref().expect("window");
        assert_eq!((f.packets, f.lost), (n, c.lost));
    }

    #[test]
    fn the_same_seed_makes_the_same_decisions() {
        let d = Degradation {
            loss: Some(0.3),
            latency: Some(Duration::from_millis(10)),
            jitter: Some(Duration::from_millis(5)),
            distribution: Distribution::Normal,
            ..Degradation::default()
        };
        let now = Instant::now();
        let run = || {
            let mut l = degraded(d.clone());
            (0..200).map(|_| l.decide(now, 64, 40)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn jitter_stays_around_latency() {
        let now = Instant::now();
        let mut l = degraded(Degradation {
            latency: Some(Duration::from_millis(20)),
            jitter: Some(Duration::from_millis(5)),
            ..Degradation::default()
        });
        let mut delays: Vec<Duration> = (0..1000)
            .map(|_| match l.decide(now, 64, 40) {
                Fate::Deliver { due: Some(due), .. } => due - now,
                other => panic!("a delayed packet was not delivered: {other:?}"),
            })
            .collect();
        delays.sort();
        assert!(delays[0] >= Duration::from_millis(15), "{:?}", delays[0]);
        assert!(
            delays[999] <= Duration::from_millis(25),
            "{:?}",
            delays[999]
        );
        let median = delays[500];
        assert!(
            median > Duration::from_millis(19) && median < Duration::from_millis(21),
            "{median:?}"
        );
    }

    #[test]
    fn bandwidth_spaces_packets_and_drops_past_the_queue() {
        let now = Instant::now();
        // 1000 bytes per second: each 100-byte packet takes 100 ms.
        let mut l = degraded(Degradation {
            bandwidth: Some(1000),
            ..Degradation::default()
        });
        let dues: Vec<Duration> = (0..5)
            .map(|_| match l.decide(now, 100, 80) {
                Fate::Deliver { due: Some(d), .. } => d - now,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(dues[0], Duration::from_millis(100));
        assert_eq!(dues[4], Duration::from_millis(500));
        // The queue now holds 500 ms: the next ones overflow.
        for _ in 0..3 {
            let _ = l.decide(now, 100, 80);
        }
        assert!(l.counters.overflowed >= 1, "{:?}", l.counters);
    }

    #[test]
    fn a_new_degradation_closes_the_last_fidelity_window() {
        let mut l = degraded(Degradation {
            loss: Some(0.5),
            ..Degradation::default()
        });
        l.degrade(None, Duration::from_secs(3));
        assert!(l.fidelity.is_none());
        assert_eq!(l.past.len(), 1);
        assert_eq!(l.past[0].until_s, Some(3.0));
    }
}
