//! The sans-IO Raft core: election, replication, commitment and ReadIndex rules.
//! It owns the in-memory log and the hash chain; it never touches a clock, a socket or a file —
//! the IO shell feeds it [`Event`]s and carries out the [`Action`]s it returns.

use std::collections::{BTreeMap, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest; the chain's genesis "previous hash" is all zeros.
pub type Hash = [u8; 32];

/// Payload bytes after which an Append message stops taking more entries.
const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// Hash of the entry before index 1.
pub const GENESIS: Hash = [0u8; 32];

/// Lowercase hex of a hash.
pub fn hex(hash: &Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Chains an entry to its predecessor: sha256(prev || index || term || data).
pub fn chain_hash(prev: &Hash, index: u64, term: u64, data: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(index.to_be_bytes());
    h.update(term.to_be_bytes());
    h.update(data.as_bytes());
    h.finalize().into()
}

/// One log entry with its place in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub index: u64,
    pub term: u64,
    /// The command, as JSON text (see `state::Command`).
    pub data: String,
    pub prev: Hash,
    pub hash: Hash,
}

/// An entry as it travels between nodes: receivers recompute the chain themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEntry {
    pub term: u64,
    pub data: String,
}

/// A peer message. Every message is one-way; replies are messages too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: String,
    pub to: String,
    pub term: u64,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    Vote {
        last_index: u64,
        last_term: u64,
    },
    VoteResp {
        granted: bool,
    },
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<WireEntry>,
        commit: u64,
        /// Leader's heartbeat sequence number, echoed back; confirms leadership for reads.
        seq: u64,
    },
    AppendResp {
        success: bool,
        /// On success the last index known to match; on failure a hint where to retry from.
        index: u64,
        seq: u64,
    },
    /// Leadership transfer: the leader tells an up-to-date follower to campaign at once.
    TimeoutNow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    Candidate,
    Leader,
}

/// Inputs to the core.
#[derive(Clone, Debug)]
pub enum Event {
    /// One tick of logical time (the shell uses 10 ms).
    Tick,
    Message(Message),
    /// Client commands to append, each with a request id chosen by the shell.
    Propose(Vec<(u64, String)>),
    /// A linearizable read request.
    Read(u64),
    /// The shell made the log durable up to `index`, whose entry has `term`.
    Persisted {
        index: u64,
        term: u64,
    },
    /// Hand leadership to the most up-to-date follower (before a graceful stop). Proposals
    /// are refused while it runs; after `ticks` ticks without success it is abandoned and
    /// the leader carries on as before. Ignored unless this node leads and has peers.
    TransferLeadership {
        ticks: u32,
    },
}

/// Outputs of the core, to be carried out in order of kind: persistence first, then sends
/// (except leader appends, which may go out before the leader's own fsync), then applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(Message),
    SaveHardState {
        term: u64,
        vote: Option<String>,
    },
    /// Remove log entries from `from` onwards (conflicting suffix).
    TruncateLog {
        from: u64,
    },
    AppendLog(Vec<LogEntry>),
    /// Newly committed entries, in order.
    Apply(Vec<LogEntry>),
    Proposed {
        req: u64,
        index: u64,
        term: u64,
    },
    ProposeRejected {
        req: u64,
        leader: Option<String>,
    },
    /// The read may be served once the state machine has applied `index`.
    ReadReady {
        req: u64,
        index: u64,
    },
    ReadRejected {
        req: u64,
        leader: Option<String>,
    },
}

/// Static parameters of the core.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: String,
    pub peers: Vec<String>,
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub heartbeat_ticks: u32,
    /// Most entries in one Append message.
    pub max_batch: usize,
    /// Most unacknowledged entries outstanding to one peer before waiting.
    pub max_inflight: u64,
    /// Bug on purpose: grant votes without the up-to-date log check.
    pub unsafe_vote: bool,
    pub seed: u64,
}

