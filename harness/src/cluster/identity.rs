//! Who holds a node's listening socket: the node's own processes (its
//! process group, or any descendant of its leader: `timeout`, `setsid` and
//! the like move their children to groups of their own), some other process (a squatter: another program, or one of rift's own
//! proxies), or — when /proc cannot tell — nobody knows.
//!
//! Reads /proc only (Linux: `/proc/net/tcp{,6}` for the listening socket's
//! inode, `/proc/<pid>/fd` for who holds it). Must never signal, open or
//! change anything, and never take "cannot tell" for "someone else".

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, BufRead};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The answer for one node's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Holder {
    /// Every socket listening on the address belongs to the node's processes.
    Node,
    /// A socket listening on the address belongs to this other process.
    Other { pid: u32, command: String },
    /// /proc could not tell (not Linux, unreadable, another namespace).
    Unknown(String),
}

/// TCP state numbers in /proc/net/tcp: LISTEN, and CLOSE (a listener
/// being torn down may show it for a moment).
const LISTEN: &str = "0A";
const CLOSE: &str = "07";

/// Who holds the sockets listening on `addr`, as seen against the process
/// group `pgid` (the node's pid: each node leads its own group).
pub(crate) fn holder(addr: SocketAddr, pgid: u32) -> Holder {
    let inodes = match listening_inodes(addr, &net_dir(pgid)) {
        Ok(inodes) if inodes.is_empty() => {
            return Holder::Unknown(format!("no socket listens on {addr} in /proc/net/tcp"))
        }
        Ok(inodes) => inodes,
        Err(e) => return Holder::Unknown(format!("cannot read /proc/net/tcp: {e}")),
    };
    let mut left = inodes;
    let mut unreadable = None;
    // The leader nearly always holds it itself; the rest of the group only
    // needs a look when it does not.
    match forget_held(pgid, &mut left) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => unreadable = Some(format!("cannot read /proc/{pgid}/fd: {e}")),
    }
    if !left.is_empty() {
        for pid in node_processes(pgid).into_iter().filter(|&p| p != pgid) {
            if forget_held(pid, &mut left).is_err() {
                unreadable.get_or_insert_with(|| format!("cannot read /proc/{pid}/fd"));
            }
            if left.is_empty() {
                break;
            }
        }
    }
    if left.is_empty() {
        return Holder::Node;
    }
    // Not the node's group. Name the holder when rift can see it (its own
    // proxies first: they are the likeliest squatter).
    let me = std::process::id();
    let candidates = std::iter::once(me).chain(all_pids().into_iter().filter(|&p| p != me));
    for pid in candidates {
        let mut one = left.clone();
        if forget_held(pid, &mut one).is_ok() && one.len() < left.len() {
            if of_node(pid, pgid) {
                // Joined the node after we looked: it is the node's.
                continue;
            }
            return Holder::Other {
                pid,
                command: command_of(pid),
            };
        }
    }
    Holder::Unknown(unreadable.unwrap_or_else(|| {
        format!("the socket listening on {addr} is held by a process rift cannot see")
    }))
}

/// Inodes of the sockets in LISTEN state that accept connections to `addr`:
/// bound to its IP or to the wildcard address, on its port.
///
/// The kernel lists listening sockets first and every other socket after
/// them, and a busy machine has tens of thousands of those (TIME_WAIT
/// included), so a table is read only up to its first socket that neither
/// listens nor is closed. Only when that finds nothing is it read whole.
fn listening_inodes(addr: SocketAddr, dir: &str) -> io::Result<BTreeSet<u64>> {
    let mut inodes = read_tables(addr, dir, true)?;
    if inodes.is_empty() {
        inodes = read_tables(addr, dir, false)?;
    }
    Ok(inodes)
}

/// The socket tables of the node's network namespace: `/proc/<pgid>/net`
/// (a node on the netns wire has a namespace of its own), or rift's own
/// when the node's entry is gone.
fn net_dir(pgid: u32) -> String {
    let own = format!("/proc/{pgid}/net");
    if std::path::Path::new(&own).join("tcp").exists() {
        own
    } else {
        "/proc/net".into()
    }
}

fn read_tables(addr: SocketAddr, dir: &str, listeners_only: bool) -> io::Result<BTreeSet<u64>> {
    let mut inodes = BTreeSet::new();
    let tables: &[(&str, bool)] = match addr.ip() {
        // An IPv6 socket bound to `::` (without V6ONLY) takes IPv4 too.
        IpAddr::V4(_) => &[("tcp", true), ("tcp6", false)],
        IpAddr::V6(_) => &[("tcp6", true)],
    };
    for &(name, required) in tables {
        let path = format!("{dir}/{name}");
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if required => return Err(e),
            // No IPv6 on this machine: nothing can listen there.
            Err(_) => continue,
        };
        // The first line is the header.
        for line in io::BufReader::new(file).lines().skip(1) {
            let line = line?;
            if listeners_only && !matches!(state(&line), Some(LISTEN | CLOSE)) {
                break;
            }
            inodes.extend(listener_on(&line, addr));
        }
    }
    Ok(inodes)
}

