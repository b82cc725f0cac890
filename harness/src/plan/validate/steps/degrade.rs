//! Steps of the degrade family: degrade (links slowed, throttled, reset or
//! stalled on the proxy mesh; packets lost, duplicated, reordered or
//! corrupted on the netns wire; for a while) and restore, with the link
//! selectors both use. Refuses the effects the plan's network cannot make;
//! it only describes degradations, the network backend applies them.

use super::super::primitives::{backticked, describe, int_value, Tbl};
use super::super::{Net, Validator};
use super::StepCtx;
use crate::plan::duration::parse_rate;
use crate::plan::fault_kind::FaultKind;
use crate::plan::types::{Action, Degradation, Distribution, LinkSelector, NetworkMode};
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
        let degradation = self.degradation(t, ctx.network);
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
                            "client links exist only with [workload] via = \"proxy\" or network = \"netns\"",
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

    /// The degradation of a degrade step: at least one of its effects, each
    /// one the plan's network can make (a key it cannot make is one error
    /// and is not read further).
    fn degradation(&mut self, t: &Tbl<'_, '_>, network: Option<Net>) -> Option<Degradation> {
        let mut ok = true;
        let mut refused: Vec<&str> = Vec::new();
        if let Some(net) = network {
            for &key in FaultKind::Degrade.keys() {
                let (Some(v), Some(msg)) = (t.get(key), wrong_network(key, net)) else {
                    continue;
                };
                ok = false;
                refused.push(key);
                self.error(v.span(), t.field(key), msg);
            }
        }
        let given = |key: &str| t.get(key).filter(|_| !refused.contains(&key));
        let mut opt_duration = |this: &mut Self, key: &str, positive: bool| match given(key) {
            None => None,
            Some(_) => {
                let d = this.duration(t, key, positive);
                ok &= d.is_some();
                d
            }
        };
        let latency = opt_duration(self, "latency", false);
        let jitter = opt_duration(self, "jitter", false);
        let gap = opt_duration(self, "gap", true);
        let bandwidth = match given("bandwidth") {
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
        let distribution = match given("distribution") {
            None => Some(Distribution::default()),
            Some(v) => match self.string_value(v, t.field("distribution")) {
                None => None,
                Some((d, span)) => match d.as_str() {
                    "uniform" => Some(Distribution::Uniform),
                    "normal" => Some(Distribution::Normal),
                    _ => {
                        self.error(
                            span,
                            t.field("distribution"),
                            format!("expected \"uniform\" or \"normal\", found {d:?}"),
                        );
                        None
                    }
                },
            },
        };
        ok &= distribution.is_some();
        let mut prob = |this: &mut Self, key: &str| match given(key) {
            None => None,
            Some(_) => {
                let p = this.number(t, key, 0.0, false, 1.0);
                ok &= p.is_some();
                p
            }
        };
        let loss = prob(self, "loss");
        let duplicate = prob(self, "duplicate");
        let reorder = prob(self, "reorder");
        let corrupt = prob(self, "corrupt");
        let reset = prob(self, "reset");
        let stall = prob(self, "stall");
        if !ok {
            return None;
        }
        // Keys that only qualify another key.
        let qualifiers = [
            (
                "jitter",
                "latency",
                "`jitter` varies `latency`; give `latency` too",
            ),
            (
                "gap",
                "reorder",
                "`gap` is how long `reorder` holds a packet back; give `reorder` too",
            ),
            (
                "distribution",
                "jitter",
                "`distribution` is how `jitter` is drawn; give `jitter` too",
            ),
        ];
        for (key, needs, msg) in qualifiers {
            if let (Some(v), None) = (t.get(key), t.get(needs)) {
                ok = false;
                self.error(v.span(), t.field(key), msg);
            }
        }
        if !ok {
            return None;
        }
        let d = Degradation {
            latency,
            jitter,
            distribution: distribution.unwrap_or_default(),
            bandwidth,
            loss,
            duplicate,
            reorder,
            gap,
            corrupt,
            reset,
            stall,
        };
        if d == Degradation::default() {
            let effects: Vec<&str> = FaultKind::Degrade
                .keys()
                .iter()
                .copied()
                .filter(|k| !["at", "fault", "links", "for"].contains(k))
                .filter(|k| network.is_none_or(|net| wrong_network(k, net).is_none()))
                .collect();
            self.error(
                t.span.clone(),
                t.path.clone(),
                format!(
                    "a degrade step needs at least one of {}",
                    backticked(&effects)
                ),
            );
            return None;
        }
        Some(d)
    }
}

