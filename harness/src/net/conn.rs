//! One proxied connection: the dial to the target, the two byte pumps, and
//! the faults its link applies to them (hold, reset, delay, pace, stall).
//!
//! Never delivers a byte while its link is not `Pass`, and never turns a
//! socket error into anything but a closed or reset connection.

use super::proxy::{Dir, Link, LinkState};
use rand::Rng;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, timeout, Instant};

/// Chunk size of the pumps: large enough that bulk transfers cost few
/// syscalls, reused so the fast path allocates nothing per chunk.
const BUF: usize = 64 * 1024;
/// Chunks in flight inside a degraded pump (delay line), per direction.
const QUEUE: usize = 64;
/// The target is on loopback: it answers at once, refuses at once, or is
/// stopped (SIGSTOP); do not wait for it forever.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a pump, or the whole connection, ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// This direction saw end of stream and passed it on.
    Eof,
    /// Both directions ended cleanly.
    Closed,
    /// Reset both sides (SO_LINGER 0, then close).
    Reset,
    /// Go silent both ways until one side closes.
    Stall,
}

/// The dice a connection rolled under the current degradation.
struct Fate {
    /// 0 nothing, 1 reset, 2 stall.
    doom: AtomicU8,
    /// Degradation generation the dice were rolled for; generations start
    /// at 1 once a degradation is set.
    rolled: AtomicU64,
}

impl Fate {
    fn check(&self) -> Result<(), End> {
        match self.doom.load(Ordering::Acquire) {
            1 => Err(End::Reset),
            2 => Err(End::Stall),
            _ => Ok(()),
        }
    }
}

