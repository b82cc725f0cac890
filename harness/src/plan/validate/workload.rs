//! The `[workload]` section: its kind (kv, probe, ledger, set or
//! list-append) and the keys each kind takes, load bounds (clients, rate,
//! timeout), the client route, the client program, the kv mix and the probe
//! request. The HTTP adapter's tables are read in
//! `http`. It describes load; it never sends a request.

use super::primitives::Tbl;
use super::{Net, Validator};
use crate::plan::types::*;
use reqwest::Method;
use std::time::Duration;

/// Bounds keep load loops bounded even for a careless plan.
const MAX_CLIENTS: u64 = 1024;
const MAX_RATE: f64 = 100_000.0;
const MAX_KEYS: u64 = 1_000_000;

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
    "reads",
    "client",
];

/// The workload kinds, as plans name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kv,
    Probe,
    Ledger,
    Set,
    ListAppend,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kv => "kv",
            Kind::Probe => "probe",
            Kind::Ledger => "ledger",
            Kind::Set => "set",
            Kind::ListAppend => "list-append",
        }
    }

    /// The keys only this kind takes.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Kv => &["keys", "mix", "http"],
            Kind::Probe => &["method", "path", "ok_status"],
            Kind::Ledger => &[],
            Kind::Set | Kind::ListAppend => &["reads"],
        }
    }
}

/// Methods a probe may use.
const PROBE_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];