fn state(line: &str) -> Option<&str> {
    line.split_whitespace().nth(3)
}

/// The inode of a /proc/net/tcp{,6} line if it is a LISTEN socket that
/// accepts connections to `addr`.
fn listener_on(line: &str, addr: SocketAddr) -> Option<u64> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
    if *state != LISTEN {
        return None;
    }
    let (ip_hex, port_hex) = local.split_once(':')?;
    if u16::from_str_radix(port_hex, 16).ok()? != addr.port() {
        return None;
    }
    let ip = parse_ip(ip_hex)?;
    let accepts = ip.is_unspecified()
        || ip == addr.ip()
        || match (ip, addr.ip()) {
            (IpAddr::V6(v6), IpAddr::V4(v4)) => v6.to_ipv4_mapped() == Some(v4),
            (IpAddr::V6(_), IpAddr::V6(_))
            | (IpAddr::V4(_), IpAddr::V4(_))
            | (IpAddr::V4(_), IpAddr::V6(_)) => false,
        };
    accepts.then(|| inode.parse().ok()).flatten()
}

/// The kernel prints each 32-bit word of the address as a number in host
/// byte order.
fn parse_ip(hex: &str) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(0)?))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

/// Removes from `inodes` the sockets `pid` holds open.
fn forget_held(pid: u32, inodes: &mut BTreeSet<u64>) -> io::Result<()> {
    for entry in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(entry) = entry else { continue };
        // A descriptor closed while we look is simply not held.
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(inode) = inode {
            inodes.remove(&inode);
        }
    }
    Ok(())
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect()
}

/// The process group of `pid`, from /proc/<pid>/stat.
fn group_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised name: state, ppid, pgrp.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(2)?.parse().ok()
}

/// The parent of `pid`, from /proc/<pid>/stat.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` is one of the node's processes: in the group its leader
/// `pgid` leads, or descended from that leader.
fn of_node(pid: u32, pgid: u32) -> bool {
    if group_of(pid) == Some(pgid) {
        return true;
    }
    // Bounded: a chain of parents ends at init long before this.
    let mut at = pid;
    for _ in 0..64 {
        match parent_of(at) {
            Some(p) if p == pgid => return true,
            Some(p) if p > 1 => at = p,
            _ => return false,
        }
    }
    false
}

fn node_processes(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| of_node(pid, pgid))
        .collect()
}

fn command_of(pid: u32) -> String {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    match comm.trim() {
        "" => "?".to_string(),
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const V4_LISTEN: &str = "   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 424242 1 0000000000000000 100 0 0 10 0";

    #[test]
    fn proc_net_tcp_lines_are_read_in_host_byte_order() {
        let at = |ip: [u8; 4], port| SocketAddr::from((ip, port));
        assert_eq!(
            listener_on(V4_LISTEN, at([127, 0, 0, 1], 8080)),
            Some(424242)
        );
        assert_eq!(listener_on(V4_LISTEN, at([127, 0, 0, 1], 8081)), None);
        assert_eq!(listener_on(V4_LISTEN, at([127, 0, 0, 2], 8080)), None);
        let established = V4_LISTEN.replace(" 0A ", " 01 ");
        assert_eq!(listener_on(&established, at([127, 0, 0, 1], 8080)), None);
        // The wildcard address takes connections to every address.
        let any = V4_LISTEN.replace("0100007F:", "00000000:");
        assert_eq!(listener_on(&any, at([127, 0, 0, 3], 8080)), Some(424242));
        // `::` and `::ffff:127.0.0.1` in tcp6 take IPv4 connections too.
        let v6 = |hex: &str| V4_LISTEN.replace("0100007F", hex);
        let any6 = v6("00000000000000000000000000000000");
        assert_eq!(listener_on(&any6, at([127, 0, 0, 1], 8080)), Some(424242));
        let mapped = v6("0000000000000000FFFF00000100007F");
        assert_eq!(listener_on(&mapped, at([127, 0, 0, 1], 8080)), Some(424242));
        let loop6 = v6("00000000000000000000000001000000");
        let v6_addr = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 8080);
        assert_eq!(listener_on(&loop6, v6_addr), Some(424242));
        assert_eq!(listener_on(&loop6, at([127, 0, 0, 1], 8080)), None);
        assert_eq!(listener_on("garbage", v6_addr), None);
    }

    #[test]
    fn a_listener_belongs_to_its_own_group_and_nobody_elses() {
        if fs::metadata("/proc/net/tcp").is_err() {
            eprintln!("SKIPPED: no /proc/net/tcp");
            return;
        }
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mine = group_of(std::process::id()).expect("own group");
        assert_eq!(holder(addr, mine), Holder::Node);
        // A group this process is not in (pid 1 leads no group of ours).
        match holder(addr, u32::MAX) {
            Holder::Other { pid, .. } => assert_eq!(pid, std::process::id()),
            other => panic!("expected Other, got {other:?}"),
        }
        drop(listener);
        assert!(matches!(holder(addr, mine), Holder::Unknown(_)));
    }
}
