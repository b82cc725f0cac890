//! sample-node: the reference target of rift — a Raft-ordered, hash-chained ledger with a
//! key-value state machine. This crate root owns the command line; it never holds node state.

pub mod raft;
pub mod server;
pub mod state;
pub mod wal;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

pub use server::{run, Bugs, NodeConfig, NodeError};

/// A bug to switch on, for proving that rift's checkers catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Bug {
    /// Answer GET /kv from local state without confirming leadership (also on followers).
    StaleReads,
    /// Acknowledge writes once appended locally, before a majority has them.
    AckBeforeCommit,
    /// Grant votes without the up-to-date log check.
    UnsafeVote,
    /// Acknowledge set adds (POST /set) once appended locally, before a majority has them.
    LossySet,
    /// Answer GET /list from the local log, uncommitted entries included, on any node.
    DirtyListReads,
    /// The leader answers GET /kv locally while a lease measured on its wall clock holds.
    LeaseReads,
    /// Write the WAL without fsync: acknowledge what only the page cache holds.
    NoFsync,
    /// Not a safety bug but a slowdown: every committed entry takes a few
    /// milliseconds more to apply (3 ms, or SAMPLE_NODE_SLOW_APPLY_MS).
    SlowApply,
}

/// Command line of `sample-node`.
#[derive(Debug, Parser)]
#[command(
    name = "sample-node",
    version,
    about = "rift's reference target: a Raft-ordered, hash-chained ledger with a key-value state"
)]
pub struct Args {
    /// This node's id (unique in the cluster).
    #[arg(long)]
    pub id: String,
    /// Address serving both clients and peers (HTTP/1.1). Required unless
    /// --cluster is given; with --cluster it is where the node binds (e.g.
    /// 0.0.0.0:PORT) instead of its own entry.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// A peer as ID=HOST:PORT: where this node sends that peer's messages (repeatable).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, SocketAddr)>,
    /// Every member, this node included, as ID=HOST:PORT,ID=HOST:PORT,...
    /// (one argument, the same for every node): the entry of --id is where
    /// this node listens, the others are its peers. Instead of --peer.
    #[arg(long, value_name = "ID=HOST:PORT,...", value_parser = parse_cluster)]
    pub cluster: Option<Members>,
    /// Directory of the write-ahead log (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Break the node on purpose (repeatable). Never use outside tests.
    #[arg(long = "bug", value_enum)]
    pub bugs: Vec<Bug>,
}

fn parse_peer(s: &str) -> Result<(String, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    if id.is_empty() {
        return Err(format!("empty peer id in {s:?}"));
    }
    let addr = addr
        .parse::<SocketAddr>()
        .map_err(|e| format!("bad address in {s:?}: {e}"))?;
    Ok((id.to_string(), addr))
}

/// The members of `--cluster`, in the order given: ids distinct, none empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members(pub Vec<(String, SocketAddr)>);

fn parse_cluster(s: &str) -> Result<Members, String> {
    let mut members: Vec<(String, SocketAddr)> = Vec::new();
    for entry in s.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!(
                "empty entry in {s:?}; expected ID=HOST:PORT,ID=HOST:PORT,..."
            ));
        }
        let (id, addr) = parse_peer(entry)?;
        if members.iter().any(|(m, _)| *m == id) {
            return Err(format!("{id} is listed twice in {s:?}"));
        }
        members.push((id, addr));
    }
    Ok(Members(members))
}

