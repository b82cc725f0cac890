//! Network fault backends: the unprivileged TCP proxy mesh that stands on
//! every directed peer link and can pass, blackhole, reset or degrade it.
//!
//! Must never send a byte to an address outside loopback, need privileges,
//! or panic on a socket error. See docs/network.md for the semantics.

mod conn;
mod proxy;

pub use proxy::{LinkState, LinkStats, ProxyMesh};

use crate::NodeId;
use std::net::SocketAddr;

/// What can go wrong while setting up the proxy mesh. Faults on individual
/// connections are never errors: they are what the mesh exists to cause.
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
}
