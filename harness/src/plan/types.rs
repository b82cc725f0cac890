//! The validated experiment plan: every name resolved, every duration parsed.
//!
//! A `Plan` cannot be invalid; `plan::parse` is the only way to build one from
//! user input. Nothing here touches processes or the network.

use crate::check::CheckerId;
use crate::NodeId;
use reqwest::Method;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub name: String,
    pub description: String,
    /// Drives every random choice of the run. `None` in the file means the
    /// runner picks one and records it.
    pub seed: Option<u64>,
    pub duration: Duration,
    /// Where the plan came from; empty for plans built in code.
    pub path: PathBuf,
    /// Hex SHA-256 of the plan file's bytes, recorded in reports.
    pub hash: String,
    pub cluster: ClusterSpec,
    pub workload: WorkloadSpec,
    /// Sorted by `at`.
    pub steps: Vec<Step>,
    /// `[nemesis]`: faults drawn from the run's seed (`fault::random`),
    /// scheduled together with `steps`.
    pub nemesis: Option<super::nemesis::NemesisSpec>,
    pub expect: Expectations,
    /// `[cluster] disk`: what each node's data directory sits on.
    pub disk: DiskMode,
    /// `[cluster] backend`: what each node runs as (a process, or a
    /// container).
    pub backend: Backend,
}

/// `[cluster] backend`: what each node runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// A process of this machine (the default).
    #[default]
    Process,
    /// A container of a Docker engine (`backend = "docker"`).
    Docker(DockerImage),
}

impl Backend {
    /// The name plans use (`backend = "docker"`).
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Process => "process",
            Backend::Docker(_) => "docker",
        }
    }
}

/// Where a container's image comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerImage {
    /// `image = "name:tag"`: an image the engine already has; `command` is
    /// the program inside it.
    Image(String),
    /// `binary = "path"` (relative to the plan file): rift builds a minimal
    /// image holding the binary at its host path, the dynamic loader and
    /// the shared libraries it links. Without `command` the node is the
    /// sample node, and this binary is its program.
    Binary(PathBuf),
}

/// `[cluster] disk`: what each node's data directory (`{data_dir}`) is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DiskMode {
    /// A plain directory of the run (the default).
    #[default]
    Plain,
    /// The mountpoint of a faulty disk (FUSE, see `crate::disk`): what the
    /// node writes and has not fsynced can be lost (`kill` with
    /// `lose_unsynced`), and `disk` steps inject errors and latency.
    Faulty,
}

impl DiskMode {
    pub const ALL: [DiskMode; 2] = [DiskMode::Plain, DiskMode::Faulty];

    /// The name plans use (`disk = "faulty"`).
    pub fn name(self) -> &'static str {
        match self {
            DiskMode::Plain => "plain",
            DiskMode::Faulty => "faulty",
        }
    }

    pub fn from_name(name: &str) -> Option<DiskMode> {
        DiskMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// What a `kill` with `lose_unsynced = true` does to the node's faulty disk
/// once its processes are dead: a power loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLoss {
    /// `torn = true`: the last unsynced write of each file keeps a seeded
    /// random prefix instead of vanishing whole.
    pub torn: bool,
}