impl Args {
    /// Validates the parsed arguments into a node configuration: `--listen`
    /// with `--peer`s, or `--cluster` (where the node finds itself by `--id`,
    /// and `--listen`, when given, replaces its own entry as bind address).
    pub fn into_config(self) -> Result<NodeConfig, String> {
        let (listen, peers) = match (self.cluster, self.listen) {
            (Some(_), _) if !self.peers.is_empty() => return Err(
                "give either --cluster or --peer, not both (--cluster already lists every peer)"
                    .to_string(),
            ),
            (Some(Members(members)), listen) => {
                let Some(own) = members.iter().find(|(m, _)| *m == self.id).map(|m| m.1) else {
                    let ids: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).collect();
                    return Err(format!(
                        "--id {} is not in --cluster (its members are {})",
                        self.id,
                        ids.join(", ")
                    ));
                };
                let peers = members.into_iter().filter(|(m, _)| *m != self.id).collect();
                (listen.unwrap_or(own), peers)
            }
            (None, Some(listen)) => {
                let mut seen = std::collections::HashSet::new();
                for (p, _) in &self.peers {
                    if *p == self.id {
                        return Err(format!("--peer {p} names this node itself"));
                    }
                    if !seen.insert(p.clone()) {
                        return Err(format!("--peer {p} given twice"));
                    }
                }
                (listen, self.peers)
            }
            (None, None) => {
                return Err(
                    "give --listen (with a --peer per peer) or --cluster with every member"
                        .to_string(),
                )
            }
        };
        let mut bugs = Bugs::default();
        for b in &self.bugs {
            match b {
                Bug::StaleReads => bugs.stale_reads = true,
                Bug::AckBeforeCommit => bugs.ack_before_commit = true,
                Bug::UnsafeVote => bugs.unsafe_vote = true,
                Bug::LossySet => bugs.lossy_set = true,
                Bug::DirtyListReads => bugs.dirty_list_reads = true,
                Bug::LeaseReads => bugs.lease_reads = true,
                Bug::NoFsync => bugs.no_fsync = true,
                Bug::SlowApply => bugs.slow_apply = Some(slow_apply_delay()?),
            }
        }
        Ok(NodeConfig {
            id: self.id,
            listen,
            peers,
            data_dir: self.data_dir,
            bugs,
        })
    }
}

/// How long `--bug slow-apply` adds to each committed entry: 3 ms, or
/// the whole milliseconds in `SAMPLE_NODE_SLOW_APPLY_MS` (at most 1000).
fn slow_apply_delay() -> Result<std::time::Duration, String> {
    const VAR: &str = "SAMPLE_NODE_SLOW_APPLY_MS";
    match std::env::var(VAR) {
        Err(_) => Ok(std::time::Duration::from_millis(3)),
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms <= 1000 => Ok(std::time::Duration::from_millis(ms)),
            _ => Err(format!(
                "{VAR}={v}: expected whole milliseconds from 0 to 1000"
            )),
        },
    }
}

