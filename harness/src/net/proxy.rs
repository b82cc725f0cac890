//! The proxy mesh: one loopback listener per directed link, its state, its
//! counters and its accept loop. Connection handling lives in `conn`.
//!
//! Never forwards to a non-loopback address; never outlives `ProxyMesh`;
//! never binds a port itself: every listener comes already bound from the
//! run's one port allocator (`cluster::Ports`), so a proxy can never take a
//! node's port.

use super::conn;
use super::NetError;
use crate::plan::Degradation;
use crate::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What a directed link does to the connections its dialing node opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// Forward bytes both ways.
    #[default]
    Pass,
    /// Blackhole: stop reading and hold what was read, so both ends see
    /// silence; new connections wait unaccepted. On `Pass` the streams go on
    /// intact, as TCP does after a partition heals.
    Drop,
    /// Reset existing connections and every new one.
    Reject,
}

impl LinkState {
    fn to_u8(self) -> u8 {
        match self {
            LinkState::Pass => 0,
            LinkState::Drop => 1,
            LinkState::Reject => 2,
        }
    }

    fn from_u8(v: u8) -> LinkState {
        match v {
            0 => LinkState::Pass,
            1 => LinkState::Drop,
            _ => LinkState::Reject,
        }
    }
}

/// Counters of one directed link since the mesh started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Connections accepted (including those reset at once).
    pub connections: u64,
    /// Bytes delivered from the dialing node to the target.
    pub bytes_forward: u64,
    /// Bytes delivered from the target back to the dialing node.
    pub bytes_back: u64,
    /// Connections the proxy reset: `Reject`, a `reset` degradation, or the
    /// target refusing or resetting (mirrored to the dialer).
    pub resets: u64,
}

/// Which way bytes flow on a connection of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// From the dialing node to the target.
    Forward,
    /// From the target back to the dialing node.
    Back,
}

/// The watched part of a link's configuration; waiters re-read it after
/// every change, so no wake-up is lost.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    pub state: LinkState,
    pub degradation: Option<Degradation>,
    /// Bumped on every `set_degradation`; a connection rolls its reset and
    /// stall dice once per generation.
    pub generation: u64,
}

/// One directed link `from -> to`; `from` is `None` on a client link (the
/// workload's clients dialing node `to`).
pub(crate) struct Link {
    pub from: Option<NodeId>,
    pub to: NodeId,
    pub target: SocketAddr,
    /// Mirrors `control` for the per-chunk fast path (one atomic load).
    state: AtomicU8,
    degraded: AtomicBool,
    pub control: watch::Sender<Control>,
    /// Seeded per link, so a run with the same seed draws the same numbers
    /// in the same order on each link.
    pub rng: Mutex<ChaCha8Rng>,
    /// Bandwidth pacing per direction: when the link is next free to send.
    pace: [Mutex<Instant>; 2],
    connections: AtomicU64,
    bytes_forward: AtomicU64,
    bytes_back: AtomicU64,
    resets: AtomicU64,
}

