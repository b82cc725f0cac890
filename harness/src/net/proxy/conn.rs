//! One proxied connection: the dial to the target, the two byte pumps, and
//! the faults its link applies to them (hold, reset, delay, pace, stall).
//!
//! Never delivers a byte while its link is not `Pass`, and never turns a
//! socket error into anything but a closed or reset connection.

use super::link::{Control, Dir, Link};
use crate::net::LinkState;
use rand::Rng;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
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
/// `alive` travels with the back-direction task, so that the accept loop can
/// wait until every such task is gone.
pub(crate) async fn serve(link: Arc<Link>, client: TcpStream, alive: mpsc::Sender<()>) {
    link.count_connection();
    let mut control = link.control.subscribe();
    // Across a partition the SYN would not arrive: do not dial the target
    // until the link passes (a connection accepted just before a Drop).
    if hold(&link, &mut control).await.is_err() {
        reset(&link, &[&client]);
        return;
    }
    let _ = client.set_nodelay(true);
    let upstream = match timeout(CONNECT_TIMEOUT, TcpStream::connect(link.target)).await {
        Ok(Ok(stream)) => stream,
        // The target is down or refusing: the dialer sees what it would see
        // without the proxy, a reset.
        _ => {
            reset(&link, &[&client]);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    // Shared rather than split: dropping a tokio write half sends a FIN,
    // which would turn a reset into a clean close. The sockets close when
    // the last reference goes, after the linger option is set.
    let (client, upstream) = (Arc::new(client), Arc::new(upstream));
    let fate = Arc::new(Fate {
        doom: AtomicU8::new(0),
        rolled: AtomicU64::new(0),
    });
    // The back direction runs on its own task so the two directions can
    // use two cores; the guard aborts it when this task ends or is aborted
    // (mesh shutdown).
    let mut back = AbortOnDrop(tokio::spawn({
        let (link, fate) = (link.clone(), fate.clone());
        let (from, to) = (upstream.clone(), client.clone());
        async move {
            let _alive = alive;
            pump(&link, Dir::Back, &from, &to, &fate).await
        }
    }));
    let end = {
        let forward = pump(&link, Dir::Forward, &client, &upstream, &fate);
        let back = async { (&mut back.0).await.unwrap_or(End::Reset) };
        // Reject must reach idle connections too, so it is watched here
        // rather than per chunk.
        tokio::select! {
            end = both(forward, back) => end,
            _ = control.wait_for(|c| c.state == LinkState::Reject) => End::Reset,
        }
    };
    if end == End::Reset {
        reset(&link, &[&client, &upstream]);
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
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
async fn hold(link: &Link, control: &mut watch::Receiver<Control>) -> Result<(), End> {
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

/// Forwards one direction, `from` to `to`. A stalled direction then reads
/// and discards until its source closes, so the connection does not
/// outlive its owners.
async fn pump(link: &Link, dir: Dir, from: &TcpStream, to: &TcpStream, fate: &Fate) -> End {
    let end = forward(link, dir, from, to, fate).await;
    if end == End::Stall {
        let mut buf = vec![0u8; 8192];
        while matches!(read_some(from, &mut buf).await, Ok(n) if n > 0) {}
    }
    end
}

/// The fast path (`Pass`, no degradation) costs a read, a write and three
/// atomic loads per chunk, into a buffer reused for the whole connection.
async fn forward(link: &Link, dir: Dir, from: &TcpStream, to: &TcpStream, fate: &Fate) -> End {
    let mut control = link.control.subscribe();
    let mut buf = vec![0u8; BUF];
    loop {
        // Not reading while dropped is what makes the sender see silence
        // (TCP backpressure), with nothing lost.
        if let Err(end) = hold(link, &mut control).await {
            return end;
        }
        let n = match read_some(from, &mut buf).await {
            Ok(0) => {
                shutdown_write(to);
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Reset,
        };
        if link.is_degraded() {
            if let Err(end) = degraded(link, dir, from, to, &buf[..n], fate).await {
                return end;
            }
            continue;
        }
        // A chunk read just before a Drop is withheld, not discarded; a
        // stalled connection stays stalled after its degradation is gone.
        if let Err(end) = hold(link, &mut control).await.and(fate.check()) {
            return end;
        }
        if write_all(to, &buf[..n]).await.is_err() {
            return End::Reset;
        }
        link.count_bytes(dir, n);
    }
}

/// Reads what is available, waiting for readiness. Works on a shared
/// socket, with the other direction writing to it concurrently.
///
/// A read that returns less than the buffer drained the socket, so its
/// readiness is cleared right away and the next call waits for data
/// instead of spending a syscall on EAGAIN (tokio's own `poll_read` does the
/// same). Data arriving meanwhile bumps tokio's readiness tick, so that
/// clear cannot hide it. On a small-message link this is one syscall in
/// three.
async fn read_some(s: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let want = buf.len();
    loop {
        s.readable().await?;
        let mut short = None;
        let r = s.try_io(Interest::READABLE, || {
            let n = nix::unistd::read(s.as_fd(), buf)?;
            if n > 0 && n < want {
                short = Some(n);
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(n)
        });
        match (r, short) {
            (_, Some(n)) => return Ok(n),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (r, None) => return r,
        }
    }
}

async fn write_all(s: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        s.writable().await?;
        match s.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Passes an end of stream on (half-close).
fn shutdown_write(s: &TcpStream) {
    // SAFETY: shutdown(2) on a descriptor the stream keeps open; it touches
    // no memory. A failure means the socket is already gone.
    unsafe {
        libc::shutdown(s.as_raw_fd(), libc::SHUT_WR);
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
    from: &TcpStream,
    to: &TcpStream,
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
                    match read_some(from, &mut buf).await {
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
                    shutdown_write(to);
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
                    write_paced(link, dir, to, &bytes, &mut control).await?;
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
    to: &TcpStream,
    bytes: &[u8],
    control: &mut watch::Receiver<Control>,
) -> Result<(), End> {
    let rate = control
        .borrow()
        .degradation
        .as_ref()
        .and_then(|d| d.bandwidth);
    let Some(rate) = rate else {
        write_all(to, bytes).await.map_err(|_| End::Reset)?;
        link.count_bytes(dir, bytes.len());
        return Ok(());
    };
    let slice = ((rate / 50) as usize).clamp(256, BUF);
    for part in bytes.chunks(slice) {
        sleep_until(link.pace_until(dir, part.len(), rate)).await;
        hold(link, control).await?;
        write_all(to, part).await.map_err(|_| End::Reset)?;
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