impl Plan {
    /// Whether some step moves a node's clock: then every node gets
    /// libfaketime preloaded (and the run refuses nodes that cannot take it).
    pub fn uses_clock_faults(&self) -> bool {
        let drawn = self.nemesis.as_ref().is_some_and(|n| {
            n.mix
                .iter()
                .any(|(k, w)| *k == super::FaultKind::Clock && *w > 0)
        });
        drawn
            || self
                .steps
                .iter()
                .any(|s| matches!(s.action, Action::Clock { .. }))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSpec {
    pub size: usize,
    /// Loopback address nodes listen on (default `127.0.0.1`); validation
    /// refuses any other.
    pub host: IpAddr,
    pub command: NodeCommand,
    /// Extra environment for every node; values are templates.
    pub env: BTreeMap<String, Template>,
    pub ready: Readiness,
    pub leader: Option<LeaderQuery>,
    pub network: NetworkMode,
    /// How `{peers}` renders the other nodes.
    pub peers: PeersFormat,
    /// Whether nodes listen for peers on a port of their own (`{peer_port}`).
    /// When false, peer traffic goes to `{port}`.
    pub separate_peer_port: bool,
    /// How long a node gets between SIGTERM and SIGKILL when the run stops it.
    pub stop_timeout: Duration,
    /// `capture = true` (netns only): write `wire.pcap` and `dropped.pcap`.
    pub capture: Option<Capture>,
    /// What the nodes' clocks start with: libfaketime preloaded (for clock
    /// faults) and time-namespace offsets of CLOCK_MONOTONIC/BOOTTIME.
    pub clock: ClockSetup,
}

/// How the nodes' clocks are set up at start (see docs/faults.md, Clocks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClockSetup {
    /// Preload libfaketime into every node, so clock steps can move its
    /// wall clock while it runs. Not a plan key: the runner sets it from
    /// [`Plan::uses_clock_faults`].
    pub faketime: bool,
    /// `[cluster] monotonic_offset = { n1 = "+1h" }`: each listed node runs
    /// in a time namespace whose CLOCK_MONOTONIC and CLOCK_BOOTTIME are
    /// moved by this much, from its first start on (restarts included).
    pub monotonic: BTreeMap<NodeId, ClockOffset>,
}

/// A signed span of time: how far a clock is moved (`"+1h"`, `"-10s"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockOffset {
    /// Backwards (`-`) rather than forwards.
    pub negative: bool,
    pub magnitude: Duration,
}

impl ClockOffset {
    pub const ZERO: ClockOffset = ClockOffset {
        negative: false,
        magnitude: Duration::ZERO,
    };

    /// Signed nanoseconds.
    pub fn as_nanos(self) -> i128 {
        let n = self.magnitude.as_nanos() as i128;
        if self.negative {
            -n
        } else {
            n
        }
    }

    pub fn is_zero(self) -> bool {
        self.magnitude.is_zero()
    }
}

impl fmt::Display for ClockOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.negative { '-' } else { '+' };
        write!(
            f,
            "{sign}{}",
            crate::plan::duration::format_duration(self.magnitude)
        )
    }
}

/// What a `clock` step does to a node's wall clock (CLOCK_REALTIME).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockChange {
    /// `offset = "-10s"`: the clock reads true time plus this, from the
    /// step on (a jump).
    Offset(ClockOffset),
    /// `rate = 0.5`: from the step on the clock advances this many seconds
    /// per real second, starting from what it read at the step (no jump).
    Rate(f64),
    /// `strobe = { offset = "5s", every = "200ms" }`: the clock flips
    /// between true time and true time plus `offset` every `every`.
    Strobe {
        offset: ClockOffset,
        every: Duration,
    },
}

impl ClockChange {
    /// Rates a clock step accepts: above 0, at most this. libfaketime
    /// multiplies the time since its anchor (the epoch, see
    /// `clock::faketime`) in signed 64-bit nanoseconds, which overflows
    /// above about 5x.
    pub const MAX_RATE: f64 = 4.0;
}

impl fmt::Display for ClockChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClockChange::Offset(o) => write!(f, "{o}"),
            ClockChange::Rate(r) => write!(f, "rate x{r}"),
            ClockChange::Strobe { offset, every } => write!(
                f,
                "strobe {offset} every {}",
                crate::plan::duration::format_duration(*every)
            ),
        }
    }
}

/// Packet capture of the netns wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capture {
    /// Bytes written to both files together before capture stops
    /// (`capture_limit`, default 100 MB).
    pub limit: u64,
}

impl Capture {
    pub const DEFAULT_LIMIT: u64 = 100 * 1000 * 1000;
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeCommand {
    /// The sample node bundled inside rift (rift re-executes itself).
    SampleNode {
        /// `--bug NAME` switches, to prove checkers catch real bugs.
        bugs: Vec<SampleBug>,
    },
    /// Any binary, its arguments templated per node.
    External {
        program: String,
        args: Vec<ArgTemplate>,
    },
}

/// A bug the bundled sample node can switch on (`--bug NAME`), so rift's
/// checkers can prove they catch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SampleBug {
    StaleReads,
    AckBeforeCommit,
    UnsafeVote,
    LossySet,
    DirtyListReads,
    LeaseReads,
    NoFsync,
    SlowApply,
}

