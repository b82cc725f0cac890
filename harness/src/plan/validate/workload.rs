//! The `[workload]` section: its kind (kv, probe or ledger) and the keys
//! each kind takes, load bounds (clients, rate, timeout), the client route,
//! the kv mix and the probe request. The HTTP adapter's tables are read in
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
];

/// The workload kinds, as plans name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kv,
    Probe,
    Ledger,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kv => "kv",
            Kind::Probe => "probe",
            Kind::Ledger => "ledger",
        }
    }

    /// The keys only this kind takes.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            Kind::Kv => &["keys", "mix", "http"],
            Kind::Probe => &["method", "path", "ok_status"],
            Kind::Ledger => &[],
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
                _ => {
                    self.error(
                        span,
                        w.field("kind"),
                        format!("expected \"kv\", \"probe\" or \"ledger\", found {k:?}"),
                    );
                    return None;
                }
            },
        };
        let mut ok = true;
        for owner in [Kind::Kv, Kind::Probe] {
            if owner == kind {
                continue;
            }
            for &key in owner.own_keys() {
                if let Some(v) = w.get(key) {
                    ok = false;
                    self.error(
                        v.span(),
                        w.field(key),
                        format!(
                            "`{key}` only applies to kind = \"{}\", this workload is \"{}\"",
                            owner.name(),
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
        let kind = match kind {
            Kind::Kv => self.kv(w),
            Kind::Probe => self.probe(w),
            Kind::Ledger => Some(WorkloadKind::Ledger),
        };
        if !ok {
            return None;
        }
        Some(WorkloadSpec {
            kind: kind?,
            clients: clients? as usize,
            rate: rate?,
            timeout: timeout?,
            via: via?,
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
