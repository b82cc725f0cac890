//! Every listening port of a run, from one place: node client ports,
//! separate peer ports and every proxy listener are bound here together, so
//! the kernel can never hand out one port twice.
//!
//! Node ports stay bound until just before their node spawns (the
//! [`Cluster`](super::Cluster) releases each one then); proxy ports leave as
//! bound listeners for the mesh, which never binds a port of its own. This
//! module must never bind off loopback, never release a node's port before
//! that node's spawn, and is the only place in rift that picks a port.

use super::{ClusterError, NodeLayout};
use crate::plan::{ClusterSpec, NodeCommand};
use crate::NodeId;
use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::Path;

/// The listen backlog of every listener (tokio's default, which the proxy
/// mesh documents: a dropped link holds that many handshakes).
const BACKLOG: libc::c_int = 1024;

/// The listeners a node's ports are held by until it spawns.
pub(crate) struct NodeListeners {
    _client: TcpListener,
    _peer: Option<TcpListener>,
}

/// Every port of one run, bound. Node ports go to [`Cluster::start`]
/// (released one node at a time, just before that node spawns), proxy
/// ports to the mesh through [`Ports::take_proxies`].
///
/// [`Cluster::start`]: super::Cluster::start
pub struct Ports {
    ip: IpAddr,
    layout: Vec<NodeLayout>,
    nodes: Vec<Option<NodeListeners>>,
    proxies: VecDeque<TcpListener>,
}

impl Ports {
    /// Binds, at once and on `spec.host`, a client port per node, a peer port
    /// per node when the spec has separate peer ports, and `proxies` proxy
    /// listeners; lays out `run_dir/nodes/<name>.log` and
    /// `run_dir/data/<name>/` (created by [`Cluster::start`]).
    ///
    /// [`Cluster::start`]: super::Cluster::start
    pub fn reserve(
        spec: &ClusterSpec,
        run_dir: &Path,
        proxies: usize,
    ) -> Result<Ports, ClusterError> {
        let ip = spec.host;
        if !ip.is_loopback() {
            return Err(ClusterError::BadHost {
                host: ip.to_string(),
            });
        }
        let separate = separate_peer_port(spec);
        let per_node = if separate { 2 } else { 1 };
        let mut bound = bind_all(ip, spec.size * per_node + proxies)?.into_iter();
        let mut layout = Vec::with_capacity(spec.size);
        let mut nodes = Vec::with_capacity(spec.size);
        for i in 0..spec.size {
            let id = NodeId(i);
            let (client, client_port) = next(&mut bound)?;
            let (peer, peer_port) = if separate {
                let (l, port) = next(&mut bound)?;
                (Some(l), port)
            } else {
                (None, client_port)
            };
            layout.push(NodeLayout {
                id,
                host: ip,
                port: client_port,
                peer_port,
                data_dir: run_dir.join("data").join(id.name()),
                log_path: run_dir.join("nodes").join(format!("{id}.log")),
                netns: None,
                reach: None,
                cgroup: None,
            });
            nodes.push(Some(NodeListeners {
                _client: client,
                _peer: peer,
            }));
        }
        Ok(Ports {
            ip,
            layout,
            nodes,
            proxies: bound.map(|(l, _)| l).collect(),
        })
    }

    /// Only proxy listeners on `ip`, for a mesh without a cluster (tests,
    /// benches).
    pub fn for_mesh(ip: IpAddr, proxies: usize) -> Result<Ports, ClusterError> {
        if !ip.is_loopback() {
            return Err(ClusterError::BadHost {
                host: ip.to_string(),
            });
        }
        Ok(Ports {
            ip,
            layout: Vec::new(),
            nodes: Vec::new(),
            proxies: bind_all(ip, proxies)?.into_iter().map(|(l, _)| l).collect(),
        })
    }

    /// Moves `node` into a home of its own (the netns wire): it listens on
    /// `home.ip` inside `home.netns`, on the port numbers reserved here
    /// (nothing else lives in that namespace to take them).
    pub fn place(&mut self, node: NodeId, home: crate::net::NodeHome) {
        if let Some(l) = self.layout.get_mut(node.index()) {
            l.host = home.ip;
            l.netns = Some(home.netns);
        }
    }

    /// Moves `node` to an address of a network that is not rift's (a
    /// Docker bridge): it listens on `host`, and rift reaches it at
    /// `reach` (`None`: at `host`), on the port numbers reserved here.
    pub fn place_at(&mut self, node: NodeId, host: IpAddr, reach: Option<IpAddr>) {
        if let Some(l) = self.layout.get_mut(node.index()) {
            l.host = host;
            l.reach = reach;
        }
    }

    /// Puts `node` in its own cgroup (see [`crate::cgroup`]) from its first
    /// start on.
    pub fn place_cgroup(&mut self, node: NodeId, cgroup: crate::cgroup::NodeCgroup) {
        if let Some(l) = self.layout.get_mut(node.index()) {
            l.cgroup = Some(cgroup);
        }
    }

    /// Where each node lives; its ports are bound until it spawns.
    pub fn layout(&self) -> &[NodeLayout] {
        &self.layout
    }

    /// The loopback address every port is bound on.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Every port bound here, node and proxy, in no particular order.
    pub fn bound_ports(&self) -> Vec<u16> {
        let nodes = self.layout.iter().flat_map(|n| {
            let peer = (n.peer_port != n.port).then_some(n.peer_port);
            std::iter::once(n.port).chain(peer)
        });
        let proxies = self
            .proxies
            .iter()
            .filter_map(|l| l.local_addr().ok().map(|a| a.port()));
        nodes.chain(proxies).collect()
    }