impl Link {
    pub fn state_now(&self) -> LinkState {
        LinkState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    pub fn count_connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_reset(&self) {
        self.resets.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_bytes(&self, dir: Dir, n: usize) {
        let counter = match dir {
            Dir::Forward => &self.bytes_forward,
            Dir::Back => &self.bytes_back,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Reserves the link for `n` bytes at `rate` bytes/s in direction `dir`
    /// and returns when they are allowed to leave. Shared by every
    /// connection of the link, like the capacity of a real wire.
    pub fn pace_until(&self, dir: Dir, n: usize, rate: u64) -> Instant {
        let slot = match dir {
            Dir::Forward => &self.pace[0],
            Dir::Back => &self.pace[1],
        };
        let cost = Duration::from_secs_f64(n as f64 / rate.max(1) as f64);
        let now = Instant::now();
        // A poisoned lock only means another connection panicked mid-update
        // of an Instant; the value is still usable.
        let mut next = slot.lock().unwrap_or_else(|e| e.into_inner());
        let start = (*next).max(now);
        *next = start + cost;
        *next
    }

    fn stats(&self) -> LinkStats {
        LinkStats {
            connections: self.connections.load(Ordering::Relaxed),
            bytes_forward: self.bytes_forward.load(Ordering::Relaxed),
            bytes_back: self.bytes_back.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
        }
    }
}

/// A TCP proxy per directed link between `size` nodes, on loopback.
///
/// Node `i` is told to reach peer `j` at [`ProxyMesh::addr`]`(i, j)`; the
/// proxy forwards to `j`'s real peer address. The link `i -> j` governs the
/// connections that `i` opens, in both byte directions. Dropping the mesh
/// aborts every task and closes every socket; [`ProxyMesh::shutdown`] does
/// the same and waits until it is done.
///
/// Methods taking a `(from, to)` pair panic when the pair is not a link of
/// the mesh (`from == to` or an index `>= size`): that is a bug in the
/// caller, never something a node or a plan can cause once validated.
pub struct ProxyMesh {
    size: usize,
    /// Indexed by `from * size + to`; `None` on the diagonal.
    links: Vec<Option<(SocketAddr, Arc<Link>)>>,
    /// Client links, indexed by node, once [`ProxyMesh::add_client_links`]
    /// has run.
    clients: Vec<(SocketAddr, Arc<Link>)>,
    ip: IpAddr,
    seed: u64,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
}

impl ProxyMesh {
    /// How many listeners [`ProxyMesh::start`] takes for `size` nodes: one
    /// per directed link.
    pub fn peer_listeners(size: usize) -> usize {
        size * size.saturating_sub(1)
    }

    /// Serves one directed link (`size * (size - 1)`, see
    /// [`ProxyMesh::peer_listeners`]) on each of `listeners`, taken in link
    /// order (`from` major); they must be bound on `host` (loopback only) and
    /// listening. `target(j)` is node `j`'s real peer address and must be on
    /// loopback. `seed` drives every random choice of the degradations.
    pub async fn start(
        size: usize,
        host: &str,
        listeners: Vec<std::net::TcpListener>,
        target: impl Fn(NodeId) -> SocketAddr,
        seed: u64,
    ) -> Result<ProxyMesh, NetError> {
        let ip = loopback_ip(host).ok_or_else(|| NetError::HostNotLoopback {
            host: host.to_string(),
        })?;
        let targets: Vec<SocketAddr> = (0..size).map(|j| target(NodeId(j))).collect();
        for (j, addr) in targets.iter().enumerate() {
            if !addr.ip().is_loopback() {
                return Err(NetError::TargetNotLoopback {
                    node: NodeId(j),
                    addr: *addr,
                });
            }
        }
        let (shutdown, _) = watch::channel(false);
        let mut mesh = ProxyMesh {
            size,
            links: Vec::with_capacity(size * size),
            clients: Vec::new(),
            ip,
            seed,
            tasks: Vec::with_capacity(size * size.saturating_sub(1)),
            shutdown,
        };
        let mut listeners = listeners.into_iter();
        for from in 0..size {
            for (to, &target) in targets.iter().enumerate() {
                if from == to {
                    mesh.links.push(None);
                    continue;
                }
                let (from, to) = (NodeId(from), NodeId(to));
                // On error `mesh` is dropped, which aborts the listeners
                // already started.
                let entry = mesh.listen(listeners.next(), Some(from), to, target)?;
                mesh.links.push(Some(entry));
            }
        }
        tracing::debug!(size, %ip, seed, "proxy mesh started");
        Ok(mesh)
    }

    /// Stands a proxy in front of every node's client address as well
    /// (`target(j)`, loopback only), for a workload that goes through the
    /// mesh, on `listeners` (one per node, in node order, bound on the mesh's
    /// host). Client links start passing; they take degradations like peer
    /// links, and no partition touches them. Calling it again is a no-op.
    pub async fn add_client_links(
        &mut self,
        listeners: Vec<std::net::TcpListener>,
        target: impl Fn(NodeId) -> SocketAddr,
    ) -> Result<(), NetError> {
        if !self.clients.is_empty() {
            return Ok(());
        }
        let mut listeners = listeners.into_iter();
        let mut clients = Vec::with_capacity(self.size);
        for j in 0..self.size {
            let to = NodeId(j);
            let addr = target(to);
            if !addr.ip().is_loopback() {
                return Err(NetError::TargetNotLoopback { node: to, addr });
            }
            clients.push(self.listen(listeners.next(), None, to, addr)?);
        }
        self.clients = clients;
        Ok(())
    }

    /// Takes over the bound listener of one link and starts its accept loop.
    fn listen(
        &mut self,
        listener: Option<std::net::TcpListener>,
        from: Option<NodeId>,
        to: NodeId,
        target: SocketAddr,
    ) -> Result<(SocketAddr, Arc<Link>), NetError> {
        let failed = |addr, source| NetError::Bind {
            addr,
            from: dialer(from),
            to,
            source,
        };
        let unbound = SocketAddr::new(self.ip, 0);
        let listener = listener.ok_or_else(|| {
            failed(
                unbound,
                std::io::Error::other("no bound listener was given for this link"),
            )
        })?;
        let addr = listener.local_addr().map_err(|e| failed(unbound, e))?;
        if addr.ip() != self.ip {
            let off = format!("the listener is not on the mesh's host {}", self.ip);
            return Err(failed(addr, std::io::Error::other(off)));
        }
        let listener = listener
            .set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(listener))
            .map_err(|e| failed(addr, e))?;
        let link = Arc::new(new_link(from, to, target, self.seed));
        self.tasks.push(tokio::spawn(accept_loop(
            link.clone(),
            listener,
            self.shutdown.subscribe(),
        )));
        Ok((addr, link))
    }

    /// Number of nodes the mesh connects.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Every directed link of the mesh, `from` major.
    pub fn links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.links
            .iter()
            .flatten()
            .filter_map(|(_, link)| Some((link.from?, link.to)))
    }

    /// Where `from` dials to reach `to`.
    pub fn addr(&self, from: NodeId, to: NodeId) -> SocketAddr {
        self.entry(from, to).0
    }

    /// Sets the state of the link `from -> to`; existing connections follow
    /// at once, idle or not.
    pub fn set_state(&self, from: NodeId, to: NodeId, state: LinkState) {
        set_state(&self.entry(from, to).1, state);
    }

    pub fn state(&self, from: NodeId, to: NodeId) -> LinkState {
        self.entry(from, to).1.state_now()
    }

    /// Degrades the link `from -> to` (`None` restores it). Latency and
    /// bandwidth apply from the next chunk on existing connections; reset and
    /// stall are rolled once per connection per call, at its next chunk.
    pub fn set_degradation(&self, from: NodeId, to: NodeId, d: Option<Degradation>) {
        set_degradation(&self.entry(from, to).1, d);
    }

    pub fn stats(&self, from: NodeId, to: NodeId) -> LinkStats {
        self.entry(from, to).1.stats()
    }

    /// Where the workload dials to reach node `to`, once client links exist.
    pub fn client_addr(&self, to: NodeId) -> Option<SocketAddr> {
        self.clients.get(to.0).map(|(addr, _)| *addr)
    }

    /// Sets the state of the client link to `to` (no-op without client links).
    pub fn set_client_state(&self, to: NodeId, state: LinkState) {
        if let Some((_, link)) = self.clients.get(to.0) {
            set_state(link, state);
        }
    }

    /// Degrades the client link to `to` (`None` restores it; no-op without
    /// client links).
    pub fn set_client_degradation(&self, to: NodeId, d: Option<Degradation>) {
        if let Some((_, link)) = self.clients.get(to.0) {
            set_degradation(link, d);
        }
    }

    pub fn client_stats(&self, to: NodeId) -> Option<LinkStats> {
        self.clients.get(to.0).map(|(_, link)| link.stats())
    }

    /// Whether the workload goes through the mesh.
    pub fn has_client_links(&self) -> bool {
        !self.clients.is_empty()
    }

    /// Every link, client links included, back to `Pass` without
    /// degradation.
    pub fn heal_all(&self) {
        let all = self.links.iter().flatten().chain(&self.clients);
        for (_, link) in all {
            set_state(link, LinkState::Pass);
            set_degradation(link, None);
        }
    }

    /// Closes every listener and every connection, and returns once all of
    /// the mesh's tasks have ended.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            // A task that panicked or was aborted is finished either way.
            let _ = task.await;
        }
    }

