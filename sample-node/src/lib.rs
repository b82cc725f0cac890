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
    /// Address serving both clients and peers (HTTP/1.1).
    #[arg(long)]
    pub listen: SocketAddr,
    /// A peer as ID=HOST:PORT: where this node sends that peer's messages (repeatable).
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(String, SocketAddr)>,
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

impl Args {
    /// Validates the parsed arguments into a node configuration.
    pub fn into_config(self) -> Result<NodeConfig, String> {
        let mut seen = std::collections::HashSet::new();
        for (p, _) in &self.peers {
            if *p == self.id {
                return Err(format!("--peer {p} names this node itself"));
            }
            if !seen.insert(p.clone()) {
                return Err(format!("--peer {p} given twice"));
            }
        }
        let mut bugs = Bugs::default();
        for b in &self.bugs {
            match b {
                Bug::StaleReads => bugs.stale_reads = true,
                Bug::AckBeforeCommit => bugs.ack_before_commit = true,
                Bug::UnsafeVote => bugs.unsafe_vote = true,
            }
        }
        Ok(NodeConfig {
            id: self.id,
            listen: self.listen,
            peers: self.peers,
            data_dir: self.data_dir,
            bugs,
        })
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
