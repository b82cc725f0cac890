//! The proxy mesh: one loopback listener per directed link, its state, its
//! counters and its accept loop. Connection handling lives in `conn`.
//!
//! Never forwards to a non-loopback address; never outlives `ProxyMesh`;
//! never binds a port itself: every listener comes already bound from the
//! run's one port allocator (`cluster::Ports`), so a proxy can never take a
//! node's port.

mod conn;
mod link;

use super::{LinkState, LinkStats, NetError};
use crate::plan::Degradation;
use crate::NodeId;
use link::{dialer, Link};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

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
        let link = Arc::new(Link::new(from, to, target, self.seed));
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
        self.entry(from, to).1.set_state(state);
    }

    pub fn state(&self, from: NodeId, to: NodeId) -> LinkState {
        self.entry(from, to).1.state_now()
    }

    /// Degrades the link `from -> to` (`None` restores it). Latency and
    /// bandwidth apply from the next chunk on existing connections; reset and
    /// stall are rolled once per connection per call, at its next chunk.
    pub fn set_degradation(&self, from: NodeId, to: NodeId, d: Option<Degradation>) {
        self.entry(from, to).1.set_degradation(d);
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
            link.set_state(state);
        }
    }

    /// Degrades the client link to `to` (`None` restores it; no-op without
    /// client links).
    pub fn set_client_degradation(&self, to: NodeId, d: Option<Degradation>) {
        if let Some((_, link)) = self.clients.get(to.0) {
            link.set_degradation(d);
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
            link.set_state(LinkState::Pass);
            link.set_degradation(None);
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

    fn wire_stats(&self) -> Option<super::WireStats> {
        None
    }

    fn home(&self, _node: NodeId) -> Option<super::NodeHome> {
        None
    }

    fn shutdown(self: Box<Self>) -> super::Shutdown {
        Box::pin(self.mesh.shutdown())
    }
}