    fn entry(&self, from: NodeId, to: NodeId) -> &(SocketAddr, Arc<Link>) {
        let slot = if from.0 < self.size && to.0 < self.size {
            self.links
                .get(from.0 * self.size + to.0)
                .and_then(|l| l.as_ref())
        } else {
            None
        };
        match slot {
            Some(entry) => entry,
            None => panic!(
                "{from}->{to} is not a link of a proxy mesh of {} nodes",
                self.size
            ),
        }
    }
}

impl Drop for ProxyMesh {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        // Aborting an accept loop drops its JoinSet, which aborts every
        // connection task and so closes their sockets.
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn set_state(link: &Link, state: LinkState) {
    link.control.send_modify(|c| {
        c.state = state;
        link.state.store(state.to_u8(), Ordering::Release);
    });
    tracing::debug!(from = %dialer(link.from), to = %link.to, ?state, "link state");
}

fn set_degradation(link: &Link, d: Option<Degradation>) {
    let degraded = d.as_ref().is_some_and(has_effect);
    link.control.send_modify(|c| {
        c.degradation = if degraded { d } else { None };
        c.generation += 1;
        link.degraded.store(degraded, Ordering::Release);
    });
    tracing::debug!(from = %dialer(link.from), to = %link.to, degraded, "link degradation");
}

/// Who dials on a link, for messages: a node, or the workload's clients.
fn dialer(from: Option<NodeId>) -> String {
    from.map_or_else(|| "clients".to_string(), |n| n.to_string())
}

fn new_link(from: Option<NodeId>, to: NodeId, target: SocketAddr, seed: u64) -> Link {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // One independent stream per directed link, so links do not share draws;
    // client links take the upper half of the stream space.
    let from_bits = from.map_or(1 << 31, |n| n.0 as u64);
    rng.set_stream((from_bits << 32) | to.0 as u64);
    let (control, _) = watch::channel(Control {
        state: LinkState::Pass,
        degradation: None,
        generation: 0,
    });
    let now = Instant::now();
    Link {
        from,
        to,
        target,
        state: AtomicU8::new(LinkState::Pass.to_u8()),
        degraded: AtomicBool::new(false),
        control,
        rng: Mutex::new(rng),
        pace: [Mutex::new(now), Mutex::new(now)],
        connections: AtomicU64::new(0),
        bytes_forward: AtomicU64::new(0),
        bytes_back: AtomicU64::new(0),
        resets: AtomicU64::new(0),
    }
}

/// Whether a degradation changes anything; an all-empty one keeps the fast
/// path.
fn has_effect(d: &Degradation) -> bool {
    let positive = |p: Option<f64>| p.is_some_and(|p| p > 0.0);
    d.latency.is_some_and(|l| !l.is_zero())
        || d.jitter.is_some_and(|j| !j.is_zero())
        || d.bandwidth.is_some()
        || positive(d.reset)
        || positive(d.stall)
}

fn loopback_ip(host: &str) -> Option<IpAddr> {
    let host = host.trim();
    if host.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = bare.parse().ok()?;
    ip.is_loopback().then_some(ip)
}

/// Accepts connections of one link until shutdown. While the link is
/// `Drop` it stops accepting: the kernel completes handshakes into the
/// listen backlog and holds them silent, which bounds what a long partition
/// costs to that backlog. On `Pass` they are served in order, intact.
async fn accept_loop(link: Arc<Link>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    let mut control = link.control.subscribe();
    let mut backoff = false;
    // Every connection's second task holds a clone; once all are dropped,
    // `gone` yields None and no socket of this link is left open.
    let (alive, mut gone) = tokio::sync::mpsc::channel::<()>(1);
    loop {
        let dropped = control.borrow_and_update().state == LinkState::Drop;
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            changed = control.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept(), if !dropped => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(conn::serve(link.clone(), stream, alive.clone()));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of
                    // spinning; the backlog holds the waiting clients.
                    tracing::warn!(from = %dialer(link.from), to = %link.to, error = %e, "proxy accept failed");
                    backoff = true;
                }
            },
        }
        if std::mem::take(&mut backoff) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(listener);
    drop(alive);
    conns.shutdown().await;
    let _ = gone.recv().await;
}

