//! The fault vocabulary's nouns: node names, targets, partition topologies
//! and signals, parsed from plan strings against the cluster's size. Pure
//! functions: they resolve names, never pick nodes (the nemesis does that).

use super::types::{Target, Topology};
use crate::NodeId;

/// What a target string may be, for messages.
const TARGET_FORMS: &str = "n0.., random, random(k), leader, followers, minority, majority, all";

/// `n3` in a cluster of `size`.
pub fn parse_node(s: &str, size: usize) -> Result<NodeId, String> {
    match NodeId::parse(s) {
        Some(id) if id.index() < size => Ok(id),
        Some(id) => Err(format!("unknown node `{id}`; {}", node_range(size))),
        None => Err(format!(
            "expected a node name ({}), found \"{s}\"",
            node_range_short(size)
        )),
    }
}

fn node_range_short(size: usize) -> String {
    match size {
        0 | 1 => "n0".to_string(),
        _ => format!("n0 to n{}", size - 1),
    }
}

fn node_range(size: usize) -> String {
    match size {
        0 | 1 => "this cluster has only n0".to_string(),
        _ => format!("this cluster has n0 to n{}", size - 1),
    }
}

/// A target written as one string: a node name or a selector word.
pub fn parse_target(s: &str, size: usize) -> Result<Target, String> {
    let t = s.trim();
    let target = match t {
        "random" => Target::Random(1),
        "leader" => Target::Leader,
        "followers" => Target::Followers,
        "minority" => Target::Minority,
        "majority" => Target::Majority,
        "all" => Target::All,
        _ => {
            if let Some(inner) = t.strip_prefix("random(").and_then(|r| r.strip_suffix(')')) {
                let k: usize = inner.trim().parse().map_err(|_| {
                    format!(
                        "expected random(k) with k a whole number from 1 to {size}, found \"{s}\""
                    )
                })?;
                if k == 0 || k > size {
                    return Err(format!(
                        "random({k}) needs k from 1 to {size} (the cluster size)"
                    ));
                }
                Target::Random(k)
            } else if t.starts_with('n') && NodeId::parse(t).is_some() {
                Target::Nodes(vec![parse_node(t, size)?])
            } else {
                return Err(format!("expected a target ({TARGET_FORMS}), found \"{s}\""));
            }
        }
    };
    check_not_empty(&target, size)?;
    Ok(target)
}

/// Rejects selectors that name no node in a cluster this small.
fn check_not_empty(target: &Target, size: usize) -> Result<(), String> {
    match target {
        Target::Followers if size < 2 => {
            Err("`followers` is empty in a 1-node cluster".to_string())
        }
        Target::Minority if size < 3 => Err(format!(
            "`minority` is empty in a {size}-node cluster (it is floor((n-1)/2) nodes)"
        )),
        Target::Nodes(_)
        | Target::Random(_)
        | Target::Leader
        | Target::Followers
        | Target::Minority
        | Target::Majority
        | Target::All => Ok(()),
    }
}

/// Nodes written as a list: every name must exist, none twice, at least one.
pub fn nodes_target(ids: Vec<NodeId>) -> Result<Target, String> {
    if ids.is_empty() {
        return Err("expected at least one node in the list".to_string());
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(format!("node `{id}` is listed twice"));
        }
    }
    Ok(Target::Nodes(ids))
}

/// A topology written as one string.
pub fn parse_topology(s: &str, size: usize) -> Result<Topology, String> {
    let t = s.trim();
    let (topology, min) = match t {
        "majority-minority" => (Topology::MajorityMinority, 2),
        "halves" => (Topology::Halves, 2),
        "bridge" => (Topology::Bridge, 3),
        "ring" => (Topology::Ring, 3),
        _ => {
            let Some(inner) = t.strip_prefix("isolate(").and_then(|r| r.strip_suffix(')')) else {
                return Err(format!(
                    "expected a topology (isolate(target), majority-minority, halves, bridge, ring, or groups like [[\"n0\"], [\"n1\", \"n2\"]]), found \"{s}\""
                ));
            };
            let target = parse_target(inner, size)?;
            if target == Target::All {
                return Err("isolate(all) cuts nothing off; isolate fewer nodes".to_string());
            }
            if let Target::Random(k) = target {
                if k >= size {
                    return Err(format!(
                        "isolate(random({k})) would isolate every node of {size}; use fewer"
                    ));
                }
            }
            if let Target::Nodes(ids) = &target {
                if ids.len() >= size {
                    return Err("isolating every node cuts nothing off".to_string());
                }
            }
            (Topology::Isolate(target), 2)
        }
    };
    if size < min {
        return Err(format!(
            "topology `{t}` needs at least {min} nodes, the cluster has {size}"
        ));
    }
    Ok(topology)
}

/// Explicit groups: non-empty, disjoint, every node in exactly one group
/// (checked only with `require_cover`), at least two groups. Groups are
/// given as resolved node ids.
pub fn groups_topology(
    groups: Vec<Vec<NodeId>>,
    size: usize,
    require_cover: bool,
) -> Result<Topology, String> {
    if groups.len() < 2 {
        return Err("expected at least two groups to cut apart".to_string());
    }
    let mut seen = vec![false; size];
    for (g, group) in groups.iter().enumerate() {
        if group.is_empty() {
            return Err(format!("group {g} is empty"));
        }
        for id in group {
            match seen.get_mut(id.index()) {
                Some(s) if *s => return Err(format!("node `{id}` is in more than one group")),
                Some(s) => *s = true,
                None => return Err(format!("unknown node `{id}`; {}", node_range(size))),
            }
        }
    }
    let missing: Vec<String> = (0..size)
        .filter(|&i| !seen[i])
        .map(|i| NodeId(i).to_string())
        .collect();
    if require_cover && !missing.is_empty() {
        return Err(format!(
            "every node must be in exactly one group; missing: {}",
            missing.join(", ")
        ));
    }
    Ok(Topology::Groups(groups))
}