impl Validator<'_> {
    /// `network` is the plan's, when it is known.
    pub(super) fn workload(
        &mut self,
        w: &Tbl<'_, '_>,
        external: bool,
        network: Option<Net>,
    ) -> Option<WorkloadSpec> {
        self.unknown_keys(w, WORKLOAD_KEYS);
        let kind = match self.string(w, "kind") {
            None if w.get("kind").is_some() => return None,
            None if external => Kind::Probe,
            None => Kind::Kv,
            Some((k, span)) => match k.as_str() {
                "kv" => Kind::Kv,
                "probe" => Kind::Probe,
                "ledger" => Kind::Ledger,
                "set" => Kind::Set,
                "list-append" => Kind::ListAppend,
                _ => {
                    self.error(
                        span,
                        w.field("kind"),
                        format!("expected \"kv\", \"probe\", \"ledger\", \"set\" or \"list-append\", found {k:?}"),
                    );
                    return None;
                }
            },
        };
        let mut ok = true;
        for owner in [Kind::Kv, Kind::Probe, Kind::Set] {
            if owner == kind || (owner == Kind::Set && kind == Kind::ListAppend) {
                continue;
            }
            for &key in owner.own_keys() {
                // `keys` is shared by kv, set and list-append.
                if key == "keys" && matches!(kind, Kind::Set | Kind::ListAppend) {
                    continue;
                }
                if let Some(v) = w.get(key) {
                    ok = false;
                    self.error(
                        v.span(),
                        w.field(key),
                        format!(
                            "`{key}` only applies to kind = \"{}\", this workload is \"{}\"",
                            match owner {
                                Kind::Set => "set\" or \"list-append",
                                Kind::Kv | Kind::Probe | Kind::Ledger | Kind::ListAppend =>
                                    owner.name(),
                            },
                            kind.name()
                        ),
                    );
                }
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
        let via = self.via(w, network);
        let client = match w.get("client") {
            None => Some(None),
            Some(_) => self
                .table(w, "client")
                .and_then(|c| self.client(&c))
                .map(Some),
        };
        let kind = match kind {
            Kind::Kv => self.kv(w),
            Kind::Probe => self.probe(w),
            Kind::Ledger => Some(WorkloadKind::Ledger),
            Kind::Set => self
                .collection(w)
                .map(|(keys, reads)| WorkloadKind::Set { keys, reads }),
            Kind::ListAppend => self
                .collection(w)
                .map(|(keys, reads)| WorkloadKind::ListAppend { keys, reads }),
        };
        if let (Some(Some(_)), Some(k)) = (&client, &kind) {
            let refused = match k {
                WorkloadKind::Kv { http: Some(_), .. } => Some("[workload.http] and `client` are two ways of talking to the nodes; give one"),
                WorkloadKind::Probe { .. } => Some("a probe workload sends its own HTTP request; `client` drives kv, set and list-append workloads"),
                WorkloadKind::Ledger => Some("the ledger workload speaks the sample node's API; `client` drives kv, set and list-append workloads"),
                WorkloadKind::Kv { http: None, .. } | WorkloadKind::Set { .. } | WorkloadKind::ListAppend { .. } => None,
            };
            if let (Some(msg), Some(v)) = (refused, w.get("client")) {
                self.error(v.span(), w.field("client"), msg);
                return None;
            }
        }
        if !ok {
            return None;
        }
        Some(WorkloadSpec {
            kind: kind?,
            clients: clients? as usize,
            rate: rate?,
            timeout: timeout?,
            via: via?,
            client: client?,
        })
    }

    /// kind = "set" or "list-append": `keys` (default 5) and `reads`, the
    /// fraction of operations that read a whole collection (default 0.25).
    fn collection(&mut self, w: &Tbl<'_, '_>) -> Option<(usize, f64)> {
        let keys = match w.get("keys") {
            None => Some(5),
            Some(_) => self.int(w, "keys", 1, MAX_KEYS),
        };
        let reads = match w.get("reads") {
            None => Some(0.25),
            Some(_) => self.number(w, "reads", 0.0, false, 1.0),
        };
        Some((keys? as usize, reads?))
    }

    /// `client = { command, args, env, vars }`: the client program of the
    /// client protocol.
    fn client(&mut self, c: &Tbl<'_, '_>) -> Option<ClientSpec> {
        self.unknown_keys(c, &["command", "args", "env", "vars"]);
        let command = match self.string(c, "command") {
            Some((s, _)) if !s.trim().is_empty() => Some(s),
            Some((_, span)) => {
                self.error(
                    span,
                    c.field("command"),
                    "expected a program to run, found an empty string",
                );
                None
            }
            None if c.get("command").is_some() => None,
            None => {
                self.error(
                    c.span.clone(),
                    c.field("command"),
                    "a client needs `command`, the program to run",
                );
                None
            }
        };
        let args = match c.get("args") {
            None => Some(Vec::new()),
            Some(v) => match v.get_ref() {
                toml::de::DeValue::Array(items) => {
                    let mut out = Some(Vec::new());
                    for (i, item) in items.iter().enumerate() {
                        let s = self.string_value(item, format!("{}[{i}]", c.field("args")));
                        match (s, out.as_mut()) {
                            (Some((s, _)), Some(o)) => o.push(s),
                            _ => out = None,
                        }
                    }
                    out
                }
                _ => {
                    self.error(v.span(), c.field("args"), "expected an array of strings");
                    None
                }
            },
        };
        let strings =
            |this: &mut Self, key: &str| -> Option<std::collections::BTreeMap<String, String>> {
                let t = this.table(c, key)?;
                let mut out = Some(std::collections::BTreeMap::new());
                for (k, _) in t.keys() {
                    let value = t.get(k).and_then(|v| this.string_value(v, t.field(k)));
                    match (value, out.as_mut()) {
                        (Some((v, _)), Some(o)) => {
                            o.insert(k.to_string(), v);
                        }
                        _ => out = None,
                    }
                }
                out
            };
        let env = strings(self, "env");
        let vars = strings(self, "vars");
        Some(ClientSpec {
            command: command?,
            args: args?,
            env: env?,
            vars: vars?,
        })
    }

    /// `via`: direct (the default) or through the proxy mesh, which only
    /// `network = "proxy"` has. Under netns client traffic always crosses
    /// the wire, so `via = "proxy"` is refused there too.
    fn via(&mut self, w: &Tbl<'_, '_>, network: Option<Net>) -> Option<ClientRoute> {
        match self.string(w, "via") {
            None if w.get("via").is_some() => None,
            None => Some(ClientRoute::Direct),
            Some((v, span)) => match v.as_str() {
                "direct" => Some(ClientRoute::Direct),
                "proxy" => {
                    let refusal = network.and_then(|net| match net.mode {
                        NetworkMode::Proxy => None,
                        NetworkMode::Netns => Some(format!(
                            "client proxies are part of the proxy mesh; under {} the workload's traffic always crosses the wire: drop `via`",
                            net.said()
                        )),
                        NetworkMode::None if net.overridden => Some(format!(
                            "client proxies are part of the proxy mesh, which {} does not have",
                            net.said()
                        )),
                        NetworkMode::None => Some(
                            "client proxies are part of the proxy mesh; set [cluster] network = \"proxy\""
                                .to_string(),
                        ),
                    });
                    match refusal {
                        Some(msg) => {
                            self.error(span, w.field("via"), msg);
                            None
                        }
                        None => Some(ClientRoute::Proxy),
                    }
                }
                _ => {
                    self.error(
                        span,
                        w.field("via"),
                        format!("expected \"direct\" or \"proxy\", found {v:?}"),
                    );
                    None
                }
            },
        }
    }

    /// kind = "kv": `keys`, `mix` and the optional HTTP adapter.
    fn kv(&mut self, w: &Tbl<'_, '_>) -> Option<WorkloadKind> {
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
        Some(WorkloadKind::Kv {
            keys: keys? as usize,
            mix: mix?,
            http: http?,
        })
    }

    /// kind = "probe": one request shape sent to every node.
    fn probe(&mut self, w: &Tbl<'_, '_>) -> Option<WorkloadKind> {
        let method = match self.string(w, "method") {
            None if w.get("method").is_some() => None,
            None => Some(Method::GET),
            Some((m, span)) => {
                let method = PROBE_METHODS
                    .contains(&m.as_str())
                    .then(|| Method::from_bytes(m.as_bytes()).ok())
                    .flatten();
                if method.is_none() {
                    self.error(
                        span,
                        w.field("method"),
                        format!("expected one of {}, found {m:?}", PROBE_METHODS.join(", ")),
                    );
                }
                method
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
        Some(WorkloadKind::Probe {
            method: method?,
            path: path?,
            ok_status: ok_status?,
        })
    }

    /// `mix`: relative weights, normalised to sum to 1.
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
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, ok};
    use crate::plan::types::*;

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
                method: reqwest::Method::HEAD,
                path: "/x".into(),
                ok_status: vec![200, 204]
            }
        );
        assert_eq!(
            ok("[workload]\nkind = \"ledger\"\n").workload.kind,
            WorkloadKind::Ledger
        );
    }
}
