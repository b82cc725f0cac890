//! The validation pass: walks toml's spanned document tree once and builds a
//! [`Plan`], or reports every problem it finds with the span of the value at
//! fault (the enclosing table's when the value is missing). It owns the plan
//! format's rules and defaults; it must never panic, whatever the input.
//!
//! This module holds the entry point, the [`Validator`] (the error sink) and
//! the plan's root table; each section is read by its own module (cluster,
//! workload and its HTTP adapter, steps by fault family, expect) over the
//! shared readers in `primitives`.

mod cluster;
mod expect;
mod http;
mod nemesis;
mod primitives;
mod steps;
mod workload;

pub use steps::errno_name;

use super::error::{position, PlanError};
use super::types::*;
use super::FaultKind;
use super::Overrides;
use primitives::{Span, Tbl};
use std::path::Path;
use steps::StepCtx;
use toml::de::DeTable;

/// Most nodes a cluster may have.
const MAX_NODES: usize = 64;

const ROOT_KEYS: &[&str] = &[
    "name",
    "description",
    "seed",
    "duration",
    "cluster",
    "workload",
    "step",
    "nemesis",
    "expect",
];

pub(super) fn validate(
    src: &str,
    path: &Path,
    hash: String,
    overrides: &Overrides,
) -> Result<Plan, PlanError> {
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
        network_override: overrides.network,
        backend: None,
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

/// Collects every error of one pass; each section's reader is an `impl` of
/// it in that section's module.
struct Validator<'s> {
    /// The plan's text, for the line numbers of steps.
    src: &'s str,
    /// `--network`: replaces `[cluster] network` (whose value is still
    /// checked).
    network_override: Option<NetworkMode>,
    /// `[cluster] backend`, read before the rest of the section (the
    /// network's default and what is possible depend on it).
    backend: Option<Backend>,
    /// Span at fault, dotted field, message; sorted by position at the end.
    errors: Vec<(Span, String, String)>,
}

impl Validator<'_> {
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

        let cluster_tbl = self.table(root, "cluster");
        let backend = match &cluster_tbl {
            Some(t) => self.cluster_backend(t, path),
            None => Some(Backend::Process),
        };
        self.backend = backend.clone();
        let cluster = cluster_tbl.as_ref().and_then(|t| self.cluster(t));
        let disk = cluster_tbl.as_ref().and_then(|t| self.cluster_disk(t));
        if let (Some(t), Some(DiskMode::Faulty)) = (&cluster_tbl, disk) {
            self.docker_disk(t);
        }
        let external = matches!(
            cluster.as_ref().map(|c| &c.command),
            Some(NodeCommand::External { .. })
        );
        let net = self.net(cluster.as_ref(), root);
        let workload = self
            .table(root, "workload")
            .and_then(|t| self.workload(&t, external, net));
        // Under netns every client request crosses the wire; otherwise only
        // `via = "proxy"` makes client links. An unknown network or workload
        // is assumed to have them, to avoid knock-on errors.
        let client_links = net.is_none_or(|n| n.mode == NetworkMode::Netns)
            || workload
                .as_ref()
                .is_none_or(|w| w.via == ClientRoute::Proxy);
        let mut ctx = StepCtx::new(cluster.as_ref(), root, client_links, net);
        ctx.disk = disk;
        // A client of the client protocol can say who leads (`f = "leader"`).
        ctx.has_leader |= workload.as_ref().is_some_and(|w| w.client.is_some());
        let steps = self.steps(root, &ctx, duration);
        let nemesis = self.nemesis(root, &ctx, duration);
        let expect = self
            .table(root, "expect")
            .and_then(|t| self.expect(&t, workload.as_ref()));
        if let Some(steps) = &steps {
            self.docker_steps(root, steps, nemesis.as_ref().and_then(Option::as_ref));
        }

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
            nemesis: nemesis?,
            expect: expect?,
            disk: disk?,
            backend: backend?,
        })
    }
}