impl SampleBug {
    /// Every bug, in the order messages list them.
    pub const ALL: [SampleBug; 8] = [
        SampleBug::StaleReads,
        SampleBug::AckBeforeCommit,
        SampleBug::UnsafeVote,
        SampleBug::LossySet,
        SampleBug::DirtyListReads,
        SampleBug::LeaseReads,
        SampleBug::NoFsync,
        SampleBug::SlowApply,
    ];

    /// The name plans use, which is also the sample node's `--bug` switch.
    pub fn name(self) -> &'static str {
        match self {
            SampleBug::StaleReads => "stale-reads",
            SampleBug::AckBeforeCommit => "ack-before-commit",
            SampleBug::UnsafeVote => "unsafe-vote",
            SampleBug::LossySet => "lossy-set",
            SampleBug::DirtyListReads => "dirty-list-reads",
            SampleBug::LeaseReads => "lease-reads",
            SampleBug::NoFsync => "no-fsync",
            SampleBug::SlowApply => "slow-apply",
        }
    }

    /// The bug a plan names, if any.
    pub fn from_name(name: &str) -> Option<SampleBug> {
        SampleBug::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Every name, for messages and suggestions.
    pub fn names() -> [&'static str; 8] {
        SampleBug::ALL.map(SampleBug::name)
    }
}

impl fmt::Display for SampleBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One element of `args`.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgTemplate {
    /// A single argument: `"--listen={host}:{port}"`.
    One(Template),
    /// `{ each_peer = ["--peer", "{peer}"] }`: repeated once per peer, where
    /// `{peer}` is that peer rendered with the peers format.
    EachPeer(Vec<Template>),
}

/// A string with `{placeholder}`s, checked at parse time; `{{` and `}}` escape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub parts: Vec<TemplatePart>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplatePart {
    Lit(String),
    Var(Placeholder),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placeholder {
    /// The node's index: `0`, `1`, ...
    Id,
    /// The node's name: `n0`, `n1`, ...
    Name,
    Host,
    Port,
    PeerPort,
    DataDir,
    /// Every other node, rendered with the peers format and joined.
    Peers,
    /// Only inside `each_peer`: one peer, rendered with the peers format.
    Peer,
}

/// How one peer renders inside `{peers}` / `{peer}`: `format` may use
/// `{id}`, `{name}`, `{host}`, `{port}`, where host:port is the address the
/// *rendering* node must dial to reach that peer (a proxy when the network is
/// proxied).
#[derive(Clone, Debug, PartialEq)]
pub struct PeersFormat {
    pub format: Template,
    pub separator: String,
    /// Whether the node itself appears in `{peers}` (etcd's
    /// `--initial-cluster` wants it; most systems do not).
    pub include_self: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    pub probe: ReadyProbe,
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReadyProbe {
    /// GET path answers 2xx.
    Http { path: String },
    /// A TCP connect to the node's port succeeds.
    Tcp,
}

/// Where to ask who leads: GET `path` on a node, read the JSON `pointer`;
/// `by` says how that value names the leader.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaderQuery {
    pub path: String,
    pub pointer: String,
    pub by: LeaderBy,
}

impl LeaderQuery {
    /// The classic form: the value names the leader (`"n2"`) or is its index.
    pub fn named(path: impl Into<String>, pointer: impl Into<String>) -> LeaderQuery {
        LeaderQuery {
            path: path.into(),
            pointer: pointer.into(),
            by: LeaderBy::Name,
        }
    }
}

