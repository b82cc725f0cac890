//! Which /24 of 198.18.0.0/15 (the range set aside for network test
//! benches) a run's wire uses: one that no route of this machine touches,
//! chosen under a lock so that concurrent runs and tests never pick the
//! same one.
//!
//! It only reads routes; the lock is a file lock that dies with its holder.

use futures_util::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;

/// 198.18.0.0/15 holds 512 /24s.
const SUBNETS: u32 = 512;

/// An IPv4 /24 inside 198.18.0.0/15.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet(u32);

impl Subnet {
    /// The `n`th /24 of 198.18.0.0/15 (`n < 512`).
    pub(super) fn nth(n: u32) -> Subnet {
        Subnet(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + ((n % SUBNETS) << 8))
    }

    /// The address ending in `last`.
    pub fn host(self, last: u8) -> Ipv4Addr {
        Ipv4Addr::from(self.0 | u32::from(last))
    }

    /// Whether `ip` is in this /24.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & 0xffff_ff00 == self.0
    }

    /// Whether a route to `dst/len` overlaps this /24 (the default route,
    /// length 0, covers everything and does not count).
    fn clashes(self, dst: Ipv4Addr, len: u8) -> bool {
        if len == 0 || len > 32 {
            return false;
        }
        let shorter = len.min(24);
        let mask = u32::MAX << (32 - u32::from(shorter));
        (u32::from(dst) & mask) == (self.0 & mask)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", Ipv4Addr::from(self.0))
    }
}

/// Held while a run picks its subnet and puts its device's address on it.
pub(super) struct PickLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// Takes the machine-wide lock on picking subnets (a file lock in the temp
/// dir; it is released when dropped or when rift dies).
pub(super) fn lock() -> io::Result<PickLock> {
    let path = std::env::temp_dir().join("rift-wire-subnet.lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map(PickLock)
        .map_err(|(_, e)| io::Error::from(e))
}

/// A /24 no IPv4 route of this namespace overlaps, trying from `start`.
pub(super) async fn pick(start: u32) -> io::Result<Subnet> {
    let routes = ipv4_routes().await?;
    (0..SUBNETS)
        .map(|i| Subnet::nth(start.wrapping_add(i)))
        .find(|s| !routes.iter().any(|&(dst, len)| s.clashes(dst, len)))
        .ok_or_else(|| io::Error::other("every /24 of 198.18.0.0/15 already has a route"))
}

/// Every IPv4 route of every table: destination and prefix length.
async fn ipv4_routes() -> io::Result<Vec<(Ipv4Addr, u8)>> {
    let (conn, handle, _) = rtnetlink::new_connection()?;
    let task = tokio::spawn(conn);
    let mut stream = handle
        .route()
        .get(rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    let mut out = Vec::new();
    let result = loop {
        match stream.try_next().await {
            Ok(Some(msg)) => {
                let len = msg.header.destination_prefix_length;
                let dst = msg.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                    _ => None,
                });
                out.push((dst.unwrap_or(Ipv4Addr::UNSPECIFIED), len));
            }
            Ok(None) => break Ok(out),
            Err(e) => break Err(io::Error::other(format!("list routes: {e}"))),
        }
    };
    task.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_cover_198_18_slash_15_and_detect_overlaps() {
        assert_eq!(Subnet::nth(0).to_string(), "198.18.0.0/24");
        assert_eq!(Subnet::nth(511).to_string(), "198.19.255.0/24");
        assert_eq!(Subnet::nth(512), Subnet::nth(0));
        let s = Subnet::nth(7);
        assert_eq!(s.host(254), Ipv4Addr::new(198, 18, 7, 254));
        assert!(s.contains(Ipv4Addr::new(198, 18, 7, 1)));
        assert!(!s.contains(Ipv4Addr::new(198, 18, 8, 1)));
        assert!(s.clashes(Ipv4Addr::new(198, 18, 0, 0), 15));
        assert!(s.clashes(Ipv4Addr::new(198, 18, 7, 5), 32));
        assert!(s.clashes(Ipv4Addr::new(198, 18, 7, 0), 24));
        assert!(!s.clashes(Ipv4Addr::new(198, 18, 6, 0), 24));
        assert!(!s.clashes(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(!s.clashes(Ipv4Addr::UNSPECIFIED, 0));
    }
}
