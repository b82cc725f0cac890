//! Rule tests for the sans-IO Raft core: an in-memory network of cores, with persistence
//! reported immediately, so each test drives exactly the messages it means to.

use super::*;

fn core(id: &str, peers: &[&str], term: u64, log: &[u64]) -> RaftCore {
    let mut cfg = Config::new(id, peers.iter().map(|p| p.to_string()).collect());
    cfg.seed = id.bytes().map(u64::from).sum();
    let entries = log
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, format!("e{i}")))
        .collect();
    RaftCore::new(cfg, term, None, entries)
}

fn sends(actions: &[Action]) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// Steps a core and reports its log durable at once, as the shell does after fsync.
fn step(c: &mut RaftCore, e: Event) -> Vec<Action> {
    let mut out = c.step(e);
    let last = out.iter().rev().find_map(|a| match a {
        Action::AppendLog(es) => es.last().map(|e| (e.index, e.term)),
        _ => None,
    });
    if let Some((index, term)) = last {
        out.extend(c.step(Event::Persisted { index, term }));
    }
    out
}

struct Net {
    nodes: Vec<RaftCore>,
    queue: VecDeque<Message>,
    /// Nodes whose inbound and outbound messages are dropped.
    down: Vec<String>,
    log: Vec<(String, Action)>,
}

impl Net {
    fn new(n: usize) -> Net {
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let peers: Vec<&str> = ids
                    .iter()
                    .filter(|p| *p != id)
                    .map(|s| s.as_str())
                    .collect();
                core(id, &peers, 0, &[])
            })
            .collect();
        Net {
            nodes,
            queue: VecDeque::new(),
            down: Vec::new(),
            log: Vec::new(),
        }
    }
    fn node(&mut self, id: &str) -> &mut RaftCore {
        let i = self
            .nodes
            .iter()
            .position(|n| n.id() == id)
            .expect("known node");
        &mut self.nodes[i]
    }
    fn feed(&mut self, id: &str, e: Event) {
        if self.down.iter().any(|d| d == id) {
            return;
        }
        let out = step(self.node(id), e);
        for a in out {
            if let Action::Send(m) = &a {
                self.queue.push_back(m.clone());
            }
            self.log.push((id.to_string(), a));
        }
    }
    fn deliver(&mut self) {
        let mut budget = 10_000;
        while let Some(m) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.down.contains(&m.from) || self.down.contains(&m.to) {
                continue;
            }
            let to = m.to.clone();
            self.feed(&to, Event::Message(m));
        }
    }
    fn tick_until_leader(&mut self, id: &str) {
        for _ in 0..100 {
            self.feed(id, Event::Tick);
            if self.node(id).role() == Role::Candidate {
                break;
            }
        }
        self.deliver();
    }
}

#[test]
fn a_candidate_with_a_majority_becomes_leader_and_commits_a_noop() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    assert_eq!(net.node("n0").role(), Role::Leader);
    assert_eq!(net.node("n0").term(), 1);
    for id in ["n1", "n2"] {
        assert_eq!(net.node(id).role(), Role::Follower);
        assert_eq!(net.node(id).leader(), Some("n0"));
        assert_eq!(net.node(id).vote(), Some("n0"));
    }
    assert_eq!(net.node("n0").commit(), 1, "the election no-op commits");
    // Followers learn the commit index with the next heartbeat.
    for _ in 0..5 {
        net.feed("n0", Event::Tick);
    }
    net.deliver();
    let head = net.node("n0").head();
    assert_eq!(net.node("n1").head(), head);
    assert_eq!(net.node("n2").head(), head);
    assert_ne!(head, GENESIS);
}

#[test]
fn proposals_commit_on_majority_and_chain_hashes() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    net.down.push("n2".into());
    net.feed("n0", Event::Propose(vec![(7, "a".into()), (8, "b".into())]));
    net.deliver();
    let n0 = net.node("n0");
    assert_eq!(
        n0.commit(),
        3,
        "leader + one follower is a majority of three"
    );
    let e2 = n0.entry(2).cloned().expect("entry 2");
    let e3 = n0.entry(3).cloned().expect("entry 3");
    assert_eq!(e3.prev, e2.hash);
    assert_eq!(e3.hash, chain_hash(&e2.hash, 3, e3.term, "b"));
    assert!(net.log.iter().any(|(_, a)| *a
        == Action::Proposed {
            req: 8,
            index: 3,
            term: 1
        }));
}

