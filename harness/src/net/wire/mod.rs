//! The `netns` backend: every node in a network namespace of its own with
//! its own address in the run's /24 of 198.18.0.0/15, and rift carrying
//! every IP packet between them (and between them and rift's own end, where
//! the workload and the probes live) through TUN devices, faulting each
//! directed pair per packet.
//!
//! Needs CAP_NET_ADMIN and CAP_SYS_ADMIN. Leaves nothing behind: the
//! namespaces are unnamed and the devices are not persistent, so both
//! vanish with the descriptors rift holds and the node processes inside.
//! Never sends a packet outside the devices of its own run.

mod capture;
mod device;
mod forward;
mod link;
mod stats;
mod subnet;

pub use stats::{CaptureRecord, FidelityRecord, PairCounters, PairRecord, WireStats};
pub use subnet::Subnet;

use super::{LinkId, LinkState, LinkStats, NetError, Network, NodeEndpoints, NodeHome, Shutdown};
use crate::netns::Netns;
use crate::plan::Degradation;
use crate::NodeId;
use capture::{Capture, Which};
use link::Link;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// The last octet of rift's own end of the wire.
const RIFT: u8 = 254;

/// The most nodes one /24 holds beside rift's own address.
pub const MAX_NODES: usize = 253;

/// Where the capture goes, when the plan asks for one.
#[derive(Clone, Debug)]
pub struct CaptureTo {
    /// The directory of `wire.pcap` and `dropped.pcap` (the run directory).
    pub dir: PathBuf,
    /// Bytes both files may hold together.
    pub limit: u64,
}

/// State the data plane and the control calls share.
pub(super) struct Shared {
    /// Nodes; endpoint `size` is rift's own.
    size: usize,
    subnet: Subnet,
    links: Vec<Mutex<Link>>,
    started: Instant,
    foreign: AtomicU64,
    undeliverable: AtomicU64,
    capture: Option<Mutex<Capture>>,
}

impl Shared {
    fn endpoints(&self) -> usize {
        self.size + 1
    }

    fn link(&self, from: usize, to: usize) -> MutexGuard<'_, Link> {
        self.links[from * self.endpoints() + to]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The endpoint an IPv4 packet is addressed to, and its header length;
    /// `None` for anything else.
    fn destination(&self, packet: &[u8]) -> Option<(usize, usize)> {
        let first = *packet.first()?;
        let header = usize::from(first & 0x0f) * 4;
        if first >> 4 != 4 || header < 20 || packet.len() < header {
            return None;
        }
        let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
        if !self.subnet.contains(dst) {
            return None;
        }
        let last = dst.octets()[3];
        let to = match last {
            RIFT => self.size,
            n if n >= 1 && usize::from(n) <= self.size => usize::from(n) - 1,
            _ => return None,
        };
        Some((to, header))
    }

    fn capture(&self, which: Which, packet: &[u8]) {
        if let Some(c) = &self.capture {
            c.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(which, packet);
        }
    }

    /// Counts a delivered packet's added delay against the degradation
    /// window it was sent under.
    fn measured(&self, from: usize, to: usize, window: u64, arrived: tokio::time::Instant) {
        let us = arrived.elapsed().as_micros();
        let mut link = self.link(from, to);
        if link.window == window {
            if let Some(f) = link.fidelity.as_mut() {
                f.record_delay(u64::try_from(us).unwrap_or(u64::MAX));
            }
        }
    }

    fn name(&self, e: usize) -> String {
        if e == self.size {
            "rift".into()
        } else {
            NodeId(e).name()
        }
    }
}

