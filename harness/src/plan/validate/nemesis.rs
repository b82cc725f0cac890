//! `[nemesis]`: the weighted fault mix, topologies, targets, timing and
//! degradation bounds of the random nemesis, checked against the cluster,
//! the network and the run's duration. Every key has a default; only what
//! the plan's network can make is drawn.

use super::primitives::{backticked, describe, float_value, suggest, Span, Tbl, Value};
use super::steps::StepCtx;
use super::Validator;
use crate::plan::duration::{format_duration, parse_duration, parse_rate};
use crate::plan::error::position;
use crate::plan::fault_kind::FaultKind;
use crate::plan::nemesis::{
    can_isolate, drawable, drawable_names, drawn_by_default, ClockBounds, DegradeBounds,
    DurationRange, KillHow, NemesisSpec, TopologyChoice,
};
use crate::plan::target::parse_target;
use crate::plan::types::{DiskMode, NetworkMode, PauseHow, Target};
use std::time::Duration;
use toml::de::DeValue;

const NEMESIS_KEYS: &[&str] = &[
    "mix",
    "topologies",
    "targets",
    "interval",
    "durations",
    "quiet",
    "concurrency",
    "final",
    "degrade",
    "pauses",
    "kills",
];

const DEGRADE_KEYS: &[&str] = &["latency", "jitter", "bandwidth", "loss"];

/// One `name = weight` of a weights table, with the span of its name.
type Weight = (String, u32, Span);

/// Largest weight a mix accepts.
const MAX_WEIGHT: u64 = 1_000_000;