#[test]
fn vote_is_refused_to_a_candidate_with_a_stale_log() {
    let mut voter = core("n1", &["n0", "n2"], 2, &[1, 2]);
    let ask = |last_index, last_term| {
        Event::Message(Message {
            from: "n0".into(),
            to: "n1".into(),
            term: 3,
            body: Body::Vote {
                last_index,
                last_term,
            },
        })
    };
    // Older last term: refused even though the log is longer.
    let out = voter.step(ask(5, 1));
    assert!(sends(&out)
        .iter()
        .any(|m| m.body == Body::VoteResp { granted: false }));
    assert_eq!(voter.term(), 3, "the higher term is still adopted");
    // Same last term, shorter log: refused.
    let out = voter.step(ask(1, 2));
    assert!(sends(&out)
        .iter()
        .any(|m| m.body == Body::VoteResp { granted: false }));
    // Up to date: granted, and the vote is persisted before the reply.
    let out = voter.step(ask(2, 2));
    let save = out
        .iter()
        .position(|a| matches!(a, Action::SaveHardState { vote: Some(v), .. } if v == "n0"));
    let reply = out
        .iter()
        .position(|a| matches!(a, Action::Send(m) if m.body == Body::VoteResp { granted: true }));
    assert!(save.is_some() && reply.is_some() && save < reply);
    // One vote per term.
    let other = Event::Message(Message {
        from: "n2".into(),
        to: "n1".into(),
        term: 3,
        body: Body::Vote {
            last_index: 9,
            last_term: 3,
        },
    });
    assert!(sends(&voter.step(other))
        .iter()
        .any(|m| m.body == Body::VoteResp { granted: false }));
}

#[test]
fn unsafe_vote_bug_grants_to_a_stale_log() {
    let mut cfg = Config::new("n1", vec!["n0".into(), "n2".into()]);
    cfg.unsafe_vote = true;
    let mut voter = RaftCore::new(cfg, 2, None, vec![(1, "a".into()), (2, "b".into())]);
    let out = voter.step(Event::Message(Message {
        from: "n0".into(),
        to: "n1".into(),
        term: 3,
        body: Body::Vote {
            last_index: 0,
            last_term: 0,
        },
    }));
    assert!(sends(&out)
        .iter()
        .any(|m| m.body == Body::VoteResp { granted: true }));
}

#[test]
fn committed_entries_are_overwritten_only_under_the_unsafe_vote_bug() {
    let append = || {
        Event::Message(Message {
            from: "n0".into(),
            to: "n1".into(),
            term: 3,
            body: Body::Append {
                prev_index: 1,
                prev_term: 1,
                entries: vec![WireEntry {
                    term: 3,
                    data: "x".into(),
                }],
                commit: 1,
                seq: 0,
            },
        })
    };
    let committed = |unsafe_vote: bool| {
        let mut cfg = Config::new("n1", vec!["n0".into(), "n2".into()]);
        cfg.unsafe_vote = unsafe_vote;
        let mut f = RaftCore::new(cfg, 2, None, vec![(1, "a".into()), (2, "b".into())]);
        // Entry 2 is known committed.
        f.advance_commit(2, &mut Vec::new());
        f
    };
    let mut correct = committed(false);
    let out = correct.step(append());
    assert!(!out.contains(&Action::TruncateLog { from: 2 }));
    assert_eq!(correct.entry(2).map(|e| e.term), Some(2));
    let mut buggy = committed(true);
    let out = buggy.step(append());
    assert!(out.contains(&Action::TruncateLog { from: 2 }));
    assert_eq!(buggy.entry(2).map(|e| e.term), Some(3));
    assert!(buggy.commit() <= buggy.last_index());
}

#[test]
fn conflicting_suffix_is_truncated_and_replaced() {
    let mut f = core("n1", &["n0", "n2"], 2, &[1, 2, 2]);
    let out = f.step(Event::Message(Message {
        from: "n0".into(),
        to: "n1".into(),
        term: 3,
        body: Body::Append {
            prev_index: 1,
            prev_term: 1,
            entries: vec![WireEntry {
                term: 3,
                data: "x".into(),
            }],
            commit: 0,
            seq: 0,
        },
    }));
    assert!(out.contains(&Action::TruncateLog { from: 2 }));
    assert_eq!(f.last_index(), 2);
    assert_eq!(f.entry(2).map(|e| e.term), Some(3));
    assert!(sends(&out).iter().any(|m| m.body
        == Body::AppendResp {
            success: true,
            index: 2,
            seq: 0
        }));
    // The chain is recomputed from the kept prefix.
    let e1 = f.entry(1).cloned().expect("entry 1");
    assert_eq!(f.entry(2).map(|e| e.prev), Some(e1.hash));
}