/// A running wire. Dropping it stops the data plane and closes every
/// device; the namespaces go with the last node inside them.
pub struct Wire {
    shared: Arc<Shared>,
    nodes: Vec<NodeEndpoints>,
    homes: Vec<Netns>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Wire {
    /// Makes a namespace and device per node and rift's own device on a
    /// free /24, and starts forwarding. `nodes` gives the ports; addresses
    /// are the wire's own.
    pub async fn start(
        nodes: &[NodeEndpoints],
        seed: u64,
        capture: Option<CaptureTo>,
    ) -> Result<Wire, NetError> {
        Wire::start_in(nodes, None, seed, capture).await
    }

    /// As [`Wire::start`]; with `homes`, each node's device goes into the
    /// namespace given for it (a container's, one per node, in node
    /// order) instead of one the wire makes. Peers and clients reach the
    /// nodes the same way either way.
    pub async fn start_in(
        nodes: &[NodeEndpoints],
        homes: Option<Vec<Netns>>,
        seed: u64,
        capture: Option<CaptureTo>,
    ) -> Result<Wire, NetError> {
        crate::netns::check_privileges().map_err(NetError::NeedsPrivilege)?;
        if let Some(h) = homes.as_ref().filter(|h| h.len() != nodes.len()) {
            return Err(NetError::Wire(format!(
                "{} namespaces given for {} nodes",
                h.len(),
                nodes.len()
            )));
        }
        if nodes.len() > MAX_NODES {
            return Err(NetError::TooManyNodes {
                size: nodes.len(),
                max: MAX_NODES,
            });
        }
        let size = nodes.len();
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("rift-wire".into())
            .spawn(move || serve(size, homes, seed, capture, ready_tx, stop_rx))
            .map_err(|e| NetError::Wire(format!("cannot start the wire's thread: {e}")))?;
        let (shared, homes) = match ready_rx.await {
            Ok(Ok(made)) => made,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(NetError::Wire(
                    "the wire's thread stopped while starting".into(),
                ));
            }
        };
        tracing::debug!(subnet = %shared.subnet, size, "wire up");
        Ok(Wire {
            shared,
            nodes: nodes.to_vec(),
            homes,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The run's /24.
    pub fn subnet(&self) -> Subnet {
        self.shared.subnet
    }

    /// rift's own address on the wire.
    pub fn rift_addr(&self) -> Ipv4Addr {
        self.shared.subnet.host(RIFT)
    }

    /// The namespace of `node`.
    pub fn netns(&self, node: NodeId) -> Option<&Netns> {
        self.homes.get(node.index())
    }

    fn ip(&self, node: NodeId) -> IpAddr {
        IpAddr::V4(self.shared.subnet.host(node_octet(node.index())))
    }

    fn endpoint(&self, node: NodeId) -> Option<usize> {
        (node.index() < self.shared.size).then_some(node.index())
    }

    fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Every pair's counters and every degradation window so far. Ends the
    /// capture, if any: the files are complete once this returns.
    pub fn snapshot(&self) -> WireStats {
        let s = &self.shared;
        let mut pairs = Vec::new();
        let mut fidelity = Vec::new();
        for from in 0..s.endpoints() {
            for to in 0..s.endpoints() {
                if from == to {
                    continue;
                }
                let link = s.link(from, to);
                if link.counters.packets > 0 {
                    pairs.push(PairRecord {
                        from: s.name(from),
                        to: s.name(to),
                        counters: link.counters,
                    });
                }
                for f in link.past.iter().chain(link.fidelity.as_ref()) {
                    fidelity.push(f.record(s.name(from), s.name(to)));
                }
            }
        }
        fidelity.sort_by(|a, b| a.from_s.total_cmp(&b.from_s));
        let capture = s
            .capture
            .as_ref()
            .map(|c| c.lock().unwrap_or_else(PoisonError::into_inner).finish());
        WireStats {
            subnet: s.subnet.to_string(),
            pairs,
            fidelity,
            foreign: s.foreign.load(Relaxed),
            undeliverable: s.undeliverable.load(Relaxed),
            capture,
        }
    }
}

fn node_octet(index: usize) -> u8 {
    u8::try_from(index + 1).unwrap_or(0)
}

type Made = (Arc<Shared>, Vec<Netns>);

/// The wire's thread: sets everything up, reports, then forwards until
/// `stop` fires or its sender is dropped.
fn serve(
    size: usize,
    given: Option<Vec<Netns>>,
    seed: u64,
    capture: Option<CaptureTo>,
    ready: oneshot::Sender<Result<Made, NetError>>,
    stop: oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(NetError::Wire(format!(
                "cannot start the wire's runtime: {e}"
            ))));
            return;
        }
    };
    rt.block_on(async move {
        let (shared, homes, devices) = match setup(size, given, seed, capture).await {
            Ok(made) => made,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok((shared.clone(), homes))).is_err() {
            return;
        }
        tokio::select! {
            _ = forward::run(shared, devices) => {}
            _ = stop => {}
        }
    });
}