impl Validator<'_> {
    /// The network the plan runs under: `--network`, else the cluster's;
    /// when the cluster has errors of its own, its raw `network` if that is
    /// valid (absent means the default, proxy); else unknown.
    fn net(&self, cluster: Option<&ClusterSpec>, root: &Tbl<'_, '_>) -> Option<Net> {
        let remote = self.remote_engine();
        if let Some(mode) = self.network_override {
            return Some(Net {
                mode,
                overridden: true,
                remote,
            });
        }
        let default = self.default_network();
        let mode = match cluster {
            Some(c) => Some(c.network),
            None => match root.get("cluster").map(|c| c.get_ref().as_table()) {
                None => Some(default),
                Some(None) => None,
                Some(Some(c)) => match c.get("network") {
                    None => Some(default),
                    Some(v) => v.get_ref().as_str().and_then(NetworkMode::from_name),
                },
            },
        };
        // A remote engine's containers get no network fault whatever the
        // plan says (its `network` is refused on its own).
        mode.map(|mode| Net {
            mode: if remote { NetworkMode::None } else { mode },
            overridden: false,
            remote,
        })
    }

    /// What containers cannot do, said at the step (or the nemesis
    /// weight) that asks for it: move a clock of an `image` (libfaketime
    /// goes into the image rift builds from `binary`, and rift cannot add
    /// it to someone else's).
    fn docker_steps(
        &mut self,
        root: &Tbl<'_, '_>,
        steps: &[Step],
        nemesis: Option<&super::nemesis::NemesisSpec>,
    ) {
        let Some(Backend::Docker(DockerImage::Image(_))) = self.backend else {
            return;
        };
        let why = |kind: FaultKind| {
            match kind {
            FaultKind::Clock => Some("a clock step needs libfaketime inside the image, which rift adds only to an image it builds: give `binary = \"path\"` instead of `image`, or use backend = \"process\""),
            FaultKind::Slow
            | FaultKind::Kill
            | FaultKind::Restart
            | FaultKind::Pause
            | FaultKind::Resume
            | FaultKind::Partition
            | FaultKind::Heal
            | FaultKind::Degrade
            | FaultKind::Restore
            | FaultKind::Disk => None,
        }
        };
        let items: Vec<Span> = match root.get("step").map(|v| (v.span(), v.get_ref())) {
            Some((_, toml::de::DeValue::Array(items))) => items.iter().map(|i| i.span()).collect(),
            Some(_) | None => Vec::new(),
        };
        for step in steps {
            let Some(msg) = why(step.action.kind()) else {
                continue;
            };
            let at = items
                .iter()
                .enumerate()
                .find(|(_, sp)| position(self.src, sp.start).0 == step.line);
            let (span, field) = match at {
                Some((i, sp)) => (sp.clone(), format!("step[{i}].fault")),
                None => (0..0, "step".to_string()),
            };
            self.error(span, field, msg);
        }
        if let (Some(n), Some(v)) = (nemesis, root.get("nemesis")) {
            for (kind, w) in &n.mix {
                if let (Some(msg), true) = (why(*kind), *w > 0) {
                    self.error(v.span(), format!("nemesis.mix.{kind}"), msg);
                }
            }
        }
    }

    /// The network when the plan names none: proxy for processes; the
    /// wire for containers of a local engine, nothing (the engine's
    /// bridge) for a remote one.
    fn default_network(&self) -> NetworkMode {
        match &self.backend {
            Some(Backend::Docker(_)) if self.remote_engine() => NetworkMode::None,
            Some(Backend::Docker(_)) => NetworkMode::Netns,
            Some(Backend::Process) | None => NetworkMode::Proxy,
        }
    }

    /// Whether the nodes are containers of an engine on another machine
    /// (`DOCKER_HOST`, read without contacting anything).
    fn remote_engine(&self) -> bool {
        matches!(self.backend, Some(Backend::Docker(_)))
            && matches!(
                crate::docker::engine_at(),
                crate::docker::EngineAt::Remote(_)
            )
    }
}

/// The network a plan runs under, and who chose it, so that messages quote
/// the setting the way its author wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    mode: NetworkMode,
    /// Chosen by `--network` rather than by the file.
    overridden: bool,
    /// The nodes are containers of a remote engine: rift cannot reach
    /// into their namespaces, so no network fault is possible.
    remote: bool,
}

impl Net {
    /// `network = "netns"`, or `--network netns` when the command line chose it.
    fn said(self) -> String {
        if self.overridden {
            format!("--network {}", self.mode)
        } else {
            format!("network = \"{}\"", self.mode)
        }
    }

    /// As [`Net::said`], naming the section for a setting of the file:
    /// `[cluster] network = "none"`.
    fn said_in_cluster(self) -> String {
        if self.remote {
            return remote_engine_said();
        }
        if self.overridden {
            self.said()
        } else {
            format!("[cluster] {}", self.said())
        }
    }
}

/// Why a remote engine allows no network fault, naming `DOCKER_HOST`.
fn remote_engine_said() -> String {
    let at = match crate::docker::engine_at() {
        crate::docker::EngineAt::Remote(h) | crate::docker::EngineAt::Local(h) => h,
    };
    format!("network faults need the engine on rift's own machine: DOCKER_HOST={at} is remote")
}

/// What every section's unit tests share: a plan head and two ways to parse
/// a body after it.
#[cfg(test)]
mod testing {
    use crate::plan::{parse_with, NetworkMode, Overrides, Plan, PlanError};
    use std::path::Path;

    const HEAD: &str = "name = \"t\"\nduration = \"30s\"\n";

    pub(super) fn ok(body: &str) -> Plan {
        ok_with(&Overrides::default(), body)
    }

    /// Every error message, without the position, one per line.
    pub(super) fn err(body: &str) -> String {
        err_with(&Overrides::default(), body)
    }

    /// [`ok`] run with `--network`.
    pub(super) fn ok_under(network: NetworkMode, body: &str) -> Plan {
        ok_with(
            &Overrides {
                network: Some(network),
            },
            body,
        )
    }

    /// [`err`] run with `--network`.
    pub(super) fn err_under(network: NetworkMode, body: &str) -> String {
        err_with(
            &Overrides {
                network: Some(network),
            },
            body,
        )
    }

    fn ok_with(overrides: &Overrides, body: &str) -> Plan {
        match parse_with(&format!("{HEAD}{body}"), Path::new("p.toml"), overrides) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn err_with(overrides: &Overrides, body: &str) -> String {
        match parse_with(&format!("{HEAD}{body}"), Path::new("p.toml"), overrides) {
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
}