#[test]
fn mismatched_prev_is_rejected_with_a_hint_before_the_bad_term() {
    let mut f = core("n1", &["n0", "n2"], 2, &[1, 2, 2, 2]);
    let out = f.step(Event::Message(Message {
        from: "n0".into(),
        to: "n1".into(),
        term: 3,
        body: Body::Append {
            prev_index: 4,
            prev_term: 3,
            entries: vec![],
            commit: 0,
            seq: 0,
        },
    }));
    assert!(sends(&out).iter().any(|m| m.body
        == Body::AppendResp {
            success: false,
            index: 1,
            seq: 0
        }));
    assert_eq!(f.last_index(), 4, "nothing is truncated on a mere mismatch");
}

#[test]
fn stale_term_append_is_rejected() {
    let mut f = core("n1", &["n0", "n2"], 5, &[1]);
    let out = f.step(Event::Message(Message {
        from: "n0".into(),
        to: "n1".into(),
        term: 3,
        body: Body::Append {
            prev_index: 1,
            prev_term: 1,
            entries: vec![],
            commit: 1,
            seq: 0,
        },
    }));
    let resp = sends(&out);
    assert_eq!(resp.len(), 1);
    assert_eq!(resp[0].term, 5);
    assert!(matches!(
        resp[0].body,
        Body::AppendResp { success: false, .. }
    ));
    assert_eq!(f.commit(), 0, "a stale leader's commit index is ignored");
    assert_eq!(f.leader(), None);
}

#[test]
fn only_entries_of_the_current_term_commit_by_counting() {
    // n0 leads term 3 with an uncommitted entry from term 2 at index 2.
    let mut l = core("n0", &["n1", "n2"], 2, &[1, 2]);
    for _ in 0..40 {
        step(&mut l, Event::Tick);
        if l.role() == Role::Candidate {
            break;
        }
    }
    assert_eq!(l.term(), 3);
    let grant = Message {
        from: "n1".into(),
        to: "n0".into(),
        term: 3,
        body: Body::VoteResp { granted: true },
    };
    step(&mut l, Event::Message(grant));
    assert_eq!(l.role(), Role::Leader);
    assert_eq!(l.entry(3).map(|e| e.term), Some(3), "no-op of the new term");
    // n1 acknowledges only up to index 2 (the old-term entry): no commit.
    let ack = |index| {
        Event::Message(Message {
            from: "n1".into(),
            to: "n0".into(),
            term: 3,
            body: Body::AppendResp {
                success: true,
                index,
                seq: 0,
            },
        })
    };
    let out = step(&mut l, ack(2));
    assert_eq!(
        l.commit(),
        0,
        "a majority on an old-term entry does not commit it"
    );
    assert!(!out.iter().any(|a| matches!(a, Action::Apply(_))));
    // Once the current-term no-op is on a majority, everything up to it commits.
    let out = step(&mut l, ack(3));
    assert_eq!(l.commit(), 3);
    let applied: Vec<u64> = out
        .iter()
        .filter_map(|a| match a {
            Action::Apply(es) => Some(es.iter().map(|e| e.index).collect::<Vec<_>>()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(applied, vec![1, 2, 3]);
}

#[test]
fn leader_that_hears_no_majority_steps_down() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    assert_eq!(net.node("n0").role(), Role::Leader);
    net.down.push("n1".into());
    net.down.push("n2".into());
    let mut ticks = 0;
    while net.node("n0").role() == Role::Leader && ticks < 200 {
        net.feed("n0", Event::Tick);
        net.deliver();
        ticks += 1;
    }
    assert_eq!(net.node("n0").role(), Role::Follower);
    assert!(
        ticks <= 2 * 30,
        "stepped down within two check periods, took {ticks} ticks"
    );
    // An isolated ex-leader refuses proposals, naming no leader.
    let out = net.node("n0").step(Event::Propose(vec![(1, "x".into())]));
    assert_eq!(
        out,
        vec![Action::ProposeRejected {
            req: 1,
            leader: None
        }]
    );
}

#[test]
fn leader_steps_down_on_a_higher_term() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    let out = net.node("n0").step(Event::Message(Message {
        from: "n1".into(),
        to: "n0".into(),
        term: 9,
        body: Body::AppendResp {
            success: false,
            index: 0,
            seq: 0,
        },
    }));
    assert_eq!(net.node("n0").role(), Role::Follower);
    assert_eq!(net.node("n0").term(), 9);
    assert!(out.contains(&Action::SaveHardState {
        term: 9,
        vote: None
    }));
}

#[test]
fn reads_wait_for_a_majority_heartbeat_round() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    net.down.push("n1".into());
    net.down.push("n2".into());
    net.feed("n0", Event::Read(42));
    net.deliver();
    assert!(
        !net.log
            .iter()
            .any(|(_, a)| matches!(a, Action::ReadReady { .. })),
        "no confirmation without a quorum"
    );
    net.down.clear();
    net.feed("n0", Event::Read(43));
    net.deliver();
    let ready: Vec<u64> = net
        .log
        .iter()
        .filter_map(|(_, a)| match a {
            Action::ReadReady { req, index } => {
                assert_eq!(*index, 1);
                Some(*req)
            }
            _ => None,
        })
        .collect();
    assert_eq!(ready, vec![42, 43]);
    // Followers refuse reads and name the leader so the shell can forward.
    let out = net.node("n1").step(Event::Read(44));
    assert_eq!(
        out,
        vec![Action::ReadRejected {
            req: 44,
            leader: Some("n0".into())
        }]
    );
}