async fn setup(
    size: usize,
    given: Option<Vec<Netns>>,
    seed: u64,
    capture: Option<CaptureTo>,
) -> Result<(Arc<Shared>, Vec<Netns>, Vec<device::Device>), NetError> {
    let wire_err = |what: &str, e: std::io::Error| NetError::Wire(format!("{what}: {e}"));
    // Pick the subnet and claim it with rift's own device under one lock,
    // so a concurrent run sees the claim before it picks.
    let (subnet, host) = {
        let _lock = subnet::lock().map_err(|e| wire_err("cannot lock subnet choice", e))?;
        let start = std::process::id()
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
        let subnet = subnet::pick(start)
            .await
            .map_err(|e| wire_err("cannot choose a subnet", e))?;
        let host = device::host(subnet.host(RIFT))
            .map_err(|e| wire_err("cannot create rift's wire device", e))?;
        (subnet, host)
    };
    let mut devices = Vec::with_capacity(size + 1);
    let mut homes = Vec::with_capacity(size);
    match given {
        Some(given) => {
            for (i, ns) in given.into_iter().enumerate() {
                let dev = device::node_in(&ns, subnet.host(node_octet(i))).map_err(|e| {
                    wire_err(
                        &format!("cannot put the wire into {}'s namespace", NodeId(i)),
                        e,
                    )
                })?;
                homes.push(ns);
                devices.push(dev);
            }
        }
        None => {
            for i in 0..size {
                let (ns, dev) = device::node(subnet.host(node_octet(i)))
                    .map_err(|e| wire_err(&format!("cannot make {}'s namespace", NodeId(i)), e))?;
                homes.push(ns);
                devices.push(dev);
            }
        }
    }
    devices.push(host);
    let endpoints = size + 1;
    let links = (0..endpoints * endpoints)
        .map(|i| {
            Mutex::new(Link::new(
                seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ))
        })
        .collect();
    let capture = match capture {
        Some(c) => Some(Mutex::new(
            Capture::start(&c.dir, c.limit)
                .map_err(|e| wire_err("cannot open the capture files", e))?,
        )),
        None => None,
    };
    let shared = Arc::new(Shared {
        size,
        subnet,
        links,
        started: Instant::now(),
        foreign: AtomicU64::new(0),
        undeliverable: AtomicU64::new(0),
        capture,
    });
    Ok((shared, homes, devices))
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Network for Wire {
    fn peer_addr(&self, _from: NodeId, to: NodeId) -> SocketAddr {
        match self.nodes.get(to.index()) {
            Some(n) => SocketAddr::new(self.ip(to), n.peer.port()),
            None => SocketAddr::new(self.ip(to), 0),
        }
    }

    fn client_addr(&self, to: NodeId) -> SocketAddr {
        match self.nodes.get(to.index()) {
            Some(n) => SocketAddr::new(self.ip(to), n.client.port()),
            None => SocketAddr::new(self.ip(to), 0),
        }
    }

    fn can_fault(&self) -> bool {
        true
    }

    fn has_client_links(&self) -> bool {
        true
    }

    fn set_link(&self, from: NodeId, to: NodeId, state: LinkState) {
        if let (Some(f), Some(t)) = (self.endpoint(from), self.endpoint(to)) {
            // A packet has no connection to reset: `Reject` cuts like `Drop`.
            self.shared.link(f, t).cut = match state {
                LinkState::Pass => false,
                LinkState::Drop | LinkState::Reject => true,
            };
        }
    }

    fn set_degradation(&self, link: LinkId, degradation: Option<Degradation>) {
        let elapsed = self.shared.started.elapsed();
        let rift = self.shared.size;
        let pairs: Vec<(usize, usize)> = match link {
            LinkId::Peer { from, to } => match (self.endpoint(from), self.endpoint(to)) {
                (Some(f), Some(t)) => vec![(f, t)],
                _ => Vec::new(),
            },
            LinkId::Clients { to } => match self.endpoint(to) {
                Some(t) => vec![(rift, t), (t, rift)],
                None => Vec::new(),
            },
        };
        for (f, t) in pairs {
            self.shared.link(f, t).degrade(degradation.clone(), elapsed);
        }
    }

    fn heal_all(&self) {
        let elapsed = self.shared.started.elapsed();
        for l in &self.shared.links {
            let mut l = l.lock().unwrap_or_else(PoisonError::into_inner);
            l.cut = false;
            if l.degradation.is_some() {
                l.degrade(None, elapsed);
            }
        }
    }

    fn stats(&self) -> Vec<(LinkId, LinkStats)> {
        // The wire counts packets, not connections: see `wire_stats`.
        Vec::new()
    }

    fn wire_stats(&self) -> Option<WireStats> {
        Some(self.snapshot())
    }

    fn home(&self, node: NodeId) -> Option<NodeHome> {
        self.netns(node).map(|ns| NodeHome {
            ip: self.ip(node),
            netns: ns.clone(),
        })
    }

    fn shutdown(mut self: Box<Self>) -> Shutdown {
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || self.stop()).await;
        })
    }
}
