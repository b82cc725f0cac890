//! Steps of the degrade family: degrade (links slowed, throttled, reset or
//! stalled, for a while) and restore, with the link selectors both use. It
//! only describes degradations; the network backend applies them.

use super::super::primitives::{describe, int_value, Tbl};
use super::super::Validator;
use super::StepCtx;
use crate::plan::duration::parse_rate;
use crate::plan::types::{Action, Degradation, LinkSelector};
use std::time::Duration;
use toml::de::DeValue;

impl Validator<'_> {
    /// `degrade`: links (all by default), at least one degradation, and an
    /// optional `for`.
    pub(super) fn degrade(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let links = self.links(t, ctx);
        let degradation = self.degradation(t);
        Some(Action::Degrade {
            links: links?,
            degradation: degradation?,
            for_: for_?,
        })
    }

    pub(super) fn restore(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        Some(Action::Restore {
            links: self.links(t, ctx)?,
        })
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

    /// The degradation of a degrade step: at least one of its keys.
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
            ..Degradation::default()
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
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, ok};
    use crate::plan::types::*;
    use crate::NodeId;

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
}
