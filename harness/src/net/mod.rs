//! Network backends behind one seam, [`Network`]: where each node dials its
//! peers, where clients dial each node, and what a link does (pass, drop,
//! reject, degrade). Backends: `none` (direct, no faults), `proxy` (the
//! unprivileged TCP mesh) and `netns` (the wire: namespaces, TUN devices
//! and rift forwarding every packet; root), see docs/network.md.
//!
//! Must never send a byte to an address outside loopback or the wire's own
//! namespaces, or panic on a socket error. Nothing outside this module names a
//! backend's concrete type: the runner holds a `Box<dyn Network>`.

mod none;
mod proxy;
pub mod wire;

pub use proxy::ProxyMesh;
pub use wire::{Wire, WireStats};

use crate::plan::{ClientRoute, Degradation, NetworkMode};
use crate::NodeId;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

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

/// One directed link a backend can fault: a peer link (`from` dials `to`),
/// or the workload's clients dialing a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LinkId {
    Peer { from: NodeId, to: NodeId },
    Clients { to: NodeId },
}

/// Where a node is reached without any backend in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeEndpoints {
    /// The node's client port (and the readiness probes').
    pub client: SocketAddr,
    /// The node's peer port (equal to `client` when it has no separate one).
    pub peer: SocketAddr,
}

/// Where a node lives when its backend gives it a network of its own: its
/// address (`{host}`) and the namespace it is spawned into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeHome {
    pub ip: std::net::IpAddr,
    pub netns: crate::netns::Netns,
}

/// A shutdown in progress.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The seam between the runner and whatever carries the cluster's traffic.
///
/// Methods naming a link that the backend does not have (a pair outside the
/// cluster, a client link where clients go direct) do nothing.
pub trait Network: Send + Sync {
    /// Where `from` dials to reach `to` (rendered into `from`'s command line).
    fn peer_addr(&self, from: NodeId, to: NodeId) -> SocketAddr;
    /// Where the workload dials to reach `to`.
    fn client_addr(&self, to: NodeId) -> SocketAddr;
    /// Whether links can be cut and degraded at all.
    fn can_fault(&self) -> bool;
    /// Whether the workload's requests cross a link of this backend, so
    /// degrading a node also degrades what its clients see.
    fn has_client_links(&self) -> bool;
    /// Sets what the peer link `from -> to` does; live connections follow.
    fn set_link(&self, from: NodeId, to: NodeId, state: LinkState);
    /// Degrades a link (`None` restores it).
    fn set_degradation(&self, link: LinkId, degradation: Option<Degradation>);
    /// Every link passes again, undegraded.
    fn heal_all(&self);
    /// What each link carried since the start (connection-level backends).
    fn stats(&self) -> Vec<(LinkId, LinkStats)>;
    /// What the wire carried, per packet, and how faithfully it degraded
    /// (packet-level backends). Ends a capture, if one runs.
    fn wire_stats(&self) -> Option<WireStats>;
    /// The node's own address and namespace, when the backend gives it one.
    fn home(&self, node: NodeId) -> Option<NodeHome>;
    /// Closes every socket of the backend; done when the future is.
    fn shutdown(self: Box<Self>) -> Shutdown;
}

/// What can go wrong while setting up a network backend. Faults on
/// individual connections are never errors: they are what a backend exists
/// to cause.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("proxy host `{host}` is not a loopback address; rift only uses 127.0.0.0/8 and ::1")]
    HostNotLoopback { host: String },
    #[error("peer address {addr} of {node} is not on loopback; rift forwards only to loopback")]
    TargetNotLoopback { node: NodeId, addr: SocketAddr },
    #[error("cannot listen on {addr} for link {from}->{to}: {source}")]
    Bind {
        addr: SocketAddr,
        /// The dialing node, or `clients` for a client link.
        from: String,
        to: NodeId,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "network = \"netns\" {0}; run rift as root, or use network = \"proxy\" (unprivileged)"
    )]
    NeedsPrivilege(String),
    #[error("network = \"netns\" holds at most {max} nodes in its /24, the plan has {size}")]
    TooManyNodes { size: usize, max: usize },
    #[error("the netns wire could not start: {0}")]
    Wire(String),
}

/// How many listening sockets the backend needs for `size` nodes: they are
/// reserved with the nodes' own ports, in one place that never hands out a
/// port twice (`cluster::Ports`), and given to [`start`].
pub fn listeners_needed(mode: NetworkMode, via: ClientRoute, size: usize) -> usize {
    match mode {
        NetworkMode::Proxy if mesh_needed(via, size) => {
            let clients = if via == ClientRoute::Proxy { size } else { 0 };
            ProxyMesh::peer_listeners(size) + clients
        }
        NetworkMode::Proxy | NetworkMode::None | NetworkMode::Netns => 0,
    }
}

/// A proxy mesh is only stood up when it has a link to carry: more than
/// one node, or clients routed through it.
fn mesh_needed(via: ClientRoute, size: usize) -> bool {
    size > 1 || via == ClientRoute::Proxy
}

/// Starts the backend a plan asks for in front of `nodes`, on the
/// `listeners` reserved for it ([`listeners_needed`] of them). `homes`:
/// namespaces that already exist, one per node (containers'), for the wire
/// to adopt instead of making its own.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    mode: NetworkMode,
    via: ClientRoute,
    host: std::net::IpAddr,
    nodes: &[NodeEndpoints],
    mut listeners: Vec<std::net::TcpListener>,
    seed: u64,
    capture: Option<wire::CaptureTo>,
    homes: Option<Vec<crate::netns::Netns>>,
) -> Result<Box<dyn Network>, NetError> {
    let size = nodes.len();
    match mode {
        NetworkMode::Proxy if mesh_needed(via, size) => {
            let peers: Vec<SocketAddr> = nodes.iter().map(|n| n.peer).collect();
            let clients = listeners.split_off(ProxyMesh::peer_listeners(size).min(listeners.len()));
            let host = host.to_string();
            let mut mesh =
                ProxyMesh::start(size, &host, listeners, |j: NodeId| peers[j.index()], seed)
                    .await?;
            if via == ClientRoute::Proxy {
                mesh.add_client_links(clients, |j: NodeId| nodes[j.index()].client)
                    .await?;
            }
            Ok(Box::new(proxy::Mesh::new(mesh, nodes)))
        }
        NetworkMode::Proxy | NetworkMode::None => Ok(Box::new(none::Direct::new(nodes))),
        NetworkMode::Netns => Ok(Box::new(Wire::start_in(nodes, homes, seed, capture).await?)),
    }
}
