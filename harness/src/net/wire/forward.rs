//! The wire's data plane: one task per device reads every IP packet the
//! kernel routes into it, asks the pair's [`Link`](super::link::Link) what
//! to do, and writes it to the destination's device, now or from that
//! destination's delay line.
//!
//! It runs on the wire's own thread and runtime, so a busy workload or a
//! checker never delays a packet. It never sends a packet anywhere but to
//! another device of the same wire.

use super::capture::Which;
use super::device::Device;
use super::link::Fate;
use super::Shared;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A packet waiting on a delay line.
struct Held {
    due: Instant,
    seq: u64,
    from: usize,
    arrived: Instant,
    window: u64,
    copies: u8,
    packet: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    /// Reversed: the heap's top is the earliest due, first come first.
    fn cmp(&self, other: &Held) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Forwards until the runtime stops. `devices[e]` is endpoint `e`'s device
/// (nodes first, rift's own last).
pub(super) async fn run(shared: Arc<Shared>, devices: Vec<Device>) {
    let mut fds = Vec::with_capacity(devices.len());
    for d in devices {
        // SAFETY: a tun::Device owns its descriptor and never changes it;
        // the AsyncFd owns the device until the runtime drops both.
        match unsafe { AsyncFd::register(d) } {
            Ok(fd) => fds.push(Arc::new(fd)),
            Err(e) => {
                tracing::error!("the wire cannot watch a device: {e}");
                return;
            }
        }
    }
    let mut lines = Vec::with_capacity(fds.len());
    let mut tasks = tokio::task::JoinSet::new();
    for (e, fd) in fds.iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        lines.push(tx);
        tasks.spawn(delay_line(shared.clone(), e, fd.clone(), rx));
    }
    for (e, fd) in fds.iter().enumerate() {
        tasks.spawn(read_loop(
            shared.clone(),
            e,
            fd.clone(),
            fds.clone(),
            lines.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// Reads packets from endpoint `me`'s device until it fails.
async fn read_loop(
    shared: Arc<Shared>,
    me: usize,
    fd: Arc<AsyncFd<Device>>,
    fds: Vec<Arc<AsyncFd<Device>>>,
    lines: Vec<mpsc::UnboundedSender<Held>>,
) {
    let mut buf = vec![0u8; 65_536];
    let mut seq: u64 = 0;
    loop {
        let mut guard = match fd.readable().await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(endpoint = me, "the wire stopped reading a device: {e}");
                return;
            }
        };
        loop {
            match guard.try_io(|d| d.get_ref().recv(&mut buf)) {
                Ok(Ok(n)) => {
                    seq += 1;
                    let packet = &mut buf[..n];
                    route(&shared, me, packet, &fds, &lines, seq);
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => {
                    tracing::error!(endpoint = me, "the wire stopped reading a device: {e}");
                    return;
                }
                Err(_would_block) => break,
            }
        }
    }
}

/// Decides and carries out the fate of one packet from endpoint `from`.
fn route(
    shared: &Shared,
    from: usize,
    packet: &mut [u8],
    fds: &[Arc<AsyncFd<Device>>],
    lines: &[mpsc::UnboundedSender<Held>],
    seq: u64,
) {
    let Some((to, header)) = shared.destination(packet) else {
        shared.foreign.fetch_add(1, Relaxed);
        return;
    };
    if to == from {
        shared.foreign.fetch_add(1, Relaxed);
        return;
    }
    let now = Instant::now();
    let (fate, window, measured) = {
        let mut link = shared.link(from, to);
        let fate = link.decide(now.into_std(), packet.len(), packet.len() - header);
        (fate, link.window, link.fidelity.is_some())
    };
    match fate {
        Fate::Discard(why) => {
            shared.capture(Which::Dropped, packet);
            tracing::trace!(from, to, ?why, "discarded");
        }
        Fate::Deliver { due, copies, flip } => {
            if let Some(bit) = flip {
                if let Some(b) = packet.get_mut(header + bit / 8) {
                    *b ^= 1 << (bit % 8);
                }
            }
            match due {
                None => {
                    write(shared, &fds[to], packet, copies);
                    if measured {
                        shared.measured(from, to, window, now);
                    }
                }
                Some(due) => {
                    let held = Held {
                        due: Instant::from_std(due),
                        seq: (seq << 8) | from as u64,
                        from,
                        arrived: now,
                        window,
                        copies,
                        packet: packet.to_vec(),
                    };
                    // The line ends only with the runtime.
                    let _ = lines[to].send(held);
                }
            }
        }
    }
}

fn write(shared: &Shared, fd: &AsyncFd<Device>, packet: &[u8], copies: u8) {
    for _ in 0..copies {
        match fd.get_ref().send(packet) {
            Ok(_) => shared.capture(Which::Wire, packet),
            Err(_) => {
                shared.undeliverable.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Holds delayed packets for endpoint `me` and writes each when due.
async fn delay_line(
    shared: Arc<Shared>,
    me: usize,
    fd: Arc<AsyncFd<Device>>,
    mut rx: mpsc::UnboundedReceiver<Held>,
) {
    let mut heap: BinaryHeap<Held> = BinaryHeap::new();
    loop {
        let next = heap.peek().map(|h| h.due);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(h) => heap.push(h),
                None => return,
            },
            _ = async { tokio::time::sleep_until(next.unwrap_or_else(Instant::now)).await }, if next.is_some() => {
                let now = Instant::now();
                while heap.peek().is_some_and(|h| h.due <= now) {
                    let Some(h) = heap.pop() else { break };
                    write(&shared, &fd, &h.packet, h.copies);
                    shared.measured(h.from, me, h.window, h.arrived);
                }
            }
        }
    }
}
