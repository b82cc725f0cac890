//! Partition topologies as sets of cut directed links.

use crate::plan::Topology;
use crate::NodeId;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

/// Directed links `(from, to)` that carry nothing while a partition holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cut {
    pub links: BTreeSet<(NodeId, NodeId)>,
    /// The groups the topology split the nodes into, for reports.
    pub groups: Vec<Vec<NodeId>>,
}

/// Chooses the concrete cut for a topology. `isolated` are the nodes an
/// `isolate(target)` topology resolved to. With `oneway`, only links leaving
/// the first group are cut: its nodes cannot reach the others, which still
/// reach them.
pub fn cut_links(
    topology: &Topology,
    size: usize,
    isolated: &[NodeId],
    oneway: bool,
    rng: &mut ChaCha8Rng,
) -> Cut {
    let mut shuffled: Vec<NodeId> = (0..size).map(NodeId).collect();
    shuffled.shuffle(rng);
    let sorted = |mut v: Vec<NodeId>| {
        v.sort();
        v
    };
    let rest = |taken: &[NodeId]| -> Vec<NodeId> {
        (0..size)
            .map(NodeId)
            .filter(|n| !taken.contains(n))
            .collect()
    };
    // Most topologies are groups: links between different groups are cut.
    let groups: Vec<Vec<NodeId>> = match topology {
        Topology::Isolate(_) => {
            let mut g: Vec<Vec<NodeId>> = isolated.iter().map(|n| vec![*n]).collect();
            let others = rest(isolated);
            if !others.is_empty() {
                g.push(others);
            }
            g
        }
        Topology::MajorityMinority => {
            let k = size.saturating_sub(1) / 2;
            let minority = sorted(shuffled[..k].to_vec());
            vec![minority.clone(), rest(&minority)]
        }
        Topology::Halves => {
            let half = sorted(shuffled[..size / 2].to_vec());
            vec![half.clone(), rest(&half)]
        }
        Topology::Groups(gs) => {
            let mut g = gs.clone();
            let listed: Vec<NodeId> = gs.iter().flatten().copied().collect();
            let others = rest(&listed);
            if !others.is_empty() {
                g.push(others);
            }
            g
        }
        Topology::Bridge => {
            if size < 3 {
                return Cut {
                    links: BTreeSet::new(),
                    groups: vec![(0..size).map(NodeId).collect()],
                };
            }
            let bridge = shuffled[0];
            let a = sorted(shuffled[1..1 + (size - 1) / 2].to_vec());
            let b = sorted(shuffled[1 + (size - 1) / 2..].to_vec());
            let mut links = BTreeSet::new();
            for &x in &a {
                for &y in &b {
                    links.insert((x, y));
                    if !oneway {
                        links.insert((y, x));
                    }
                }
            }
            let mut ga = a.clone();
            ga.push(bridge);
            let mut gb = b.clone();
            gb.push(bridge);
            return Cut {
                links,
                groups: vec![sorted(ga), sorted(gb)],
            };
        }
        Topology::Ring => {
            // Each node sees its ring neighbours up to distance d: a different
            // majority for each node, and no majority that all agree on.
            let d = (size / 2).div_ceil(2);
            let mut links = BTreeSet::new();
            for i in 0..size {
                for j in 0..size {
                    let dist = (i + size - j) % size;
                    let dist = dist.min(size - dist);
                    if i != j && dist > d {
                        links.insert((shuffled[i], shuffled[j]));
                    }
                }
            }
            let groups = (0..size)
                .map(|i| {
                    sorted(
                        (0..size)
                            .filter(|&j| {
                                let dist = (i + size - j) % size;
                                dist.min(size - dist) <= d
                            })
                            .map(|j| shuffled[j])
                            .collect(),
                    )
                })
                .collect();
            return Cut { links, groups };
        }
    };
    let mut links = BTreeSet::new();
    for (gi, g) in groups.iter().enumerate() {
        for (hi, h) in groups.iter().enumerate() {
            if gi == hi || (oneway && gi != 0) {
                continue;
            }
            for &x in g {
                for &y in h {
                    links.insert((x, y));
                }
            }
        }
    }
    Cut { links, groups }
}

/// Nodes that can serve under `cut` with only `up` nodes running: those in
/// every maximal group of mutually connected nodes that holds a majority of
/// the cluster. With a unique majority side that is the side; under an
/// ambiguous topology (bridge, ring) only the nodes every majority shares.
pub fn components(size: usize, up: &[NodeId], cut: &BTreeSet<(NodeId, NodeId)>) -> Vec<NodeId> {
    let majority = size / 2 + 1;
    if up.len() < majority {
        return Vec::new();
    }
    let connected = |a: NodeId, b: NodeId| !cut.contains(&(a, b)) && !cut.contains(&(b, a));
    let mut cliques: Vec<Vec<NodeId>> = Vec::new();
    bron_kerbosch(
        Vec::new(),
        up.to_vec(),
        Vec::new(),
        &connected,
        &mut cliques,
    );
    let big: Vec<&Vec<NodeId>> = cliques.iter().filter(|c| c.len() >= majority).collect();
    let Some(first) = big.first() else {
        return Vec::new();
    };
    let mut out: Vec<NodeId> = first
        .iter()
        .copied()
        .filter(|n| big.iter().all(|c| c.contains(n)))
        .collect();
    out.sort();
    out
}