    /// Hands up to `n` bound proxy listeners over (fewer when fewer are
    /// left; the mesh then refuses to start).
    pub fn take_proxies(&mut self, n: usize) -> Vec<TcpListener> {
        let n = n.min(self.proxies.len());
        self.proxies.drain(..n).collect()
    }

    /// Splits off what the cluster keeps: the layout and the node listeners.
    /// Proxy listeners nobody took are closed here.
    pub(crate) fn into_nodes(self) -> (Vec<NodeLayout>, Vec<Option<NodeListeners>>) {
        (self.layout, self.nodes)
    }
}

fn next(
    bound: &mut impl Iterator<Item = (TcpListener, u16)>,
) -> Result<(TcpListener, u16), ClusterError> {
    bound.next().ok_or_else(|| {
        ClusterError::PortAllocation(io::Error::other("fewer listeners bound than asked for"))
    })
}

/// Binds `count` listeners on `ip` with kernel-chosen ports. They are all
/// held at once, so every port is distinct.
fn bind_all(ip: IpAddr, count: usize) -> Result<Vec<(TcpListener, u16)>, ClusterError> {
    let mut bound = Vec::with_capacity(count);
    for _ in 0..count {
        let listener = TcpListener::bind((ip, 0)).map_err(ClusterError::PortAllocation)?;
        set_backlog(&listener).map_err(ClusterError::PortAllocation)?;
        let port = listener
            .local_addr()
            .map_err(ClusterError::PortAllocation)?
            .port();
        bound.push((listener, port));
    }
    Ok(bound)
}

/// std listens with a small backlog; listening again on a listening socket
/// only changes the backlog.
fn set_backlog(listener: &TcpListener) -> io::Result<()> {
    // SAFETY: the descriptor is valid (owned by `listener`) for the call.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn separate_peer_port(spec: &ClusterSpec) -> bool {
    // The sample node serves clients and peers on its one `--listen` port.
    spec.separate_peer_port && !matches!(spec.command, NodeCommand::SampleNode { .. })
}

/// Whether `addr`'s port is bound by this process right now (for tests).
#[cfg(test)]
fn is_bound(addr: std::net::SocketAddr) -> bool {
    TcpListener::bind(addr).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NetworkMode, PeersFormat, Readiness, ReadyProbe, Template};
    use std::collections::{BTreeMap, BTreeSet};
    use std::net::SocketAddr;
    use std::time::Duration;

    fn spec(size: usize, separate: bool) -> ClusterSpec {
        ClusterSpec {
            size,
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            command: NodeCommand::External {
                program: "/bin/true".into(),
                args: Vec::new(),
            },
            env: BTreeMap::new(),
            ready: Readiness {
                probe: ReadyProbe::Tcp,
                timeout: Duration::from_secs(1),
            },
            leader: None,
            network: NetworkMode::Proxy,
            peers: PeersFormat {
                format: Template { parts: Vec::new() },
                separator: ",".into(),
                include_self: false,
            },
            separate_peer_port: separate,
            stop_timeout: Duration::from_secs(1),
            capture: None,
            clock: Default::default(),
        }
    }

    #[test]
    fn every_port_of_a_run_is_distinct_and_held() {
        let dir = Path::new("/nonexistent-run");
        let mut ports = Ports::reserve(&spec(5, true), dir, 5 * 4 + 5).expect("reserve");
        let all = ports.bound_ports();
        assert_eq!(all.len(), 5 * 2 + 25);
        assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), all.len());
        let ip = ports.ip();
        assert!(all.iter().all(|&p| is_bound(SocketAddr::new(ip, p))));
        let proxies = ports.take_proxies(20);
        assert_eq!(proxies.len(), 20);
        assert_eq!(ports.take_proxies(100).len(), 5, "only what is left");
        drop(proxies);
        let (layout, nodes) = ports.into_nodes();
        // Node ports stay held until the cluster lets them go.
        assert!(is_bound(SocketAddr::new(ip, layout[3].peer_port)));
        drop(nodes);
        assert!(!is_bound(SocketAddr::new(ip, layout[3].peer_port)));
        assert!(!is_bound(SocketAddr::new(ip, layout[3].port)));
    }

    #[test]
    fn sample_nodes_share_client_and_peer_port_and_hosts_must_be_loopback() {
        let mut s = spec(2, true);
        s.command = NodeCommand::SampleNode { bugs: Vec::new() };
        let ports = Ports::reserve(&s, Path::new("/r"), 0).expect("reserve");
        assert!(ports.layout().iter().all(|n| n.port == n.peer_port));
        assert_eq!(ports.bound_ports().len(), 2);
        // Names and empty hosts never get here: the plan's host is an IP.
        for host in [[10, 0, 0, 1], [0, 0, 0, 0]] {
            s.host = IpAddr::from(host);
            assert!(matches!(
                Ports::reserve(&s, Path::new("/r"), 0),
                Err(ClusterError::BadHost { .. })
            ));
        }
        assert!(matches!(
            Ports::for_mesh(IpAddr::from([10, 0, 0, 1]), 1),
            Err(ClusterError::BadHost { .. })
        ));
    }
}