/// The mesh as a [`super::Network`] backend: peer links go through it, and
/// client links too when the workload asked for them.
pub(super) struct Mesh {
    mesh: ProxyMesh,
    /// Where clients dial each node when they go direct.
    direct_clients: Vec<SocketAddr>,
}

impl Mesh {
    pub(super) fn new(mesh: ProxyMesh, nodes: &[super::NodeEndpoints]) -> Mesh {
        Mesh {
            mesh,
            direct_clients: nodes.iter().map(|n| n.client).collect(),
        }
    }

    /// Whether `from -> to` is a link of the mesh (the methods taking a
    /// pair panic otherwise).
    fn has(&self, from: NodeId, to: NodeId) -> bool {
        from != to && from.0 < self.mesh.size && to.0 < self.mesh.size
    }
}

impl super::Network for Mesh {
    fn peer_addr(&self, from: NodeId, to: NodeId) -> SocketAddr {
        if self.has(from, to) {
            self.mesh.addr(from, to)
        } else {
            SocketAddr::new(self.mesh.ip, 0)
        }
    }

    fn client_addr(&self, to: NodeId) -> SocketAddr {
        self.mesh
            .client_addr(to)
            .or_else(|| self.direct_clients.get(to.0).copied())
            .unwrap_or_else(|| SocketAddr::new(self.mesh.ip, 0))
    }