/// Every maximal clique of the "can talk both ways" graph over `p`, by
/// Bron–Kerbosch with Tomita's pivot: only candidates the pivot is not
/// linked to are branched on, so an uncut cluster of any size is one
/// branch instead of 2^n.
fn bron_kerbosch(
    r: Vec<NodeId>,
    mut p: Vec<NodeId>,
    mut x: Vec<NodeId>,
    connected: &impl Fn(NodeId, NodeId) -> bool,
    out: &mut Vec<Vec<NodeId>>,
) {
    if p.is_empty() && x.is_empty() {
        out.push(r);
        return;
    }
    let linked = |u: NodeId, v: NodeId| u != v && connected(u, v);
    let pivot = p
        .iter()
        .chain(x.iter())
        .copied()
        .max_by_key(|&u| p.iter().filter(|&&w| linked(u, w)).count());
    let branches: Vec<NodeId> = p
        .iter()
        .copied()
        .filter(|&v| pivot.is_none_or(|u| !linked(u, v)))
        .collect();
    for v in branches {
        let mut r2 = r.clone();
        r2.push(v);
        let p2 = p.iter().copied().filter(|&w| linked(w, v)).collect();
        let x2 = x.iter().copied().filter(|&w| linked(w, v)).collect();
        bron_kerbosch(r2, p2, x2, connected, out);
        p.retain(|&w| w != v);
        x.push(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn n(v: &[usize]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(11)
    }

    #[test]
    fn majority_minority_serves_only_the_majority() {
        let cut = cut_links(&Topology::MajorityMinority, 5, &[], false, &mut rng());
        assert_eq!(cut.groups[0].len(), 2);
        assert_eq!(cut.links.len(), 2 * 3 * 2);
        let serving = components(5, &n(&[0, 1, 2, 3, 4]), &cut.links);
        assert_eq!(serving, cut.groups[1]);
    }

    #[test]
    fn isolating_one_node_leaves_the_rest_serving() {
        let cut = cut_links(
            &Topology::Isolate(crate::plan::Target::Leader),
            3,
            &n(&[1]),
            false,
            &mut rng(),
        );
        assert_eq!(components(3, &n(&[0, 1, 2]), &cut.links), n(&[0, 2]));
        // Kill one of the two: no majority is left.
        assert!(components(3, &n(&[0, 1]), &cut.links).is_empty());
    }

    #[test]
    fn oneway_cuts_only_links_leaving_the_first_group() {
        let cut = cut_links(
            &Topology::Groups(vec![n(&[0]), n(&[1, 2])]),
            3,
            &[],
            true,
            &mut rng(),
        );
        assert!(cut.links.contains(&(NodeId(0), NodeId(1))));
        assert!(!cut.links.contains(&(NodeId(1), NodeId(0))));
    }

    #[test]
    fn bridge_serves_only_the_bridge_node() {
        let cut = cut_links(&Topology::Bridge, 5, &[], false, &mut rng());
        let serving = components(5, &n(&[0, 1, 2, 3, 4]), &cut.links);
        assert_eq!(serving.len(), 1);
        assert!(cut.groups.iter().all(|g| g.contains(&serving[0])));
    }

    #[test]
    fn ring_gives_every_node_a_different_majority_and_no_common_one() {
        let cut = cut_links(&Topology::Ring, 5, &[], false, &mut rng());
        assert!(cut.groups.iter().all(|g| g.len() == 3));
        assert!(components(5, &n(&[0, 1, 2, 3, 4]), &cut.links).is_empty());
    }

    #[test]
    fn no_cut_everyone_up_serves() {
        let all = n(&[0, 1, 2]);
        assert_eq!(components(3, &all, &BTreeSet::new()), all);
    }

    /// Every maximal clique by brute force over all subsets.
    fn maximal_cliques(
        nodes: &[NodeId],
        connected: &impl Fn(NodeId, NodeId) -> bool,
    ) -> Vec<Vec<NodeId>> {
        let k = nodes.len();
        let is_clique = |m: u32| {
            (0..k).all(|i| {
                (0..k).all(|j| {
                    i == j
                        || m & (1 << i) == 0
                        || m & (1 << j) == 0
                        || connected(nodes[i], nodes[j])
                })
            })
        };
        let mut out = Vec::new();
        for m in 1u32..(1 << k) {
            if is_clique(m) && (0..k).all(|i| m & (1 << i) != 0 || !is_clique(m | (1 << i))) {
                out.push(
                    (0..k)
                        .filter(|i| m & (1 << i) != 0)
                        .map(|i| nodes[i])
                        .collect(),
                );
            }
        }
        out
    }

    #[test]
    fn pivoted_search_finds_exactly_the_maximal_cliques() {
        use rand::Rng;
        let mut rng = rng();
        for _ in 0..300 {
            let size = rng.random_range(1..8);
            let nodes: Vec<NodeId> = (0..size).map(NodeId).collect();
            let mut cut = BTreeSet::new();
            for a in 0..size {
                for b in 0..size {
                    if a != b && rng.random_bool(0.3) {
                        cut.insert((NodeId(a), NodeId(b)));
                    }
                }
            }
            let connected = |a: NodeId, b: NodeId| !cut.contains(&(a, b)) && !cut.contains(&(b, a));
            let mut got = Vec::new();
            bron_kerbosch(Vec::new(), nodes.clone(), Vec::new(), &connected, &mut got);
            let mut got: Vec<Vec<NodeId>> = got
                .into_iter()
                .map(|mut c| {
                    c.sort();
                    c
                })
                .collect();
            got.sort();
            let mut want = maximal_cliques(&nodes, &connected);
            want.sort();
            assert_eq!(got, want, "cut {cut:?}");
        }
    }

    #[test]
    fn a_large_uncut_cluster_is_one_clique() {
        let all = n(&(0..40).collect::<Vec<_>>());
        assert_eq!(components(40, &all, &BTreeSet::new()), all);
    }
}
