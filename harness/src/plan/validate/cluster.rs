//! The `[cluster]` section: size, loopback host, the node command (an
//! external program with templated `args`, or the bundled sample node with
//! its `bug`s), environment, network mode (which `--network` may replace),
//! packet capture, readiness, leader query and peers format, and the node
//! backend (`backend`, with `image` or `binary`) with what containers
//! cannot have. It checks templates against their scope; it never renders
//! them nor starts anything (a remote engine is told by `DOCKER_HOST`
//! alone).

use super::primitives::{backticked, describe, suggest, Tbl, Value};
use super::{Net, Validator, MAX_NODES};
use crate::plan::template::TemplateScope;
use crate::plan::types::*;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use toml::de::DeValue;

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
    "capture",
    "capture_limit",
    "monotonic_offset",
    "disk",
    "backend",
    "image",
    "binary",
];

impl Validator<'_> {
    pub(super) fn cluster(&mut self, t: &Tbl<'_, '_>) -> Option<ClusterSpec> {
        self.unknown_keys(t, CLUSTER_KEYS);
        let mut ok = true;
        let size = match t.get("size") {
            None => Some(3),
            Some(v) => self
                .int_value(v, t.field("size"), 1, MAX_NODES as u64)
                .map(|n| n as usize),
        };
        let host = self.host(t);
        ok &= host.is_some();
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
        let node_command = self.node_command(t, separate_peer_port, &mut ok);
        let env = self.env(t, separate_peer_port, &mut ok);
        // The file's value is checked even when `--network` replaces it.
        let remote = self.remote_engine();
        let net = match (self.network_override, self.network(t)) {
            (Some(mode), _) => Some(Net {
                mode,
                overridden: true,
                remote,
            }),
            (None, Some(mode)) => Some(Net {
                mode,
                overridden: false,
                remote,
            }),
            (None, None) => None,
        };
        ok &= net.is_some();
        if let Some(n) = net {
            ok &= self.docker_cluster(t, n, node_command.as_ref());
        }
        let capture = self.capture(t, net, &mut ok);
        let ready = self.table(t, "ready").and_then(|r| self.ready(&r));
        let leader = match t.get("leader") {
            None if node_command
                .as_ref()
                .is_some_and(|c| matches!(c, NodeCommand::SampleNode { .. })) =>
            {
                Some(Some(crate::adapter::sample_node::leader_query()))
            }
            None => Some(None),
            Some(_) => self
                .table(t, "leader")
                .and_then(|l| self.leader(&l))
                .map(Some),
        };
        let peers = self.table(t, "peers").and_then(|p| self.peers(&p));
        let monotonic = self.monotonic_offsets(t, size);
        ok &= monotonic.is_some();
        let stop_timeout = match t.get("stop_timeout") {
            None => Some(Duration::from_secs(5)),
            Some(_) => self.duration(t, "stop_timeout", true),
        };

        if !ok {
            return None;
        }
        Some(ClusterSpec {
            size: size?,
            host: host?,
            command: node_command?,
            env,
            ready: ready?,
            leader: leader?,
            network: net?.mode,
            peers: peers?,
            separate_peer_port,
            stop_timeout: stop_timeout?,
            capture,
            clock: ClockSetup {
                faketime: false,
                monotonic: monotonic?,
            },
        })
    }

    /// `disk`: "plain" (the default) or "faulty" (each node's data dir on
    /// a faulty disk). `None` after an error. Read from the raw `[cluster]`
    /// table, so an error elsewhere in the section does not hide it.
    pub(super) fn cluster_disk(&mut self, t: &Tbl<'_, '_>) -> Option<DiskMode> {
        match self.string(t, "disk") {
            None => t.get("disk").is_none().then_some(DiskMode::Plain),
            Some((n, span)) => {
                let mode = DiskMode::from_name(&n);
                if mode.is_none() {
                    self.error(
                        span,
                        t.field("disk"),
                        format!("expected \"plain\" (a directory, the default) or \"faulty\" (the faulty disk: FUSE, root), found {n:?}"),
                    );
                }
                mode
            }
        }
    }

    /// `backend`: "process" (the default) or "docker", which needs exactly
    /// one of `image` (an image the engine has) and `binary` (a path,
    /// relative to the plan file: rift builds the image). `None` after an
    /// error. Read before the rest of the section, whose defaults and
    /// limits depend on it.
    pub(super) fn cluster_backend(
        &mut self,
        t: &Tbl<'_, '_>,
        plan_path: &std::path::Path,
    ) -> Option<Backend> {
        let (name, span) = match self.string(t, "backend") {
            Some(found) => found,
            None if t.get("backend").is_some() => return None,
            None => ("process".to_string(), t.span.clone()),
        };
        let image = self.string(t, "image");
        let binary = self.string(t, "binary");
        match name.as_str() {
            "process" => {
                let mut ok = true;
                for (key, given) in [("image", &image), ("binary", &binary)] {
                    if let Some((_, s)) = given {
                        ok = false;
                        self.error(
                            s.clone(),
                            t.field(key),
                            format!("`{key}` is for containers; give backend = \"docker\" too"),
                        );
                    }
                }
                ok.then_some(Backend::Process)
            }
            "docker" => match (image, binary) {
                (Some(_), Some((_, s))) => {
                    self.error(
                        s,
                        t.field("binary"),
                        "give either `image` (an image the engine has) or `binary` (rift builds the image), not both",
                    );
                    None
                }
                (None, None) => {
                    let missing = t.get("image").is_none() && t.get("binary").is_none();
                    if missing {
                        self.error(
                            span,
                            t.field("backend"),
                            "backend = \"docker\" needs `image = \"name:tag\"` (an image the engine has) or `binary = \"path\"` (rift builds a minimal image of it)",
                        );
                    }
                    None
                }
                (Some((i, s)), None) if i.trim().is_empty() => {
                    self.error(
                        s,
                        t.field("image"),
                        "expected an image reference, found \"\"",
                    );
                    None
                }
                (None, Some((b, s))) if b.trim().is_empty() => {
                    self.error(
                        s,
                        t.field("binary"),
                        "expected a path to a program, found \"\"",
                    );
                    None
                }
                (Some((i, _)), None) => Some(Backend::Docker(DockerImage::Image(i))),
                (None, Some((b, _))) => {
                    let b = std::path::PathBuf::from(b);
                    let dir = plan_path.parent().unwrap_or(std::path::Path::new(""));
                    Some(Backend::Docker(DockerImage::Binary(if b.is_absolute() {
                        b
                    } else {
                        dir.join(b)
                    })))
                }
            },
            other => {
                self.error(
                    span,
                    t.field("backend"),
                    format!("expected \"process\" (the default) or \"docker\", found {other:?}"),
                );
                None
            }
        }
    }

    /// What containers cannot have, said where the plan asks for it: the
    /// proxy mesh (containers have no network to reach rift's loopback),
    /// the wire under a remote engine, time namespaces, and an image
    /// without a program to run. False after an error.
    fn docker_cluster(&mut self, t: &Tbl<'_, '_>, net: Net, command: Option<&NodeCommand>) -> bool {
        let Some(Backend::Docker(image)) = self.backend.clone() else {
            return true;
        };
        let mut ok = true;
        let at = |this: &Self, key: &str| {
            t.get(key)
                .map(|v| v.span())
                .filter(|_| !(key == "network" && this.network_override.is_some()))
                .or_else(|| t.get("backend").map(|v| v.span()))
                .unwrap_or(t.span.clone())
        };
        match net.mode {
            NetworkMode::Proxy => {
                ok = false;
                self.error(
                    at(self, "network"),
                    t.field("network"),
                    format!(
                        "containers have no network of their own to reach rift's proxies on loopback; with backend = \"docker\" use network = \"netns\" (the wire, the default) or \"none\" (the run's bridge network, no network faults), not {}",
                        net.said()
                    ),
                );
            }
            NetworkMode::Netns if net.remote => {
                ok = false;
                self.error(
                    at(self, "network"),
                    t.field("network"),
                    format!(
                        "{}; rift cannot put its wire into the containers (use network = \"none\")",
                        super::remote_engine_said()
                    ),
                );
            }
            NetworkMode::Netns | NetworkMode::None => {}
        }
        if let Some(v) = t.get("monotonic_offset") {
            ok = false;
            self.error(
                v.span(),
                t.field("monotonic_offset"),
                "time namespaces are not available to containers (rift enters one between fork and exec, and the engine starts a container's processes); use backend = \"process\"",
            );
        }
        if let (DockerImage::Image(_), Some(NodeCommand::SampleNode { .. })) = (&image, command) {
            ok = false;
            self.error(
                at(self, "image"),
                t.field("image"),
                "with `image`, give `command`: the program inside the image to run (the sample node comes from `binary = \"path/to/sample-node\"`)",
            );
        }
        ok
    }

    /// `disk = "faulty"` with containers: not yet (the FUSE mount would
    /// have to be bind-mounted into each container).
    pub(super) fn docker_disk(&mut self, t: &Tbl<'_, '_>) {
        if !matches!(self.backend, Some(Backend::Docker(_))) {
            return;
        }
        if let Some(v) = t.get("disk") {
            self.error(
                v.span(),
                t.field("disk"),
                "disk = \"faulty\" is not available to containers yet: rift's FUSE mount would have to be bind-mounted into each container; use disk = \"plain\" or backend = \"process\"",
            );
        }
    }

    /// `monotonic_offset = { n1 = "+1h", n2 = "-30s" }`: a signed offset of
    /// CLOCK_MONOTONIC (and BOOTTIME) per node name; empty when absent.
    fn monotonic_offsets(
        &mut self,
        t: &Tbl<'_, '_>,
        size: Option<usize>,
    ) -> Option<BTreeMap<crate::NodeId, ClockOffset>> {
        let mut out = BTreeMap::new();
        if t.get("monotonic_offset").is_none() {
            return Some(out);
        }
        let m = self.table(t, "monotonic_offset")?;
        let mut ok = true;
        for (name, span) in m.keys() {
            let field = m.field(name);
            let node = match crate::plan::target::parse_node(name, size.unwrap_or(MAX_NODES)) {
                Ok(n) => Some(n),
                Err(msg) => {
                    self.error(span, field.clone(), msg);
                    None
                }
            };
            let offset = m.get(name).and_then(|v| self.clock_offset_value(v, field));
            match (node, offset) {
                (Some(n), Some(o)) => {
                    out.insert(n, o);
                }
                (Some(_) | None, Some(_) | None) => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `host`: a loopback IP address, `127.0.0.1` by default.
    fn host(&mut self, t: &Tbl<'_, '_>) -> Option<IpAddr> {
        let Some((h, span)) = self.string(t, "host") else {
            return t
                .get("host")
                .is_none()
                .then_some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        };
        match h.parse::<IpAddr>() {
            Ok(ip) if ip.is_loopback() => Some(ip),
            Ok(_) | Err(_) => {
                self.error(
                    span,
                    t.field("host"),
                    format!(
                        "expected a loopback IP address (127.0.0.0/8 or ::1), found {h:?}; rift only ever uses loopback"
                    ),
                );
                None
            }
        }
    }

    /// `command` with its `args`, or the bundled sample node with its bugs.
    /// Clears `ok` on any error, even one that still yields a command.
    fn node_command(
        &mut self,
        t: &Tbl<'_, '_>,
        separate_peer_port: bool,
        ok: &mut bool,
    ) -> Option<NodeCommand> {
        let command = match self.string(t, "command") {
            Some((c, span)) if c.trim().is_empty() => {
                self.error(
                    span,
                    t.field("command"),
                    "expected a program to run, found \"\"",
                );
                *ok = false;
                None
            }
            Some((c, _)) => Some(c),
            None => {
                *ok &= t.get("command").is_none();
                None
            }
        };
        match command {
            Some(program) => {
                for key in ["bug", "bugs"] {
                    if let Some(v) = t.get(key) {
                        *ok = false;
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
                    *ok = false;
                    self.error(
                        v.span(),
                        t.field("args"),
                        "`args` needs `command`; the bundled sample node gets its arguments from rift",
                    );
                }
                self.bugs(t).map(|bugs| NodeCommand::SampleNode { bugs })
            }
        }
    }

    /// `env`: variable names to templates. Clears `ok` on any error.
    fn env(
        &mut self,
        t: &Tbl<'_, '_>,
        separate_peer_port: bool,
        ok: &mut bool,
    ) -> BTreeMap<String, Template> {
        let mut env = BTreeMap::new();
        let Some(e) = self.table(t, "env") else {
            *ok = false;
            return env;
        };
        for (key, kspan) in e.keys() {
            let field = e.field(key);
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                *ok = false;
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
                    None => *ok = false,
                }
            }
        }
        env
    }

    /// `network`: proxy (the default), netns or none; `None` after an error.
    /// Containers default to the wire (local engine) or none (remote).
    fn network(&mut self, t: &Tbl<'_, '_>) -> Option<NetworkMode> {
        match self.string(t, "network") {
            None => t.get("network").is_none().then_some(self.default_network()),
            Some((n, span)) => {
                let mode = NetworkMode::from_name(&n);
                if mode.is_none() {
                    self.error(
                        span,
                        t.field("network"),
                        format!("expected \"proxy\", \"netns\" or \"none\", found {n:?}"),
                    );
                }
                mode
            }
        }
    }

    /// `capture` (default false) and `capture_limit` (a size, by default
    /// [`Capture::DEFAULT_LIMIT`]): only the netns wire has packets to
    /// record. `capture = false` asks for nothing and is accepted under any
    /// network. `net` is unknown when `network` is invalid; then only the
    /// values are checked. Clears `ok` on an error.
    fn capture(&mut self, t: &Tbl<'_, '_>, net: Option<Net>, ok: &mut bool) -> Option<Capture> {
        let on = match t.get("capture") {
            None => Some(false),
            Some(_) => self.bool(t, "capture"),
        };
        *ok &= on.is_some();
        if let Some(net) = net.filter(|n| n.mode != NetworkMode::Netns) {
            let wanted = [
                ("capture", on == Some(true)),
                ("capture_limit", t.get("capture_limit").is_some()),
            ];
            for (key, asked) in wanted {
                if let (true, Some(v)) = (asked, t.get(key)) {
                    *ok = false;
                    self.error(
                        v.span(),
                        t.field(key),
                        format!(
                            "capture records the packets of the netns wire, which {} does not have; it needs network = \"netns\"",
                            net.said()
                        ),
                    );
                }
            }
            return None;
        }
        let limit = match t.get("capture_limit") {
            None => Some(Capture::DEFAULT_LIMIT),
            Some(v) if on == Some(false) => {
                self.error(
                    v.span(),
                    t.field("capture_limit"),
                    "`capture_limit` bounds the capture; give `capture = true` too",
                );
                None
            }
            Some(_) => self.size(t, "capture_limit"),
        };
        *ok &= limit.is_some();
        match (on, limit) {
            (Some(true), Some(limit)) => Some(Capture { limit }),
            (Some(false) | None, _) | (Some(true), None) => None,
        }
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

    /// `bug` or `bugs`: sample-node bugs by name, each once.
    fn bugs(&mut self, t: &Tbl<'_, '_>) -> Option<Vec<SampleBug>> {
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
        let names = SampleBug::names();
        let mut check = |this: &mut Self, v: &Value<'_>, field: String| {
            if let Some((name, span)) = this.string_value(v, field.clone()) {
                match SampleBug::from_name(&name) {
                    None => {
                        let hint = suggest(&name, &names)
                            .map(|s| format!(", did you mean `{s}`?"))
                            .unwrap_or_else(|| format!("; known bugs: {}", backticked(&names)));
                        this.error(span, field, format!("unknown bug `{name}`{hint}"));
                        ok = false;
                    }
                    Some(bug) if out.contains(&bug) => {
                        this.error(span, field, format!("bug `{name}` is listed twice"));
                        ok = false;
                    }
                    Some(bug) => out.push(bug),
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

    /// `leader = { path, pointer }`, optionally with `equals = <value>` (each
    /// node says whether it leads) or `ids = { path, pointer }` (the value is
    /// the system's own member id, each node's own id read there).
    fn leader(&mut self, l: &Tbl<'_, '_>) -> Option<LeaderQuery> {
        self.unknown_keys(l, &["path", "pointer", "equals", "ids"]);
        let path = match l.get("path") {
            None => Some("/health".to_string()),
            Some(_) => self.http_path(l, "path"),
        };
        let pointer = self.json_pointer(
            l,
            "pointer",
            "missing; give the JSON pointer to the leader in the answer, like \"/leader\"",
        );
        let by = match (l.get("equals"), l.get("ids")) {
            (Some(_), Some(ids)) => {
                self.error(
                    ids.span(),
                    l.field("ids"),
                    "give either `equals` (each node says whether it leads) or `ids` (the value is a member id), not both",
                );
                None
            }
            (Some(v), None) => self.leader_equals(v, l.field("equals")),
            (None, Some(_)) => {
                let ids = self.table(l, "ids")?;
                self.unknown_keys(&ids, &["path", "pointer"]);
                let ids_path = match ids.get("path") {
                    None => path.clone(),
                    Some(_) => self.http_path(&ids, "path"),
                };
                let ids_pointer = self.json_pointer(
                    &ids,
                    "pointer",
                    "missing; give the JSON pointer to the node's own member id in the answer, like \"/id\"",
                );
                Some(LeaderBy::Ids {
                    path: ids_path?,
                    pointer: ids_pointer?,
                })
            }
            (None, None) => Some(LeaderBy::Name),
        };
        Some(LeaderQuery {
            path: path?,
            pointer: pointer?,
            by: by?,
        })
    }

    /// `equals`: the JSON value (a string, an integer or a boolean) the
    /// leader answers at `pointer`.
    fn leader_equals(&mut self, v: &Value<'_>, field: String) -> Option<LeaderBy> {
        let json = match v.get_ref() {
            DeValue::String(s) => Some(serde_json::Value::String(s.to_string())),
            DeValue::Boolean(b) => Some(serde_json::Value::Bool(*b)),
            DeValue::Integer(_) => super::primitives::int_value(v.get_ref())
                .and_then(|i| i64::try_from(i).ok())
                .map(serde_json::Value::from),
            DeValue::Float(_) | DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => {
                None
            }
        };
        if json.is_none() {
            self.error(
                v.span(),
                field,
                format!(
                    "expected the value the leader answers at `pointer` (a string, an integer or a boolean, like \"leader\" or true), found {}",
                    describe(v.get_ref())
                ),
            );
        }
        json.map(LeaderBy::Equals)
    }

    /// A required JSON pointer (`""` or starting with `/`).
    fn json_pointer(&mut self, t: &Tbl<'_, '_>, key: &str, missing: &str) -> Option<String> {
        match self.string(t, key) {
            None => {
                if t.get(key).is_none() {
                    self.error(t.span.clone(), t.field(key), missing);
                }
                None
            }
            Some((p, span)) => {
                if !p.is_empty() && !p.starts_with('/') {
                    self.error(
                        span,
                        t.field(key),
                        format!("expected a JSON pointer like \"/leader\", found {p:?}"),
                    );
                    None
                } else {
                    Some(p)
                }
            }
        }
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, err_under, ok, ok_under};
    use crate::plan::types::*;
    use std::time::Duration;

    const DOCKER: &str = "[cluster]\nbackend = \"docker\"\nbinary = \"bin/sample-node\"\n";

    #[test]
    fn docker_takes_a_binary_relative_to_the_plan_or_an_image() {
        let p = ok(DOCKER);
        assert_eq!(
            p.backend,
            Backend::Docker(DockerImage::Binary("bin/sample-node".into()))
        );
        // The wire is the default network of containers.
        assert_eq!(p.cluster.network, NetworkMode::Netns);
        let p = ok("[cluster]\nbackend = \"docker\"\nimage = \"db:1\"\ncommand = \"/db\"\n");
        assert_eq!(
            p.backend,
            Backend::Docker(DockerImage::Image("db:1".into()))
        );
        assert_eq!(ok("[cluster]\n").backend, Backend::Process);
        let abs = ok("[cluster]\nbackend = \"docker\"\nbinary = \"/opt/x\"\n");
        assert_eq!(
            abs.backend,
            Backend::Docker(DockerImage::Binary("/opt/x".into()))
        );
    }

    #[test]
    fn docker_needs_exactly_one_image_source() {
        assert_eq!(
            err("[cluster]\nbackend = \"docker\"\n"),
            "cluster.backend: backend = \"docker\" needs `image = \"name:tag\"` (an image the engine has) or `binary = \"path\"` (rift builds a minimal image of it)"
        );
        assert_eq!(
            err("[cluster]\nbackend = \"docker\"\nimage = \"a\"\nbinary = \"b\"\ncommand = \"/x\"\n"),
            "cluster.binary: give either `image` (an image the engine has) or `binary` (rift builds the image), not both"
        );
        assert_eq!(
            err("[cluster]\nimage = \"a\"\n"),
            "cluster.image: `image` is for containers; give backend = \"docker\" too"
        );
        assert_eq!(
            err("[cluster]\nbackend = \"vm\"\n"),
            "cluster.backend: expected \"process\" (the default) or \"docker\", found \"vm\""
        );
        assert!(err("[cluster]\nbackend = \"docker\"\nimage = \"a\"\n")
            .starts_with("cluster.image: with `image`, give `command`"));
    }

    #[test]
    fn docker_refuses_the_proxy_mesh() {
        let e = err(&format!("{DOCKER}network = \"proxy\"\n"));
        assert!(
            e.starts_with(
                "cluster.network: containers have no network of their own to reach rift's proxies"
            ),
            "{e}"
        );
        let e = err_under(NetworkMode::Proxy, DOCKER);
        assert!(e.contains("not --network proxy"), "{e}");
    }

    #[test]
    fn docker_on_none_runs_on_the_bridge_without_network_faults() {
        let none = format!("{DOCKER}network = \"none\"\n");
        ok(&format!("{none}[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n0\"\n[[step]]\nat = \"2s\"\nfault = \"restart\"\ntarget = \"n0\"\n[[step]]\nat = \"3s\"\nfault = \"pause\"\ntarget = \"n1\"\nhow = \"freeze\"\nfor = \"1s\"\n"));
        let e = err(&format!(
            "{none}[[step]]\nat = \"1s\"\nfault = \"partition\"\ntopology = \"majority-minority\"\nfor = \"2s\"\n"
        ));
        assert_eq!(
            e,
            "step[0].fault: a partition step needs network faults, but [cluster] network = \"none\""
        );
    }

    #[test]
    fn docker_refuses_time_namespaces_faulty_disks_and_clocks_of_given_images() {
        let e = err(&format!("{DOCKER}monotonic_offset = {{ n1 = \"+1h\" }}\n"));
        assert!(
            e.starts_with(
                "cluster.monotonic_offset: time namespaces are not available to containers"
            ),
            "{e}"
        );
        let e = err(&format!("{DOCKER}disk = \"faulty\"\n"));
        assert!(e.starts_with("cluster.disk: disk = \"faulty\" is not available to containers yet: rift's FUSE mount would have to be bind-mounted"), "{e}");
        // Clocks move in an image rift builds (libfaketime added), not in
        // a given one.
        let clock = "[[step]]\nat = \"1s\"\nfault = \"clock\"\ntarget = \"n1\"\noffset = \"5s\"\n";
        ok(&format!("{DOCKER}{clock}"));
        let e = err(&format!(
            "[cluster]\nbackend = \"docker\"\nimage = \"db:1\"\ncommand = \"/db\"\n{clock}"
        ));
        assert!(
            e.starts_with("step[0].fault: a clock step needs libfaketime inside the image"),
            "{e}"
        );
        // Kills, slow (the engine's CPU quota), pauses (either way) and
        // partitions are fine.
        ok(&format!("{DOCKER}[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n0\"\n[[step]]\nat = \"2s\"\nfault = \"slow\"\ntarget = \"n1\"\ncpu = 0.1\nfor = \"1s\"\n"));
        ok(&format!("{DOCKER}[[step]]\nat = \"1s\"\nfault = \"pause\"\ntarget = \"n1\"\nhow = \"freeze\"\nfor = \"1s\"\n[[step]]\nat = \"3s\"\nfault = \"partition\"\ntopology = \"majority-minority\"\nfor = \"2s\"\n"));
    }

    #[test]
    fn monotonic_offsets_name_nodes_and_signed_durations() {
        let p = ok("[cluster]\nmonotonic_offset = { n1 = \"+1h\", n2 = \"-30s\" }\n");
        assert_eq!(
            p.cluster.clock.monotonic.get(&crate::NodeId(2)),
            Some(&ClockOffset {
                negative: true,
                magnitude: Duration::from_secs(30)
            })
        );
        assert_eq!(p.cluster.clock.monotonic.len(), 2);
        assert!(!p.cluster.clock.faketime);
        assert!(ok("").cluster.clock.monotonic.is_empty());
        assert_eq!(
            err("[cluster]\nmonotonic_offset = { n3 = \"1s\", n0 = \"soon\", n1 = 5 }\n"),
            "cluster.monotonic_offset.n3: unknown node `n3`; this cluster has n0 to n2\ncluster.monotonic_offset.n0: unknown duration unit `soon` in \"soon\"; use ns, us, ms, s, m or h\ncluster.monotonic_offset.n1: expected a signed duration like \"+10s\" or \"-500ms\", found 5"
        );
        assert_eq!(
            err("[cluster]\nmonotonic_offset = \"1h\"\n"),
            "cluster.monotonic_offset: expected a table, found \"1h\""
        );
    }

    #[test]
    fn sample_node_bugs() {
        assert_eq!(
            ok("[cluster]\nbug = \"stale-reads\"\n").cluster.command,
            NodeCommand::SampleNode {
                bugs: vec![SampleBug::StaleReads]
            }
        );
        assert_eq!(
            ok("[cluster]\nbugs = [\"unsafe-vote\", \"ack-before-commit\"]\n")
                .cluster
                .command,
            NodeCommand::SampleNode {
                bugs: vec![SampleBug::UnsafeVote, SampleBug::AckBeforeCommit]
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

    #[test]
    fn host_is_a_loopback_address() {
        assert_eq!(
            ok("[cluster]\nhost = \"::1\"\n").cluster.host,
            std::net::Ipv6Addr::LOCALHOST
        );
        assert_eq!(
            err("[cluster]\nhost = \"localhost\"\n"),
            "cluster.host: expected a loopback IP address (127.0.0.0/8 or ::1), found \"localhost\"; rift only ever uses loopback"
        );
        assert_eq!(
            err("[cluster]\nbugs = [\"stale-reads\", \"stale-reads\"]\n"),
            "cluster.bugs[1]: bug `stale-reads` is listed twice"
        );
        assert_eq!(
            err("[cluster]\nbug = \"zzz\"\n"),
            "cluster.bug: unknown bug `zzz`; known bugs: `stale-reads`, `ack-before-commit`, `unsafe-vote`, `lossy-set`, `dirty-list-reads`, `lease-reads`, `no-fsync`, `slow-apply`"
        );
        for bug in SampleBug::ALL {
            assert_eq!(SampleBug::from_name(bug.name()), Some(bug));
        }
    }

    #[test]
    fn capture_is_off_by_default_and_bounded_when_on() {
        assert_eq!(ok("").cluster.capture, None);
        let netns = "[cluster]\nnetwork = \"netns\"\n";
        assert_eq!(ok(netns).cluster.capture, None);
        assert_eq!(
            ok(&format!("{netns}capture = false\n")).cluster.capture,
            None
        );
        assert_eq!(
            ok(&format!("{netns}capture = true\n")).cluster.capture,
            Some(Capture {
                limit: Capture::DEFAULT_LIMIT
            })
        );
        for (limit, bytes) in [
            ("\"100MB\"", 100_000_000),
            ("\"512KB\"", 512_000),
            ("\"1GB\"", 1_000_000_000),
            ("\"20MiB\"", 20 << 20),
            ("4096", 4096),
            ("1_000", 1000),
        ] {
            assert_eq!(
                ok(&format!("{netns}capture = true\ncapture_limit = {limit}\n"))
                    .cluster
                    .capture,
                Some(Capture { limit: bytes }),
                "{limit}"
            );
        }
    }

    #[test]
    fn capture_limit_must_be_a_positive_size() {
        let on = "[cluster]\nnetwork = \"netns\"\ncapture = true\n";
        assert_eq!(
            err(&format!("{on}capture_limit = 0\n")),
            "cluster.capture_limit: expected a size greater than zero"
        );
        assert_eq!(
            err(&format!("{on}capture_limit = \"0MB\"\n")),
            "cluster.capture_limit: expected a size greater than zero"
        );
        assert_eq!(
            err(&format!("{on}capture_limit = -5\n")),
            "cluster.capture_limit: expected a number of bytes or a size like \"100MB\", found -5"
        );
        assert_eq!(
            err(&format!("{on}capture_limit = 1.5\n")),
            "cluster.capture_limit: expected a number of bytes or a size like \"100MB\", found 1.5"
        );
        assert_eq!(
            err(&format!("{on}capture_limit = \"100\"\n")),
            "cluster.capture_limit: expected a size with a unit (B, KB, MB, GB, KiB, MiB, GiB) like \"100MB\", found \"100\""
        );
        assert_eq!(
            err(&format!("{on}capture_limit = \"1Mb\"\n")),
            "cluster.capture_limit: unknown size unit `Mb` in \"1Mb\"; use B, KB, MB, GB, KiB, MiB or GiB"
        );
        assert_eq!(
            err("[cluster]\nnetwork = \"netns\"\ncapture = \"yes\"\n"),
            "cluster.capture: expected true or false, found \"yes\""
        );
    }

    #[test]
    fn capture_limit_needs_capture_on() {
        let netns = "[cluster]\nnetwork = \"netns\"\n";
        for capture in ["", "capture = false\n"] {
            assert_eq!(
                err(&format!("{netns}{capture}capture_limit = \"1MB\"\n")),
                "cluster.capture_limit: `capture_limit` bounds the capture; give `capture = true` too"
            );
        }
        // A bad value is reported once, for what matters first.
        assert_eq!(
            err(&format!("{netns}capture_limit = 0\n")),
            "cluster.capture_limit: `capture_limit` bounds the capture; give `capture = true` too"
        );
    }

    #[test]
    fn capture_needs_the_netns_wire() {
        assert_eq!(
            err("[cluster]\ncapture = true\n"),
            "cluster.capture: capture records the packets of the netns wire, which network = \"proxy\" does not have; it needs network = \"netns\""
        );
        assert_eq!(
            err("[cluster]\nnetwork = \"none\"\ncapture = true\ncapture_limit = \"1MB\"\n"),
            [
                "cluster.capture: capture records the packets of the netns wire, which network = \"none\" does not have; it needs network = \"netns\"",
                "cluster.capture_limit: capture records the packets of the netns wire, which network = \"none\" does not have; it needs network = \"netns\"",
            ]
            .join("\n")
        );
        // `capture = false` asks for nothing, so any network takes it.
        assert_eq!(ok("[cluster]\ncapture = false\n").cluster.capture, None);
        // The override decides, both ways.
        let on = "[cluster]\nnetwork = \"netns\"\ncapture = true\n";
        assert_eq!(
            err_under(NetworkMode::Proxy, on),
            "cluster.capture: capture records the packets of the netns wire, which --network proxy does not have; it needs network = \"netns\""
        );
        assert_eq!(
            ok_under(NetworkMode::Netns, "[cluster]\ncapture = true\n")
                .cluster
                .capture,
            Some(Capture {
                limit: Capture::DEFAULT_LIMIT
            })
        );
    }

    #[test]
    fn leader_forms_and_their_errors() {
        let lead = |body: &str| {
            ok(&format!("[cluster]\ncommand = \"/bin/x\"\n{body}"))
                .cluster
                .leader
        };
        let bad = |body: &str| err(&format!("[cluster]\ncommand = \"/bin/x\"\n{body}"));
        assert_eq!(
            lead("leader = { path = \"/status\", pointer = \"/leader\" }\n"),
            Some(LeaderQuery::named("/status", "/leader"))
        );
        assert_eq!(
            lead("leader = { pointer = \"/role\", equals = \"leader\" }\n"),
            Some(LeaderQuery {
                path: "/health".into(),
                pointer: "/role".into(),
                by: LeaderBy::Equals(serde_json::json!("leader")),
            })
        );
        assert_eq!(
            lead("leader = { pointer = \"/is_leader\", equals = true }\n").map(|l| l.by),
            Some(LeaderBy::Equals(serde_json::json!(true)))
        );
        assert_eq!(
            lead("leader = { pointer = \"/state\", equals = 3 }\n").map(|l| l.by),
            Some(LeaderBy::Equals(serde_json::json!(3)))
        );
        assert_eq!(
            lead("leader = { path = \"/raft\", pointer = \"/leader_id\", ids = { pointer = \"/id\" } }\n")
                .map(|l| l.by),
            Some(LeaderBy::Ids {
                path: "/raft".into(),
                pointer: "/id".into()
            })
        );
        assert_eq!(
            lead("leader = { pointer = \"/leader_id\", ids = { path = \"/self\", pointer = \"\" } }\n")
                .map(|l| l.by),
            Some(LeaderBy::Ids {
                path: "/self".into(),
                pointer: "".into()
            })
        );
        assert_eq!(
            bad("leader = { pointer = \"/role\", equals = [\"leader\"] }\n"),
            "cluster.leader.equals: expected the value the leader answers at `pointer` (a string, an integer or a boolean, like \"leader\" or true), found an array"
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", equals = true, ids = { pointer = \"/id\" } }\n"),
            "cluster.leader.ids: give either `equals` (each node says whether it leads) or `ids` (the value is a member id), not both"
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", ids = { path = \"/id\" } }\n"),
            "cluster.leader.ids.pointer: missing; give the JSON pointer to the node's own member id in the answer, like \"/id\""
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", ids = { pointer = \"id\" } }\n"),
            "cluster.leader.ids.pointer: expected a JSON pointer like \"/leader\", found \"id\""
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", ids = { pointer = \"/id\", url = 1 } }\n"),
            "cluster.leader.ids.url: unknown field `url`; expected one of `path`, `pointer`"
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", ids = \"/id\" }\n"),
            "cluster.leader.ids: expected a table, found \"/id\""
        );
        assert_eq!(
            bad("leader = { pointer = \"/x\", equal = 1 }\n"),
            "cluster.leader.equal: unknown field `equal`, did you mean `equals`?"
        );
    }
}