/// Serves one accepted connection of `link` until it ends.
pub(crate) async fn serve(link: Arc<Link>, mut client: TcpStream) {
    link.count_connection();
    let mut control = link.control.subscribe();
    // Across a partition the SYN would not arrive: do not dial the target
    // until the link passes (a connection accepted just before a Drop).
    if hold(&link, &mut control).await.is_err() {
        reset(&link, &[&client]);
        return;
    }
    let _ = client.set_nodelay(true);
    let mut upstream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(link.target)).await {
        Ok(Ok(stream)) => stream,
        // The target is down or refusing: the dialer sees what it would see
        // without the proxy, a reset.
        _ => {
            reset(&link, &[&client]);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let fate = Fate {
        doom: AtomicU8::new(0),
        rolled: AtomicU64::new(0),
    };
    let end = {
        let (cr, cw) = client.split();
        let (ur, uw) = upstream.split();
        let forward = pump(&link, Dir::Forward, cr, uw, &fate);
        let back = pump(&link, Dir::Back, ur, cw, &fate);
        // Reject must reach idle connections too, so it is watched here
        // rather than per chunk.
        tokio::select! {
            end = both(forward, back) => end,
            _ = control.wait_for(|c| c.state == LinkState::Reject) => End::Reset,
        }
    };
    match end {
        End::Eof | End::Closed => {}
        End::Reset => reset(&link, &[&client, &upstream]),
        End::Stall => stall(&link, client, upstream).await,
    }
}

/// Makes the coming close of these sockets a reset, and counts it once.
fn reset(link: &Link, streams: &[&TcpStream]) {
    for s in streams {
        // If this fails the close is a FIN instead; still a closed link.
        let _ = s.set_zero_linger();
    }
    link.count_reset();
}

/// Runs both directions; a clean end of one lets the other finish, any
/// other end stops both at once.
async fn both(forward: impl Future<Output = End>, back: impl Future<Output = End>) -> End {
    tokio::pin!(forward, back);
    let (mut forward_done, mut back_done) = (false, false);
    while !(forward_done && back_done) {
        let end = tokio::select! {
            e = &mut forward, if !forward_done => { forward_done = true; e }
            e = &mut back, if !back_done => { back_done = true; e }
        };
        if end != End::Eof {
            return end;
        }
    }
    End::Closed
}

/// Waits while the link is `Drop`; `Err(Reset)` once it is `Reject`.
async fn hold(
    link: &Link,
    control: &mut watch::Receiver<super::proxy::Control>,
) -> Result<(), End> {
    match link.state_now() {
        LinkState::Pass => return Ok(()),
        LinkState::Reject => return Err(End::Reset),
        LinkState::Drop => {}
    }
    match control.wait_for(|c| c.state != LinkState::Drop).await {
        Ok(c) if c.state == LinkState::Pass => Ok(()),
        _ => Err(End::Reset),
    }
}

/// Copies one direction. The fast path (`Pass`, no degradation) costs a
/// read, a write and two atomic loads per chunk.
async fn pump(
    link: &Link,
    dir: Dir,
    mut rd: ReadHalf<'_>,
    mut wr: WriteHalf<'_>,
    fate: &Fate,
) -> End {
    let mut control = link.control.subscribe();
    let mut buf = vec![0u8; BUF];
    loop {
        // Not reading while dropped is what makes the sender see silence
        // (TCP backpressure), with nothing lost.
        if let Err(end) = hold(link, &mut control).await {
            return end;
        }
        let n = match rd.read(&mut buf).await {
            Ok(0) => {
                let _ = wr.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Reset,
        };
        if link.is_degraded() {
            if let Err(end) = degraded(link, dir, &mut rd, &mut wr, &buf[..n], fate).await {
                return end;
            }
            continue;
        }
        // A chunk read just before a Drop is withheld, not discarded.
        if let Err(end) = hold(link, &mut control).await {
            return end;
        }
        if wr.write_all(&buf[..n]).await.is_err() {
            return End::Reset;
        }
        link.count_bytes(dir, n);
    }
}

/// A chunk on the delay line of a degraded pump.
enum Item {
    Data { due: Instant, bytes: Vec<u8> },
    Eof { due: Instant },
}

/// Copies one direction while the link is degraded, starting with `first`
/// (already read). A reader stamps each chunk with its due time and a
/// writer delivers in order, so latency does not cap throughput. Returns
/// `Ok` once the degradation is gone and the line is drained, so the pump
/// can go back to the fast path without reordering anything.
async fn degraded(
    link: &Link,
    dir: Dir,
    rd: &mut ReadHalf<'_>,
    wr: &mut WriteHalf<'_>,
    first: &[u8],
    fate: &Fate,
) -> Result<(), End> {
    let (tx, mut rx) = mpsc::channel::<Item>(QUEUE);
    let reader = async move {
        // `tx` is dropped when the reader ends, which lets the writer drain.
        let tx = tx;
        let mut control = link.control.subscribe();
        let mut buf = vec![0u8; BUF];
        let mut last_due = Instant::now();
        let mut chunk = Some(first.to_vec());
        loop {
            let bytes = match chunk.take() {
                Some(bytes) => bytes,
                None => {
                    if !link.is_degraded() {
                        return Ok(());
                    }
                    hold(link, &mut control).await?;
                    match rd.read(&mut buf).await {
                        Ok(0) => {
                            let due = last_due.max(Instant::now() + draw_delay(link, fate));
                            // If the writer is gone it has already ended.
                            let _ = tx.send(Item::Eof { due }).await;
                            return Ok(());
                        }
                        Ok(n) => buf[..n].to_vec(),
                        Err(_) => return Err(End::Reset),
                    }
                }
            };
            // Never earlier than the chunk before: jitter must not reorder.
            last_due = last_due.max(Instant::now() + draw_delay(link, fate));
            if tx
                .send(Item::Data {
                    due: last_due,
                    bytes,
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    };
    let writer = async {
        let mut control = link.control.subscribe();
        while let Some(item) = rx.recv().await {
            match item {
                Item::Eof { due } => {
                    sleep_until(due).await;
                    hold(link, &mut control).await?;
                    let _ = wr.shutdown().await;
                    return Err(End::Eof);
                }
                Item::Data { due, bytes } => {
                    sleep_until(due).await;
                    hold(link, &mut control).await?;
                    // A doomed connection fails after the dialer's bytes
                    // got through (the outcome is unknown to it), and
                    // before any of the target's bytes do.
                    if dir == Dir::Back {
                        fate.check()?;
                    }
                    write_paced(link, dir, wr, &bytes, &mut control).await?;
                    if dir == Dir::Forward {
                        fate.check()?;
                    }
                }
            }
        }
        Ok(())
    };
    tokio::pin!(reader, writer);
    let mut reader_done = false;
    loop {
        tokio::select! {
            r = &mut reader, if !reader_done => {
                r?;
                reader_done = true;
            }
            w = &mut writer => return w,
        }
    }
}

/// Writes `bytes`, in slices no longer than ~20 ms of the link's bandwidth
/// when it has a limit, so the rate holds smoothly.
async fn write_paced(
    link: &Link,
    dir: Dir,
    wr: &mut WriteHalf<'_>,
    bytes: &[u8],
    control: &mut watch::Receiver<super::proxy::Control>,
) -> Result<(), End> {
    let rate = control
        .borrow()
        .degradation
        .as_ref()
        .and_then(|d| d.bandwidth);
    let Some(rate) = rate else {
        wr.write_all(bytes).await.map_err(|_| End::Reset)?;
        link.count_bytes(dir, bytes.len());
        return Ok(());
    };
    let slice = ((rate / 50) as usize).clamp(256, BUF);
    for part in bytes.chunks(slice) {
        sleep_until(link.pace_until(dir, part.len(), rate)).await;
        hold(link, control).await?;
        wr.write_all(part).await.map_err(|_| End::Reset)?;
        link.count_bytes(dir, part.len());
    }
    Ok(())
}

/// Rolls the connection's reset/stall dice once per degradation generation
/// and draws the delay of one chunk: latency plus uniform jitter in
/// `[-jitter, +jitter]`, never below zero.
fn draw_delay(link: &Link, fate: &Fate) -> Duration {
    let (generation, degradation) = {
        let c = link.control.borrow();
        (c.generation, c.degradation.clone())
    };
    let Some(d) = degradation else {
        return Duration::ZERO;
    };
    // A poisoned lock only means a panic elsewhere mid-draw; the RNG state
    // is still a valid RNG state.
    let mut rng = link.rng.lock().unwrap_or_else(|e| e.into_inner());
    if fate.rolled.swap(generation, Ordering::AcqRel) != generation {
        let doom = if roll(&mut *rng, d.reset) {
            1
        } else if roll(&mut *rng, d.stall) {
            2
        } else {
            0
        };
        fate.doom.store(doom, Ordering::Release);
    }
    let latency = d.latency.unwrap_or_default().as_secs_f64();
    let jitter = d.jitter.unwrap_or_default().as_secs_f64();
    let offset = if jitter > 0.0 {
        rng.random_range(-jitter..=jitter)
    } else {
        0.0
    };
    Duration::try_from_secs_f64((latency + offset).max(0.0)).unwrap_or_default()
}

fn roll(rng: &mut impl Rng, p: Option<f64>) -> bool {
    let p = p.filter(|p| p.is_finite()).unwrap_or(0.0).clamp(0.0, 1.0);
    p > 0.0 && rng.random::<f64>() < p
}

/// A stalled connection: nothing more is delivered either way. Both sides
/// are read and discarded so that the end of either is noticed and the
/// connection does not linger after its owners gave up.
async fn stall(link: &Link, mut client: TcpStream, mut upstream: TcpStream) {
    let mut control = link.control.subscribe();
    let rejected = {
        let (mut cr, _cw) = client.split();
        let (mut ur, _uw) = upstream.split();
        let mut a = vec![0u8; 8192];
        let mut b = vec![0u8; 8192];
        loop {
            tokio::select! {
                r = cr.read(&mut a) => if !matches!(r, Ok(n) if n > 0) { break false },
                r = ur.read(&mut b) => if !matches!(r, Ok(n) if n > 0) { break false },
                _ = control.wait_for(|c| c.state == LinkState::Reject) => break true,
            }
        }
    };
    if rejected {
        reset(link, &[&client, &upstream]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn roll_respects_bounds_and_bad_input() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            assert!(roll(&mut rng, Some(1.0)));
            assert!(!roll(&mut rng, Some(0.0)));
            assert!(!roll(&mut rng, None));
            assert!(!roll(&mut rng, Some(f64::NAN)));
            assert!(!roll(&mut rng, Some(-3.0)));
            assert!(roll(&mut rng, Some(7.0)));
        }
    }
}
