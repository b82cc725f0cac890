//! Steps rendered back into the table a `[[step]]` of a plan contains:
//! every key as a plan writes it (durations as strings the parser accepts,
//! targets and topologies by name), keys at their default left out. Parsing
//! the rendered table as a `[[step]]` gives the same [`Step`] back.
//!
//! Pure: used by the report (the nemesis' concrete schedule) and by tools
//! that turn a recorded schedule into a plan.

use super::duration::format_duration;
use super::types::{
    Action, ClockChange, Degradation, Distribution, LinkSelector, PauseHow, Step, Target, Topology,
};
use serde_json::{Map, Value};

/// The keys of a disk step's faults, each only when set.
fn disk_keys(m: &mut Map<String, Value>, f: &crate::disk::DiskFaults) {
    let errno = |e: crate::disk::Errno| Value::from(super::errno_name(e));
    if let Some(e) = f.fsync {
        m.insert("fsync".into(), errno(e));
    }
    if let Some(e) = f.write {
        m.insert("write".into(), errno(e));
    }
    if let Some(e) = f.read {
        m.insert("read".into(), errno(e));
    }
    if let Some(d) = f.latency {
        m.insert("latency".into(), duration(d));
    }
    if let Some(d) = f.jitter {
        m.insert("jitter".into(), duration(d));
    }
    if let Some(p) = f.corrupt {
        m.insert("corrupt".into(), Value::from(p));
    }
}

/// The `[[step]]` table of `step`: `at`, `fault`, then its keys.
pub fn step_table(step: &Step) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("at".into(), duration(step.at));
    m.insert("fault".into(), Value::from(step.action.kind().name()));
    match &step.action {
        Action::Kill {
            target,
            signal,
            restart_after,
            power_loss,
        } => {
            m.insert("target".into(), target_value(target));
            if *signal != libc::SIGKILL {
                m.insert("signal".into(), Value::from(*signal));
            }
            if let Some(d) = restart_after {
                m.insert("restart_after".into(), duration(*d));
            }
            if let Some(p) = power_loss {
                m.insert("lose_unsynced".into(), Value::Bool(true));
                if p.torn {
                    m.insert("torn".into(), Value::Bool(true));
                }
            }
        }
        Action::Disk {
            target,
            faults,
            for_,
        } => {
            m.insert("target".into(), target_value(target));
            disk_keys(&mut m, faults);
            insert_for(&mut m, *for_);
        }
        Action::Restart { target } | Action::Resume { target } => {
            m.insert("target".into(), target_value(target));
        }
        Action::Pause { target, for_, how } => {
            m.insert("target".into(), target_value(target));
            match how {
                PauseHow::Sigstop => {}
                PauseHow::Freeze => {
                    m.insert("how".into(), Value::from(how.name()));
                }
            }
            insert_for(&mut m, *for_);
        }
        Action::Slow { target, cpu, for_ } => {
            m.insert("target".into(), target_value(target));
            m.insert("cpu".into(), Value::from(*cpu));
            insert_for(&mut m, *for_);
        }
        Action::Partition {
            topology,
            oneway,
            for_,
        } => {
            m.insert("topology".into(), topology_value(topology));
            if *oneway {
                m.insert("oneway".into(), Value::Bool(true));
            }
            insert_for(&mut m, *for_);
        }
        Action::Heal => {}
        Action::Degrade {
            links,
            degradation,
            for_,
        } => {
            if let Some(v) = links_value(links) {
                m.insert("links".into(), v);
            }
            degradation_keys(&mut m, degradation);
            insert_for(&mut m, *for_);
        }
        Action::Restore { links } => {
            if let Some(v) = links_value(links) {
                m.insert("links".into(), v);
            }
        }
        Action::Clock {
            target,
            change,
            for_,
        } => {
            m.insert("target".into(), target_value(target));
            match change {
                ClockChange::Offset(o) => {
                    m.insert("offset".into(), Value::from(o.to_string()));
                }
                ClockChange::Rate(r) => {
                    m.insert("rate".into(), Value::from(*r));
                }
                ClockChange::Strobe { offset, every } => {
                    let mut t = Map::new();
                    t.insert("offset".into(), Value::from(offset.to_string()));
                    t.insert("every".into(), duration(*every));
                    m.insert("strobe".into(), Value::Object(t));
                }
            }
            insert_for(&mut m, *for_);
        }
    }
    m
}

/// The step as TOML text: `[[step]]` and one `key = value` line per key.
pub fn step_toml(step: &Step) -> String {
    let mut out = String::from("[[step]]\n");
    for (k, v) in step_table(step) {
        out.push_str(&format!("{} = {}\n", toml_key(&k), toml_value(&v)));
    }
    out
}