#[test]
fn a_restarted_follower_catches_up_to_the_same_head() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    net.down.push("n2".into());
    for r in 0..5 {
        net.feed("n0", Event::Propose(vec![(r, format!("w{r}"))]));
        net.deliver();
    }
    // n2 restarts from what it had made durable (term, vote, log) and rejoins.
    net.down.clear();
    let old = net.node("n2");
    let durable: Vec<(u64, String)> = (1..=old.last_index())
        .filter_map(|i| old.entry(i))
        .map(|e| (e.term, e.data.clone()))
        .collect();
    let (term, vote) = (old.term(), old.vote().map(str::to_string));
    assert_eq!(durable.len(), 1, "n2 had only the no-op");
    let mut cfg = Config::new("n2", vec!["n0".into(), "n1".into()]);
    cfg.seed = 99;
    let i = net.nodes.iter().position(|n| n.id() == "n2").expect("n2");
    net.nodes[i] = RaftCore::new(cfg, term, vote, durable);
    for _ in 0..20 {
        net.feed("n0", Event::Tick);
        net.deliver();
    }
    let head = net.node("n0").head();
    assert_eq!(net.node("n0").commit(), 6);
    assert_eq!(net.node("n2").commit(), 6);
    assert_eq!(net.node("n2").head(), head);
}

