//! The `[[step]]` list: each step's `at` and `fault`, the keys each fault
//! kind accepts (from [`FaultKind::keys`]), and dispatch by kind to the
//! validator of its family (`process`, `partition`, `degrade`, `clock`, `slow`, `disk`), plus what
//! several families share: targets, node lists and signals. It must never
//! fall back on a default kind: an unknown fault name is an error.

mod clock;
mod degrade;
mod disk;
mod partition;
mod process;
mod slow;

pub use disk::errno_name;

use super::primitives::{
    backticked, describe, int_value, suggest, unknown_field, Span, Tbl, Value,
};
use super::{Net, Validator, MAX_NODES};
use crate::plan::duration::format_duration;
use crate::plan::error::position;
use crate::plan::fault_kind::FaultKind;
use crate::plan::target::{nodes_target, parse_node, parse_signal, parse_target};
use crate::plan::types::*;
use crate::NodeId;
use std::time::Duration;
use toml::de::DeValue;

/// What the steps need to know of the cluster.
pub(super) struct StepCtx {
    pub(super) size: usize,
    /// False when `size` is invalid: then `size` is the maximum and checks
    /// that need the exact size are skipped.
    pub(super) size_known: bool,
    pub(super) has_leader: bool,
    /// The plan's network (`--network` or `[cluster] network`); `None` when
    /// unknown, and then no step is refused for its network.
    pub(super) network: Option<Net>,
    /// The workload goes through client links (or did not parse: then
    /// assume it does, to avoid knock-on errors).
    pub(super) client_links: bool,
    /// `[cluster] disk`; `None` when unknown (invalid), and then no step
    /// is refused for it.
    pub(in crate::plan::validate) disk: Option<DiskMode>,
}

impl StepCtx {
    /// From the cluster, or (when the cluster has errors of its own) the
    /// most permissive cluster its raw `size` allows, so the steps are still
    /// checked without knock-on errors.
    pub(super) fn new(
        cluster: Option<&ClusterSpec>,
        root: &Tbl<'_, '_>,
        client_links: bool,
        network: Option<Net>,
    ) -> StepCtx {
        match cluster {
            Some(c) => StepCtx {
                size: c.size,
                size_known: true,
                has_leader: c.leader.is_some(),
                network,
                client_links,
                disk: Some(DiskMode::Plain),
            },
            None => {
                let raw_size = root
                    .get("cluster")
                    .and_then(|c| c.get_ref().as_table())
                    .map(|c| c.get("size").map(|v| int_value(v.get_ref())));
                let size = match raw_size {
                    None | Some(None) => Some(3),
                    Some(Some(Some(n))) => usize::try_from(n)
                        .ok()
                        .filter(|n| (1..=MAX_NODES).contains(n)),
                    Some(Some(None)) => None,
                };
                StepCtx {
                    size: size.unwrap_or(MAX_NODES),
                    size_known: size.is_some(),
                    has_leader: true,
                    network,
                    client_links,
                    disk: Some(DiskMode::Plain),
                }
            }
        }
    }
}