impl Validator<'_> {
    /// `[nemesis]`: `Some(None)` when the plan has none; `None` after errors.
    pub(super) fn nemesis(
        &mut self,
        root: &Tbl<'_, '_>,
        ctx: &StepCtx,
        duration: Option<Duration>,
    ) -> Option<Option<NemesisSpec>> {
        if root.get("nemesis").is_none() {
            return Some(None);
        }
        let t = self.table(root, "nemesis")?;
        self.unknown_keys(&t, NEMESIS_KEYS);
        let errors_before = self.errors.len();
        let line = position(self.src, t.span.start).0;
        let faulting_net = ctx.network.is_none_or(|n| n.mode != NetworkMode::None);

        let mix = self.nem_mix(&t, ctx, faulting_net);
        let targets = self.nem_targets(&t, ctx);
        let topologies = self.nem_topologies(&t, ctx, targets.as_deref(), &mix);
        let interval = self
            .nem_range(&t, "interval", true)
            .unwrap_or(Some(NemesisSpec::DEFAULT_INTERVAL));
        let durations = self
            .nem_range(&t, "durations", true)
            .unwrap_or(Some(NemesisSpec::DEFAULT_DURATIONS));
        let quiet = match t.get("quiet") {
            None => Some(NemesisSpec::DEFAULT_QUIET),
            Some(_) => self.duration(&t, "quiet", false),
        };
        let final_ = match t.get("final") {
            None => Some(NemesisSpec::DEFAULT_FINAL),
            Some(_) => self.duration(&t, "final", true),
        };
        let concurrency = match t.get("concurrency") {
            None => Some(1),
            Some(_) => self
                .int(&t, "concurrency", 1, ctx.size.max(1) as u64)
                .map(|n| n as usize),
        };
        let degrade = self.nem_degrade_bounds(&t);
        let pauses = self.nem_pauses(&t);
        let kills = self.nem_kills(&t, ctx);

        // Quiet and final must leave room for at least the shortest fault.
        if let (Some(total), Some(q), Some(f), Some(d)) = (duration, quiet, final_, durations) {
            if q + f + d.lo > total {
                let span = t.get("final").map_or(t.span.clone(), |v| v.span());
                self.error(
                    span,
                    t.field("final"),
                    format!(
                        "quiet = \"{}\", the shortest fault (\"{}\") and final = \"{}\" do not fit in duration = \"{}\"",
                        format_duration(q),
                        format_duration(d.lo),
                        format_duration(f),
                        format_duration(total)
                    ),
                );
            }
        }
        if self.errors.len() != errors_before {
            return None;
        }
        Some(Some(NemesisSpec {
            mix: mix?,
            topologies: topologies?,
            targets: targets?,
            interval: interval?,
            durations: durations?,
            quiet: quiet?,
            concurrency: concurrency?,
            final_: final_?,
            degrade: degrade?,
            clock: ClockBounds::default(),
            slow_cpu: NemesisSpec::DEFAULT_SLOW_CPU,
            pauses: pauses?,
            kills: kills?,
            line,
        }))
    }

    /// `mix = { kill = 2, ... }`: weights of drawable kinds. Default: every
    /// drawable kind the network can make, weight 1.
    fn nem_mix(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        faulting_net: bool,
    ) -> Option<Vec<(FaultKind, u32)>> {
        let field = t.field("mix");
        let Some(v) = t.get("mix") else {
            return Some(
                FaultKind::ALL
                    .into_iter()
                    .filter(|k| drawable(*k))
                    .map(|k| {
                        let on = drawn_by_default(k) && (faulting_net || !k.needs_network());
                        (k, u32::from(on))
                    })
                    .collect(),
            );
        };
        let (entries, mut ok) = self.nem_weights(v, &field)?;
        let mut out: Vec<(FaultKind, u32)> = Vec::new();
        for (name, w, span) in entries {
            let f = format!("{field}.{name}");
            match FaultKind::from_name(&name) {
                Some(k) if drawable(k) => {
                    if w > 0 && k.needs_network() && !faulting_net {
                        ok = false;
                        let said = ctx.network.map(|n| n.said_in_cluster()).unwrap_or_default();
                        self.error(
                            span,
                            f,
                            format!("a {k} needs network faults, but {said}; give it weight 0"),
                        );
                        continue;
                    }
                    if w > 0 && k == FaultKind::Disk && ctx.disk == Some(DiskMode::Plain) {
                        ok = false;
                        self.error(
                            span,
                            f,
                            "a disk fault needs [cluster] disk = \"faulty\"; give it weight 0",
                        );
                        continue;
                    }
                    out.push((k, w));
                }
                Some(k) => {
                    ok = false;
                    self.error(
                        span,
                        f,
                        format!(
                            "the nemesis does not draw `{k}` (it undoes its own faults); it draws {}",
                            backticked(&drawable_names())
                        ),
                    );
                }
                None => {
                    ok = false;
                    let names = drawable_names();
                    let msg = match suggest(&name, &names) {
                        Some(s) => format!("unknown fault `{name}`, did you mean `{s}`?"),
                        None => format!(
                            "unknown fault `{name}`; the nemesis draws {}",
                            backticked(&names)
                        ),
                    };
                    self.error(span, f, msg);
                }
            }
        }
        if !ok {
            return None;
        }
        let mut out = self.nem_some_weight(out, v, field)?;
        out.sort_by_key(|(k, _)| *k);
        Some(out)
    }

    /// `targets = { leader = 1, random = 2, n1 = 1 }`. Default: leader 1 and
    /// random 2 when a leader can be asked, else random 1.
    fn nem_targets(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Vec<(Target, u32)>> {
        let field = t.field("targets");
        let Some(v) = t.get("targets") else {
            return Some(if ctx.has_leader {
                vec![(Target::Leader, 1), (Target::Random(1), 2)]
            } else {
                vec![(Target::Random(1), 1)]
            });
        };
        let (entries, mut ok) = self.nem_weights(v, &field)?;
        let mut out = Vec::new();
        for (name, w, span) in entries {
            let f = format!("{field}.{name}");
            match parse_target(&name, ctx.size) {
                Ok(target) => {
                    if self
                        .needs_leader(&target, span.clone(), f.clone(), ctx.has_leader)
                        .is_none()
                    {
                        ok = false;
                        continue;
                    }
                    if out.iter().any(|(t, _)| *t == target) {
                        ok = false;
                        self.error(span, f, format!("target `{name}` is listed twice"));
                        continue;
                    }
                    out.push((target, w));
                }
                Err(msg) => {
                    ok = false;
                    self.error(span, f, msg);
                }
            }
        }
        if !ok {
            return None;
        }
        self.nem_some_weight(out, v, field)
    }

    /// `topologies = { isolate = 2, halves = 1, ... }`. Default: every
    /// topology the cluster is large enough for, weight 1 (isolate only
    /// when some target can be isolated).
    fn nem_topologies(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        targets: Option<&[(Target, u32)]>,
        mix: &Option<Vec<(FaultKind, u32)>>,
    ) -> Option<Vec<(TopologyChoice, u32)>> {
        let field = t.field("topologies");
        let isolatable =
            targets.is_none_or(|ts| ts.iter().any(|(t, w)| *w > 0 && can_isolate(t, ctx.size)));
        let Some(v) = t.get("topologies") else {
            let out: Vec<(TopologyChoice, u32)> = TopologyChoice::ALL
                .into_iter()
                .filter(|c| {
                    ctx.size >= c.min_nodes() && (*c != TopologyChoice::Isolate || isolatable)
                })
                .map(|c| (c, 1))
                .collect();
            let partitions = mix
                .as_ref()
                .is_some_and(|m| m.iter().any(|(k, w)| *k == FaultKind::Partition && *w > 0));
            if out.is_empty() && partitions {
                self.error(
                    t.span.clone(),
                    t.field("mix.partition"),
                    format!("no topology can partition a {}-node cluster", ctx.size),
                );
                return None;
            }
            return Some(out);
        };
        let (entries, mut ok) = self.nem_weights(v, &field)?;
        let mut out = Vec::new();
        for (name, w, span) in entries {
            let f = format!("{field}.{name}");
            let Some(c) = TopologyChoice::from_name(&name) else {
                ok = false;
                let names = TopologyChoice::ALL.map(TopologyChoice::name);
                let msg = match suggest(&name, &names) {
                    Some(s) => format!("unknown topology `{name}`, did you mean `{s}`?"),
                    None => format!(
                        "unknown topology `{name}`; expected one of {}",
                        backticked(&names)
                    ),
                };
                self.error(span, f, msg);
                continue;
            };
            if w > 0 && ctx.size_known && ctx.size < c.min_nodes() {
                ok = false;
                self.error(
                    span,
                    f,
                    format!(
                        "topology `{name}` needs at least {} nodes, the cluster has {}",
                        c.min_nodes(),
                        ctx.size
                    ),
                );
                continue;
            }
            if w > 0 && c == TopologyChoice::Isolate && !isolatable {
                ok = false;
                self.error(
                    span,
                    f,
                    "no target of `targets` can be isolated (`all`, or as many nodes as the cluster has); add one like `leader` or `random`",
                );
                continue;
            }
            out.push((c, w));
        }
        if !ok {
            return None;
        }
        let partitions = mix
            .as_ref()
            .is_some_and(|m| m.iter().any(|(k, w)| *k == FaultKind::Partition && *w > 0));
        if partitions && out.iter().all(|(_, w)| *w == 0) {
            self.error(
                v.span(),
                field,
                "expected at least one weight greater than 0",
            );
            return None;
        }
        Some(out)
    }

    /// `degrade = { latency = ["20ms", "200ms"], jitter = [...], bandwidth =
    /// ["256KB/s", "4MB/s"], loss = [0.01, 0.1] }`; `false` turns an effect
    /// other than latency off.
    fn nem_degrade_bounds(&mut self, t: &Tbl<'_, '_>) -> Option<DegradeBounds> {
        let d = self.table(t, "degrade")?;
        self.unknown_keys(&d, DEGRADE_KEYS);
        let mut b = DegradeBounds::default();
        let mut ok = true;
        if d.get("latency").is_some() {
            match self.nem_range(&d, "latency", false) {
                Some(Some(r)) => b.latency = r,
                Some(None) | None => ok = false,
            }
        }
        if let Some(v) = d.get("jitter") {
            if is_false(v) {
                b.jitter = None;
            } else {
                match self.nem_range(&d, "jitter", true) {
                    Some(Some(r)) => b.jitter = Some(r),
                    Some(None) | None => ok = false,
                }
            }
        }
        if let Some(v) = d.get("bandwidth") {
            if is_false(v) {
                b.bandwidth = None;
            } else {
                match self.nem_pair(v, d.field("bandwidth"), |x| match x.get_ref() {
                    DeValue::String(s) => parse_rate(s.as_ref()).ok().filter(|n| *n > 0),
                    DeValue::Integer(_) => super::primitives::int_value(x.get_ref())
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| *n > 0),
                    _ => None,
                }) {
                    Some(r) => b.bandwidth = Some(r),
                    None => ok = false,
                }
            }
        }
        if let Some(v) = d.get("loss") {
            if is_false(v) {
                b.loss = None;
            } else {
                match self.nem_pair(v, d.field("loss"), |x| {
                    float_value(x.get_ref()).filter(|p| (0.0..=1.0).contains(p))
                }) {
                    Some(r) => b.loss = Some(r),
                    None => ok = false,
                }
            }
        }
        ok.then_some(b)
    }

    /// `key`: a duration `"5s"` or a range `["3s", "8s"]`. `None`: absent;
    /// `Some(None)`: invalid (reported).
    fn nem_range(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        positive: bool,
    ) -> Option<Option<DurationRange>> {
        let v = t.get(key)?;
        let field = t.field(key);
        let one = |v: &Value<'_>| match v.get_ref() {
            DeValue::String(s) => parse_duration(s).ok().filter(|d| !positive || !d.is_zero()),
            _ => None,
        };
        let expected = if positive {
            "a duration greater than zero like \"5s\", or a range like [\"3s\", \"8s\"]"
        } else {
            "a duration like \"50ms\", or a range like [\"10ms\", \"200ms\"]"
        };
        let r = match v.get_ref() {
            DeValue::String(_) => one(v).map(DurationRange::fixed),
            DeValue::Array(items) if items.len() == 2 => match (one(&items[0]), one(&items[1])) {
                (Some(lo), Some(hi)) if lo <= hi => Some(DurationRange { lo, hi }),
                (Some(lo), Some(hi)) => {
                    self.error(
                        v.span(),
                        field,
                        format!(
                            "the range starts after it ends (\"{}\" > \"{}\")",
                            format_duration(lo),
                            format_duration(hi)
                        ),
                    );
                    return Some(None);
                }
                _ => None,
            },
            _ => None,
        };
        if r.is_none() {
            self.error(
                v.span(),
                field,
                format!("expected {expected}, found {}", show(v)),
            );
        }
        Some(r)
    }

    /// `[lo, hi]` of values `read` accepts, `lo <= hi`.
    fn nem_pair<T: PartialOrd + Copy>(
        &mut self,
        v: &Value<'_>,
        field: String,
        read: impl Fn(&Value<'_>) -> Option<T>,
    ) -> Option<(T, T)> {
        let r = match v.get_ref() {
            DeValue::Array(items) if items.len() == 2 => match (read(&items[0]), read(&items[1])) {
                (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
                _ => None,
            },
            _ => None,
        };
        if r.is_none() {
            self.error(
                v.span(),
                field,
                format!(
                    "expected a range [low, high] of valid values with low <= high (or false), found {}",
                    show(v)
                ),
            );
        }
        r
    }

    /// `pauses = { sigstop = 1, freeze = 1 }`: how drawn pauses stop
    /// their target. Default SIGSTOP only.
    fn nem_pauses(&mut self, t: &Tbl<'_, '_>) -> Option<Vec<(PauseHow, u32)>> {
        let all: Vec<(PauseHow, &str)> = PauseHow::ALL.into_iter().map(|h| (h, h.name())).collect();
        self.nem_named_weights(t, "pauses", &all, "way to pause")
            .map(|w| w.unwrap_or_else(|| NemesisSpec::DEFAULT_PAUSES.to_vec()))
    }

    /// `kills = { signal = 1, power_loss = 1, torn = 1 }`: how drawn kills
    /// end their target: SIGKILL, or SIGKILL and a power loss of its faulty
    /// disk (`torn`: with torn writes). Default SIGKILL only; the power
    /// losses need `[cluster] disk = "faulty"`.
    fn nem_kills(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Vec<(KillHow, u32)>> {
        let all: Vec<(KillHow, &str)> = KillHow::ALL.into_iter().map(|k| (k, k.name())).collect();
        let kills = self
            .nem_named_weights(t, "kills", &all, "way to kill")?
            .unwrap_or_else(|| NemesisSpec::DEFAULT_KILLS.to_vec());
        let faulty = ctx.disk != Some(DiskMode::Plain);
        let mut ok = true;
        for (how, w) in &kills {
            match how {
                KillHow::Signal => {}
                KillHow::PowerLoss | KillHow::TornPowerLoss => {
                    if *w > 0 && !faulty {
                        ok = false;
                        let span = t.get("kills").map_or(t.span.clone(), |v| v.span());
                        self.error(
                            span,
                            format!("{}.{}", t.field("kills"), how.name()),
                            "a power loss needs [cluster] disk = \"faulty\"; give it weight 0",
                        );
                    }
                }
            }
        }
        ok.then_some(kills)
    }

    /// A table of weights over a closed set of names (`all`): `Some(None)`
    /// when absent, every name missing from the table weight 0, an error
    /// for an unknown name (`what` says what a name is) or when every
    /// weight is 0.
    fn nem_named_weights<T: Copy + PartialEq>(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        all: &[(T, &str)],
        what: &str,
    ) -> Option<Option<Vec<(T, u32)>>> {
        let field = t.field(key);
        let Some(v) = t.get(key) else {
            return Some(None);
        };
        let (entries, mut ok) = self.nem_weights(v, &field)?;
        let mut out: Vec<(T, u32)> = all.iter().map(|(x, _)| (*x, 0)).collect();
        for (name, w, span) in entries {
            match all.iter().find(|(_, n)| *n == name) {
                Some((x, _)) => {
                    for slot in out.iter_mut().filter(|(y, _)| y == x) {
                        slot.1 = w;
                    }
                }
                None => {
                    ok = false;
                    let names: Vec<&str> = all.iter().map(|(_, n)| *n).collect();
                    self.error(
                        span,
                        format!("{field}.{name}"),
                        format!("unknown {what} `{name}`; expected {}", backticked(&names)),
                    );
                }
            }
        }
        if !ok {
            return None;
        }
        self.nem_some_weight(out, v, field).map(Some)
    }

    /// `out`, unless every weight in it is 0: then an error at `v`.
    fn nem_some_weight<T>(
        &mut self,
        out: Vec<(T, u32)>,
        v: &Value<'_>,
        field: String,
    ) -> Option<Vec<(T, u32)>> {
        if out.iter().all(|(_, w)| *w == 0) {
            self.error(
                v.span(),
                field,
                "expected at least one weight greater than 0",
            );
            return None;
        }
        Some(out)
    }

    /// A table of whole-number weights, in file order: the valid ones, and
    /// whether all were. `None` when it is not a table.
    fn nem_weights(&mut self, v: &Value<'_>, field: &str) -> Option<(Vec<Weight>, bool)> {
        let DeValue::Table(tbl) = v.get_ref() else {
            self.error(
                v.span(),
                field.to_string(),
                format!(
                    "expected a table of weights like {{ kill = 2, pause = 1 }}, found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (k, w) in tbl.iter() {
            let name = k.get_ref().to_string();
            match self.int_value(w, format!("{field}.{name}"), 0, MAX_WEIGHT) {
                Some(n) => out.push((name, n as u32, k.span())),
                None => ok = false,
            }
        }
        Some((out, ok))
    }
}

fn is_false(v: &Value<'_>) -> bool {
    matches!(v.get_ref(), DeValue::Boolean(false))
}

/// A value for "found ...": arrays by their items.
fn show(v: &Value<'_>) -> String {
    match v.get_ref() {
        DeValue::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| describe(i.get_ref()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => describe(other),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, err_under, ok, ok_under};
    use crate::plan::types::{NetworkMode, Target};
    use crate::plan::{DurationRange, FaultKind, NemesisSpec, TopologyChoice};
    use std::time::Duration;

    const KV: &str = "[workload]\nkind = \"kv\"\n";

    fn spec(body: &str) -> NemesisSpec {
        match ok(&format!("{KV}[nemesis]\n{body}")).nemesis {
            Some(s) => s,
            None => panic!("no nemesis"),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn every_key_has_a_default() {
        let s = spec("");
        assert_eq!(
            s.mix,
            vec![
                (FaultKind::Kill, 1),
                (FaultKind::Pause, 1),
                (FaultKind::Partition, 1),
                (FaultKind::Degrade, 1),
                // Need libfaketime and cgroups: drawn only when `mix` names them.
                (FaultKind::Clock, 0),
                (FaultKind::Slow, 0),
                (FaultKind::Disk, 0),
            ]
        );
        assert_eq!(s.targets, vec![(Target::Leader, 1), (Target::Random(1), 2)]);
        // Three nodes: every topology fits.
        assert_eq!(s.topologies.len(), TopologyChoice::ALL.len());
        assert_eq!(s.interval, NemesisSpec::DEFAULT_INTERVAL);
        assert_eq!(s.durations, NemesisSpec::DEFAULT_DURATIONS);
        assert_eq!((s.quiet, s.final_, s.concurrency), (secs(5), secs(10), 1));
        // The line of `[nemesis]` (after the 2-line head and 2 of workload).
        assert_eq!(s.line, 5);
        assert_eq!(ok(KV).nemesis, None);
    }

    #[test]
    fn ranges_and_single_durations() {
        let s = spec("interval = \"4s\"\ndurations = [\"1s\", \"3s\"]\nquiet = \"0s\"\n");
        assert_eq!(s.interval, DurationRange::fixed(secs(4)));
        assert_eq!(
            s.durations,
            DurationRange {
                lo: secs(1),
                hi: secs(3)
            }
        );
        assert_eq!(s.quiet, Duration::ZERO);
        assert_eq!(
            err(&format!("{KV}[nemesis]\ninterval = [\"8s\", \"3s\"]\ndurations = \"0s\"\n")),
            "nemesis.interval: the range starts after it ends (\"8s\" > \"3s\")\nnemesis.durations: expected a duration greater than zero like \"5s\", or a range like [\"3s\", \"8s\"], found \"0s\""
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(
            err(&format!(
                "{KV}[nemesis]\nmix = {{ kil = 1, restart = 2, pause = -1 }}\nfinal = \"0s\"\nconcurrency = 9\nzap = 1\n"
            )),
            "nemesis.mix.kil: unknown fault `kil`, did you mean `kill`?\n\
nemesis.mix.restart: the nemesis does not draw `restart` (it undoes its own faults); it draws `kill`, `pause`, `partition`, `degrade`, `clock`, `slow`, `disk`\n\
nemesis.mix.pause: expected a whole number from 0 to 1000000, found -1\n\
nemesis.final: expected a duration greater than zero\n\
nemesis.concurrency: expected a whole number from 1 to 3, found 9\n\
nemesis.zap: unknown field `zap`; expected one of `mix`, `topologies`, `targets`, `interval`, `durations`, `quiet`, `concurrency`, `final`, `degrade`, `pauses`, `kills`"
        );
        assert_eq!(
            err(&format!("{KV}[nemesis]\nmix = {{ kill = 0 }}\n")),
            "nemesis.mix: expected at least one weight greater than 0"
        );
        assert_eq!(
            err(&format!(
                "{KV}[nemesis]\ntargets = {{ leaderr = 1, n7 = 1 }}\ntopologies = {{ ring = 1, star = 1 }}\n"
            )),
            "nemesis.targets.leaderr: expected a target (n0.., random, random(k), leader, followers, minority, majority, all), found \"leaderr\"\n\
nemesis.targets.n7: unknown node `n7`; this cluster has n0 to n2\n\
nemesis.topologies.star: unknown topology `star`; expected one of `isolate`, `majority-minority`, `halves`, `ring`, `bridge`"
        );
        assert_eq!(
            err(&format!(
                "{KV}[nemesis]\ntargets = {{ all = 1 }}\ntopologies = {{ isolate = 1 }}\n"
            )),
            "nemesis.topologies.isolate: no target of `targets` can be isolated (`all`, or as many nodes as the cluster has); add one like `leader` or `random`"
        );
        assert_eq!(
            err(&format!(
                "[cluster]\nsize = 2\n{KV}[nemesis]\ntopologies = {{ ring = 1 }}\n"
            )),
            "nemesis.topologies.ring: topology `ring` needs at least 3 nodes, the cluster has 2"
        );
        assert_eq!(
            err(&format!(
                "{KV}[nemesis]\ndegrade = {{ loss = [0.5, 2], bandwidth = false, latency = \"x\" }}\n"
            )),
            "nemesis.degrade.loss: expected a range [low, high] of valid values with low <= high (or false), found [0.5, 2]\n\
nemesis.degrade.latency: expected a duration like \"50ms\", or a range like [\"10ms\", \"200ms\"], found \"x\""
        );
    }

    #[test]
    fn power_losses_need_the_faulty_disk_and_names_are_checked() {
        assert_eq!(
            err(&format!("{KV}[nemesis]\nkills = {{ torn = 1 }}\n")),
            "nemesis.kills.torn: a power loss needs [cluster] disk = \"faulty\"; give it weight 0"
        );
        assert_eq!(
            err(&format!("{KV}[nemesis]\nkills = {{ sigkill = 1 }}\n")),
            "nemesis.kills.sigkill: unknown way to kill `sigkill`; expected `signal`, `power_loss`, `torn`"
        );
        assert_eq!(
            err(&format!("{KV}[nemesis]\npauses = {{ freeze = 0 }}\n")),
            "nemesis.pauses: expected at least one weight greater than 0"
        );
        let s = spec("");
        assert_eq!(s.kills, NemesisSpec::DEFAULT_KILLS.to_vec());
        let p = ok_under(
            NetworkMode::Proxy,
            &format!("[cluster]\ndisk = \"faulty\"\n{KV}[nemesis]\nkills = {{ torn = 3, power_loss = 1 }}\n"),
        );
        assert_eq!(
            p.nemesis.map(|n| n.kills),
            Some(vec![
                (crate::plan::KillHow::Signal, 0),
                (crate::plan::KillHow::PowerLoss, 1),
                (crate::plan::KillHow::TornPowerLoss, 3)
            ])
        );
    }

    #[test]
    fn the_phases_must_fit_in_the_run() {
        assert_eq!(
            err(&format!("{KV}[nemesis]\nquiet = \"15s\"\nfinal = \"14s\"\n")),
            "nemesis.final: quiet = \"15s\", the shortest fault (\"2s\") and final = \"14s\" do not fit in duration = \"30s\""
        );
    }

    #[test]
    fn the_network_decides_what_can_be_drawn() {
        // Without network faults, network kinds default to weight 0 ...
        let p = ok_under(NetworkMode::None, &format!("{KV}[nemesis]\n"));
        let mix = p.nemesis.map(|s| s.mix).unwrap_or_default();
        assert_eq!(
            mix,
            vec![
                (FaultKind::Kill, 1),
                (FaultKind::Pause, 1),
                (FaultKind::Partition, 0),
                (FaultKind::Degrade, 0),
                (FaultKind::Clock, 0),
                (FaultKind::Slow, 0),
                (FaultKind::Disk, 0),
            ]
        );
        // ... and asking for them is an error.
        assert_eq!(
            err_under(
                NetworkMode::None,
                &format!("{KV}[nemesis]\nmix = {{ kill = 1, partition = 1 }}\n")
            ),
            "nemesis.mix.partition: a partition needs network faults, but --network none; give it weight 0"
        );
    }

    #[test]
    fn disk_faults_need_the_faulty_disk() {
        assert_eq!(
            err(&format!("{KV}[nemesis]\nmix = {{ kill = 1, disk = 1 }}\n")),
            "nemesis.mix.disk: a disk fault needs [cluster] disk = \"faulty\"; give it weight 0"
        );
        let p = ok(&format!(
            "[cluster]\ndisk = \"faulty\"\n{KV}[nemesis]\nmix = {{ disk = 1 }}\n"
        ));
        assert_eq!(p.nemesis.map(|s| s.mix), Some(vec![(FaultKind::Disk, 1)]));
    }

    #[test]
    fn leader_targets_need_a_leader() {
        assert_eq!(
            err("[cluster]\ncommand = \"/bin/x\"\n[nemesis]\ntargets = { leader = 1 }\n"),
            "nemesis.targets.leader: choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command, or a [workload] client that answers `leader`"
        );
        // Without a leader query the default targets are random ones.
        let p = ok("[cluster]\ncommand = \"/bin/x\"\n[nemesis]\n");
        assert_eq!(
            p.nemesis.map(|s| s.targets),
            Some(vec![(Target::Random(1), 1)])
        );
    }
}