/// How the value a node answers names the leader.
#[derive(Clone, Debug, PartialEq)]
pub enum LeaderBy {
    /// The value is rift's name of the leader (`"n2"`), or its index (`2`,
    /// `"2"`); the most common answer wins.
    Name,
    /// Each node tells whether it leads itself (`equals = "leader"` against
    /// `/role`, `equals = true` against `/is_leader`): the leader is the one
    /// node whose value equals this JSON value.
    Equals(serde_json::Value),
    /// The value is the system's own member id of the leader; each node's own
    /// id is read by GET `path`, JSON `pointer` (`ids = { path, pointer }`).
    Ids { path: String, pointer: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// Peer links go through proxies rift owns (unprivileged).
    Proxy,
    /// Nodes in Linux network namespaces (root).
    Netns,
    /// No network faults possible; peers talk directly.
    None,
}

impl NetworkMode {
    /// Every mode, in the order messages list them.
    pub const ALL: [NetworkMode; 3] = [NetworkMode::Proxy, NetworkMode::Netns, NetworkMode::None];

    /// The name plans (`[cluster] network`) and `rift run --network` use.
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::Proxy => "proxy",
            NetworkMode::Netns => "netns",
            NetworkMode::None => "none",
        }
    }

    /// The mode a plan or the command line names, if any.
    pub fn from_name(name: &str) -> Option<NetworkMode> {
        NetworkMode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    pub kind: WorkloadKind,
    pub clients: usize,
    /// Operations per second in total, across clients.
    pub rate: f64,
    pub timeout: Duration,
    /// How client requests reach the nodes.
    pub via: ClientRoute,
    /// The client program, when the workload speaks the client protocol
    /// instead of a built-in adapter.
    pub client: Option<ClientSpec>,
}

/// The path of the workload's requests to a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientRoute {
    /// Straight to the node: network faults touch peer traffic only.
    #[default]
    Direct,
    /// Through one proxy per node, which degradations of that node (or of
    /// all links) slow and break too. Partitions stay between nodes.
    Proxy,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WorkloadKind {
    /// HTTP requests to every node; success means status in `ok_status`.
    Probe {
        method: Method,
        path: String,
        ok_status: Vec<u16>,
    },
    /// Reads, writes and compare-and-set over `keys` keys of a sample-node
    /// compatible key-value API (or the HTTP adapter of a later issue).
    Kv {
        keys: usize,
        mix: KvMix,
        /// How each operation maps to HTTP (`[workload.http]`); `None` is the
        /// sample node's API.
        http: Option<Box<HttpKv>>,
    },
    /// Appends transactions to the sample-node ledger.
    Ledger,
    /// Adds unique elements to sets at `keys` keys and reads whole sets
    /// (Jepsen's set-full); `reads` is the fraction of operations that read.
    Set { keys: usize, reads: f64 },
    /// Appends unique values to lists at `keys` keys and reads whole lists;
    /// `reads` is the fraction of operations that read.
    ListAppend { keys: usize, reads: f64 },
}

/// `[workload] client = { ... }`: the program rift starts once per logical
/// client and speaks the client protocol with (docs/client-protocol.md).
#[derive(Clone, Debug, PartialEq)]
pub struct ClientSpec {
    pub command: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Values handed to the client in its handshake, as the plan gives them.
    pub vars: BTreeMap<String, String>,
}

/// The generic HTTP key-value adapter: one request shape per operation.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpKv {
    pub read: HttpOp,
    pub write: HttpOp,
    /// Required when the mix has compare-and-set operations.
    pub cas: Option<HttpOp>,
    /// The shape of a cas that expects the key to be absent (create if
    /// absent); `None`: such a cas uses `cas`, with `{expect}` empty and
    /// `{expect_json}` null.
    pub cas_absent: Option<HttpOp>,
}