/// A JSON value as a TOML value: strings, numbers and booleans are written
/// alike (a JSON string's escapes are TOML's), arrays item by item, objects
/// as inline tables. TOML has no null: it becomes an empty string.
pub fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "\"\"".into(),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => v.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        Value::from(k).to_string()
    }
}

/// A duration as plans write it (`"12500ms"`, `"3s"`).
pub fn duration(d: std::time::Duration) -> Value {
    Value::from(format_duration(d))
}

fn insert_for(m: &mut Map<String, Value>, for_: Option<std::time::Duration>) {
    if let Some(d) = for_ {
        m.insert("for".into(), duration(d));
    }
}

/// A target as plans name it: `"leader"`, `"random(2)"`, `"n2"`, or a list
/// of names.
pub fn target_value(target: &Target) -> Value {
    match target {
        Target::Nodes(ids) if ids.len() == 1 => Value::from(ids[0].to_string()),
        Target::Nodes(ids) => {
            Value::Array(ids.iter().map(|n| Value::from(n.to_string())).collect())
        }
        Target::Random(1) => Value::from("random"),
        Target::Random(k) => Value::from(format!("random({k})")),
        Target::Leader => Value::from("leader"),
        Target::Followers => Value::from("followers"),
        Target::Minority => Value::from("minority"),
        Target::Majority => Value::from("majority"),
        Target::All => Value::from("all"),
    }
}