impl Config {
    pub fn new(id: impl Into<String>, peers: Vec<String>) -> Config {
        Config {
            id: id.into(),
            peers,
            election_ticks_min: 15,
            election_ticks_max: 30,
            heartbeat_ticks: 5,
            max_batch: 512,
            max_inflight: 4096,
            unsafe_vote: false,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Progress {
    next: u64,
    matched: u64,
    acked_seq: u64,
    active: bool,
}

/// A leadership transfer in progress (leader side).
#[derive(Clone, Debug)]
struct Transfer {
    target: String,
    ticks_left: u32,
    /// TimeoutNow went out at least once (later copies only ride on heartbeats).
    sent: bool,
}

struct PendingRead {
    req: u64,
    seq: u64,
    index: u64,
}

/// The Raft state machine of one node.
pub struct RaftCore {
    cfg: Config,
    rng: StdRng,
    term: u64,
    vote: Option<String>,
    role: Role,
    leader: Option<String>,
    log: Vec<LogEntry>,
    commit: u64,
    applied: u64,
    /// Highest index the shell reported durable (counts for the leader's own vote in commits).
    persisted: u64,
    elapsed: u32,
    timeout: u32,
    votes: Vec<String>,
    progress: BTreeMap<String, Progress>,
    seq: u64,
    reads: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its own term.
    early_reads: Vec<u64>,
    quorum_elapsed: u32,
    transfer: Option<Transfer>,
}

impl RaftCore {
    /// Builds a core from recovered durable state (term, vote, log as (term, data) pairs).
    pub fn new(
        cfg: Config,
        term: u64,
        vote: Option<String>,
        entries: Vec<(u64, String)>,
    ) -> RaftCore {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let timeout = rng.random_range(cfg.election_ticks_min..=cfg.election_ticks_max);
        let mut core = RaftCore {
            cfg,
            rng,
            term,
            vote,
            role: Role::Follower,
            leader: None,
            log: Vec::with_capacity(entries.len()),
            commit: 0,
            applied: 0,
            persisted: 0,
            elapsed: 0,
            timeout,
            votes: Vec::new(),
            progress: BTreeMap::new(),
            seq: 0,
            reads: VecDeque::new(),
            early_reads: Vec::new(),
            quorum_elapsed: 0,
            transfer: None,
        };
        for (t, data) in entries {
            core.push_entry(t, data);
        }
        core.persisted = core.last_index();
        core
    }

    pub fn id(&self) -> &str {
        &self.cfg.id
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn vote(&self) -> Option<&str> {
        self.vote.as_deref()
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<&str> {
        self.leader.as_deref()
    }
    pub fn commit(&self) -> u64 {
        self.commit
    }
    /// The follower leadership is being handed to, while a transfer runs.
    pub fn transfer_target(&self) -> Option<&str> {
        self.transfer.as_ref().map(|t| t.target.as_str())
    }
    pub fn last_index(&self) -> u64 {
        self.log.len() as u64
    }
    /// The entry at `index` (1-based), if present.
    pub fn entry(&self, index: u64) -> Option<&LogEntry> {
        if index == 0 {
            return None;
        }
        self.log.get((index - 1) as usize)
    }
    /// Hash of the last committed entry (genesis when nothing is committed).
    pub fn head(&self) -> Hash {
        self.entry(self.commit).map(|e| e.hash).unwrap_or(GENESIS)
    }
    fn term_at(&self, index: u64) -> u64 {
        self.entry(index).map(|e| e.term).unwrap_or(0)
    }
    fn last_term(&self) -> u64 {
        self.term_at(self.last_index())
    }
    fn quorum(&self) -> usize {
        let nodes = self.cfg.peers.len() + 1;
        nodes / 2 + 1
    }

    fn push_entry(&mut self, term: u64, data: String) -> LogEntry {
        let index = self.last_index() + 1;
        let prev = self.log.last().map(|e| e.hash).unwrap_or(GENESIS);
        let hash = chain_hash(&prev, index, term, &data);
        let e = LogEntry {
            index,
            term,
            data,
            prev,
            hash,
        };
        self.log.push(e.clone());
        e
    }

    fn reset_timer(&mut self) {
        self.elapsed = 0;
        self.timeout = self
            .rng
            .random_range(self.cfg.election_ticks_min..=self.cfg.election_ticks_max);
    }

    /// Feeds one event, returns what the shell must do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Tick => self.tick(&mut out),
            Event::Message(m) => self.on_message(m, &mut out),
            Event::Propose(cmds) => self.propose(cmds, &mut out),
            Event::Read(req) => self.read(req, &mut out),
            Event::Persisted { index, term } => {
                if self.term_at(index) == term && index > self.persisted {
                    self.persisted = index;
                }
                if self.role == Role::Leader {
                    self.maybe_commit(&mut out);
                }
            }
            Event::TransferLeadership { ticks } => self.transfer_leadership(ticks, &mut out),
        }
        out
    }

    fn transfer_leadership(&mut self, ticks: u32, out: &mut Vec<Action>) {
        if self.role != Role::Leader || self.transfer.is_some() {
            return;
        }
        // The follower with the longest matching log needs the least catching up; among
        // equals prefer one that answered lately (it is probably alive).
        let Some(target) = self
            .progress
            .iter()
            .max_by_key(|(_, p)| (p.matched, p.active))
            .map(|(id, _)| id.clone())
        else {
            return;
        };
        tracing::info!(%target, ticks, "transferring leadership");
        self.transfer = Some(Transfer {
            target: target.clone(),
            ticks_left: ticks.max(1),
            sent: false,
        });
        self.advance_transfer(true, out);
        if self.transfer.as_ref().is_some_and(|t| !t.sent) {
            // Resend from the target's match point at once rather than wait for a heartbeat
            // to retransmit whatever may have been lost (duplicates are harmless).
            if let Some(pr) = self.progress.get_mut(&target) {
                pr.next = pr.matched + 1;
            }
            self.send_append(&target, true, out);
        }
    }

    /// Sends TimeoutNow once the transfer target holds this leader's whole log: only then
    /// can it win (votes need an up-to-date log) without losing an entry this leader has.
    fn advance_transfer(&mut self, resend: bool, out: &mut Vec<Action>) {
        let last = self.last_index();
        let Some(t) = &mut self.transfer else { return };
        let caught_up = self
            .progress
            .get(&t.target)
            .is_some_and(|p| p.matched >= last);
        if caught_up && (resend || !t.sent) {
            t.sent = true;
            let to = t.target.clone();
            out.push(self.reply(&to, Body::TimeoutNow));
        }
    }

    fn tick(&mut self, out: &mut Vec<Action>) {
        self.elapsed += 1;
        match self.role {
            Role::Leader => {
                if let Some(t) = &mut self.transfer {
                    t.ticks_left = t.ticks_left.saturating_sub(1);
                    if t.ticks_left == 0 {
                        tracing::warn!(target = %t.target, "leadership transfer timed out; still leading");
                        self.transfer = None;
                    }
                }
                self.quorum_elapsed += 1;
                if self.quorum_elapsed >= self.cfg.election_ticks_max {
                    self.quorum_elapsed = 0;
                    let active = 1 + self.progress.values().filter(|p| p.active).count();
                    for p in self.progress.values_mut() {
                        p.active = false;
                    }
                    if active < self.quorum() {
                        // Isolated: step down so clients get a prompt 503 instead of a hang.
                        self.become_follower(self.term, None, out);
                        return;
                    }
                }
                if self.elapsed >= self.cfg.heartbeat_ticks {
                    self.elapsed = 0;
                    self.broadcast(true, out);
                    // TimeoutNow may have been lost; repeating it is harmless (a target that
                    // already moved to a later term ignores it as stale).
                    self.advance_transfer(true, out);
                }
            }
            Role::Follower | Role::Candidate => {
                if self.elapsed >= self.timeout {
                    self.campaign(out);
                }
            }
        }
    }

    fn campaign(&mut self, out: &mut Vec<Action>) {
        self.reject_reads(out);
        self.term += 1;
        self.role = Role::Candidate;
        self.leader = None;
        self.vote = Some(self.cfg.id.clone());
        self.votes = vec![self.cfg.id.clone()];
        self.reset_timer();
        out.push(Action::SaveHardState {
            term: self.term,
            vote: self.vote.clone(),
        });
        if self.votes.len() >= self.quorum() {
            self.become_leader(out);
            return;
        }
        for p in self.cfg.peers.clone() {
            out.push(Action::Send(Message {
                from: self.cfg.id.clone(),
                to: p,
                term: self.term,
                body: Body::Vote {
                    last_index: self.last_index(),
                    last_term: self.last_term(),
                },
            }));
        }
    }

    fn become_follower(&mut self, term: u64, leader: Option<String>, out: &mut Vec<Action>) {
        self.reject_reads(out);
        if term > self.term {
            self.term = term;
            self.vote = None;
            out.push(Action::SaveHardState { term, vote: None });
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        self.transfer = None;
        self.reset_timer();
    }

    fn become_leader(&mut self, out: &mut Vec<Action>) {
        self.role = Role::Leader;
        self.transfer = None;
        self.leader = Some(self.cfg.id.clone());
        self.elapsed = 0;
        self.quorum_elapsed = 0;
        let next = self.last_index() + 1;
        self.progress = self
            .cfg
            .peers
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Progress {
                        next,
                        matched: 0,
                        acked_seq: 0,
                        active: true,
                    },
                )
            })
            .collect();
        // A no-op of the new term lets earlier-term entries commit (Raft §5.4.2).
        let e = self.push_entry(self.term, crate::state::NOOP.to_string());
        out.push(Action::AppendLog(vec![e]));
        self.broadcast(false, out);
        self.maybe_commit(out);
    }

    fn reject_reads(&mut self, out: &mut Vec<Action>) {
        let leader = self.leader.clone();
        for r in self.reads.drain(..) {
            out.push(Action::ReadRejected {
                req: r.req,
                leader: leader.clone(),
            });
        }
        for req in self.early_reads.drain(..) {
            out.push(Action::ReadRejected {
                req,
                leader: leader.clone(),
            });
        }
    }

    fn propose(&mut self, cmds: Vec<(u64, String)>, out: &mut Vec<Action>) {
        if self.role != Role::Leader || self.transfer.is_some() {
            // A leader handing over names no leader: the target must end up with the whole
            // log, so nothing new may be appended, and the successor is not elected yet.
            let leader = if self.transfer.is_some() {
                None
            } else {
                self.leader.clone()
            };
            for (req, _) in cmds {
                out.push(Action::ProposeRejected {
                    req,
                    leader: leader.clone(),
                });
            }
            return;
        }
        let mut appended = Vec::with_capacity(cmds.len());
        for (req, data) in cmds {
            let e = self.push_entry(self.term, data);
            out.push(Action::Proposed {
                req,
                index: e.index,
                term: e.term,
            });
            appended.push(e);
        }
        out.push(Action::AppendLog(appended));
        self.broadcast(false, out);
        self.maybe_commit(out);
    }

    fn read(&mut self, req: u64, out: &mut Vec<Action>) {
        if self.role != Role::Leader {
            out.push(Action::ReadRejected {
                req,
                leader: self.leader.clone(),
            });
            return;
        }
        if self.term_at(self.commit) != self.term {
            // The commit index is only known to be current once an entry of this term commits.
            self.early_reads.push(req);
            return;
        }
        self.start_read(req, out);
    }

    fn start_read(&mut self, req: u64, out: &mut Vec<Action>) {
        if self.cfg.peers.is_empty() {
            out.push(Action::ReadReady {
                req,
                index: self.commit,
            });
            return;
        }
        self.seq += 1;
        self.reads.push_back(PendingRead {
            req,
            seq: self.seq,
            index: self.commit,
        });
        // A round that confirms leadership: every peer hears from the
        // leader, but nothing in flight is sent again (that is the periodic
        // heartbeat's job; resending on every read multiplied the traffic).
        let peers: Vec<String> = self.progress.keys().cloned().collect();
        for p in peers {
            self.send_append(&p, true, out);
        }
    }

    /// Sends Append to every peer. A heartbeat also retransmits anything unacknowledged.
    fn broadcast(&mut self, heartbeat: bool, out: &mut Vec<Action>) {
        let peers: Vec<String> = self.progress.keys().cloned().collect();
        for p in peers {
            if heartbeat {
                if let Some(pr) = self.progress.get_mut(&p) {
                    pr.next = pr.matched + 1;
                }
            }
            self.send_append(&p, heartbeat, out);
        }
    }

    fn send_append(&mut self, peer: &str, force: bool, out: &mut Vec<Action>) {
        let last = self.last_index();
        let Some(pr) = self.progress.get(peer) else {
            return;
        };
        let (next, matched) = (pr.next, pr.matched);
        if !force && (next > last || next.saturating_sub(matched) > self.cfg.max_inflight) {
            return;
        }
        let mut end = last.min(next + self.cfg.max_batch as u64 - 1);
        let mut entries: Vec<WireEntry> = Vec::new();
        let mut bytes = 0usize;
        for i in next..=end {
            let Some(e) = self.entry(i) else { break };
            // Keep messages moderate in size; at least one entry always goes.
            if !entries.is_empty() && bytes + e.data.len() > MAX_MESSAGE_BYTES {
                end = i - 1;
                break;
            }
            bytes += e.data.len();
            entries.push(WireEntry {
                term: e.term,
                data: e.data.clone(),
            });
        }
        let prev_index = next - 1;
        let msg = Message {
            from: self.cfg.id.clone(),
            to: peer.to_string(),
            term: self.term,
            body: Body::Append {
                prev_index,
                prev_term: self.term_at(prev_index),
                commit: self.commit,
                seq: self.seq,
                entries,
            },
        };
        if let Some(pr) = self.progress.get_mut(peer) {
            pr.next = pr.next.max(end + 1);
        }
        out.push(Action::Send(msg));
    }

    fn maybe_commit(&mut self, out: &mut Vec<Action>) {
        let mut matches: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matches.push(self.persisted);
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.quorum() - 1];
        // Only entries of the current term are committed by counting (Raft §5.4.2).
        if candidate > self.commit && self.term_at(candidate) == self.term {
            self.advance_commit(candidate, out);
            if !self.early_reads.is_empty() {
                for req in std::mem::take(&mut self.early_reads) {
                    self.start_read(req, out);
                }
            }
        }
    }