/// One operation of the HTTP adapter. `path`, header values and `body` are
/// templates over `{key}`, `{value}`, `{expect}` (raw text, empty when
/// absent) and `{value_json}`, `{expect_json}` (a JSON string, or `null`).
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOp {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// No body when `None`. A body sent without a `content-type` header
    /// gets one (see `adapter::http_kv::default_content_type`).
    pub body: Option<String>,
    /// Statuses meaning the operation took effect (a read: found).
    pub ok: Vec<u16>,
    /// Statuses meaning the key is absent (a read: ok, no value; a cas:
    /// refused, the key is absent).
    pub not_found: Vec<u16>,
    /// cas: statuses meaning the expected value did not match (refused);
    /// the current value is read (at `value`) from an answer with any of
    /// them.
    pub precondition_failed: Vec<u16>,
    /// write and cas: statuses (5xx ones, typically) meaning the service
    /// refused the operation before it could take effect, as opposed to
    /// timing out on it: a definite failure, where other 5xx are unknown.
    pub refused: Vec<u16>,
    /// Where the value is in an answer: a read's value when ok, a cas's
    /// current value when refused.
    pub value: ValueAt,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueAt {
    /// The whole body, as text.
    Body,
    /// A JSON pointer into the body (`/data/value`); a string is taken as is,
    /// `null` or a missing member means absent, anything else as its JSON text.
    Pointer(String),
}

/// Relative weights, normalised at parse time so they sum to 1.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KvMix {
    pub read: f64,
    pub write: f64,
    pub cas: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub at: Duration,
    pub action: Action,
    /// 1-based line of the step in the plan file, for messages.
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Kill {
        target: Target,
        /// Signal number; SIGKILL unless the plan says otherwise.
        signal: i32,
        restart_after: Option<Duration>,
        /// `lose_unsynced = true` (and `torn`): a power loss of the node's
        /// faulty disk once its processes are dead, before any restart.
        power_loss: Option<PowerLoss>,
    },
    /// Starts killed nodes again; a running target is stopped (SIGTERM) and
    /// started again.
    Restart {
        target: Target,
    },
    Pause {
        target: Target,
        for_: Option<Duration>,
        /// SIGSTOP (the default) or the cgroup freezer.
        how: PauseHow,
    },
    Resume {
        target: Target,
    },
    Partition {
        topology: Topology,
        oneway: bool,
        for_: Option<Duration>,
    },
    Heal,
    Degrade {
        links: LinkSelector,
        degradation: Degradation,
        for_: Option<Duration>,
    },
    Restore {
        links: LinkSelector,
    },
    /// Moves the wall clock of each target node (libfaketime), until `for`
    /// ends or a later clock step on the node replaces it.
    Clock {
        target: Target,
        change: ClockChange,
        for_: Option<Duration>,
    },
    /// Keeps the nodes running on a fraction of a CPU (the cgroup CPU
    /// controller's quota over its period) until `for` ends or the run's
    /// final heal.
    Slow {
        target: Target,
        /// CPUs the node may use: `0.1` is 10% of one CPU.
        cpu: f64,
        for_: Option<Duration>,
    },
    /// Sets the faults of each target's faulty disk (`[cluster] disk =
    /// "faulty"`) until `for` ends, a later disk step on the node replaces
    /// them, or the run's final heal.
    Disk {
        target: Target,
        faults: crate::disk::DiskFaults,
        for_: Option<Duration>,
    },
}

/// How a `pause` step stops a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PauseHow {
    /// SIGSTOP to the node's process group (SIGCONT resumes it).
    #[default]
    Sigstop,
    /// The cgroup freezer: the node's whole process tree stops at once,
    /// with no signal a process could observe (a thaw resumes it).
    Freeze,
}

impl PauseHow {
    pub const ALL: [PauseHow; 2] = [PauseHow::Sigstop, PauseHow::Freeze];

