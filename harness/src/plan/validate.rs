//! The validation pass: walks toml's spanned document tree once and builds a
//! [`Plan`], or reports every problem it finds with the span of the value at
//! fault (the enclosing table's when the value is missing). It owns the plan
//! format's rules and defaults; it must never panic, whatever the input.

use super::duration::{format_duration, parse_duration, parse_rate};
use super::error::{position, PlanError};
use super::target::{
    groups_topology, nodes_target, parse_node, parse_signal, parse_target, parse_topology,
};
use super::template::TemplateScope;
use super::types::*;
use crate::NodeId;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

type Span = Range<usize>;
type Value<'i> = Spanned<DeValue<'i>>;

const MAX_NODES: usize = 64;
/// Bounds keep load loops bounded even for a careless plan.
const MAX_CLIENTS: u64 = 1024;
const MAX_RATE: f64 = 100_000.0;
const MAX_KEYS: u64 = 1_000_000;

/// The `--bug` switches the sample node knows.
pub const SAMPLE_BUGS: &[&str] = &["stale-reads", "ack-before-commit", "unsafe-vote"];
/// Checker names accepted by `expect.finds`.
pub const CHECKERS: &[&str] = &[
    "linearizable",
    "lost_writes",
    "ledger_agreement",
    "availability",
];

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "cluster",
    "workload",
    "step",
    "expect",
];
const CLUSTER_KEYS: &[&str] = &[
    "size",
    "host",
    "command",
    "args",
    "env",
    "bug",
    "bugs",
    "network",
    "ready",
    "leader",
    "peers",
    "separate_peer_port",
    "stop_timeout",
];
const WORKLOAD_KEYS: &[&str] = &[
    "kind",
    "clients",
    "rate",
    "timeout",
    "keys",
    "mix",
    "method",
    "path",
    "ok_status",
    "http",
    "via",
];
/// Fields of one operation of the HTTP key-value adapter.
const HTTP_OP_KEYS: &[&str] = &[
    "method",
    "path",
    "headers",
    "body",
    "ok",
    "not_found",
    "precondition_failed",
    "refused",
    "value",
];
/// Placeholders an adapter template may use.
const HTTP_PLACEHOLDERS: &[&str] = &["key", "value", "expect", "value_json", "expect_json"];
const STEP_KEYS: &[&str] = &[
    "at",
    "fault",
    "target",
    "signal",
    "restart_after",
    "for",
    "topology",
    "oneway",
    "links",
    "latency",
    "jitter",
    "bandwidth",
    "reset",
    "stall",
];
const FAULTS: &[&str] = &[
    "kill",
    "restart",
    "pause",
    "resume",
    "partition",
    "heal",
    "degrade",
    "restore",
];
const EXPECT_KEYS: &[&str] = &[
    "availability",
    "p50_latency",
    "p99_latency",
    "recovery",
    "no_unexpected_exits",
    "linearizable",
    "lost_writes",
    "ledger_agreement",
    "finds",
];

/// The fields a step of each fault kind takes, `at` and `fault` included.
fn step_keys(fault: &str) -> &'static [&'static str] {
    match fault {
        "kill" => &["at", "fault", "target", "signal", "restart_after"],
        "restart" | "resume" => &["at", "fault", "target"],
        "pause" => &["at", "fault", "target", "for"],
        "partition" => &["at", "fault", "topology", "oneway", "for"],
        "heal" => &["at", "fault"],
        "degrade" => &[
            "at",
            "fault",
            "links",
            "latency",
            "jitter",
            "bandwidth",
            "reset",
            "stall",
            "for",
        ],
        "restore" => &["at", "fault", "links"],
        _ => STEP_KEYS,
    }
}

pub(super) fn validate(src: &str, path: &Path, hash: String) -> Result<Plan, PlanError> {
    let doc = match DeTable::parse(src) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = position(src, e.span().map_or(0, |s| s.start));
            return Err(PlanError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().trim_end().replace('\n', " "),
            });
        }
    };
    let mut v = Validator {
        src,
        errors: Vec::new(),
    };
    let root = Tbl {
        t: Some(doc.get_ref()),
        span: 0..0,
        path: String::new(),
    };
    let plan = v.plan(&root, path, hash);
    if v.errors.is_empty() {
        if let Some(plan) = plan {
            return Ok(plan);
        }
    }
    // Stable sort: errors at one place keep the order they were found in.
    v.errors.sort_by_key(|e| e.0.start);
    let mut errors: Vec<PlanError> = v
        .errors
        .into_iter()
        .map(|(span, field, message)| {
            let (line, column) = position(src, span.start);
            PlanError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                field,
                message,
            }
        })
        .collect();
    match errors.len() {
        // Unreachable in practice: a missing plan always comes with an error.
        0 => Err(PlanError::Invalid {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            field: "plan".into(),
            message: "invalid plan".into(),
        }),
        1 => Err(errors.remove(0)),
        _ => Err(PlanError::Many { errors }),
    }
}

/// What the steps need to know of the cluster.
struct StepCtx {
    size: usize,
    /// False when `size` is invalid: then `size` is the maximum and checks
    /// that need the exact size are skipped.
    size_known: bool,
    has_leader: bool,
    no_network: bool,
    /// The workload goes through client links (or did not parse: then
    /// assume it does, to avoid knock-on errors).
    client_links: bool,
}

/// A table being read: possibly absent (then every field takes its default).
struct Tbl<'a, 'i> {
    t: Option<&'a DeTable<'i>>,
    /// The table's own span (its `[header]` or inline `{...}`), for errors
    /// about missing fields.
    span: Span,
    /// Dotted path of the table; empty for the root.
    path: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.t.and_then(|t| t.get(key))
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn keys(&self) -> impl Iterator<Item = (&'a str, Span)> + 'a {
        self.t
            .into_iter()
            .flat_map(|t| t.iter())
            .map(|(k, _)| (k.get_ref().as_ref(), k.span()))
    }
}

struct Validator<'s> {
    src: &'s str,
    errors: Vec<(Span, String, String)>,
}

/// What a value is, for "found ..." in messages.
fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            if s.chars().count() > 40 {
                let short: String = s.chars().take(40).collect();
                format!("{short:?}...")
            } else {
                format!("{s:?}")
            }
        }
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(_) => "a date-time".to_string(),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn int_value(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

fn float_value(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        DeValue::Integer(_) => int_value(v).map(|i| i as f64),
        _ => None,
    }
}