    fn can_fault(&self) -> bool {
        true
    }

    fn has_client_links(&self) -> bool {
        self.mesh.has_client_links()
    }

    fn set_link(&self, from: NodeId, to: NodeId, state: LinkState) {
        if self.has(from, to) {
            self.mesh.set_state(from, to, state);
        }
    }

    fn set_degradation(&self, link: super::LinkId, d: Option<Degradation>) {
        match link {
            super::LinkId::Peer { from, to } if self.has(from, to) => {
                self.mesh.set_degradation(from, to, d)
            }
            super::LinkId::Peer { .. } => {}
            super::LinkId::Clients { to } => self.mesh.set_client_degradation(to, d),
        }
    }

    fn heal_all(&self) {
        self.mesh.heal_all();
    }

    fn stats(&self) -> Vec<(super::LinkId, LinkStats)> {
        let mut v: Vec<(super::LinkId, LinkStats)> = self
            .mesh
            .links()
            .map(|(from, to)| (super::LinkId::Peer { from, to }, self.mesh.stats(from, to)))
            .collect();
        for j in 0..self.mesh.size {
            if let Some(s) = self.mesh.client_stats(NodeId(j)) {
                v.push((super::LinkId::Clients { to: NodeId(j) }, s));
            }
        }
        v
    }

    fn shutdown(self: Box<Self>) -> super::Shutdown {
        Box::pin(self.mesh.shutdown())
    }
}