    /// The way a plan names, if any.
    pub fn from_name(name: &str) -> Option<PauseHow> {
        PauseHow::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The name plans use (`how = "freeze"`).
    pub fn name(self) -> &'static str {
        match self {
            PauseHow::Sigstop => "sigstop",
            PauseHow::Freeze => "freeze",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Nodes(Vec<NodeId>),
    /// `random` is `Random(1)`.
    Random(usize),
    Leader,
    /// Every node except the leader.
    Followers,
    /// floor((n-1)/2) nodes, chosen at random.
    Minority,
    /// floor(n/2)+1 nodes, chosen at random.
    Majority,
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topology {
    Isolate(Target),
    MajorityMinority,
    Halves,
    Bridge,
    Ring,
    Groups(Vec<Vec<NodeId>>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSelector {
    All,
    /// Every link to and from these nodes.
    Nodes(Target),
    /// Directed links `from -> to`.
    Links(Vec<(NodeId, NodeId)>),
    /// Only the client links of these nodes (`[workload] via = "proxy"`).
    Clients(Target),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Degradation {
    /// Added one-way delay (proxy: per chunk; netns: per packet).
    pub latency: Option<Duration>,
    /// Spread of the delay around `latency`.
    pub jitter: Option<Duration>,
    /// How jitter is drawn (netns only; the proxy draws uniformly).
    pub distribution: Distribution,
    /// Bytes per second.
    pub bandwidth: Option<u64>,
    /// Probability per packet of being lost (netns only).
    pub loss: Option<f64>,
    /// Probability per packet of being delivered twice (netns only).
    pub duplicate: Option<f64>,
    /// Probability per packet of being held back by `gap`, so later packets
    /// overtake it (netns only).
    pub reorder: Option<f64>,
    /// How long a reordered packet is held back (netns only; default 5 ms).
    pub gap: Option<Duration>,
    /// Probability per packet of one flipped payload bit (netns only).
    pub corrupt: Option<f64>,
    /// Probability per connection of being reset (proxy only).
    pub reset: Option<f64>,
    /// Probability per connection of being stalled (proxy only).
    pub stall: Option<f64>,
}

impl Degradation {
    /// How long a reordered packet is held back when the plan gives no `gap`.
    pub const DEFAULT_GAP: Duration = Duration::from_millis(5);
}

/// How a jittered delay is drawn around `latency`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Distribution {
    /// Uniform in `latency ± jitter`.
    #[default]
    Uniform,
    /// Normal with mean `latency` and standard deviation `jitter`, cut at 0.
    Normal,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expectations {
    /// Minimum success ratio of requests to nodes expected to serve.
    pub availability: Option<f64>,
    pub p50_latency: Option<Duration>,
    pub p99_latency: Option<Duration>,
    /// After each restart, resume or heal, every node serves again within this.
    pub recovery: Option<Duration>,
    /// Fail the run if a node exits without rift having killed it.
    pub no_unexpected_exits: bool,
    pub linearizable: Option<bool>,
    pub lost_writes: Option<u64>,
    pub ledger_agreement: Option<bool>,
    /// `set = true`: no acknowledged element lost, none read that nobody added.
    pub set: Option<bool>,
    /// `list_append = true`: every list read is a prefix of one order of the
    /// appends, consistent with real time.
    pub list_append: Option<bool>,
    /// Checkers that must report a violation (plans that prove a bug is found).
    pub finds: Vec<CheckerId>,
}

impl Expectations {
    /// Whether the plan expects `checker` to hold (find no violation).
    pub fn expects_to_hold(&self, checker: CheckerId) -> bool {
        match checker {
            CheckerId::Linearizable => self.linearizable == Some(true),
            CheckerId::LostWrites => self.lost_writes.is_some(),
            CheckerId::LedgerAgreement => self.ledger_agreement == Some(true),
            CheckerId::Set => self.set == Some(true),
            CheckerId::ListAppend => self.list_append == Some(true),
        }
    }

    /// Whether the plan proves a bug: `checker` must report a violation.
    pub fn must_find(&self, checker: CheckerId) -> bool {
        self.finds.contains(&checker)
    }

    /// The checkers this plan selects (expected to hold, or listed in
    /// `finds`), in [`CheckerId::ALL`] order: the one place selection is
    /// derived from a plan.
    pub fn checkers(&self) -> Vec<CheckerId> {
        CheckerId::ALL
            .into_iter()
            .filter(|&c| self.expects_to_hold(c) || self.must_find(c))
            .collect()
    }
}

impl Default for Expectations {
    fn default() -> Self {
        Expectations {
            availability: None,
            p50_latency: None,
            p99_latency: None,
            recovery: None,
            no_unexpected_exits: true,
            linearizable: None,
            lost_writes: None,
            ledger_agreement: None,
            set: None,
            list_append: None,
            finds: Vec::new(),
        }
    }
}