impl Validator<'_> {
    fn error(&mut self, span: Span, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push((span, field.into(), message.into()));
    }

    /// Reports keys not in `allowed`, suggesting the closest allowed one.
    fn unknown_keys(&mut self, tbl: &Tbl<'_, '_>, allowed: &[&str]) {
        for (key, span) in tbl.keys() {
            if !allowed.contains(&key) {
                let msg = unknown_field(key, allowed);
                self.error(span, tbl.field(key), msg);
            }
        }
    }

    /// A sub-table; `None` (after an error) when the value is not a table.
    fn table<'a, 'i>(&mut self, parent: &Tbl<'a, 'i>, key: &str) -> Option<Tbl<'a, 'i>> {
        let field = parent.field(key);
        match parent.get(key) {
            None => Some(Tbl {
                t: None,
                span: parent.span.clone(),
                path: field,
            }),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Some(Tbl {
                    t: Some(t),
                    span: v.span(),
                    path: field,
                }),
                other => {
                    self.error(
                        v.span(),
                        field,
                        format!("expected a table, found {}", describe(other)),
                    );
                    None
                }
            },
        }
    }

    fn string(&mut self, tbl: &Tbl<'_, '_>, key: &str) -> Option<(String, Span)> {
        let v = tbl.get(key)?;
        self.string_value(v, tbl.field(key))
    }

    fn string_value(&mut self, v: &Value<'_>, field: String) -> Option<(String, Span)> {
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            other => {
                self.error(
                    v.span(),
                    field,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn bool(&mut self, tbl: &Tbl<'_, '_>, key: &str) -> Option<bool> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    v.span(),
                    tbl.field(key),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A whole number in `lo..=hi`.
    fn int(&mut self, tbl: &Tbl<'_, '_>, key: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = tbl.get(key)?;
        self.int_value(v, tbl.field(key), lo, hi)
    }

    fn int_value(&mut self, v: &Value<'_>, field: String, lo: u64, hi: u64) -> Option<u64> {
        let n = int_value(v.get_ref())
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (lo..=hi).contains(n));
        if n.is_none() {
            let range = if hi == u64::MAX {
                format!("a whole number of at least {lo}")
            } else {
                format!("a whole number from {lo} to {hi}")
            };
            self.error(
                v.span(),
                field,
                format!("expected {range}, found {}", describe(v.get_ref())),
            );
        }
        n
    }

    /// A finite number (integer or float) in `lo..=hi`; `lo_open` excludes `lo`.
    fn number(
        &mut self,
        tbl: &Tbl<'_, '_>,
        key: &str,
        lo: f64,
        lo_open: bool,
        hi: f64,
    ) -> Option<f64> {
        let v = tbl.get(key)?;
        let n = float_value(v.get_ref())
            .filter(|n| n.is_finite() && (if lo_open { *n > lo } else { *n >= lo }) && *n <= hi);
        if n.is_none() {
            let expected = if lo_open {
                format!("a number greater than {lo} and at most {hi}")
            } else {
                format!("a number from {lo} to {hi}")
            };
            self.error(
                v.span(),
                tbl.field(key),
                format!("expected {expected}, found {}", describe(v.get_ref())),
            );
        }
        n
    }

    fn duration(&mut self, tbl: &Tbl<'_, '_>, key: &str, positive: bool) -> Option<Duration> {
        let v = tbl.get(key)?;
        let field = tbl.field(key);
        let DeValue::String(s) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected a duration like \"5s\" or \"250ms\", found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        match parse_duration(s) {
            Ok(d) if positive && d.is_zero() => {
                self.error(v.span(), field, "expected a duration greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }

    fn template(
        &mut self,
        v: &Value<'_>,
        field: String,
        scope: TemplateScope,
        peer_port_ok: bool,
    ) -> Option<Template> {
        let (s, span) = self.string_value(v, field.clone())?;
        match Template::parse(&s, scope) {
            Ok(t) if !peer_port_ok && t.uses(Placeholder::PeerPort) => {
                self.error(
                    span,
                    field,
                    "`{peer_port}` needs `separate_peer_port = true` in [cluster]",
                );
                None
            }
            Ok(t) => Some(t),
            Err(msg) => {
                self.error(span, field, msg);
                None
            }
        }
    }

    fn plan(&mut self, root: &Tbl<'_, '_>, path: &Path, hash: String) -> Option<Plan> {
        self.unknown_keys(root, ROOT_KEYS);
        let name = match self.string(root, "name") {
            Some((n, span)) => {
                let ok = !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    self.error(
                        span,
                        "name",
                        format!(
                            "expected letters, digits, `-` and `_` only (it names a directory), found {n:?}"
                        ),
                    );
                }
                Some(n)
            }
            None => {
                if root.get("name").is_none() {
                    self.error(0..0, "name", "missing; every plan needs a name");
                }
                None
            }
        };
        let description = self
            .string(root, "description")
            .map(|s| s.0)
            .unwrap_or_default();
        let seed = root
            .get("seed")
            .and_then(|v| self.int_value(v, "seed".into(), 0, u64::MAX));
        let duration = self.duration(root, "duration", true);
        if root.get("duration").is_none() {
            self.error(
                0..0,
                "duration",
                "missing; every plan needs a duration like \"30s\"",
            );
        }

        let cluster = self.table(root, "cluster").and_then(|t| self.cluster(&t));
        let external = matches!(
            cluster.as_ref().map(|c| &c.command),
            Some(NodeCommand::External { .. })
        );
        let network = cluster.as_ref().map(|c| c.network);
        let workload = self
            .table(root, "workload")
            .and_then(|t| self.workload(&t, external, network));
        let client_links = workload
            .as_ref()
            .is_none_or(|w| w.via == ClientRoute::Proxy);
        let ctx = match &cluster {
            Some(c) => StepCtx {
                size: c.size,
                size_known: true,
                has_leader: c.leader.is_some(),
                no_network: c.network == NetworkMode::None,
                client_links,
            },
            // The cluster has errors of its own: still check the steps, but
            // assume the most permissive cluster to avoid knock-on errors.
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
                    no_network: false,
                    client_links,
                }
            }
        };
        let steps = self.steps(root, &ctx, duration);
        let expect = self
            .table(root, "expect")
            .and_then(|t| self.expect(&t, workload.as_ref()));

        Some(Plan {
            name: name?,
            description,
            seed,
            duration: duration?,
            path: path.to_path_buf(),
            hash,
            cluster: cluster?,
            workload: workload?,
            steps: steps?,
            expect: expect?,
        })
    }

    fn cluster(&mut self, t: &Tbl<'_, '_>) -> Option<ClusterSpec> {
        self.unknown_keys(t, CLUSTER_KEYS);
        let mut ok = true;
        let size = match t.get("size") {
            None => Some(3),
            Some(v) => self
                .int_value(v, t.field("size"), 1, MAX_NODES as u64)
                .map(|n| n as usize),
        };
        let host = match self.string(t, "host") {
            None => {
                ok &= t.get("host").is_none();
                "127.0.0.1".to_string()
            }
            Some((h, span)) => {
                if !h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
                    ok = false;
                    self.error(
                        span,
                        t.field("host"),
                        format!(
                            "expected a loopback IP address (127.0.0.0/8 or ::1), found {h:?}; rift only ever uses loopback"
                        ),
                    );
                }
                h
            }
        };
        let separate_peer_port = match t.get("separate_peer_port") {
            None => false,
            Some(_) => match self.bool(t, "separate_peer_port") {
                Some(b) => b,
                None => {
                    ok = false;
                    // Unknown: do not also complain about `{peer_port}`.
                    true
                }
            },
        };

        let command = match self.string(t, "command") {
            Some((c, span)) if c.trim().is_empty() => {
                self.error(
                    span,
                    t.field("command"),
                    "expected a program to run, found \"\"",
                );
                ok = false;
                None
            }
            Some((c, _)) => Some(c),
            None => {
                ok &= t.get("command").is_none();
                None
            }
        };

        let node_command = match command {
            Some(program) => {
                for key in ["bug", "bugs"] {
                    if let Some(v) = t.get(key) {
                        ok = false;
                        self.error(
                            v.span(),
                            t.field(key),
                            "bugs can only be switched on in the bundled sample node; remove `command` or this field",
                        );
                    }
                }
                let args = match t.get("args") {
                    None => Some(Vec::new()),
                    Some(v) => self.args(v, t.field("args"), separate_peer_port),
                };
                args.map(|args| NodeCommand::External { program, args })
            }
            None => {
                if let Some(v) = t.get("args") {
                    ok = false;
                    self.error(
                        v.span(),
                        t.field("args"),
                        "`args` needs `command`; the bundled sample node gets its arguments from rift",
                    );
                }
                self.bugs(t).map(|bugs| NodeCommand::SampleNode { bugs })
            }
        };

        let mut env = BTreeMap::new();
        if let Some(e) = self.table(t, "env") {
            for (key, kspan) in e.keys() {
                let field = e.field(key);
                if key.is_empty() || key.contains('=') || key.contains('\0') {
                    ok = false;
                    self.error(
                        kspan,
                        field.clone(),
                        format!("{key:?} is not a valid environment variable name"),
                    );
                }
                if let Some(v) = e.get(key) {
                    match self.template(v, field, TemplateScope::Node, separate_peer_port) {
                        Some(tpl) => {
                            env.insert(key.to_string(), tpl);
                        }
                        None => ok = false,
                    }
                }
            }
        } else {
            ok = false;
        }

        let network = match self.string(t, "network") {
            None => {
                ok &= t.get("network").is_none();
                NetworkMode::Proxy
            }
            Some((n, span)) => match n.as_str() {
                "proxy" => NetworkMode::Proxy,
                "netns" => NetworkMode::Netns,
                "none" => NetworkMode::None,
                _ => {
                    ok = false;
                    self.error(
                        span,
                        t.field("network"),
                        format!("expected \"proxy\", \"netns\" or \"none\", found {n:?}"),
                    );
                    NetworkMode::Proxy
                }
            },
        };

        let ready = self.table(t, "ready").and_then(|r| self.ready(&r));
        let leader = match t.get("leader") {
            None if node_command
                .as_ref()
                .is_some_and(|c| matches!(c, NodeCommand::SampleNode { .. })) =>
            {
                Some(Some(LeaderQuery {
                    path: "/health".into(),
                    pointer: "/leader".into(),
                }))
            }
            None => Some(None),
            Some(_) => self
                .table(t, "leader")
                .and_then(|l| self.leader(&l))
                .map(Some),
        };
        let peers = self.table(t, "peers").and_then(|p| self.peers(&p));
        let stop_timeout = match t.get("stop_timeout") {
            None => Some(Duration::from_secs(5)),
            Some(_) => self.duration(t, "stop_timeout", true),
        };

        if !ok {
            return None;
        }
        Some(ClusterSpec {
            size: size?,
            host,
            command: node_command?,
            env,
            ready: ready?,
            leader: leader?,
            network,
            peers: peers?,
            separate_peer_port,
            stop_timeout: stop_timeout?,
        })
    }

    fn args(
        &mut self,
        v: &Value<'_>,
        field: String,
        peer_port_ok: bool,
    ) -> Option<Vec<ArgTemplate>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected an array of arguments, found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let f = format!("{field}[{i}]");
            match item.get_ref() {
                DeValue::String(_) => {
                    match self.template(item, f, TemplateScope::Node, peer_port_ok) {
                        Some(tpl) => out.push(ArgTemplate::One(tpl)),
                        None => ok = false,
                    }
                }
                DeValue::Table(t) => {
                    let tbl = Tbl {
                        t: Some(t),
                        span: item.span(),
                        path: f.clone(),
                    };
                    self.unknown_keys(&tbl, &["each_peer"]);
                    let Some(each) = tbl.get("each_peer") else {
                        ok = false;
                        self.error(
                            item.span(),
                            f,
                            "expected { each_peer = [\"--peer\", \"{peer}\"] }",
                        );
                        continue;
                    };
                    let ef = tbl.field("each_peer");
                    let DeValue::Array(parts) = each.get_ref() else {
                        ok = false;
                        self.error(
                            each.span(),
                            ef,
                            format!(
                                "expected an array of argument templates, found {}",
                                describe(each.get_ref())
                            ),
                        );
                        continue;
                    };
                    let mut tpls = Vec::new();
                    for (j, part) in parts.iter().enumerate() {
                        match self.template(
                            part,
                            format!("{ef}[{j}]"),
                            TemplateScope::EachPeer,
                            peer_port_ok,
                        ) {
                            Some(tpl) => tpls.push(tpl),
                            None => ok = false,
                        }
                    }
                    out.push(ArgTemplate::EachPeer(tpls));
                }
                other => {
                    ok = false;
                    self.error(
                        item.span(),
                        f,
                        format!(
                            "expected a string or {{ each_peer = [...] }}, found {}",
                            describe(other)
                        ),
                    );
                }
            }
        }
        ok.then_some(out)
    }

    fn bugs(&mut self, t: &Tbl<'_, '_>) -> Option<Vec<String>> {
        let mut out = Vec::new();
        let mut ok = true;
        if let (Some(_), Some(v)) = (t.get("bug"), t.get("bugs")) {
            self.error(
                v.span(),
                t.field("bugs"),
                "give either `bug` or `bugs`, not both",
            );
            return None;
        }
        let mut check = |this: &mut Self, v: &Value<'_>, field: String| {
            if let Some((name, span)) = this.string_value(v, field.clone()) {
                if !SAMPLE_BUGS.contains(&name.as_str()) {
                    let hint = suggest(&name, SAMPLE_BUGS)
                        .map(|s| format!(", did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("; known bugs: {}", backticked(SAMPLE_BUGS)));
                    this.error(span, field, format!("unknown bug `{name}`{hint}"));
                    ok = false;
                } else if out.contains(&name) {
                    this.error(span, field, format!("bug `{name}` is listed twice"));
                    ok = false;
                } else {
                    out.push(name);
                }
            } else {
                ok = false;
            }
        };
        if let Some(v) = t.get("bug") {
            check(self, v, t.field("bug"));
        }
        if let Some(v) = t.get("bugs") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        check(self, item, format!("{}[{i}]", t.field("bugs")));
                    }
                }
                other => {
                    self.error(
                        v.span(),
                        t.field("bugs"),
                        format!("expected an array of bug names, found {}", describe(other)),
                    );
                    return None;
                }
            }
        }
        ok.then_some(out)
    }

    fn ready(&mut self, r: &Tbl<'_, '_>) -> Option<Readiness> {
        self.unknown_keys(r, &["path", "tcp", "timeout"]);
        let tcp = match r.get("tcp") {
            None => false,
            Some(_) => self.bool(r, "tcp")?,
        };
        let path = match r.get("path") {
            None => None,
            Some(_) => Some(self.http_path(r, "path")?),
        };
        let probe = match (tcp, path) {
            (true, Some(_)) => {
                if let Some(v) = r.get("path") {
                    self.error(
                        v.span(),
                        r.field("path"),
                        "give either `path` (HTTP readiness) or `tcp = true`, not both",
                    );
                }
                return None;
            }
            (true, None) => ReadyProbe::Tcp,
            (false, path) => ReadyProbe::Http {
                path: path.unwrap_or_else(|| "/health".into()),
            },
        };
        let timeout = match r.get("timeout") {
            None => Duration::from_secs(10),
            Some(_) => self.duration(r, "timeout", true)?,
        };
        Some(Readiness { probe, timeout })
    }

    fn http_path(&mut self, t: &Tbl<'_, '_>, key: &str) -> Option<String> {
        let (p, span) = self.string(t, key)?;
        if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                span,
                t.field(key),
                format!("expected an HTTP path starting with `/`, found {p:?}"),
            );
            return None;
        }
        Some(p)
    }

    fn leader(&mut self, l: &Tbl<'_, '_>) -> Option<LeaderQuery> {
        self.unknown_keys(l, &["path", "pointer"]);
        let path = match l.get("path") {
            None => Some("/health".to_string()),
            Some(_) => self.http_path(l, "path"),
        };
        let pointer = match self.string(l, "pointer") {
            None => {
                if l.get("pointer").is_none() {
                    self.error(
                        l.span.clone(),
                        l.field("pointer"),
                        "missing; give the JSON pointer to the leader in the answer, like \"/leader\"",
                    );
                }
                None
            }
            Some((p, span)) => {
                if !p.is_empty() && !p.starts_with('/') {
                    self.error(
                        span,
                        l.field("pointer"),
                        format!("expected a JSON pointer like \"/leader\", found {p:?}"),
                    );
                    None
                } else {
                    Some(p)
                }
            }
        };
        Some(LeaderQuery {
            path: path?,
            pointer: pointer?,
        })
    }

    fn peers(&mut self, p: &Tbl<'_, '_>) -> Option<PeersFormat> {
        self.unknown_keys(p, &["format", "separator", "include_self"]);
        let format = match p.get("format") {
            None => Template::parse("{name}={host}:{port}", TemplateScope::PeersFormat).ok(),
            Some(v) => self.template(v, p.field("format"), TemplateScope::PeersFormat, true),
        };
        let separator = match p.get("separator") {
            None => Some(",".to_string()),
            Some(_) => self.string(p, "separator").map(|s| s.0),
        };
        let include_self = match p.get("include_self") {
            None => Some(false),
            Some(_) => self.bool(p, "include_self"),
        };
        Some(PeersFormat {
            format: format?,
            separator: separator?,
            include_self: include_self?,
        })
    }

    /// `network` is the cluster's, when the cluster parsed.
    fn workload(
        &mut self,
        w: &Tbl<'_, '_>,
        external: bool,
        network: Option<NetworkMode>,
    ) -> Option<WorkloadSpec> {
        self.unknown_keys(w, WORKLOAD_KEYS);
        let kind = match self.string(w, "kind") {
            None if w.get("kind").is_some() => return None,
            None if external => "probe".to_string(),
            None => "kv".to_string(),
            Some((k, span)) => {
                if !["kv", "probe", "ledger"].contains(&k.as_str()) {
                    self.error(
                        span,
                        w.field("kind"),
                        format!("expected \"kv\", \"probe\" or \"ledger\", found {k:?}"),
                    );
                    return None;
                }
                k
            }
        };
        let kind_keys: &[&str] = match kind.as_str() {
            "kv" => &["keys", "mix", "http"],
            "probe" => &["method", "path", "ok_status"],
            _ => &[],
        };
        let mut ok = true;
        for key in ["keys", "mix", "http", "method", "path", "ok_status"] {
            if kind_keys.contains(&key) {
                continue;
            }
            if let Some(v) = w.get(key) {
                ok = false;
                let owner = if key == "keys" || key == "mix" || key == "http" {
                    "kv"
                } else {
                    "probe"
                };
                self.error(
                    v.span(),
                    w.field(key),
                    format!(
                        "`{key}` only applies to kind = \"{owner}\", this workload is \"{kind}\""
                    ),
                );
            }
        }
        let clients = match w.get("clients") {
            None => Some(4),
            Some(_) => self.int(w, "clients", 1, MAX_CLIENTS),
        };
        let rate = match w.get("rate") {
            None => Some(100.0),
            Some(_) => self.number(w, "rate", 0.0, true, MAX_RATE),
        };
        let timeout = match w.get("timeout") {
            None => Some(Duration::from_secs(1)),
            Some(_) => self.duration(w, "timeout", true),
        };
        let via = match self.string(w, "via") {
            None if w.get("via").is_some() => None,
            None => Some(ClientRoute::Direct),
            Some((v, span)) => match v.as_str() {
                "direct" => Some(ClientRoute::Direct),
                "proxy" if network.is_some_and(|n| n != NetworkMode::Proxy) => {
                    self.error(
                        span,
                        w.field("via"),
                        "client proxies are part of the proxy mesh; set [cluster] network = \"proxy\"",
                    );
                    None
                }
                "proxy" => Some(ClientRoute::Proxy),
                _ => {
                    self.error(
                        span,
                        w.field("via"),
                        format!("expected \"direct\" or \"proxy\", found {v:?}"),
                    );
                    None
                }
            },
        };
        let kind = match kind.as_str() {
            "kv" => {
                let keys = match w.get("keys") {
                    None => Some(10),
                    Some(_) => self.int(w, "keys", 1, MAX_KEYS),
                };
                let mix = self.table(w, "mix").and_then(|m| self.mix(&m));
                let http = match w.get("http") {
                    None => Some(None),
                    Some(_) => self
                        .table(w, "http")
                        .and_then(|h| self.http_kv(&h, mix.as_ref()))
                        .map(|h| Some(Box::new(h))),
                };
                WorkloadKind::Kv {
                    keys: keys? as usize,
                    mix: mix?,
                    http: http?,
                }
            }
            "probe" => {
                let method = match self.string(w, "method") {
                    None if w.get("method").is_some() => None,
                    None => Some("GET".to_string()),
                    Some((m, span)) => {
                        const METHODS: &[&str] =
                            &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
                        if METHODS.contains(&m.as_str()) {
                            Some(m)
                        } else {
                            self.error(
                                span,
                                w.field("method"),
                                format!("expected one of {}, found {m:?}", METHODS.join(", ")),
                            );
                            None
                        }
                    }
                };
                let path = match w.get("path") {
                    None => Some("/health".to_string()),
                    Some(_) => self.http_path(w, "path"),
                };
                let ok_status = match w.get("ok_status") {
                    None => Some(vec![200]),
                    Some(v) => self.statuses(v, w.field("ok_status")),
                };
                WorkloadKind::Probe {
                    method: method?,
                    path: path?,
                    ok_status: ok_status?,
                }
            }
            _ => WorkloadKind::Ledger,
        };
        if !ok {
            return None;
        }
        Some(WorkloadSpec {
            kind,
            clients: clients? as usize,
            rate: rate?,
            timeout: timeout?,
            via: via?,
        })
    }

    /// `[workload.http]`: `read` and `write` required, `cas` when the mix
    /// has compare-and-set operations.
    fn http_kv(&mut self, h: &Tbl<'_, '_>, mix: Option<&KvMix>) -> Option<HttpKv> {
        self.unknown_keys(h, &["read", "write", "cas"]);
        let op = |v: &mut Self, name: &str, required: bool| -> Option<Option<HttpOp>> {
            if h.get(name).is_none() {
                if required {
                    v.error(
                        h.span.clone(),
                        h.field(name),
                        format!("the HTTP adapter needs a `{name}` operation"),
                    );
                    return None;
                }
                return Some(None);
            }
            let t = v.table(h, name)?;
            v.http_op(&t, name).map(Some)
        };
        let read = op(self, "read", true);
        let write = op(self, "write", true);
        let needs_cas = mix.is_some_and(|m| m.cas > 0.0);
        let cas = op(self, "cas", needs_cas);
        Some(HttpKv {
            read: read??,
            write: write??,
            cas: cas?,
        })
    }

    fn http_op(&mut self, t: &Tbl<'_, '_>, name: &str) -> Option<HttpOp> {
        self.unknown_keys(t, HTTP_OP_KEYS);
        let method = match self.string(t, "method") {
            None if t.get("method").is_some() => None,
            None => Some(if name == "read" { "GET" } else { "POST" }.to_string()),
            Some((m, span)) => {
                let ok = !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase());
                if !ok {
                    self.error(
                        span,
                        t.field("method"),
                        format!("expected an HTTP method in capitals such as \"PUT\", found {m:?}"),
                    );
                }
                ok.then_some(m)
            }
        };
        let path = match t.get("path") {
            None => {
                self.error(t.span.clone(), t.field("path"), "missing field `path`");
                None
            }
            Some(_) => self
                .http_path(t, "path")
                .and_then(|p| self.http_template(t, "path", p)),
        };
        let body = match self.string(t, "body") {
            None if t.get("body").is_some() => None,
            None => Some(None),
            Some((b, _)) => self.http_template(t, "body", b).map(Some),
        };
        let mut headers = Some(Vec::new());
        if t.get("headers").is_some() {
            match self.table(t, "headers") {
                Some(ht) => {
                    for (k, _) in ht.keys() {
                        let valid = !k.is_empty()
                            && k.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                        let v = self
                            .string(&ht, k)
                            .and_then(|(v, _)| self.http_template(&ht, k, v));
                        if !valid {
                            self.error(
                                ht.get(k).map(|v| v.span()).unwrap_or(ht.span.clone()),
                                ht.field(k),
                                "a header name has only letters, digits, `-` and `_`",
                            );
                        }
                        match (v, headers.as_mut()) {
                            (Some(v), Some(hs)) if valid => hs.push((k.to_ascii_lowercase(), v)),
                            _ => headers = None,
                        }
                    }
                }
                None => headers = None,
            }
        }
        let statuses = |v: &mut Self, key: &str, default: Vec<u16>| match t.get(key) {
            None => Some(default),
            Some(x) => v.statuses(x, t.field(key)),
        };
        let ok = statuses(self, "ok", vec![200]);
        let not_found = statuses(
            self,
            "not_found",
            if name == "read" {
                vec![404]
            } else {
                Vec::new()
            },
        );
        let precondition_failed = statuses(
            self,
            "precondition_failed",
            if name == "cas" {
                vec![409, 412]
            } else {
                Vec::new()
            },
        );
        let refused = statuses(self, "refused", Vec::new());
        if name == "read" {
            if let Some(v) = t.get("refused") {
                self.error(
                    v.span(),
                    t.field("refused"),
                    "`refused` only applies to `write` and `cas`; every failed read is a definite failure",
                );
            }
        }
        if name != "cas" {
            if let Some(v) = t.get("precondition_failed") {
                self.error(
                    v.span(),
                    t.field("precondition_failed"),
                    "`precondition_failed` only applies to the `cas` operation",
                );
            }
        }
        let value = match self.string(t, "value") {
            None if t.get("value").is_some() => None,
            None => Some(ValueAt::Body),
            Some((v, span)) => {
                if v == "body" {
                    Some(ValueAt::Body)
                } else if v.starts_with('/') {
                    Some(ValueAt::Pointer(v))
                } else {
                    self.error(
                        span,
                        t.field("value"),
                        format!("expected \"body\" or a JSON pointer such as \"/data/value\", found {v:?}"),
                    );
                    None
                }
            }
        };
        Some(HttpOp {
            method: method?,
            path: path?,
            headers: headers?,
            body: body?,
            ok: ok?,
            not_found: not_found?,
            precondition_failed: precondition_failed?,
            refused: refused?,
            value: value?,
        })
    }

    /// Checks that a template only names the adapter's placeholders. A `{`
    /// not followed by a lowercase name and `}` is literal text (JSON bodies).
    fn http_template(&mut self, t: &Tbl<'_, '_>, key: &str, text: String) -> Option<String> {
        for name in placeholder_names(&text) {
            if !HTTP_PLACEHOLDERS.contains(&name) {
                let span = t.get(key).map(|v| v.span()).unwrap_or(t.span.clone());
                self.error(
                    span,
                    t.field(key),
                    format!(
                        "unknown placeholder `{{{name}}}`; the adapter knows {}",
                        backticked(HTTP_PLACEHOLDERS)
                    ),
                );
                return None;
            }
        }
        Some(text)
    }

    fn statuses(&mut self, v: &Value<'_>, field: String) -> Option<Vec<u16>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected an array of HTTP status codes, found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.error(v.span(), field, "expected at least one HTTP status code");
            return None;
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.int_value(item, format!("{field}[{i}]"), 100, 599)? as u16);
        }
        Some(out)
    }

    fn mix(&mut self, m: &Tbl<'_, '_>) -> Option<KvMix> {
        if m.t.is_none() {
            return Some(KvMix {
                read: 0.5,
                write: 0.4,
                cas: 0.1,
            });
        }
        self.unknown_keys(m, &["read", "write", "cas"]);
        let mut weights = [0.0; 3];
        for (i, key) in ["read", "write", "cas"].into_iter().enumerate() {
            if m.get(key).is_some() {
                weights[i] = self.number(m, key, 0.0, false, 1e9)?;
            }
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            self.error(
                m.span.clone(),
                m.path.clone(),
                "the weights are all zero; give at least one of read, write, cas a positive weight",
            );
            return None;
        }
        Some(KvMix {
            read: weights[0] / total,
            write: weights[1] / total,
            cas: weights[2] / total,
        })
    }

    fn steps(
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

    fn step(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        duration: Option<Duration>,
    ) -> Option<(Duration, Action)> {
        let fault = match self.string(t, "fault") {
            Some((f, span)) if FAULTS.contains(&f.as_str()) => Some((f, span)),
            Some((f, span)) => {
                let hint = suggest(&f, FAULTS)
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_else(|| format!("; expected one of {}", FAULTS.join(", ")));
                self.error(span, t.field("fault"), format!("unknown fault {f:?}{hint}"));
                None
            }
            None => {
                if t.get("fault").is_none() {
                    self.error(
                        t.span.clone(),
                        t.field("fault"),
                        format!("missing; a step needs a fault: {}", FAULTS.join(", ")),
                    );
                }
                None
            }
        };
        // Unknown keys and keys of another fault kind, said precisely.
        let allowed = step_keys(fault.as_ref().map_or("", |f| f.0.as_str()));
        for (key, span) in t.keys() {
            if allowed.contains(&key) {
                continue;
            }
            let msg = match &fault {
                Some((f, _)) if STEP_KEYS.contains(&key) => format!(
                    "`{key}` does not apply to a {f} step; a {f} step takes {}",
                    backticked(allowed)
                ),
                _ => unknown_field(key, allowed),
            };
            self.error(span, t.field(key), msg);
        }

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
                        return None;
                    }
                }
                at
            }
        };
        let (fault, fault_span) = fault?;
        if ctx.no_network && matches!(fault.as_str(), "partition" | "heal" | "degrade" | "restore")
        {
            self.error(
                fault_span,
                t.field("fault"),
                format!("a {fault} step needs network faults, but [cluster] network = \"none\""),
            );
            return None;
        }
        let size = ctx.size;
        let has_leader = ctx.has_leader;
        let for_ = match t.get("for") {
            None => Some(None),
            Some(_) => self.duration(t, "for", true).map(Some),
        };
        let action = match fault.as_str() {
            "kill" => {
                let target = self.target(t, size, has_leader);
                let signal = match t.get("signal") {
                    None => Some(libc::SIGKILL),
                    Some(v) => self.signal(v, t.field("signal")),
                };
                let restart_after = match t.get("restart_after") {
                    None => Some(None),
                    Some(_) => self.duration(t, "restart_after", true).map(Some),
                };
                Action::Kill {
                    target: target?,
                    signal: signal?,
                    restart_after: restart_after?,
                }
            }
            "restart" => Action::Restart {
                target: self.target(t, size, has_leader)?,
            },
            "pause" => {
                let target = self.target(t, size, has_leader);
                Action::Pause {
                    target: target?,
                    for_: for_?,
                }
            }
            "resume" => Action::Resume {
                target: self.target(t, size, has_leader)?,
            },
            "partition" => {
                let topology = self.topology(t, ctx);
                let oneway = match t.get("oneway") {
                    None => Some(false),
                    Some(_) => self.bool(t, "oneway"),
                };
                Action::Partition {
                    topology: topology?,
                    oneway: oneway?,
                    for_: for_?,
                }
            }
            "heal" => Action::Heal,
            "degrade" => {
                let links = self.links(t, ctx);
                let degradation = self.degradation(t);
                Action::Degrade {
                    links: links?,
                    degradation: degradation?,
                    for_: for_?,
                }
            }
            _ => Action::Restore {
                links: self.links(t, ctx)?,
            },
        };
        Some((at?, action))
    }

    fn signal(&mut self, v: &Value<'_>, field: String) -> Option<i32> {
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
    fn target(&mut self, t: &Tbl<'_, '_>, size: usize, has_leader: bool) -> Option<Target> {
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

    fn target_value(
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

    fn needs_leader(
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
                "choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command",
            );
            return None;
        }
        Some(())
    }

    /// Node names, each checked where it is written.
    fn node_list(&mut self, items: &[Value<'_>], field: &str, size: usize) -> Option<Vec<NodeId>> {
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

    fn topology(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Topology> {
        let (size, has_leader) = (ctx.size, ctx.has_leader);
        let field = t.field("topology");
        let Some(v) = t.get("topology") else {
            self.error(
                t.span.clone(),
                field,
                "missing; a partition step needs a topology: isolate(target), majority-minority, halves, bridge, ring, or groups like [[\"n0\"], [\"n1\", \"n2\"]]",
            );
            return None;
        };
        let result = match v.get_ref() {
            DeValue::String(s) => parse_topology(s, size),
            DeValue::Array(groups) => {
                let mut resolved = Vec::new();
                let mut ok = true;
                for (g, group) in groups.iter().enumerate() {
                    let gf = format!("{field}[{g}]");
                    match group.get_ref() {
                        DeValue::Array(names) => match self.node_list(names, &gf, size) {
                            Some(ids) => resolved.push(ids),
                            None => ok = false,
                        },
                        other => {
                            ok = false;
                            self.error(
                                group.span(),
                                gf,
                                format!(
                                    "expected a group of node names like [\"n0\", \"n1\"], found {}",
                                    describe(other)
                                ),
                            );
                        }
                    }
                }
                if !ok {
                    return None;
                }
                groups_topology(resolved, size, ctx.size_known)
            }
            other => Err(format!(
                "expected a topology name or groups like [[\"n0\"], [\"n1\", \"n2\"]], found {}",
                describe(other)
            )),
        };
        match result {
            Ok(topology) => {
                if let Topology::Isolate(target) = &topology {
                    self.needs_leader(target, v.span(), field, has_leader)?;
                }
                Some(topology)
            }
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }

    /// `links`: "all" (the default), a target, directed pairs, or
    /// `{ clients = target }` (only those nodes' client links).
    fn links(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<LinkSelector> {
        let (size, has_leader) = (ctx.size, ctx.has_leader);
        let field = t.field("links");
        let Some(v) = t.get("links") else {
            return Some(LinkSelector::All);
        };
        match v.get_ref() {
            DeValue::String(s) if s.trim() == "all" => Some(LinkSelector::All),
            DeValue::Table(tbl) => {
                let unknown: Vec<&str> = tbl
                    .iter()
                    .map(|(k, _)| k.get_ref().as_ref())
                    .filter(|k| *k != "clients")
                    .collect();
                let clients = tbl.get("clients");
                match (unknown.first(), clients) {
                    (Some(k), _) => {
                        self.error(
                            v.span(),
                            field,
                            format!(
                                "unknown field `{k}`; the table form is {{ clients = target }}"
                            ),
                        );
                        None
                    }
                    (None, None) => {
                        self.error(v.span(), field, "expected { clients = target }");
                        None
                    }
                    (None, Some(c)) if !ctx.client_links => {
                        self.error(
                            c.span(),
                            format!("{field}.clients"),
                            "client links exist only with [workload] via = \"proxy\"",
                        );
                        None
                    }
                    (None, Some(c)) => self
                        .target_value(c, format!("{field}.clients"), size, has_leader)
                        .map(LinkSelector::Clients),
                }
            }
            DeValue::Array(items)
                if items
                    .first()
                    .is_some_and(|i| matches!(i.get_ref(), DeValue::Array(_))) =>
            {
                let mut pairs = Vec::new();
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    let pf = format!("{field}[{i}]");
                    let pair = match item.get_ref() {
                        DeValue::Array(names) if names.len() == 2 => {
                            self.node_list(names, &pf, size)
                        }
                        other => {
                            self.error(
                                item.span(),
                                pf.clone(),
                                format!(
                                    "expected a directed link like [\"n0\", \"n1\"], found {}",
                                    match other {
                                        DeValue::Array(a) => format!("{} names", a.len()),
                                        o => describe(o),
                                    }
                                ),
                            );
                            None
                        }
                    };
                    match pair.as_deref() {
                        Some(&[from, to]) if from == to => {
                            ok = false;
                            self.error(
                                item.span(),
                                pf,
                                format!("a link joins two different nodes, found {from} to itself"),
                            );
                        }
                        Some(&[from, to]) => {
                            if pairs.contains(&(from, to)) {
                                ok = false;
                                self.error(
                                    item.span(),
                                    pf,
                                    format!("link {from} -> {to} is listed twice"),
                                );
                            } else {
                                pairs.push((from, to));
                            }
                        }
                        _ => ok = false,
                    }
                }
                ok.then_some(LinkSelector::Links(pairs))
            }
            _ => self
                .target_value(v, field, size, has_leader)
                .map(LinkSelector::Nodes),
        }
    }

    fn degradation(&mut self, t: &Tbl<'_, '_>) -> Option<Degradation> {
        let mut ok = true;
        let mut opt_duration = |this: &mut Self, key: &str| match t.get(key) {
            None => None,
            Some(_) => {
                let d = this.duration(t, key, false);
                ok &= d.is_some();
                d
            }
        };
        let latency = opt_duration(self, "latency");
        let jitter = opt_duration(self, "jitter");
        let bandwidth = match t.get("bandwidth") {
            None => None,
            Some(v) => {
                let parsed = match v.get_ref() {
                    DeValue::String(s) => parse_rate(s),
                    DeValue::Integer(_) => int_value(v.get_ref())
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| {
                            format!(
                                "expected bytes per second or a rate like \"1MB/s\", found {}",
                                describe(v.get_ref())
                            )
                        }),
                    other => Err(format!(
                        "expected bytes per second or a rate like \"1MB/s\", found {}",
                        describe(other)
                    )),
                };
                match parsed {
                    Ok(0) => {
                        ok = false;
                        self.error(
                            v.span(),
                            t.field("bandwidth"),
                            "expected a bandwidth greater than zero (use a partition to cut links)",
                        );
                        None
                    }
                    Ok(n) => Some(n),
                    Err(msg) => {
                        ok = false;
                        self.error(v.span(), t.field("bandwidth"), msg);
                        None
                    }
                }
            }
        };
        let mut prob = |this: &mut Self, key: &str| match t.get(key) {
            None => None,
            Some(_) => {
                let p = this.number(t, key, 0.0, false, 1.0);
                ok &= p.is_some();
                p
            }
        };
        let reset = prob(self, "reset");
        let stall = prob(self, "stall");
        if !ok {
            return None;
        }
        if let (Some(v), None) = (t.get("jitter"), latency) {
            self.error(
                v.span(),
                t.field("jitter"),
                "`jitter` varies `latency`; give `latency` too",
            );
            return None;
        }
        let d = Degradation {
            latency,
            jitter,
            bandwidth,
            reset,
            stall,
        };
        if d == Degradation::default() {
            self.error(
                t.span.clone(),
                t.path.clone(),
                "a degrade step needs at least one of `latency`, `jitter`, `bandwidth`, `reset`, `stall`",
            );
            return None;
        }
        Some(d)
    }

    fn expect(&mut self, e: &Tbl<'_, '_>, workload: Option<&WorkloadSpec>) -> Option<Expectations> {
        self.unknown_keys(e, EXPECT_KEYS);
        let mut ok = true;
        let mut x = Expectations::default();
        macro_rules! opt {
            ($key:literal, $read:expr) => {
                match e.get($key) {
                    None => None,
                    Some(_) => {
                        let r = $read;
                        ok &= r.is_some();
                        r
                    }
                }
            };
        }
        x.availability = opt!(
            "availability",
            self.number(e, "availability", 0.0, false, 1.0)
        );
        x.p50_latency = opt!("p50_latency", self.duration(e, "p50_latency", true));
        x.p99_latency = opt!("p99_latency", self.duration(e, "p99_latency", true));
        x.recovery = opt!("recovery", self.duration(e, "recovery", true));
        if let Some(b) = opt!("no_unexpected_exits", self.bool(e, "no_unexpected_exits")) {
            x.no_unexpected_exits = b;
        }
        x.linearizable = opt!("linearizable", self.bool(e, "linearizable"));
        x.lost_writes = opt!("lost_writes", self.int(e, "lost_writes", 0, u64::MAX));
        x.ledger_agreement = opt!("ledger_agreement", self.bool(e, "ledger_agreement"));
        if let Some(v) = e.get("finds") {
            match v.get_ref() {
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let f = format!("{}[{i}]", e.field("finds"));
                        let Some((name, span)) = self.string_value(item, f.clone()) else {
                            ok = false;
                            continue;
                        };
                        let problem = if !CHECKERS.contains(&name.as_str()) {
                            let hint = suggest(&name, CHECKERS)
                                .map(|s| format!(", did you mean `{s}`?"))
                                .unwrap_or_else(|| format!("; checkers: {}", backticked(CHECKERS)));
                            Some(format!("unknown checker `{name}`{hint}"))
                        } else if x.finds.contains(&name) {
                            Some(format!("checker `{name}` is listed twice"))
                        } else if expected_to_hold(&x, &name) {
                            Some(format!(
                                "`{name}` cannot both be expected to hold and to find a violation"
                            ))
                        } else {
                            None
                        };
                        match problem {
                            Some(msg) => {
                                ok = false;
                                self.error(span, f, msg);
                            }
                            None => x.finds.push(name),
                        }
                    }
                }
                other => {
                    ok = false;
                    self.error(
                        v.span(),
                        e.field("finds"),
                        format!(
                            "expected an array of checker names, found {}",
                            describe(other)
                        ),
                    );
                }
            }
        }
        // The history checkers need the kv workload's reads and writes.
        let kv = matches!(workload.map(|w| &w.kind), Some(WorkloadKind::Kv { .. }));
        if workload.is_some() && !kv {
            let uses_linearizable =
                x.linearizable == Some(true) || x.finds.iter().any(|f| f == "linearizable");
            if uses_linearizable {
                let v = e.get("linearizable").or_else(|| e.get("finds"));
                if let Some(v) = v {
                    ok = false;
                    self.error(
                        v.span(),
                        e.field(if e.get("linearizable").is_some() {
                            "linearizable"
                        } else {
                            "finds"
                        }),
                        "the linearizability checker needs workload kind = \"kv\"",
                    );
                }
            }
        }
        // lost_writes compares key-value writes with final reads; ledger
        // transactions are covered by ledger_agreement (which reads the chain
        // under any workload: the sample node's kv operations are entries too).
        for (checker, needs, needed_kind) in [("lost_writes", kv, "kv")] {
            if workload.is_none() || needs {
                continue;
            }
            let declared = e.get(checker).filter(|_| expected_to_hold(&x, checker));
            let found = x
                .finds
                .iter()
                .any(|f| f == checker)
                .then(|| e.get("finds"))
                .flatten();
            if let Some(v) = declared.or(found) {
                ok = false;
                let hint = if checker == "lost_writes" {
                    "; for the ledger, `ledger_agreement` checks every acknowledged transaction"
                } else {
                    ""
                };
                self.error(
                    v.span(),
                    e.field(if declared.is_some() { checker } else { "finds" }),
                    format!(
                        "the `{checker}` checker needs workload kind = \"{needed_kind}\"{hint}"
                    ),
                );
            }
        }
        ok.then_some(x)
    }
}

/// Every `{name}` (lowercase letters and `_`) in an adapter template.
pub(crate) fn placeholder_names(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('{') {
        let after = &text[i + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if len > 0 && after[len..].starts_with('}') {
            out.push(&after[..len]);
        }
    }
    out
}

fn expected_to_hold(x: &Expectations, checker: &str) -> bool {
    match checker {
        "linearizable" => x.linearizable == Some(true),
        "lost_writes" => x.lost_writes.is_some(),
        "ledger_agreement" => x.ledger_agreement == Some(true),
        "availability" => x.availability.is_some(),
        _ => false,
    }
}

fn unknown_field(key: &str, allowed: &[&str]) -> String {
    match suggest(key, allowed) {
        Some(s) => format!("unknown field `{key}`, did you mean `{s}`?"),
        None => format!(
            "unknown field `{key}`; expected one of {}",
            backticked(allowed)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const HEAD: &str = "name = \"t\"\nduration = \"30s\"\n";

    fn ok(body: &str) -> Plan {
        match parse(&format!("{HEAD}{body}"), Path::new("p.toml")) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Every error message, without the position, one per line.
    fn err(body: &str) -> String {
        match parse(&format!("{HEAD}{body}"), Path::new("p.toml")) {
            Ok(p) => panic!("should fail: {p:#?}"),
            Err(e) => e
                .errors()
                .iter()
                .map(|e| match e {
                    PlanError::Invalid { field, message, .. } => format!("{field}: {message}"),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn integers_honour_toml_notation() {
        assert_eq!(ok("seed = 0x10\n[cluster]\nsize = 1_0\n").seed, Some(16));
        assert_eq!(ok("[cluster]\nsize = 1_0\n").cluster.size, 10);
        assert_eq!(
            err("seed = -1\n"),
            "seed: expected a whole number of at least 0, found -1"
        );
    }

    #[test]
    fn sample_node_bugs() {
        assert_eq!(
            ok("[cluster]\nbug = \"stale-reads\"\n").cluster.command,
            NodeCommand::SampleNode {
                bugs: vec!["stale-reads".into()]
            }
        );
        assert_eq!(
            ok("[cluster]\nbugs = [\"unsafe-vote\", \"ack-before-commit\"]\n")
                .cluster
                .command,
            NodeCommand::SampleNode {
                bugs: vec!["unsafe-vote".into(), "ack-before-commit".into()]
            }
        );
        assert_eq!(
            err("[cluster]\ncommand = \"/bin/x\"\nbug = \"stale-reads\"\n"),
            "cluster.bug: bugs can only be switched on in the bundled sample node; remove `command` or this field"
        );
        assert_eq!(
            err("[cluster]\nbug = \"x\"\nbugs = []\n"),
            "cluster.bugs: give either `bug` or `bugs`, not both"
        );
        assert_eq!(
            err("[cluster]\nargs = [\"--x\"]\n"),
            "cluster.args: `args` needs `command`; the bundled sample node gets its arguments from rift"
        );
    }

    #[test]
    fn peer_port_needs_a_separate_peer_port() {
        assert_eq!(
            err("[cluster]\ncommand = \"/bin/x\"\nargs = [\"{peer_port}\"]\n"),
            "cluster.args[0]: `{peer_port}` needs `separate_peer_port = true` in [cluster]"
        );
        assert_eq!(
            err("[cluster]\nenv = { A = \"{peer}\" }\n"),
            "cluster.env.A: `{peer}` is only valid inside { each_peer = [...] }; valid here: {id}, {name}, {host}, {port}, {peer_port}, {data_dir}, {peers}"
        );
    }

    #[test]
    fn workload_fields_belong_to_their_kind() {
        assert_eq!(
            err("[workload]\nkind = \"kv\"\nmethod = \"GET\"\n"),
            "workload.method: `method` only applies to kind = \"probe\", this workload is \"kv\""
        );
        assert_eq!(
            err("[workload]\nmix = { read = 0, write = 0 }\n"),
            "workload.mix: the weights are all zero; give at least one of read, write, cas a positive weight"
        );
        assert_eq!(
            err("[workload]\nrate = 0\n"),
            "workload.rate: expected a number greater than 0 and at most 100000, found 0"
        );
        let p = ok("[workload]\nkind = \"probe\"\nmethod = \"HEAD\"\npath = \"/x\"\nok_status = [200, 204]\n");
        assert_eq!(
            p.workload.kind,
            WorkloadKind::Probe {
                method: "HEAD".into(),
                path: "/x".into(),
                ok_status: vec![200, 204]
            }
        );
        assert_eq!(
            ok("[workload]\nkind = \"ledger\"\n").workload.kind,
            WorkloadKind::Ledger
        );
    }

    #[test]
    fn http_adapter_blocks() {
        let p = ok(r#"[workload]
kind = "kv"
mix = { read = 1, write = 1 }
[workload.http.read]
path = "/items/{key}"
value = "/data/value"
headers = { x-token = "t-{key}" }
[workload.http.write]
method = "PUT"
path = "/items/{key}"
body = '{"value": {value_json}}'
ok = [200, 201]
"#);
        let WorkloadKind::Kv { http: Some(h), .. } = p.workload.kind else {
            panic!("expected an adapter");
        };
        assert_eq!(h.read.method, "GET");
        assert_eq!(h.read.not_found, vec![404]);
        assert_eq!(h.read.value, ValueAt::Pointer("/data/value".into()));
        assert_eq!(
            h.read.headers,
            vec![("x-token".to_string(), "t-{key}".to_string())]
        );
        assert_eq!(h.write.ok, vec![200, 201]);
        assert_eq!(h.write.value, ValueAt::Body);
        assert_eq!(h.cas, None);
        assert_eq!(
            err("[workload]\n[workload.http.read]\npath = \"/x/{key}\"\n[workload.http.write]\npath = \"/x/{key}\"\n"),
            "workload.http.cas: the HTTP adapter needs a `cas` operation"
        );
        assert_eq!(
            err("[workload]\nmix = { read = 1 }\n[workload.http.read]\npath = \"/x/{id}\"\n[workload.http.write]\npath = \"/x\"\n"),
            "workload.http.read.path: unknown placeholder `{id}`; the adapter knows `key`, `value`, `expect`, `value_json`, `expect_json`"
        );
        assert_eq!(
            err("[workload]\nmix = { read = 1 }\n[workload.http.read]\npath = \"/x\"\nvalue = \"data\"\n[workload.http.write]\npath = \"/x\"\n"),
            "workload.http.read.value: expected \"body\" or a JSON pointer such as \"/data/value\", found \"data\""
        );
        assert_eq!(
            err("[workload]\nkind = \"ledger\"\n[expect]\nlost_writes = 0\n"),
            "expect.lost_writes: the `lost_writes` checker needs workload kind = \"kv\"; for the ledger, `ledger_agreement` checks every acknowledged transaction"
        );
    }

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
            "step[0].target: choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command"
        );
        assert_eq!(
            err(&format!("{ext}[[step]]\nat = \"1s\"\nfault = \"partition\"\ntopology = \"isolate(followers)\"\n")),
            "step[0].topology: choosing by leader needs [cluster] leader = { path = \"...\", pointer = \"...\" } for an external command"
        );
        let p = ok(&format!(
            "{ext}leader = {{ pointer = \"/l\" }}\n[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"leader\"\nsignal = 15\n"
        ));
        assert_eq!(
            p.steps[0].action,
            Action::Kill {
                target: Target::Leader,
                signal: 15,
                restart_after: None
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
    fn client_links_are_selected_by_table_and_need_via_proxy() {
        let step = "[[step]]\nat = \"1s\"\nfault = \"degrade\"\nlatency = \"5ms\"\nlinks = { clients = \"n1\" }\n";
        let p = ok(&format!("[workload]\nvia = \"proxy\"\n{step}"));
        assert_eq!(p.workload.via, ClientRoute::Proxy);
        assert!(matches!(
            &p.steps[0].action,
            Action::Degrade { links: LinkSelector::Clients(Target::Nodes(n)), .. } if n == &[NodeId(1)]
        ));
        assert_eq!(
            err(step),
            "step[0].links.clients: client links exist only with [workload] via = \"proxy\""
        );
        assert_eq!(
            err(&format!(
                "[workload]\nvia = \"proxy\"\n{}",
                step.replace("clients =", "client =")
            )),
            "step[0].links: unknown field `client`; the table form is { clients = target }"
        );
        assert_eq!(
            err("[workload]\nvia = \"sideways\"\n"),
            "workload.via: expected \"direct\" or \"proxy\", found \"sideways\""
        );
    }

    #[test]
    fn expectations() {
        let p = ok("[expect]\nfinds = [\"linearizable\", \"lost_writes\"]\navailability = 1\n");
        assert_eq!(p.expect.finds, vec!["linearizable", "lost_writes"]);
        assert_eq!(p.expect.availability, Some(1.0));
        assert_eq!(
            err("[expect]\nlinearizable = true\nfinds = [\"linearizable\"]\n"),
            "expect.finds[0]: `linearizable` cannot both be expected to hold and to find a violation"
        );
        assert_eq!(
            err("[expect]\nfinds = [\"linearisable\"]\n"),
            "expect.finds[0]: unknown checker `linearisable`, did you mean `linearizable`?"
        );
        assert_eq!(
            err("[workload]\nkind = \"ledger\"\n[expect]\nlinearizable = true\n"),
            "expect.linearizable: the linearizability checker needs workload kind = \"kv\""
        );
        assert_eq!(
            err("[expect]\nrecovery = 5\n"),
            "expect.recovery: expected a duration like \"5s\" or \"250ms\", found 5"
        );
        assert_eq!(
            err("[expect]\nzzz = 1\n"),
            "expect.zzz: unknown field `zzz`; expected one of `availability`, `p50_latency`, `p99_latency`, `recovery`, `no_unexpected_exits`, `linearizable`, `lost_writes`, `ledger_agreement`, `finds`"
        );
    }

    #[test]
    fn readiness_forms() {
        assert_eq!(
            ok("[cluster]\nready = { tcp = true }\n")
                .cluster
                .ready
                .probe,
            ReadyProbe::Tcp
        );
        assert_eq!(
            ok("[cluster]\nready = { path = \"/ready\", timeout = \"3s\" }\n")
                .cluster
                .ready,
            Readiness {
                probe: ReadyProbe::Http {
                    path: "/ready".into()
                },
                timeout: Duration::from_secs(3)
            }
        );
        assert_eq!(
            err("[cluster]\nready = { tcp = true, path = \"/x\" }\n"),
            "cluster.ready.path: give either `path` (HTTP readiness) or `tcp = true`, not both"
        );
        assert_eq!(
            err("[cluster]\nready = \"/health\"\n"),
            "cluster.ready: expected a table, found \"/health\""
        );
    }
}