/// Runs a node from a full argument list (argv[0] first) until SIGTERM/SIGINT.
/// Exit codes: 0 graceful stop, 1 runtime failure, 2 invalid command line.
pub fn cli_main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    // A node whose log pipe is gone keeps serving: unwritable log lines are
    // dropped instead of reported with a panicking `eprintln!`.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let bug_names: Vec<Bug> = args.bugs.clone();
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let peers: Vec<String> = cfg.peers.iter().map(|(p, a)| format!("{p}={a}")).collect();
    tracing::info!(id = %cfg.id, listen = %cfg.listen, peers = %peers.join(","), data_dir = %cfg.data_dir.display(), "sample-node starting");
    for b in bug_names {
        let name = b
            .to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        tracing::warn!(
            "!!!!!!!! BUG ENABLED ON PURPOSE: --bug {name} — this node is NOT correct !!!!!!!!"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start tokio runtime");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "node failed");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<NodeConfig, String> {
        let argv = ["sample-node", "--data-dir", "/tmp/d"]
            .into_iter()
            .chain(args.iter().copied());
        Args::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .into_config()
    }

    /// The error of an argument list that must be refused.
    fn refused(args: &[&str]) -> String {
        match config(args) {
            Ok(c) => panic!("{args:?} should be refused, got {c:?}"),
            Err(e) => e,
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const CLUSTER: &str = "n0=10.0.0.1:7000,n1=10.0.0.2:7000,n2=10.0.0.3:7000";

    #[test]
    fn listen_and_peers_as_before() {
        let c = config(&[
            "--id",
            "n0",
            "--listen",
            "127.0.0.1:7000",
            "--peer",
            "n1=127.0.0.1:7001",
        ])
        .unwrap();
        assert_eq!(c.listen, addr("127.0.0.1:7000"));
        assert_eq!(c.peers, vec![("n1".to_string(), addr("127.0.0.1:7001"))]);
        assert_eq!(
            refused(&[
                "--id",
                "n0",
                "--listen",
                "127.0.0.1:7000",
                "--peer",
                "n0=127.0.0.1:7001"
            ]),
            "--peer n0 names this node itself"
        );
    }

    #[test]
    fn cluster_gives_the_own_address_and_the_peers_in_order() {
        let c = config(&["--id", "n1", "--cluster", CLUSTER]).unwrap();
        assert_eq!(c.id, "n1");
        assert_eq!(c.listen, addr("10.0.0.2:7000"));
        assert_eq!(
            c.peers,
            vec![
                ("n0".to_string(), addr("10.0.0.1:7000")),
                ("n2".to_string(), addr("10.0.0.3:7000")),
            ]
        );
        // --listen wins for the bind address; the peers stay.
        let c = config(&[
            "--id",
            "n1",
            "--cluster",
            CLUSTER,
            "--listen",
            "0.0.0.0:7000",
        ])
        .unwrap();
        assert_eq!(c.listen, addr("0.0.0.0:7000"));
        assert_eq!(c.peers.len(), 2);
        // One member: no peers. Spaces around entries are ignored.
        let c = config(&["--id", "a", "--cluster", "a=[::1]:9"]).unwrap();
        assert_eq!((c.listen, c.peers), (addr("[::1]:9"), vec![]));
        let c = config(&["--id", "b", "--cluster=a=127.0.0.1:1, b=127.0.0.1:2"]).unwrap();
        assert_eq!(c.listen, addr("127.0.0.1:2"));
    }

    #[test]
    fn cluster_errors_are_clear() {
        assert_eq!(
            refused(&["--id", "n7", "--cluster", CLUSTER]),
            "--id n7 is not in --cluster (its members are n0, n1, n2)"
        );
        assert_eq!(
            refused(&[
                "--id",
                "n0",
                "--cluster",
                CLUSTER,
                "--peer",
                "n1=10.0.0.2:7000"
            ]),
            "give either --cluster or --peer, not both (--cluster already lists every peer)"
        );
        assert_eq!(
            refused(&["--id", "n0"]),
            "give --listen (with a --peer per peer) or --cluster with every member"
        );
        let parse_error = |cluster: &str| refused(&["--id", "n0", "--cluster", cluster]);
        for (cluster, says) in [
            ("n0=10.0.0.1:7000,n0=10.0.0.2:7000", "n0 is listed twice"),
            ("n0=10.0.0.1:7000,", "empty entry"),
            ("n0=10.0.0.1:7000,,n1=10.0.0.2:7000", "empty entry"),
            ("n0=10.0.0.1:7000,n1", "expected ID=HOST:PORT, got \"n1\""),
            ("n0=10.0.0.1", "bad address in \"n0=10.0.0.1\""),
            ("=10.0.0.1:7000", "empty peer id"),
            ("n0=host:7000", "bad address"),
        ] {
            let e = parse_error(cluster);
            assert!(e.contains("--cluster"), "{cluster:?}: {e}");
            assert!(e.contains(says), "{cluster:?}: {e}");
        }
    }

    #[test]
    fn argument_errors_exit_2() {
        let run = |args: &[&str]| {
            let argv = ["sample-node", "--data-dir", "/tmp/d"]
                .into_iter()
                .chain(args.iter().copied())
                .map(String::from)
                .collect::<Vec<_>>();
            cli_main(argv)
        };
        for args in [
            &["--id", "n7", "--cluster", CLUSTER][..],
            &["--id", "n0"],
            &["--id", "n0", "--cluster", "n0=x"],
        ] {
            assert_eq!(run(args), ExitCode::from(2), "{args:?}");
        }
    }
}
