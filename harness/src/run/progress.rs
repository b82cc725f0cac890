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

/// What the progress display shows besides counters.
#[derive(Clone, Default)]
pub struct Phase(Arc<Mutex<String>>);

impl Phase {
    pub fn set(&self, s: impl Into<String>) {
        if let Ok(mut g) = self.0.lock() {
            *g = s.into();
        }
    }
    pub fn get(&self) -> String {
        self.0.lock().map(|g| g.clone()).unwrap_or_default()
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
        let msg = format!(
            "{:>5.1}/{:.0}s  {:>6.0} ops/s  {} errors  {}",
            elapsed.as_secs_f64(),
            total.as_secs_f64(),
            rate,
            counters.errors(),
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