fn timeout_now_sent(net: &Net, from: &str) -> Vec<String> {
    net.log
        .iter()
        .filter_map(|(id, a)| match a {
            Action::Send(m) if id == from && m.body == Body::TimeoutNow => Some(m.to.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn transfer_picks_the_most_up_to_date_follower_and_it_wins_the_next_term() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    // n2 misses two entries, so n1 is the better successor.
    net.down.push("n2".into());
    net.feed("n0", Event::Propose(vec![(1, "a".into()), (2, "b".into())]));
    net.deliver();
    let last = net.node("n0").last_index();
    net.log.clear();
    net.feed("n0", Event::TransferLeadership { ticks: 50 });
    assert_eq!(net.node("n0").transfer_target(), Some("n1"));
    net.deliver();
    assert_eq!(timeout_now_sent(&net, "n0"), vec!["n1".to_string()]);
    let n1 = net.node("n1");
    assert_eq!(n1.role(), Role::Leader, "the target campaigned and won");
    assert_eq!(n1.term(), 2);
    assert_eq!(n1.entry(last).map(|e| e.data.as_str()), Some("b"));
    let n0 = net.node("n0");
    assert_eq!(n0.role(), Role::Follower);
    assert_eq!(n0.leader(), Some("n1"));
    assert_eq!(
        n0.vote(),
        Some("n1"),
        "the old leader voted for its successor"
    );
    assert_eq!(n0.transfer_target(), None);
}

#[test]
fn transfer_catches_the_target_up_before_timeout_now_and_refuses_proposals() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    // Entries appended but never delivered: both followers lag behind the leader.
    net.feed("n0", Event::Propose(vec![(1, "a".into()), (2, "b".into())]));
    net.queue.clear();
    let last = net.node("n0").last_index();
    let head = net.node("n0").entry(last).map(|e| e.hash);
    net.log.clear();
    net.feed("n0", Event::TransferLeadership { ticks: 50 });
    assert!(
        timeout_now_sent(&net, "n0").is_empty(),
        "no TimeoutNow to a follower that lacks entries"
    );
    let target = net
        .node("n0")
        .transfer_target()
        .map(str::to_string)
        .expect("a transfer runs");
    // While handing over, the leader appends nothing new and names no leader.
    let out = net.node("n0").step(Event::Propose(vec![(3, "c".into())]));
    assert_eq!(
        out,
        vec![Action::ProposeRejected {
            req: 3,
            leader: None
        }]
    );
    net.deliver();
    assert_eq!(timeout_now_sent(&net, "n0"), vec![target.clone()]);
    let t = net.node(&target);
    assert_eq!(t.role(), Role::Leader);
    assert_eq!(
        t.entry(last).map(|e| e.hash),
        head,
        "the successor holds every entry the old leader had"
    );
    // Its election no-op commits the old leader's entries too.
    let commit = net.node(&target).commit();
    assert!(commit > last, "commit {commit} covers index {last}");
}

#[test]
fn transfer_gives_up_after_its_ticks_and_the_leader_carries_on() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    net.down.push("n1".into());
    net.down.push("n2".into());
    net.feed("n0", Event::TransferLeadership { ticks: 10 });
    assert!(net.node("n0").transfer_target().is_some());
    for _ in 0..9 {
        net.feed("n0", Event::Tick);
        net.deliver();
    }
    assert!(net.node("n0").transfer_target().is_some(), "still trying");
    net.feed("n0", Event::Tick);
    net.deliver();
    let n0 = net.node("n0");
    assert_eq!(n0.transfer_target(), None, "abandoned after 10 ticks");
    assert_eq!(n0.role(), Role::Leader);
    assert_eq!(n0.term(), 1);
    let out = n0.step(Event::Propose(vec![(5, "x".into())]));
    assert!(
        out.iter()
            .any(|a| matches!(a, Action::Proposed { req: 5, .. })),
        "proposals are accepted again: {out:?}"
    );
}

#[test]
fn transfer_is_ignored_by_a_follower_and_a_lone_leader() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    assert!(net
        .node("n1")
        .step(Event::TransferLeadership { ticks: 50 })
        .is_empty());
    assert_eq!(net.node("n1").transfer_target(), None);
    let mut solo = core("n0", &[], 0, &[]);
    for _ in 0..100 {
        step(&mut solo, Event::Tick);
    }
    assert_eq!(solo.role(), Role::Leader);
    assert!(solo
        .step(Event::TransferLeadership { ticks: 50 })
        .is_empty());
    let out = solo.step(Event::Propose(vec![(1, "x".into())]));
    assert!(out.iter().any(|a| matches!(a, Action::Proposed { .. })));
}

#[test]
fn timeout_now_is_obeyed_only_from_the_current_leader() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    let stale = |from: &str, term| {
        Event::Message(Message {
            from: from.into(),
            to: "n1".into(),
            term,
            body: Body::TimeoutNow,
        })
    };
    // From an older term, or from a node that is not the leader: ignored.
    assert!(net.node("n1").step(stale("n0", 0)).is_empty());
    assert!(net.node("n1").step(stale("n2", 1)).is_empty());
    assert_eq!(net.node("n1").role(), Role::Follower);
    assert_eq!(net.node("n1").term(), 1);
}

#[test]
fn timeout_now_to_a_stale_follower_cannot_win_it_an_election() {
    let mut net = Net::new(3);
    net.tick_until_leader("n0");
    net.down.push("n1".into());
    net.feed("n0", Event::Propose(vec![(1, "a".into())]));
    net.deliver();
    net.down.clear();
    // Deliver a TimeoutNow to n1 although it lacks an entry (as a buggy leader might): the
    // election follows the usual rules, and the up-to-date voters refuse it.
    net.feed(
        "n1",
        Event::Message(Message {
            from: "n0".into(),
            to: "n1".into(),
            term: 1,
            body: Body::TimeoutNow,
        }),
    );
    assert_eq!(net.node("n1").role(), Role::Candidate);
    net.deliver();
    assert_ne!(net.node("n1").role(), Role::Leader);
    assert!(net.log.iter().any(|(id, a)| id == "n2"
        && matches!(a, Action::Send(m) if m.body == Body::VoteResp { granted: false })));
}
