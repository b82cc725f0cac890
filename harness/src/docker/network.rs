//! The run's own bridge network, for containers that are not on the wire
//! (`network = "none"`): a labelled user-defined bridge with an explicit
//! /24 inside 198.19.0.0/16 (part of the 198.18.0.0/15 benchmark range
//! rift keeps its traffic to), so that every node's address can be fixed
//! before its container starts and rendered into its peers' command lines.

use std::net::Ipv4Addr;

use bollard::models::{Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters as q;

use super::{DockerError, Engine, RunLabels};

/// The /24s a run's bridge is picked from: `198.19.<n>.0/24`.
const BASE: [u8; 2] = [198, 19];

/// A run's bridge network: its name and its /24. The gateway (the host's
/// side of the bridge) is `.1`; node `i` is `.2 + i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    /// The engine's name of the network.
    pub name: String,
    /// The third octet of `198.19.<n>.0/24`.
    pub n: u8,
}

impl Bridge {
    /// The subnet, `198.19.<n>.0/24`.
    pub fn subnet(&self) -> String {
        format!("{}/24", Ipv4Addr::new(BASE[0], BASE[1], self.n, 0))
    }

    /// The gateway: the host's address on the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(BASE[0], BASE[1], self.n, 1)
    }

    /// Node `i`'s address (`None` past the /24's 253 hosts).
    pub fn node_addr(&self, i: usize) -> Option<Ipv4Addr> {
        let host = u8::try_from(i.checked_add(2)?).ok().filter(|&h| h < 255)?;
        Some(Ipv4Addr::new(BASE[0], BASE[1], self.n, host))
    }
}

/// Creates the run's labelled bridge network (`rift-<run id>-net`) without
/// a chosen subnet (the engine picks one); returns its name.
pub async fn create_bridge(e: &Engine, labels: &RunLabels) -> Result<String, DockerError> {
    let name = super::container::container_name(&labels.run_id, "net");
    create(e, labels, &name, None, false).await?;
    Ok(name)
}

/// Creates the run's labelled bridge network on a /24 of 198.19.0.0/16
/// that no network of the engine uses and, with a local engine, no route
/// of this machine covers (a wire run's /24 is routed here). When the
/// engine still reports an overlap (another run picked the same /24 at the
/// same moment), the next free /24 is tried.
///
/// `internal`: the engine routes nothing between the network and the
/// outside; this machine still reaches the nodes through the bridge (its
/// address on it is in the subnet), but the nodes reach nothing beyond the
/// run's network. Published ports need `internal = false`.
pub async fn create_bridge_subnet(
    e: &Engine,
    labels: &RunLabels,
    internal: bool,
) -> Result<Bridge, DockerError> {
    let name = super::container::container_name(&labels.run_id, "net");
    let mut taken = engine_subnets(e).await?;
    if e.is_local() {
        taken.extend(host_routes());
    }
    let mut last = None;
    for n in 0..=255u8 {
        let bridge = Bridge {
            name: name.clone(),
            n,
        };
        if taken.iter().any(|&(net, len)| clashes(&bridge, net, len)) {
            continue;
        }
        match create(e, labels, &name, Some(&bridge), internal).await {
            Ok(()) => return Ok(bridge),
            Err(DockerError::Api { what, source }) if is_overlap(&source) => {
                last = Some(DockerError::Api { what, source });
            }
            Err(other) => return Err(other),
        }
    }
    Err(last.unwrap_or(DockerError::NoSubnet))
}

async fn create(
    e: &Engine,
    labels: &RunLabels,
    name: &str,
    bridge: Option<&Bridge>,
    internal: bool,
) -> Result<(), DockerError> {
    let ipam = bridge.map(|b| Ipam {
        driver: Some("default".into()),
        config: Some(vec![IpamConfig {
            subnet: Some(b.subnet()),
            gateway: Some(b.gateway().to_string()),
            ..Default::default()
        }]),
        options: None,
    });
    e.client()
        .create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: internal.then_some(true),
            ipam,
            labels: Some(labels.to_map(None)),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|source| DockerError::Api {
            what: format!("create network {name}"),
            source,
        })
}

/// The engine refusing a subnet another network already has.
fn is_overlap(e: &bollard::errors::Error) -> bool {
    e.to_string().to_ascii_lowercase().contains("overlap")
}

/// Whether `bridge`'s /24 and `net/len` share an address.
fn clashes(bridge: &Bridge, net: Ipv4Addr, len: u8) -> bool {
    let shorter = u32::from(len.min(24));
    if shorter == 0 {
        // A default route covers everything and clashes with nothing.
        return false;
    }
    let mask = u32::MAX << (32 - shorter);
    let ours = u32::from(Ipv4Addr::new(BASE[0], BASE[1], bridge.n, 0));
    (ours & mask) == (u32::from(net) & mask)
}

/// Every IPv4 subnet the engine's networks use.
async fn engine_subnets(e: &Engine) -> Result<Vec<(Ipv4Addr, u8)>, DockerError> {
    let networks = e
        .client()
        .list_networks(None::<q::ListNetworksOptions>)
        .await
        .map_err(|source| DockerError::Api {
            what: "list networks".into(),
            source,
        })?;
    Ok(networks
        .iter()
        .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
        .flatten()
        .filter_map(|c| parse_cidr(c.subnet.as_deref()?))
        .collect())
}

/// `a.b.c.d/len` (IPv6 and anything else: `None`).
fn parse_cidr(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    Some((ip.parse().ok()?, len.parse().ok().filter(|&l| l <= 32)?))
}

/// This machine's IPv4 routes of the main table (`/proc/net/route`:
/// destination and mask in hex, as stored in memory). Unreadable: none.
fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    let Ok(text) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let dst = u32::from_str_radix(cols.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(cols.get(7)?, 16).ok()?;
            let ip = Ipv4Addr::from(u32::from_be(dst));
            let len = u8::try_from(u32::from_be(mask).count_ones()).ok()?;
            Some((ip, len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_follow_the_gateway() {
        let b = Bridge {
            name: "x".into(),
            n: 7,
        };
        assert_eq!(b.subnet(), "198.19.7.0/24");
        assert_eq!(b.gateway(), Ipv4Addr::new(198, 19, 7, 1));
        assert_eq!(b.node_addr(0), Some(Ipv4Addr::new(198, 19, 7, 2)));
        assert_eq!(b.node_addr(252), Some(Ipv4Addr::new(198, 19, 7, 254)));
        assert_eq!(b.node_addr(253), None);
    }

    #[test]
    fn subnets_clash_by_the_shorter_prefix() {
        let b = Bridge {
            name: "x".into(),
            n: 7,
        };
        assert!(clashes(&b, Ipv4Addr::new(198, 19, 7, 0), 24));
        assert!(clashes(&b, Ipv4Addr::new(198, 18, 0, 0), 15));
        assert!(clashes(&b, Ipv4Addr::new(198, 19, 7, 128), 25));
        assert!(!clashes(&b, Ipv4Addr::new(198, 19, 8, 0), 24));
        assert!(!clashes(&b, Ipv4Addr::new(172, 17, 0, 0), 16));
        assert!(!clashes(&b, Ipv4Addr::UNSPECIFIED, 0));
        assert_eq!(
            parse_cidr("172.17.0.0/16"),
            Some((Ipv4Addr::new(172, 17, 0, 0), 16))
        );
        assert_eq!(parse_cidr("fd00::/64"), None);
    }
}
