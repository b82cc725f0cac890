//! Turns a [`ClusterSpec`] into one concrete command line per node.
//!
//! Pure string work: it renders templates and never touches processes, files
//! or the network.

use super::{NodeLayout, SampleNodeProgram};
use crate::netns::Netns;
use crate::plan::{ArgTemplate, ClusterSpec, NodeCommand, Placeholder, Template, TemplatePart};
use crate::NodeId;
use std::net::SocketAddr;
use std::path::PathBuf;

/// What the spawner runs for one node; computed once so a restart runs the
/// exact same command as the first start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NodeArgv {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The network namespace the node is spawned into (the netns wire).
    pub netns: Option<Netns>,
    /// The time namespace offsets the node starts with
    /// (`[cluster] monotonic_offset`), at every start.
    pub timens: Option<crate::clock::TimeOffsets>,
    /// The cgroup the node enters between fork and exec.
    pub cgroup: Option<crate::cgroup::NodeCgroup>,
}

impl NodeArgv {
    /// The command as one line a POSIX shell runs as rift did: the plan's
    /// extra environment as `NAME=value` prefixes, then the program and its
    /// arguments, each quoted when it needs to be.
    pub(crate) fn shell_line(&self) -> String {
        let mut words: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", shell_quote(v)))
            .collect();
        words.push(shell_quote(&self.program.display().to_string()));
        words.extend(self.args.iter().map(|a| shell_quote(a)));
        words.join(" ")
    }
}

/// One word for a POSIX shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes (a `'` written `'\''`).
pub(crate) fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The values one node (or one peer, inside the peers format) contributes.
struct Vars {
    id: String,
    name: String,
    host: String,
    port: String,
    peer_port: String,
    data_dir: String,
}

impl Vars {
    fn of_node(node: &NodeLayout) -> Vars {
        Vars {
            id: node.id.index().to_string(),
            name: node.id.name(),
            host: node.host.to_string(),
            port: node.port.to_string(),
            peer_port: node.peer_port.to_string(),
            data_dir: node.data_dir.display().to_string(),
        }
    }

    /// A peer as seen from the rendering node: host and port are where that
    /// node must dial, which may be a proxy.
    fn of_peer(peer: &NodeLayout, dial: SocketAddr) -> Vars {
        Vars {
            id: peer.id.index().to_string(),
            name: peer.id.name(),
            host: dial.ip().to_string(),
            port: dial.port().to_string(),
            peer_port: dial.port().to_string(),
            data_dir: peer.data_dir.display().to_string(),
        }
    }
}

fn render(t: &Template, vars: &Vars, peers: &str, peer: &str) -> String {
    let mut out = String::new();
    for part in &t.parts {
        match part {
            TemplatePart::Lit(s) => out.push_str(s),
            TemplatePart::Var(p) => out.push_str(match p {
                Placeholder::Id => &vars.id,
                Placeholder::Name => &vars.name,
                Placeholder::Host => &vars.host,
                Placeholder::Port => &vars.port,
                Placeholder::PeerPort => &vars.peer_port,
                Placeholder::DataDir => &vars.data_dir,
                Placeholder::Peers => peers,
                Placeholder::Peer => peer,
            }),
        }
    }
    out
}

/// The address `me` dials to reach `peer`. For itself (etcd-style lists that
/// include the node) the direct peer address is the honest answer.
fn dial(
    me: &NodeLayout,
    peer: &NodeLayout,
    peer_addr: &dyn Fn(NodeId, NodeId) -> SocketAddr,
) -> SocketAddr {
    if me.id == peer.id {
        direct_peer_addr(peer)
    } else {
        peer_addr(me.id, peer.id)
    }
}

fn direct_peer_addr(node: &NodeLayout) -> SocketAddr {
    SocketAddr::new(node.host, node.peer_port)
}

