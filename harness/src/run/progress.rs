//! Live progress: an indicatif bar on a terminal, plain lines every few
//! seconds elsewhere (CI logs). Reads shared counters; changes nothing.

use crate::workload::LiveCounters;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    Lines,
    Quiet,
}

/// What the progress display shows besides counters: the faults in force,
/// and whether some node is not expected to serve.
#[derive(Clone, Default)]
pub struct Phase(Arc<Mutex<(String, bool)>>);

impl Phase {
    pub fn set(&self, s: impl Into<String>) {
        if let Ok(mut g) = self.0.lock() {
            g.0 = s.into();
        }
    }

    /// The world as it now is: its label, and whether every node is
    /// expected to serve.
    pub fn set_world(&self, snap: Option<&crate::fault::Snapshot>) {
        if let Ok(mut g) = self.0.lock() {
            *g = match snap {
                Some(s) => (s.label.clone(), s.serving.len() < s.states.len()),
                None => (String::new(), false),
            };
        }
    }

    pub fn get(&self) -> String {
        self.0.lock().map(|g| g.0.clone()).unwrap_or_default()
    }

    /// Whether some node is not expected to serve right now.
    fn degraded(&self) -> bool {
        self.0.lock().map(|g| g.1).unwrap_or(false)
    }
}

/// Failed requests as the live display counts them, judged apart from the
/// rest. An approximation of the availability judge (which classifies each
/// request after the run by the node it went to and the recovery windows):
/// live, the counters do not say which node a request went to, so every
/// failure seen over a tick during which some node was not expected to
/// serve (or the tick before, while it recovers) is counted apart, and the
/// others as judged.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct LiveFailures {
    judged: u64,
    during_faults: u64,
    last_errors: u64,
    degraded_before: bool,
}

impl LiveFailures {
    fn tick(&mut self, errors: u64, degraded: bool) {
        let new = errors.saturating_sub(self.last_errors);
        self.last_errors = errors;
        if degraded || self.degraded_before {
            self.during_faults += new;
        } else {
            self.judged += new;
        }
        self.degraded_before = degraded;
    }

    fn text(&self) -> String {
        crate::report::failed_text(
            self.judged,
            self.during_faults,
            "during faults, most to nodes not expected to serve",
        )
    }
}

/// Runs until `stop` turns true; draws at most every 200 ms (bar) or 5 s (lines).
pub async fn show(
    mode: ProgressMode,
    plan: String,
    window: crate::workload::Window,
    counters: Arc<LiveCounters>,
    phase: Phase,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let origin = window.origin;
    let total = window.deadline.saturating_duration_since(origin);
    let bar_mode = match mode {
        ProgressMode::Quiet => return,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Lines => false,
    };
    let bar = bar_mode.then(|| {
        let bar = ProgressBar::with_draw_target(
            Some(total.as_millis() as u64),
            ProgressDrawTarget::stderr(),
        );
        let style = ProgressStyle::with_template("{prefix} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(plan.clone());
        bar
    });
    let tick = if bar_mode {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    let mut last = (Instant::now(), 0u64);
    let mut failures = LiveFailures::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = crate::workload::until_true(&mut stop) => break,
        }
        let now = Instant::now();
        let done = counters.total();
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
        last = (now, done);
        let elapsed = origin.elapsed().min(total);
        failures.tick(counters.errors(), phase.degraded());
        let msg = format!(
            "{:>5.1}/{:.0}s  {:>6.0} ops/s  {}  {}",
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            rate,
            failures.text(),
            phase.get()
        );
        match &bar {
            Some(b) => {
                b.set_position(elapsed.as_millis() as u64);
                b.set_message(msg);
            }
            None => {
                use std::io::Write as _;
                // A closed stderr must not stop the run.
                let _ = writeln!(std::io::stderr(), "[{plan}] {msg}");
            }
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_during_faults_are_counted_apart_from_judged_ones() {
        let mut f = LiveFailures::default();
        f.tick(3, false);
        assert_eq!(f.text(), "failed 3 judged");
        // A kill: failures from here on, and over the tick after the heal,
        // are counted apart.
        f.tick(50, true);
        f.tick(800, false);
        f.tick(804, false);
        assert_eq!((f.judged, f.during_faults), (7, 797));
        assert_eq!(
            f.text(),
            "failed 7 judged (+797 during faults, most to nodes not expected to serve)"
        );
    }
}