/// Signal by name (`SIGTERM`, `TERM`, case-insensitive) or number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| format!("expected a signal number from 1 to 64, found {t}"));
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "KILL" => libc::SIGKILL,
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "HUP" => libc::SIGHUP,
        "ABRT" => libc::SIGABRT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "SEGV" => libc::SIGSEGV,
        "BUS" => libc::SIGBUS,
        "ALRM" => libc::SIGALRM,
        _ => {
            return Err(format!(
                "unknown signal \"{s}\"; use SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGABRT, SIGUSR1, SIGUSR2, SIGSEGV, SIGBUS, SIGALRM or a number (pause and resume are their own faults)"
            ))
        }
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_by_word_and_name() {
        assert_eq!(parse_target("n3", 5), Ok(Target::Nodes(vec![NodeId(3)])));
        assert_eq!(parse_target("random", 5), Ok(Target::Random(1)));
        assert_eq!(parse_target("random(2)", 5), Ok(Target::Random(2)));
        assert_eq!(parse_target("random( 5 )", 5), Ok(Target::Random(5)));
        assert_eq!(parse_target("leader", 5), Ok(Target::Leader));
        assert_eq!(parse_target("followers", 5), Ok(Target::Followers));
        assert_eq!(parse_target("minority", 5), Ok(Target::Minority));
        assert_eq!(parse_target("majority", 5), Ok(Target::Majority));
        assert_eq!(parse_target("all", 5), Ok(Target::All));
    }

    #[test]
    fn bad_targets_say_why() {
        assert_eq!(
            parse_target("n5", 5),
            Err("unknown node `n5`; this cluster has n0 to n4".into())
        );
        assert_eq!(
            parse_target("random(6)", 5),
            Err("random(6) needs k from 1 to 5 (the cluster size)".into())
        );
        assert!(parse_target("random(0)", 5).is_err());
        assert!(parse_target("random(x)", 5).is_err());
        assert!(parse_target("random(2", 5).is_err());
        assert!(parse_target("n01", 5).is_err());
        assert!(parse_target("", 5).is_err());
        assert_eq!(
            parse_target("leeder", 5),
            Err("expected a target (n0.., random, random(k), leader, followers, minority, majority, all), found \"leeder\"".into())
        );
        assert!(parse_target("minority", 2).is_err());
        assert!(parse_target("followers", 1).is_err());
        assert_eq!(
            nodes_target(vec![]),
            Err("expected at least one node in the list".into())
        );
        assert_eq!(
            nodes_target(vec![NodeId(1), NodeId(1)]),
            Err("node `n1` is listed twice".into())
        );
    }

    #[test]
    fn topologies_by_name() {
        assert_eq!(
            parse_topology("majority-minority", 5),
            Ok(Topology::MajorityMinority)
        );
        assert_eq!(parse_topology("halves", 4), Ok(Topology::Halves));
        assert_eq!(parse_topology("bridge", 5), Ok(Topology::Bridge));
        assert_eq!(parse_topology("ring", 5), Ok(Topology::Ring));
        assert_eq!(
            parse_topology("isolate(n1)", 3),
            Ok(Topology::Isolate(Target::Nodes(vec![NodeId(1)])))
        );
        assert_eq!(
            parse_topology("isolate(leader)", 3),
            Ok(Topology::Isolate(Target::Leader))
        );
        assert!(parse_topology("isolate(n9)", 3).is_err());
        assert!(parse_topology("isolate(all)", 3).is_err());
        assert!(parse_topology("isolate(random(3))", 3).is_err());
        assert!(parse_topology("isolate(n0)", 1).is_err());
        assert!(parse_topology("ring", 2).is_err());
        assert!(parse_topology("split", 5).is_err());
    }

    #[test]
    fn groups_must_be_disjoint_non_empty_and_cover_the_cluster() {
        let g = |v: &[&[usize]]| -> Vec<Vec<NodeId>> {
            v.iter()
                .map(|g| g.iter().map(|&i| NodeId(i)).collect())
                .collect()
        };
        assert_eq!(
            groups_topology(g(&[&[0, 1], &[2, 3, 4]]), 5, true),
            Ok(Topology::Groups(g(&[&[0, 1], &[2, 3, 4]])))
        );
        assert_eq!(
            groups_topology(g(&[&[0, 1], &[1, 2]]), 3, true),
            Err("node `n1` is in more than one group".into())
        );
        assert_eq!(
            groups_topology(g(&[&[0, 1], &[]]), 2, true),
            Err("group 1 is empty".into())
        );
        assert_eq!(
            groups_topology(g(&[&[0], &[1]]), 4, true),
            Err("every node must be in exactly one group; missing: n2, n3".into())
        );
        assert!(groups_topology(g(&[&[0, 1, 2]]), 3, true).is_err());
        assert!(groups_topology(g(&[&[0], &[7]]), 2, true).is_err());
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGKILL"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("KILL"), Ok(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse_signal("SIGQUIT"), Ok(libc::SIGQUIT));
        assert_eq!(parse_signal("9"), Ok(9));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("SIGFOO").is_err());
        assert!(parse_signal("").is_err());
    }
}