/// Why `net` cannot make the degrade key `key`, if it cannot. Under
/// `network = "none"` the step itself is refused, so nothing is said here.
fn wrong_network(key: &str, net: Net) -> Option<String> {
    let needs = FaultKind::Degrade.key_needs(key)?;
    match (needs, net.mode) {
        (NetworkMode::Proxy, NetworkMode::Netns) => {
            let (what, instead) = match key {
                "reset" => ("it resets TCP connections", "`loss` or a partition"),
                "stall" => (
                    "it stalls TCP connections",
                    "`latency`/`bandwidth` or a partition",
                ),
                _ => ("it acts on TCP connections", "a packet-level fault"),
            };
            Some(format!(
                "`{key}` is a proxy-mesh fault ({what}); {} carries packets: use {instead} instead",
                net.said()
            ))
        }
        (NetworkMode::Netns, NetworkMode::Proxy) => {
            let what = match key {
                "gap" => "is how long a reordered packet is held back, a packet-level setting",
                "distribution" => {
                    "is how the jitter of each packet is drawn, a packet-level setting"
                }
                _ => "is a packet-level fault",
            };
            Some(format!(
                "`{key}` {what} that needs network = \"netns\"; {} relays TCP byte streams, not packets",
                net.said()
            ))
        }
        (NetworkMode::Proxy, NetworkMode::Proxy | NetworkMode::None)
        | (NetworkMode::Netns, NetworkMode::Netns | NetworkMode::None)
        | (NetworkMode::None, NetworkMode::Proxy | NetworkMode::Netns | NetworkMode::None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, err_under, ok, ok_under};
    use crate::plan::types::*;
    use crate::NodeId;
    use std::time::Duration;

    const NETNS: &str = "[cluster]\nnetwork = \"netns\"\n";

    /// A degrade step with `body`, after `head` (a cluster or workload).
    fn degrade(head: &str, body: &str) -> String {
        format!("{head}[[step]]\nat = \"1s\"\nfault = \"degrade\"\n{body}")
    }

    fn degradation(p: &Plan) -> &Degradation {
        match &p.steps[0].action {
            Action::Degrade { degradation, .. } => degradation,
            other => panic!("not a degrade step: {other:?}"),
        }
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
            "step[0].links.clients: client links exist only with [workload] via = \"proxy\" or network = \"netns\""
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
    fn under_netns_client_links_always_exist_and_via_is_refused() {
        let step = "[[step]]\nat = \"1s\"\nfault = \"degrade\"\nlatency = \"5ms\"\nlinks = { clients = \"n1\" }\n";
        let p = ok(&format!("{NETNS}{step}"));
        assert_eq!(p.workload.via, ClientRoute::Direct);
        assert!(matches!(
            &p.steps[0].action,
            Action::Degrade { links: LinkSelector::Clients(Target::Nodes(n)), .. } if n == &[NodeId(1)]
        ));
        // The same through `--network netns`, and not under `--network proxy`.
        assert!(matches!(
            &ok_under(NetworkMode::Netns, step).steps[0].action,
            Action::Degrade {
                links: LinkSelector::Clients(_),
                ..
            }
        ));
        assert_eq!(
            err_under(NetworkMode::Proxy, &format!("{NETNS}{step}")),
            "step[0].links.clients: client links exist only with [workload] via = \"proxy\" or network = \"netns\""
        );
        assert_eq!(
            err(&format!("{NETNS}[workload]\nvia = \"proxy\"\n")),
            "workload.via: client proxies are part of the proxy mesh; under network = \"netns\" the workload's traffic always crosses the wire: drop `via`"
        );
        assert_eq!(
            err_under(NetworkMode::Netns, "[workload]\nvia = \"proxy\"\n"),
            "workload.via: client proxies are part of the proxy mesh; under --network netns the workload's traffic always crosses the wire: drop `via`"
        );
        assert_eq!(
            err_under(NetworkMode::None, "[workload]\nvia = \"proxy\"\n"),
            "workload.via: client proxies are part of the proxy mesh, which --network none does not have"
        );
        // `via = "direct"` says what netns does anyway.
        assert_eq!(
            ok(&format!("{NETNS}[workload]\nvia = \"direct\"\n"))
                .workload
                .via,
            ClientRoute::Direct
        );
    }

    #[test]
    fn packet_level_effects_parse_under_netns() {
        let p = ok(&degrade(
            NETNS,
            "latency = \"20ms\"\njitter = \"5ms\"\ndistribution = \"normal\"\nbandwidth = \"1MB/s\"\nloss = 0.1\nduplicate = 0.02\nreorder = 0.25\ngap = \"10ms\"\ncorrupt = 1\n",
        ));
        assert_eq!(
            degradation(&p),
            &Degradation {
                latency: Some(Duration::from_millis(20)),
                jitter: Some(Duration::from_millis(5)),
                distribution: Distribution::Normal,
                bandwidth: Some(1_000_000),
                loss: Some(0.1),
                duplicate: Some(0.02),
                reorder: Some(0.25),
                gap: Some(Duration::from_millis(10)),
                corrupt: Some(1.0),
                reset: None,
                stall: None,
            }
        );
        // Each effect alone is enough; `gap` and `distribution` default.
        for key in ["loss", "duplicate", "reorder", "corrupt"] {
            let p = ok(&degrade(NETNS, &format!("{key} = 0\n")));
            let d = degradation(&p);
            assert_eq!(d.gap, None, "{key}");
            assert_eq!(d.distribution, Distribution::Uniform, "{key}");
        }
        assert_eq!(
            degradation(&ok(&degrade(
                NETNS,
                "latency = \"1ms\"\njitter = \"1ms\"\ndistribution = \"uniform\"\n"
            )))
            .distribution,
            Distribution::Uniform
        );
        // Latency, jitter and bandwidth are made by both networks.
        assert_eq!(
            degradation(&ok(&degrade(NETNS, "bandwidth = 500\n"))).bandwidth,
            Some(500)
        );
    }

    #[test]
    fn packet_level_values_are_checked() {
        assert_eq!(
            err(&degrade(
                NETNS,
                "loss = 1.5\nduplicate = -0.1\nreorder = \"a lot\"\ncorrupt = true\n"
            )),
            [
                "step[0].loss: expected a number from 0 to 1, found 1.5",
                "step[0].duplicate: expected a number from 0 to 1, found -0.1",
                "step[0].reorder: expected a number from 0 to 1, found \"a lot\"",
                "step[0].corrupt: expected a number from 0 to 1, found true",
            ]
            .join("\n")
        );
        assert_eq!(
            err(&degrade(NETNS, "reorder = 0.1\ngap = \"0ms\"\n")),
            "step[0].gap: expected a duration greater than zero"
        );
        assert_eq!(
            err(&degrade(NETNS, "reorder = 0.1\ngap = 5\n")),
            "step[0].gap: expected a duration like \"5s\" or \"250ms\", found 5"
        );
        assert_eq!(
            err(&degrade(
                NETNS,
                "latency = \"1ms\"\njitter = \"1ms\"\ndistribution = \"pareto\"\n"
            )),
            "step[0].distribution: expected \"uniform\" or \"normal\", found \"pareto\""
        );
        assert_eq!(
            err(&degrade(
                NETNS,
                "latency = \"1ms\"\njitter = \"1ms\"\ndistribution = 1\n"
            )),
            "step[0].distribution: expected a string, found 1"
        );
    }

    #[test]
    fn gap_needs_reorder_and_distribution_needs_jitter() {
        assert_eq!(
            err(&degrade(NETNS, "loss = 0.1\ngap = \"5ms\"\n")),
            "step[0].gap: `gap` is how long `reorder` holds a packet back; give `reorder` too"
        );
        assert_eq!(
            err(&degrade(
                NETNS,
                "latency = \"5ms\"\ndistribution = \"normal\"\n"
            )),
            "step[0].distribution: `distribution` is how `jitter` is drawn; give `jitter` too"
        );
        // Alone, each is reported with what it qualifies, not as "nothing".
        assert_eq!(
            err(&degrade(
                NETNS,
                "gap = \"5ms\"\ndistribution = \"normal\"\njitter = \"1ms\"\n"
            )),
            [
                "step[0].gap: `gap` is how long `reorder` holds a packet back; give `reorder` too",
                "step[0].jitter: `jitter` varies `latency`; give `latency` too",
            ]
            .join("\n")
        );
    }

    #[test]
    fn netns_refuses_connection_faults_and_names_the_packet_alternative() {
        assert_eq!(
            err(&degrade(NETNS, "reset = 0.1\n")),
            "step[0].reset: `reset` is a proxy-mesh fault (it resets TCP connections); network = \"netns\" carries packets: use `loss` or a partition instead"
        );
        assert_eq!(
            err(&degrade(NETNS, "latency = \"5ms\"\nstall = 0.1\n")),
            "step[0].stall: `stall` is a proxy-mesh fault (it stalls TCP connections); network = \"netns\" carries packets: use `latency`/`bandwidth` or a partition instead"
        );
        // Refused keys are not also checked as values; others still are.
        assert_eq!(
            err(&degrade(NETNS, "reset = 7\nloss = 2\n")),
            [
                "step[0].reset: `reset` is a proxy-mesh fault (it resets TCP connections); network = \"netns\" carries packets: use `loss` or a partition instead",
                "step[0].loss: expected a number from 0 to 1, found 2",
            ]
            .join("\n")
        );
        assert_eq!(
            err_under(NetworkMode::Netns, &degrade("", "stall = 0.5\n")),
            "step[0].stall: `stall` is a proxy-mesh fault (it stalls TCP connections); --network netns carries packets: use `latency`/`bandwidth` or a partition instead"
        );
    }

    #[test]
    fn proxy_refuses_packet_level_faults() {
        let mesh = "[cluster]\nnetwork = \"proxy\"\n";
        for key in ["loss", "duplicate", "reorder", "corrupt"] {
            assert_eq!(
                err(&degrade(mesh, &format!("{key} = 0.1\n"))),
                format!("step[0].{key}: `{key}` is a packet-level fault that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets")
            );
            // The default network is the proxy mesh.
            assert_eq!(
                err(&degrade("", &format!("{key} = 0.1\n"))),
                format!("step[0].{key}: `{key}` is a packet-level fault that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets")
            );
        }
        assert_eq!(
            err(&degrade("", "reorder = 0.1\ngap = \"5ms\"\n")),
            [
                "step[0].reorder: `reorder` is a packet-level fault that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets",
                "step[0].gap: `gap` is how long a reordered packet is held back, a packet-level setting that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets",
            ]
            .join("\n")
        );
        assert_eq!(
            err(&degrade(
                "",
                "latency = \"5ms\"\njitter = \"1ms\"\ndistribution = \"normal\"\n"
            )),
            "step[0].distribution: `distribution` is how the jitter of each packet is drawn, a packet-level setting that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets"
        );
        // `--network proxy` over a netns plan: the override is named.
        assert_eq!(
            err_under(NetworkMode::Proxy, &degrade(NETNS, "loss = 0.1\n")),
            "step[0].loss: `loss` is a packet-level fault that needs network = \"netns\"; --network proxy relays TCP byte streams, not packets"
        );
        // Connection faults stay the mesh's.
        let p = ok(&degrade("", "reset = 0.1\nstall = 0.2\n"));
        assert_eq!(degradation(&p).reset, Some(0.1));
        assert_eq!(degradation(&p).stall, Some(0.2));
    }

    #[test]
    fn an_empty_degrade_lists_what_its_network_can_make() {
        assert_eq!(
            err(&degrade("", "")),
            "step[0]: a degrade step needs at least one of `latency`, `jitter`, `bandwidth`, `reset`, `stall`"
        );
        assert_eq!(
            err(&degrade(NETNS, "")),
            "step[0]: a degrade step needs at least one of `latency`, `jitter`, `distribution`, `bandwidth`, `loss`, `duplicate`, `reorder`, `gap`, `corrupt`"
        );
        // An unknown network (the cluster's is invalid): every key.
        assert_eq!(
            err(&degrade("[cluster]\nnetwork = \"tap\"\n", "")),
            [
                "cluster.network: expected \"proxy\", \"netns\" or \"none\", found \"tap\"",
                "step[0]: a degrade step needs at least one of `latency`, `jitter`, `distribution`, `bandwidth`, `loss`, `duplicate`, `reorder`, `gap`, `corrupt`, `reset`, `stall`",
            ]
            .join("\n")
        );
    }

    #[test]
    fn no_network_refuses_the_step_whatever_its_keys() {
        let none = "[cluster]\nnetwork = \"none\"\n";
        for body in ["loss = 0.1\n", "reset = 0.1\n", "gap = \"1ms\"\n"] {
            assert_eq!(
                err(&degrade(none, body)),
                "step[0].fault: a degrade step needs network faults, but [cluster] network = \"none\""
            );
        }
        assert_eq!(
            err_under(NetworkMode::None, &degrade(NETNS, "loss = 0.1\n")),
            "step[0].fault: a degrade step needs network faults, but --network none"
        );
    }

    #[test]
    fn the_override_replaces_the_network_and_the_file_value_is_still_checked() {
        let p = ok_under(NetworkMode::Netns, &degrade("", "loss = 0.5\n"));
        assert_eq!(p.cluster.network, NetworkMode::Netns);
        assert_eq!(degradation(&p).loss, Some(0.5));
        let p = ok_under(NetworkMode::Proxy, &degrade(NETNS, "reset = 0.5\n"));
        assert_eq!(p.cluster.network, NetworkMode::Proxy);
        assert_eq!(
            ok_under(NetworkMode::None, NETNS).cluster.network,
            NetworkMode::None
        );
        assert_eq!(
            err_under(NetworkMode::Netns, "[cluster]\nnetwork = \"tap\"\n"),
            "cluster.network: expected \"proxy\", \"netns\" or \"none\", found \"tap\""
        );
    }
}