    fn advance_commit(&mut self, to: u64, out: &mut Vec<Action>) {
        let to = to.min(self.last_index());
        if to <= self.commit {
            return;
        }
        self.commit = to;
        let from = self.applied + 1;
        let entries: Vec<LogEntry> = (from..=to).filter_map(|i| self.entry(i).cloned()).collect();
        self.applied = to;
        out.push(Action::Apply(entries));
    }

    fn on_message(&mut self, m: Message, out: &mut Vec<Action>) {
        if m.to != self.cfg.id {
            return;
        }
        if m.term > self.term {
            let leader = matches!(m.body, Body::Append { .. }).then(|| m.from.clone());
            self.become_follower(m.term, leader, out);
        }
        match m.body {
            Body::Vote {
                last_index,
                last_term,
            } => self.on_vote(&m.from, m.term, last_index, last_term, out),
            Body::VoteResp { granted } => {
                if self.role == Role::Candidate
                    && m.term == self.term
                    && granted
                    && !self.votes.contains(&m.from)
                {
                    self.votes.push(m.from);
                    if self.votes.len() >= self.quorum() {
                        self.become_leader(out);
                    }
                }
            }
            Body::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                seq,
            } => self.on_append(
                &m.from, m.term, prev_index, prev_term, entries, commit, seq, out,
            ),
            Body::AppendResp {
                success,
                index,
                seq,
            } => self.on_append_resp(&m.from, m.term, success, index, seq, out),
            Body::TimeoutNow => {
                // Only from the leader of our current term; a stale one must not disturb a
                // later term. The election itself follows the usual rules (a higher term,
                // votes only for an up-to-date log), so safety does not rest on the sender.
                if m.term == self.term
                    && self.role == Role::Follower
                    && self.leader.as_deref() == Some(m.from.as_str())
                {
                    tracing::info!(from = %m.from, term = self.term, "TimeoutNow: campaigning");
                    self.campaign(out);
                }
            }
        }
    }

    fn reply(&self, to: &str, body: Body) -> Action {
        Action::Send(Message {
            from: self.cfg.id.clone(),
            to: to.to_string(),
            term: self.term,
            body,
        })
    }

    fn on_vote(
        &mut self,
        from: &str,
        term: u64,
        last_index: u64,
        last_term: u64,
        out: &mut Vec<Action>,
    ) {
        let up_to_date = (last_term, last_index) >= (self.last_term(), self.last_index());
        let free = self.vote.is_none() || self.vote.as_deref() == Some(from);
        let granted = term == self.term && free && (up_to_date || self.cfg.unsafe_vote);
        if granted {
            self.vote = Some(from.to_string());
            out.push(Action::SaveHardState {
                term: self.term,
                vote: self.vote.clone(),
            });
            self.reset_timer();
        }
        out.push(self.reply(from, Body::VoteResp { granted }));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        from: &str,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<WireEntry>,
        commit: u64,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        if term < self.term {
            out.push(self.reply(
                from,
                Body::AppendResp {
                    success: false,
                    index: self.last_index(),
                    seq,
                },
            ));
            return;
        }
        // Same term: whoever sends Append is the leader of this term.
        if self.role != Role::Follower || self.leader.as_deref() != Some(from) {
            self.become_follower(term, Some(from.to_string()), out);
        }
        self.reset_timer();
        if prev_index > self.last_index() {
            out.push(self.reply(
                from,
                Body::AppendResp {
                    success: false,
                    index: self.last_index(),
                    seq,
                },
            ));
            return;
        }
        if self.term_at(prev_index) != prev_term {
            // Skip back over the whole conflicting term in one round trip.
            let bad = self.term_at(prev_index);
            let mut hint = prev_index - 1;
            // (With the unsafe-vote bug the committed prefix is no barrier either.)
            let floor = if self.cfg.unsafe_vote { 0 } else { self.commit };
            while hint > floor && self.term_at(hint) == bad {
                hint -= 1;
            }
            out.push(self.reply(
                from,
                Body::AppendResp {
                    success: false,
                    index: hint,
                    seq,
                },
            ));
            return;
        }
        let matched = prev_index + entries.len() as u64;
        let mut appended = Vec::new();
        for (i, we) in entries.into_iter().enumerate() {
            let idx = prev_index + 1 + i as u64;
            if idx <= self.last_index() {
                if self.term_at(idx) == we.term {
                    continue;
                }
                if idx <= self.commit {
                    if !self.cfg.unsafe_vote {
                        // Never happens in a correct cluster; refuse rather than rewrite history.
                        tracing::error!(idx, "leader tried to overwrite a committed entry");
                        return;
                    }
                    // Bug on purpose: a Raft without the vote restriction trusts whoever
                    // leads, so a stale leader really rewrites committed history here.
                    tracing::warn!(idx, "unsafe-vote: overwriting a committed entry");
                    self.commit = idx - 1;
                    self.applied = self.applied.min(idx - 1);
                }
                self.log.truncate((idx - 1) as usize);
                self.persisted = self.persisted.min(idx - 1);
                out.push(Action::TruncateLog { from: idx });
            }
            appended.push(self.push_entry(we.term, we.data));
        }
        if !appended.is_empty() {
            out.push(Action::AppendLog(appended));
        }
        if commit > self.commit {
            self.advance_commit(commit.min(matched), out);
        }
        out.push(self.reply(
            from,
            Body::AppendResp {
                success: true,
                index: matched,
                seq,
            },
        ));
    }

    fn on_append_resp(
        &mut self,
        from: &str,
        term: u64,
        success: bool,
        index: u64,
        seq: u64,
        out: &mut Vec<Action>,
    ) {
        if self.role != Role::Leader || term != self.term {
            return;
        }
        let last = self.last_index();
        let Some(pr) = self.progress.get_mut(from) else {
            return;
        };
        pr.active = true;
        pr.acked_seq = pr.acked_seq.max(seq);
        if success {
            if index > pr.matched {
                pr.matched = index.min(last);
            }
            pr.next = pr.next.max(pr.matched + 1);
            self.maybe_commit(out);
            if self.transfer.as_ref().is_some_and(|t| t.target == from) {
                self.advance_transfer(false, out);
            }
        } else {
            let before = pr.next;
            if index < pr.matched {
                // The follower lost entries it had acknowledged (e.g. a wiped data dir).
                // Lowering `matched` only makes commit counting more conservative.
                pr.matched = index;
            }
            pr.next = (index + 1).max(pr.matched + 1).min(pr.next);
            if pr.next >= before {
                // No progress (a duplicate or late rejection): leave the retry to the heartbeat.
                self.serve_reads(out);
                return;
            }
        }
        self.send_append(from, false, out);
        self.serve_reads(out);
    }

    fn serve_reads(&mut self, out: &mut Vec<Action>) {
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.push(u64::MAX);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = acked[self.quorum() - 1];
        while let Some(r) = self.reads.front() {
            if r.seq > confirmed {
                break;
            }
            out.push(Action::ReadReady {
                req: r.req,
                index: r.index,
            });
            self.reads.pop_front();
        }
    }
}

#[cfg(test)]
#[path = "raft_tests.rs"]
mod tests;
