//! Pacing: operations are released at the plan's rate for the whole
//! workload, not per client, and any free client takes the next one. A
//! client stuck on a paused node then costs no throughput as long as other
//! clients are free (Jepsen's processes share one generator the same way).
//!
//! Owns the release schedule only; never sends a request itself.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The shortest interval between two releases: at high rates several
/// operations go out per tick instead of one timer wake-up per operation.
const TICK: Duration = Duration::from_millis(2);

/// Releases operations at `rate` per second until dropped.
pub(super) struct Pacer {
    permits: Arc<Semaphore>,
    task: tokio::task::JoinHandle<()>,
}

impl Pacer {
    /// `backlog` bounds how many released operations may wait for a free
    /// client; beyond it, releases are skipped (the clients are all busy:
    /// the cluster does not keep up).
    pub(super) fn start(rate: f64, backlog: usize) -> Pacer {
        let permits = Arc::new(Semaphore::new(0));
        let task = tokio::spawn(release(permits.clone(), rate.max(0.001), backlog.max(1)));
        Pacer { permits, task }
    }

    /// What clients wait on: one permit per operation.
    pub(super) fn permits(&self) -> Arc<Semaphore> {
        self.permits.clone()
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.task.abort();
        // Wakes every waiting client; they see the semaphore closed and stop.
        self.permits.close();
    }
}

async fn release(permits: Arc<Semaphore>, rate: f64, backlog: usize) {
    let period = Duration::from_secs_f64(1.0 / rate).max(TICK);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    // Operations owed but not yet released (fractions carry over).
    let mut credit = 1.0f64;
    loop {
        ticker.tick().await;
        let now = Instant::now();
        credit += rate * now.duration_since(last).as_secs_f64();
        last = now;
        let due = credit.floor();
        credit -= due;
        let room = backlog.saturating_sub(permits.available_permits());
        let n = (due as usize).min(room);
        if n > 0 {
            permits.add_permits(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn releases_the_rate_and_caps_the_backlog() {
        let pacer = Pacer::start(1000.0, 50);
        let permits = pacer.permits();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // 100 released, nobody took any: the backlog caps what waits.
        assert_eq!(permits.available_permits(), 50);
        let mut taken = 50;
        permits.acquire_many(50).await.expect("open").forget();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(500) {
            permits.acquire().await.expect("open").forget();
            taken += 1;
        }
        // 500 ms at 1000/s after the backlog, within a tick's worth.
        assert!((545..=552).contains(&taken), "{taken}");
        drop(pacer);
        assert!(permits.acquire().await.is_err());
    }
}