/// A target as one line of text (a list joined with `,`), for tables.
pub fn target_text(target: &Target) -> String {
    match target_value(target) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// A topology as plans write it: `"isolate(leader)"`, `"halves"`, or groups.
pub fn topology_value(topology: &Topology) -> Value {
    match topology {
        Topology::Isolate(Target::Nodes(ids)) if ids.len() != 1 => {
            // Plans cannot write this (a list isolates as groups); shown
            // for reading, it does not parse back.
            Value::from(format!(
                "isolate({})",
                ids.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        }
        Topology::Isolate(target) => Value::from(format!("isolate({})", target_text(target))),
        Topology::MajorityMinority => Value::from("majority-minority"),
        Topology::Halves => Value::from("halves"),
        Topology::Bridge => Value::from("bridge"),
        Topology::Ring => Value::from("ring"),
        Topology::Groups(groups) => Value::Array(
            groups
                .iter()
                .map(|g| Value::Array(g.iter().map(|n| Value::from(n.to_string())).collect()))
                .collect(),
        ),
    }
}

/// `links` as plans write it; `None` for all links (the default).
pub fn links_value(links: &LinkSelector) -> Option<Value> {
    match links {
        LinkSelector::All => None,
        LinkSelector::Nodes(target) => Some(target_value(target)),
        LinkSelector::Links(pairs) => Some(Value::Array(
            pairs
                .iter()
                .map(|(a, b)| {
                    Value::Array(vec![Value::from(a.to_string()), Value::from(b.to_string())])
                })
                .collect(),
        )),
        LinkSelector::Clients(target) => {
            let mut m = Map::new();
            m.insert("clients".into(), target_value(target));
            Some(Value::Object(m))
        }
    }
}

fn degradation_keys(m: &mut Map<String, Value>, d: &Degradation) {
    let Degradation {
        latency,
        jitter,
        distribution,
        bandwidth,
        loss,
        duplicate,
        reorder,
        gap,
        corrupt,
        reset,
        stall,
    } = d;
    if let Some(l) = latency {
        m.insert("latency".into(), duration(*l));
    }
    if let Some(j) = jitter {
        m.insert("jitter".into(), duration(*j));
    }
    match distribution {
        Distribution::Uniform => {}
        Distribution::Normal => {
            m.insert("distribution".into(), Value::from("normal"));
        }
    }
    if let Some(b) = bandwidth {
        m.insert("bandwidth".into(), Value::from(*b));
    }
    for (key, p) in [
        ("loss", loss),
        ("duplicate", duplicate),
        ("reorder", reorder),
        ("corrupt", corrupt),
        ("reset", reset),
        ("stall", stall),
    ] {
        if let Some(p) = p {
            m.insert(key.into(), Value::from(*p));
        }
    }
    if let Some(g) = gap {
        m.insert("gap".into(), duration(*g));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{NetworkMode, Target};
    use crate::NodeId;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn step(action: Action) -> Step {
        Step {
            at: ms(12_500),
            action,
            line: 1,
        }
    }

    #[test]
    fn a_kill_renders_as_the_plan_writes_it() {
        let s = step(Action::Kill {
            target: Target::Leader,
            signal: libc::SIGKILL,
            restart_after: Some(ms(3000)),
            power_loss: None,
        });
        assert_eq!(
            serde_json::Value::Object(step_table(&s)).to_string(),
            r#"{"at":"12500ms","fault":"kill","restart_after":"3s","target":"leader"}"#
        );
    }

    /// Every action, in each form a plan can write, parses back the same.
    #[test]
    fn every_action_round_trips_through_the_plan_parser() {
        let n = |i: usize| NodeId(i);
        let every_target = [
            Target::Nodes(vec![n(2)]),
            Target::Nodes(vec![n(0), n(3)]),
            Target::Random(1),
            Target::Random(2),
            Target::Leader,
            Target::Followers,
            Target::Minority,
            Target::Majority,
            Target::All,
        ];
        let mut actions = Vec::new();
        for t in &every_target {
            actions.push(Action::Kill {
                target: t.clone(),
                signal: libc::SIGTERM,
                restart_after: None,
                power_loss: None,
            });
            for torn in [false, true] {
                actions.push(Action::Kill {
                    target: t.clone(),
                    signal: libc::SIGKILL,
                    restart_after: Some(ms(1000)),
                    power_loss: Some(crate::plan::PowerLoss { torn }),
                });
            }
            use crate::disk::{DiskFaults, Errno};
            for faults in [
                DiskFaults {
                    fsync: Some(Errno::Eio),
                    ..DiskFaults::default()
                },
                DiskFaults {
                    write: Some(Errno::Enospc),
                    read: Some(Errno::Eio),
                    latency: Some(ms(20)),
                    jitter: Some(ms(5)),
                    corrupt: Some(0.0025),
                    ..DiskFaults::default()
                },
            ] {
                actions.push(Action::Disk {
                    target: t.clone(),
                    faults,
                    for_: Some(ms(3000)),
                });
            }
            actions.push(Action::Restart { target: t.clone() });
            for how in PauseHow::ALL {
                actions.push(Action::Pause {
                    target: t.clone(),
                    for_: Some(ms(1500)),
                    how,
                });
            }
            actions.push(Action::Slow {
                target: t.clone(),
                cpu: 0.15,
                for_: Some(ms(2500)),
            });
            actions.push(Action::Resume { target: t.clone() });
            for change in [
                ClockChange::Offset(crate::plan::ClockOffset {
                    negative: true,
                    magnitude: ms(10_250),
                }),
                ClockChange::Offset(crate::plan::ClockOffset {
                    negative: false,
                    magnitude: ms(3000),
                }),
                ClockChange::Rate(0.25),
                ClockChange::Strobe {
                    offset: crate::plan::ClockOffset {
                        negative: false,
                        magnitude: ms(5000),
                    },
                    every: ms(200),
                },
            ] {
                actions.push(Action::Clock {
                    target: t.clone(),
                    change,
                    for_: Some(ms(4000)),
                });
            }
            actions.push(Action::Restore {
                links: LinkSelector::Clients(t.clone()),
            });
            if *t != Target::All {
                actions.push(Action::Restore {
                    links: LinkSelector::Nodes(t.clone()),
                });
            }
        }
        for t in [
            Target::Nodes(vec![n(4)]),
            Target::Leader,
            Target::Followers,
            Target::Minority,
            Target::Majority,
            Target::Random(2),
        ] {
            actions.push(Action::Partition {
                topology: Topology::Isolate(t),
                oneway: true,
                for_: None,
            });
        }
        for topology in [
            Topology::MajorityMinority,
            Topology::Halves,
            Topology::Bridge,
            Topology::Ring,
            Topology::Groups(vec![vec![n(0), n(1)], vec![n(2), n(3), n(4)]]),
        ] {
            actions.push(Action::Partition {
                topology,
                oneway: false,
                for_: Some(ms(2000)),
            });
        }
        actions.push(Action::Heal);
        actions.push(Action::Restore {
            links: LinkSelector::All,
        });
        actions.push(Action::Restore {
            links: LinkSelector::Links(vec![(n(0), n(1)), (n(2), n(0))]),
        });
        let proxy_only = Degradation {
            latency: Some(ms(40)),
            jitter: Some(ms(5)),
            bandwidth: Some(123_456),
            reset: Some(0.25),
            stall: Some(0.125),
            ..Degradation::default()
        };
        let netns_only = Degradation {
            latency: Some(ms(40)),
            jitter: Some(ms(5)),
            distribution: Distribution::Normal,
            bandwidth: Some(1_000_000),
            loss: Some(0.05),
            duplicate: Some(0.01),
            reorder: Some(0.5),
            gap: Some(ms(7)),
            corrupt: Some(0.001),
            ..Degradation::default()
        };
        let mut proxy = actions.clone();
        let mut netns = actions;
        proxy.push(Action::Degrade {
            links: LinkSelector::Nodes(Target::Leader),
            degradation: proxy_only,
            for_: Some(ms(800)),
        });
        netns.push(Action::Degrade {
            links: LinkSelector::All,
            degradation: netns_only,
            for_: None,
        });
        for (network, list) in [(NetworkMode::Proxy, proxy), (NetworkMode::Netns, netns)] {
            for a in list {
                crate::fault::random::tests::round_trip(&step(a), network);
            }
        }
    }
}