/// Renders every node's command line.
pub(crate) fn node_commands(
    spec: &ClusterSpec,
    layout: &[NodeLayout],
    peer_addr: &dyn Fn(NodeId, NodeId) -> SocketAddr,
    sample: &SampleNodeProgram,
) -> Vec<NodeArgv> {
    layout
        .iter()
        .map(|me| {
            let vars = Vars::of_node(me);
            let peer_strings: Vec<String> = layout
                .iter()
                .filter(|p| p.id != me.id || spec.peers.include_self)
                .map(|p| {
                    render(
                        &spec.peers.format,
                        &Vars::of_peer(p, dial(me, p, peer_addr)),
                        "",
                        "",
                    )
                })
                .collect();
            let peers = peer_strings.join(&spec.peers.separator);
            let env = spec
                .env
                .iter()
                .map(|(k, v)| (k.clone(), render(v, &vars, &peers, "")))
                .collect();
            let (program, args) = match &spec.command {
                NodeCommand::SampleNode { bugs } => {
                    let mut args = sample.leading_args.clone();
                    args.extend(["--id".into(), me.id.name()]);
                    if me.netns.is_some() {
                        // Its own address in its own namespace: one member
                        // list serves every node, as real systems use it.
                        let members: Vec<String> = layout
                            .iter()
                            .map(|p| format!("{}={}", p.id, dial(me, p, peer_addr)))
                            .collect();
                        args.extend(["--cluster".into(), members.join(",")]);
                    } else {
                        let listen = SocketAddr::new(direct_peer_addr(me).ip(), me.port);
                        args.extend(["--listen".into(), listen.to_string()]);
                        for p in layout.iter().filter(|p| p.id != me.id) {
                            args.push("--peer".into());
                            args.push(format!("{}={}", p.id, dial(me, p, peer_addr)));
                        }
                    }
                    args.push("--data-dir".into());
                    args.push(me.data_dir.display().to_string());
                    for bug in bugs {
                        args.push("--bug".into());
                        args.push(bug.name().into());
                    }
                    (sample.program.clone(), args)
                }
                NodeCommand::External {
                    program,
                    args: templates,
                } => {
                    let mut args = Vec::new();
                    for a in templates {
                        match a {
                            ArgTemplate::One(t) => args.push(render(t, &vars, &peers, "")),
                            ArgTemplate::EachPeer(ts) => {
                                for peer in &peer_strings {
                                    for t in ts {
                                        args.push(render(t, &vars, &peers, peer));
                                    }
                                }
                            }
                        }
                    }
                    (PathBuf::from(program), args)
                }
            };
            NodeArgv {
                program,
                args,
                env,
                netns: me.netns.clone(),
                timens: spec
                    .clock
                    .monotonic
                    .get(&me.id)
                    .map(|o| crate::clock::TimeOffsets::new(*o)),
                cgroup: me.cgroup.clone(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NetworkMode, PeersFormat, Readiness, ReadyProbe};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn t(parts: &[&str]) -> Template {
        // `{x}` items are placeholders, everything else literal.
        Template {
            parts: parts
                .iter()
                .map(|p| match *p {
                    "{id}" => TemplatePart::Var(Placeholder::Id),
                    "{name}" => TemplatePart::Var(Placeholder::Name),
                    "{host}" => TemplatePart::Var(Placeholder::Host),
                    "{port}" => TemplatePart::Var(Placeholder::Port),
                    "{peer_port}" => TemplatePart::Var(Placeholder::PeerPort),
                    "{data_dir}" => TemplatePart::Var(Placeholder::DataDir),
                    "{peers}" => TemplatePart::Var(Placeholder::Peers),
                    "{peer}" => TemplatePart::Var(Placeholder::Peer),
                    lit => TemplatePart::Lit(lit.to_string()),
                })
                .collect(),
        }
    }

    fn spec(command: NodeCommand, include_self: bool) -> ClusterSpec {
        ClusterSpec {
            size: 3,
            host: std::net::Ipv4Addr::LOCALHOST.into(),
            command,
            env: BTreeMap::from([("NODE".to_string(), t(&["{name}", "@", "{port}"]))]),
            ready: Readiness {
                probe: ReadyProbe::Tcp,
                timeout: Duration::from_secs(1),
            },
            leader: None,
            network: NetworkMode::Proxy,
            peers: PeersFormat {
                format: t(&["{name}", "=http://", "{host}", ":", "{port}"]),
                separator: ",".into(),
                include_self,
            },
            separate_peer_port: true,
            stop_timeout: Duration::from_secs(1),
            capture: None,
            clock: Default::default(),
        }
    }

    fn layout() -> Vec<NodeLayout> {
        (0..3)
            .map(|i| NodeLayout {
                id: NodeId(i),
                host: std::net::Ipv4Addr::LOCALHOST.into(),
                port: 1000 + i as u16,
                peer_port: 2000 + i as u16,
                data_dir: PathBuf::from(format!("/d/n{i}")),
                log_path: PathBuf::from(format!("/l/n{i}.log")),
                netns: None,
                reach: None,
                cgroup: None,
            })
            .collect()
    }

    // A fake proxy mesh: from i to j goes through port 3000 + 10 i + j.
    fn proxy(from: NodeId, to: NodeId) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 3000 + 10 * from.0 as u16 + to.0 as u16))
    }

    fn sample() -> SampleNodeProgram {
        SampleNodeProgram {
            program: PathBuf::from("/bin/rift"),
            leading_args: vec!["sample-node".into()],
        }
    }

    #[test]
    fn external_args_render_per_node_with_proxied_peers() {
        let cmd = NodeCommand::External {
            program: "srv".into(),
            args: vec![
                ArgTemplate::One(t(&["--name=", "{name}"])),
                ArgTemplate::One(t(&["{host}", ":", "{port}", "/", "{peer_port}"])),
                ArgTemplate::One(t(&["{peers}"])),
                ArgTemplate::EachPeer(vec![t(&["-p"]), t(&["{peer}"])]),
                ArgTemplate::One(t(&["{data_dir}", "/x"])),
            ],
        };
        let argv = node_commands(&spec(cmd, false), &layout(), &proxy, &sample());
        assert_eq!(argv[1].program, PathBuf::from("srv"));
        assert_eq!(
            argv[1].args,
            [
                "--name=n1",
                "127.0.0.1:1001/2001",
                "n0=http://127.0.0.1:3010,n2=http://127.0.0.1:3012",
                "-p",
                "n0=http://127.0.0.1:3010",
                "-p",
                "n2=http://127.0.0.1:3012",
                "/d/n1/x",
            ]
        );
        assert_eq!(argv[2].env, [("NODE".to_string(), "n2@1002".to_string())]);
    }

    #[test]
    fn include_self_lists_the_node_at_its_direct_peer_address() {
        let cmd = NodeCommand::External {
            program: "srv".into(),
            args: vec![ArgTemplate::One(t(&["{peers}"]))],
        };
        let argv = node_commands(&spec(cmd, true), &layout(), &proxy, &sample());
        assert_eq!(
            argv[0].args,
            ["n0=http://127.0.0.1:2000,n1=http://127.0.0.1:3001,n2=http://127.0.0.1:3002"]
        );
    }

    #[test]
    fn sample_node_gets_its_fixed_command_line() {
        let cmd = NodeCommand::SampleNode {
            bugs: vec![crate::plan::SampleBug::StaleReads],
        };
        let argv = node_commands(&spec(cmd, false), &layout(), &proxy, &sample());
        assert_eq!(argv[2].program, PathBuf::from("/bin/rift"));
        assert_eq!(
            argv[2].args,
            [
                "sample-node",
                "--id",
                "n2",
                "--listen",
                "127.0.0.1:1002",
                "--peer",
                "n0=127.0.0.1:3020",
                "--peer",
                "n1=127.0.0.1:3021",
                "--data-dir",
                "/d/n2",
                "--bug",
                "stale-reads",
            ]
        );
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        assert_eq!(shell_quote("--port"), "--port");
        assert_eq!(shell_quote("127.0.0.1:7000"), "127.0.0.1:7000");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $HOME"), "'it'\\''s $HOME'");
        let argv = NodeArgv {
            program: PathBuf::from("/opt/my db/bin/node"),
            args: vec!["--name".into(), "n0".into(), "{\"a\": 1}".into()],
            env: vec![
                ("RUST_LOG".into(), "info".into()),
                ("PEERS".into(), "n1=127.0.0.1:1 n2=127.0.0.1:2".into()),
            ],
            netns: None,
            timens: None,
            cgroup: None,
        };
        assert_eq!(
            argv.shell_line(),
            "RUST_LOG=info PEERS='n1=127.0.0.1:1 n2=127.0.0.1:2' '/opt/my db/bin/node' --name n0 '{\"a\": 1}'"
        );
        // A shell gives back exactly the words rift ran.
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {}",
                shell_quote("it's a \"test\" $x `y` \\z")
            ))
            .output()
            .expect("sh");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's a \"test\" $x `y` \\z\n"
        );
    }
}
