//! The wire's devices: one TUN device per node, inside a namespace made for
//! it, and one in rift's own namespace. None is persistent: each vanishes
//! when its descriptor closes, so nothing is left behind however rift ends.
//!
//! Devices are made with the `tun` crate (address, netmask, MTU and link
//! state by its ioctls); loopback in a new namespace is brought up over
//! rtnetlink. The connected route of the device's /24 comes with its
//! address, so no route is ever added by hand.

use crate::netns::Netns;
use std::io;
use std::net::Ipv4Addr;

/// MTU of every wire device: an Ethernet-sized frame, so bandwidth caps and
/// segment counts look like a real LAN's.
pub(super) const MTU: u16 = 1500;

/// A TUN device the wire reads packets from and writes packets to.
pub(super) type Device = tun::Device;

/// A namespace for one node with loopback up and a TUN device `wire0`
/// holding `addr` in `addr`'s /24.
pub(super) fn node(addr: Ipv4Addr) -> io::Result<(Netns, Device)> {
    Netns::create(move || {
        loopback_up()?;
        tun_device("wire0", addr)
    })
}

/// A TUN device `wire0` holding `addr` in a namespace that already
/// exists (a container's, made by its engine), loopback brought up too.
pub(super) fn node_in(ns: &Netns, addr: Ipv4Addr) -> io::Result<Device> {
    ns.run(move || {
        loopback_up()?;
        tun_device("wire0", addr)
    })?
}

/// The device in rift's own namespace (`rift0`, `rift1`, ...: the kernel
/// picks the first free number).
pub(super) fn host(addr: Ipv4Addr) -> io::Result<Device> {
    tun_device("rift%d", addr)
}

fn tun_device(name: &str, addr: Ipv4Addr) -> io::Result<Device> {
    let mut config = tun::Configuration::default();
    config
        .tun_name(name)
        .address(addr)
        .netmask(Ipv4Addr::new(255, 255, 255, 0))
        .mtu(MTU)
        .up();
    let dev = tun::create(&config).map_err(|e| match e {
        tun::Error::Io(io) => io,
        other => io::Error::other(other.to_string()),
    })?;
    dev.set_nonblock()?;
    Ok(dev)
}

/// Brings `lo` of the calling thread's namespace up (it starts down in a
/// new one; index 1 is always loopback).
fn loopback_up() -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        let task = tokio::spawn(conn);
        let result = handle
            .link()
            .set(rtnetlink::LinkUnspec::new_with_index(1).up().build())
            .execute()
            .await
            .map_err(|e| io::Error::other(format!("bring loopback up: {e}")));
        task.abort();
        result
    })
}
