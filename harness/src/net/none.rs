//! The `none` backend: nodes and clients dial each other directly, so no
//! link can be cut or degraded (plans with network faults say so).
//!
//! Holds no socket and never touches traffic.

use super::{LinkId, LinkState, LinkStats, Network, NodeEndpoints, NodeHome, Shutdown, WireStats};
use crate::plan::Degradation;
use crate::NodeId;
use std::net::SocketAddr;

pub(super) struct Direct {
    nodes: Vec<NodeEndpoints>,
}

impl Direct {
    pub(super) fn new(nodes: &[NodeEndpoints]) -> Direct {
        Direct {
            nodes: nodes.to_vec(),
        }
    }

    fn endpoints(&self, node: NodeId) -> Option<&NodeEndpoints> {
        self.nodes.get(node.index())
    }
}

/// The address of a node that is not part of the cluster: nothing listens
/// on port 0, so a dial fails at once.
fn nowhere() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

impl Network for Direct {
    fn peer_addr(&self, _from: NodeId, to: NodeId) -> SocketAddr {
        self.endpoints(to).map_or_else(nowhere, |e| e.peer)
    }

    fn client_addr(&self, to: NodeId) -> SocketAddr {
        self.endpoints(to).map_or_else(nowhere, |e| e.client)
    }

    fn can_fault(&self) -> bool {
        false
    }

    fn has_client_links(&self) -> bool {
        false
    }

    fn set_link(&self, _from: NodeId, _to: NodeId, _state: LinkState) {}

    fn set_degradation(&self, _link: LinkId, _degradation: Option<Degradation>) {}

    fn heal_all(&self) {}

    fn stats(&self) -> Vec<(LinkId, LinkStats)> {
        Vec::new()
    }

    fn wire_stats(&self) -> Option<WireStats> {
        None
    }

    fn home(&self, _node: NodeId) -> Option<NodeHome> {
        None
    }

    fn shutdown(self: Box<Self>) -> Shutdown {
        Box::pin(async {})
    }
}
