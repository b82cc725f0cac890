//! Steps rendered back into the table a `[[step]]` of a plan contains:
//! every key as a plan writes it (durations as strings the parser accepts,
//! targets and topologies by name), keys at their default left out. Parsing
//! the rendered table as a `[[step]]` gives the same [`Step`] back.
//!
//! Pure: used by the report (the nemesis' concrete schedule) and by tools
//! that turn a recorded schedule into a plan.

use super::duration::format_duration;
use super::types::{Action, Degradation, Distribution, LinkSelector, Step, Target, Topology};
use serde_json::{Map, Value};

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
        } => {
            m.insert("target".into(), target_value(target));
            if *signal != libc::SIGKILL {
                m.insert("signal".into(), Value::from(*signal));
            }
            if let Some(d) = restart_after {
                m.insert("restart_after".into(), duration(*d));
            }
        }
        Action::Restart { target } | Action::Resume { target } => {
            m.insert("target".into(), target_value(target));
        }
        Action::Pause { target, for_ } => {
            m.insert("target".into(), target_value(target));
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
    }
    m
}

/// The step as TOML text: `[[step]]` and one `key = value` line per key.
pub fn step_toml(step: &Step) -> String {
    let mut out = String::from("[[step]]\n");
    for (k, v) in step_table(step) {
        // JSON strings, numbers, booleans and arrays of them are TOML too.
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
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
        Target::Nodes(ids) => Value::Array(ids.iter().map(|n| Value::from(n.to_string())).collect()),
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
            // No plan string isolates several named nodes; as groups, the
            // rest of the cluster is unknown here, so list the isolated ones
            // as the one group a plan would pair with the others.
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