impl Validator<'_> {
    /// Every `[[step]]`, sorted by `at` (stable: equal times keep file order).
    pub(super) fn steps(
        &mut self,
        root: &Tbl<'_, '_>,
        ctx: &StepCtx,
        duration: Option<Duration>,
    ) -> Option<Vec<Step>> {
        let Some(v) = root.get("step") else {
            return Some(Vec::new());
        };
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                "step",
                format!("expected [[step]] tables, found {}", describe(v.get_ref())),
            );
            return None;
        };
        let mut steps = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let field = format!("step[{i}]");
            let DeValue::Table(t) = item.get_ref() else {
                ok = false;
                self.error(
                    item.span(),
                    field,
                    format!(
                        "expected a [[step]] table, found {}",
                        describe(item.get_ref())
                    ),
                );
                continue;
            };
            let tbl = Tbl {
                t: Some(t),
                span: item.span(),
                path: field,
            };
            match self.step(&tbl, ctx, duration) {
                Some(action_at) => steps.push(Step {
                    at: action_at.0,
                    action: action_at.1,
                    line: position(self.src, item.span().start).0,
                }),
                None => ok = false,
            }
        }
        if !ok {
            return None;
        }
        steps.sort_by_key(|s| s.at);
        Some(steps)
    }

    /// One step: its `at`, its kind, and the action the kind's validator
    /// builds from the keys that kind takes.
    fn step(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        duration: Option<Duration>,
    ) -> Option<(Duration, Action)> {
        let fault = self.fault_kind(t);
        self.step_keys(t, fault.as_ref().map(|f| f.0));
        let at = match t.get("at") {
            None => {
                self.error(
                    t.span.clone(),
                    t.field("at"),
                    "missing; a step needs `at`, its offset from the start like \"5s\"",
                );
                None
            }
            Some(v) => {
                let at = self.duration(t, "at", false);
                // A bad `at` must not hide the step's other errors (its
                // target, its keys): the step goes on being checked.
                if let (Some(at), Some(total)) = (at, duration) {
                    if at >= total {
                        self.error(
                            v.span(),
                            t.field("at"),
                            format!(
                                "{} is not before the end of the run (duration = \"{}\")",
                                format_duration(at),
                                format_duration(total)
                            ),
                        );
                        None
                    } else {
                        Some(at)
                    }
                } else {
                    at
                }
            }
        };
        let (kind, fault_span) = fault?;
        if let Some(net) = ctx
            .network
            .filter(|n| n.mode == NetworkMode::None && kind.needs_network())
        {
            self.error(
                fault_span,
                t.field("fault"),
                format!(
                    "a {kind} step needs network faults, but {}",
                    net.said_in_cluster()
                ),
            );
            return None;
        }
        // Read for every kind (a misplaced `for` is also checked as a
        // duration); only the kinds that last use it.
        let for_ = match t.get("for") {
            None => Some(None),
            Some(_) => self.duration(t, "for", true).map(Some),
        };
        let action = match kind {
            FaultKind::Kill => self.kill(t, ctx),
            FaultKind::Restart => self.restart(t, ctx),
            FaultKind::Pause => self.pause(t, ctx, for_),
            FaultKind::Resume => self.resume(t, ctx),
            FaultKind::Partition => self.partition(t, ctx, for_),
            FaultKind::Heal => Some(Action::Heal),
            FaultKind::Degrade => self.degrade(t, ctx, for_),
            FaultKind::Restore => self.restore(t, ctx),
            FaultKind::Clock => self.clock(t, ctx, for_),
            FaultKind::Slow => self.slow(t, ctx, for_),
            FaultKind::Disk => self.disk(t, ctx, for_),
        }?;
        Some((at?, action))
    }

    /// `fault`: required, one of [`FaultKind::ALL`] by name.
    fn fault_kind(&mut self, t: &Tbl<'_, '_>) -> Option<(FaultKind, Span)> {
        let names = FaultKind::names();
        match self.string(t, "fault") {
            Some((f, span)) => match FaultKind::from_name(&f) {
                Some(kind) => Some((kind, span)),
                None => {
                    let hint = suggest(&f, &names)
                        .map(|s| format!(", did you mean \"{s}\"?"))
                        .unwrap_or_else(|| format!("; expected one of {}", names.join(", ")));
                    self.error(span, t.field("fault"), format!("unknown fault {f:?}{hint}"));
                    None
                }
            },
            None => {
                if t.get("fault").is_none() {
                    self.error(
                        t.span.clone(),
                        t.field("fault"),
                        format!("missing; a step needs a fault: {}", names.join(", ")),
                    );
                }
                None
            }
        }
    }

    /// Unknown keys and keys of another fault kind, said precisely. Without
    /// a known kind, any key some kind takes passes.
    fn step_keys(&mut self, t: &Tbl<'_, '_>, kind: Option<FaultKind>) {
        let every = FaultKind::all_keys();
        let allowed: &[&str] = match kind {
            Some(k) => k.keys(),
            None => &every,
        };
        for (key, span) in t.keys() {
            if allowed.contains(&key) {
                continue;
            }
            let msg = match kind {
                Some(k) if every.contains(&key) => format!(
                    "`{key}` does not apply to a {k} step; a {k} step takes {}",
                    backticked(allowed)
                ),
                Some(_) | None => unknown_field(key, allowed),
            };
            self.error(span, t.field(key), msg);
        }
    }

    /// `signal`: a name like "SIGTERM" or a number.
    pub(super) fn signal(&mut self, v: &Value<'_>, field: String) -> Option<i32> {
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_signal(s),
            DeValue::Integer(_) => match int_value(v.get_ref()) {
                Some(n) if (1..=64).contains(&n) => Ok(n as i32),
                _ => Err(format!(
                    "expected a signal number from 1 to 64, found {}",
                    describe(v.get_ref())
                )),
            },
            other => Err(format!(
                "expected a signal name like \"SIGTERM\" or a number, found {}",
                describe(other)
            )),
        };
        match parsed {
            Ok(n) => Some(n),
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }

    /// `target`: required, a string or a list of node names.
    pub(super) fn target(
        &mut self,
        t: &Tbl<'_, '_>,
        size: usize,
        has_leader: bool,
    ) -> Option<Target> {
        let Some(v) = t.get("target") else {
            self.error(
                t.span.clone(),
                t.field("target"),
                "missing; this step needs a target: n0.., [\"n0\", \"n2\"], random, random(k), leader, followers, minority, majority, all",
            );
            return None;
        };
        self.target_value(v, t.field("target"), size, has_leader)
    }

    pub(super) fn target_value(
        &mut self,
        v: &Value<'_>,
        field: String,
        size: usize,
        has_leader: bool,
    ) -> Option<Target> {
        let target = match v.get_ref() {
            DeValue::String(s) => match parse_target(s, size) {
                Ok(t) => t,
                Err(msg) => {
                    self.error(v.span(), field, msg);
                    return None;
                }
            },
            DeValue::Array(items) => {
                let ids = self.node_list(items, &field, size)?;
                match nodes_target(ids) {
                    Ok(t) => t,
                    Err(msg) => {
                        self.error(v.span(), field, msg);
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    v.span(),
                    field,
                    format!(
                        "expected a target like \"n1\", [\"n0\", \"n2\"] or \"leader\", found {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        self.needs_leader(&target, v.span(), field, has_leader)?;
        Some(target)
    }

    pub(super) fn needs_leader(
        &mut self,
        target: &Target,
        span: Span,
        field: String,
        has_leader: bool,
    ) -> Option<()> {
        if !has_leader && matches!(target, Target::Leader | Target::Followers) {
            self.error(
                span,
                field,
                "choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command, or a [workload] client that answers `leader`",
            );
            return None;
        }
        Some(())
    }

    /// Node names, each checked where it is written.
    pub(super) fn node_list(
        &mut self,
        items: &[Value<'_>],
        field: &str,
        size: usize,
    ) -> Option<Vec<NodeId>> {
        let mut ids = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let f = format!("{field}[{i}]");
            let Some((name, span)) = self.string_value(item, f.clone()) else {
                ok = false;
                continue;
            };
            match parse_node(&name, size) {
                Ok(id) => ids.push(id),
                Err(msg) => {
                    ok = false;
                    self.error(span, f, msg);
                }
            }
        }
        ok.then_some(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, ok};
    use crate::plan::types::*;
    use std::time::Duration;

    #[test]
    fn network_faults_need_a_network() {
        assert_eq!(
            err("[cluster]\nnetwork = \"none\"\n[[step]]\nat = \"1s\"\nfault = \"heal\"\n"),
            "step[0].fault: a heal step needs network faults, but [cluster] network = \"none\""
        );
    }

    #[test]
    fn leader_targets_need_a_leader_query() {
        let ext = "[cluster]\ncommand = \"/bin/x\"\n";
        assert_eq!(
            err(&format!("{ext}[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"leader\"\n")),
            "step[0].target: choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command, or a [workload] client that answers `leader`"
        );
        assert_eq!(
            err(&format!("{ext}[[step]]\nat = \"1s\"\nfault = \"partition\"\ntopology = \"isolate(followers)\"\n")),
            "step[0].topology: choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command, or a [workload] client that answers `leader`"
        );
        let p = ok(&format!(
            "{ext}leader = {{ pointer = \"/l\" }}\n[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"leader\"\nsignal = 15\n"
        ));
        assert_eq!(
            p.steps[0].action,
            Action::Kill {
                target: Target::Leader,
                signal: 15,
                restart_after: None,
                power_loss: None,
            }
        );
    }

    #[test]
    fn step_rules() {
        let step = |body: &str| format!("[[step]]\nat = \"1s\"\n{body}");
        assert_eq!(
            err(&step("fault = \"degrade\"\n")),
            "step[0]: a degrade step needs at least one of `latency`, `jitter`, `bandwidth`, `reset`, `stall`"
        );
        assert_eq!(
            err(&step("fault = \"degrade\"\njitter = \"5ms\"\n")),
            "step[0].jitter: `jitter` varies `latency`; give `latency` too"
        );
        assert_eq!(
            err(&step("fault = \"degrade\"\nreset = 2\nbandwidth = \"1Mb/s\"\n")),
            "step[0].reset: expected a number from 0 to 1, found 2\nstep[0].bandwidth: unknown rate unit `Mb/s` in \"1Mb/s\"; use B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s"
        );
        assert_eq!(
            err(&step("fault = \"kil\"\n")),
            "step[0].fault: unknown fault \"kil\", did you mean \"kill\"?"
        );
        assert_eq!(
            err("[[step]]\nfault = \"kill\"\n"),
            "step[0].at: missing; a step needs `at`, its offset from the start like \"5s\"\nstep[0].target: missing; this step needs a target: n0.., [\"n0\", \"n2\"], random, random(k), leader, followers, minority, majority, all"
        );
        assert_eq!(
            err(&step(
                "fault = \"kill\"\ntarget = \"n1\"\nrestart_after = \"0s\"\n"
            )),
            "step[0].restart_after: expected a duration greater than zero"
        );
        assert_eq!(
            err(&step(
                "fault = \"degrade\"\nlatency = \"1ms\"\nlinks = [[\"n0\", \"n0\"]]\n"
            )),
            "step[0].links[0]: a link joins two different nodes, found n0 to itself"
        );
        assert_eq!(
            err(&step(
                "fault = \"restore\"\nlinks = [\"n0\", \"n1\", \"n0\"]\n"
            )),
            "step[0].links: node `n0` is listed twice"
        );
        let p = ok(&step(
            "fault = \"degrade\"\nlatency = \"1ms\"\nlinks = \"majority\"\nbandwidth = 500\n",
        ));
        assert_eq!(
            p.steps[0].action,
            Action::Degrade {
                links: LinkSelector::Nodes(Target::Majority),
                degradation: Degradation {
                    latency: Some(Duration::from_millis(1)),
                    bandwidth: Some(500),
                    ..Degradation::default()
                },
                for_: None
            }
        );
        assert_eq!(p.steps[0].line, 3);
        assert_eq!(
            ok(&step("fault = \"restore\"\n")).steps[0].action,
            Action::Restore {
                links: LinkSelector::All
            }
        );
    }

    #[test]
    fn fault_names_come_from_the_fault_kinds() {
        let step = |body: &str| format!("[[step]]\nat = \"1s\"\n{body}");
        assert_eq!(
            err(&step("fault = \"zzz\"\n")),
            "step[0].fault: unknown fault \"zzz\"; expected one of kill, restart, pause, resume, partition, heal, degrade, restore, clock, slow, disk"
        );
        assert_eq!(
            err(&step("target = \"n1\"\n")),
            "step[0].fault: missing; a step needs a fault: kill, restart, pause, resume, partition, heal, degrade, restore, clock, slow, disk"
        );
        // Without a known kind, only keys no kind takes are reported.
        assert_eq!(
            err(&step("fault = \"zzz\"\ntopology = \"halves\"\nzap = 1\n")),
            "step[0].fault: unknown fault \"zzz\"; expected one of kill, restart, pause, resume, partition, heal, degrade, restore, clock, slow, disk\nstep[0].zap: unknown field `zap`; expected one of `at`, `fault`, `target`, `signal`, `restart_after`, `lose_unsynced`, `torn`, `for`, `how`, `topology`, `oneway`, `links`, `latency`, `jitter`, `distribution`, `bandwidth`, `loss`, `duplicate`, `reorder`, `gap`, `corrupt`, `reset`, `stall`, `offset`, `rate`, `strobe`, `cpu`, `fsync`, `write`, `read`"
        );
        assert_eq!(
            err(&step("fault = \"heal\"\nlinks = \"all\"\n")),
            "step[0].links: `links` does not apply to a heal step; a heal step takes `at`, `fault`"
        );
        for kind in crate::plan::FaultKind::ALL {
            let body = match kind {
                crate::plan::FaultKind::Kill
                | crate::plan::FaultKind::Restart
                | crate::plan::FaultKind::Pause
                | crate::plan::FaultKind::Resume => "target = \"n0\"\n",
                crate::plan::FaultKind::Partition => "topology = \"halves\"\n",
                crate::plan::FaultKind::Heal | crate::plan::FaultKind::Restore => "",
                crate::plan::FaultKind::Degrade => "latency = \"1ms\"\n",
                crate::plan::FaultKind::Clock => "target = \"n0\"\noffset = \"-1s\"\n",
                crate::plan::FaultKind::Slow => "target = \"n0\"\ncpu = 0.5\n",
                crate::plan::FaultKind::Disk => "target = \"n0\"\nfsync = \"eio\"\n",
            };
            let p = ok(&format!(
                "[cluster]\ndisk = \"faulty\"\n{}",
                step(&format!("fault = \"{kind}\"\n{body}"))
            ));
            assert_eq!(p.steps[0].action.kind(), kind);
        }
    }
}
