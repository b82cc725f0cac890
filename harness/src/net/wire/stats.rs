//! What the wire did, per directed pair, and how faithfully each
//! degradation was carried out: the numbers a report shows so that "did my
//! fault really happen?" has an answer.

use crate::plan::Degradation;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Counters of one directed pair of endpoints since the wire started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PairCounters {
    /// Packets the source sent towards the destination.
    pub packets: u64,
    pub bytes: u64,
    /// Discarded because the pair was cut.
    pub partitioned: u64,
    /// Discarded by `loss`.
    pub lost: u64,
    /// Discarded because a bandwidth cap's queue was full.
    pub overflowed: u64,
    /// Held for a while (latency, jitter, bandwidth or reorder).
    pub delayed: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
}

/// One degradation window of one pair: what the plan asked, what the wire
/// did.
#[derive(Clone, Debug)]
pub struct Fidelity {
    pub from_s: f64,
    /// `None` while still in force.
    pub until_s: Option<f64>,
    pub loss: Option<f64>,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub bandwidth: Option<u64>,
    pub packets: u64,
    pub lost: u64,
    /// Added delay of each delivered packet (read to written), microseconds
    /// (`None` only if the histogram could not be made).
    pub delay_us: Option<Histogram<u64>>,
}

impl Fidelity {
    pub(super) fn new(d: &Degradation, elapsed: std::time::Duration) -> Fidelity {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        Fidelity {
            from_s: elapsed.as_secs_f64(),
            until_s: None,
            loss: d.loss,
            latency_ms: d.latency.map(ms),
            jitter_ms: d.jitter.map(ms),
            bandwidth: d.bandwidth,
            packets: 0,
            lost: 0,
            delay_us: new_histogram(),
        }
    }

    pub(super) fn record_delay(&mut self, us: u64) {
        if let Some(h) = self.delay_us.as_mut() {
            let _ = h.record(us.max(1));
        }
    }

    /// The report's view of this window.
    pub fn record(&self, from: String, to: String) -> FidelityRecord {
        let q = |p: f64| {
            self.delay_us
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(p) as f64 / 1000.0)
        };
        FidelityRecord {
            from,
            to,
            from_s: self.from_s,
            until_s: self.until_s,
            loss: self.loss,
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            bandwidth: self.bandwidth,
            packets: self.packets,
            observed_loss: (self.packets > 0).then(|| self.lost as f64 / self.packets as f64),
            delay_p50_ms: q(0.5),
            delay_p99_ms: q(0.99),
        }
    }
}

/// 1 µs .. 1 h at 3 significant digits.
fn new_histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).ok()
}

/// One directed pair's counters as the report keeps them.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct PairRecord {
    /// A node name, or `rift` for rift's own end (the workload and probes).
    pub from: String,
    pub to: String,
    #[serde(flatten)]
    pub counters: PairCounters,
}

/// Configured against observed, for one degradation window of one pair.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct FidelityRecord {
    pub from: String,
    pub to: String,
    /// Seconds since the wire started.
    pub from_s: f64,
    pub until_s: Option<f64>,
    pub loss: Option<f64>,
    pub latency_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
    pub bandwidth: Option<u64>,
    /// Packets that met the degradation.
    pub packets: u64,
    pub observed_loss: Option<f64>,
    /// Added delay of delivered packets (milliseconds).
    pub delay_p50_ms: Option<f64>,
    pub delay_p99_ms: Option<f64>,
}

/// What the capture wrote.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct CaptureRecord {
    /// Relative to the run directory.
    pub wire: String,
    pub dropped: String,
    pub packets: u64,
    pub bytes: u64,
    /// Set when capture stopped early (the limit, a full queue, a write
    /// error), saying why.
    pub note: Option<String>,
}

/// The wire's whole record for a report.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct WireStats {
    /// The run's /24, e.g. `198.18.7.0/24`.
    pub subnet: String,
    /// Every pair that carried or discarded a packet.
    pub pairs: Vec<PairRecord>,
    /// Every degradation window, in order of start.
    pub fidelity: Vec<FidelityRecord>,
    /// Packets that were not IPv4 to the run's subnet (discarded, never sent
    /// anywhere).
    pub foreign: u64,
    /// Packets the destination's device refused (its queue was full).
    pub undeliverable: u64,
    pub capture: Option<CaptureRecord>,
}
