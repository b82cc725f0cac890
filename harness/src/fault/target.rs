//! Resolves a plan target to concrete nodes at the moment a step runs.

use crate::plan::Target;
use crate::NodeId;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Nodes a target names, sorted. `candidates` are the nodes a random choice
/// may pick from (for instance, nodes that are still running); `leader` is the
/// current leader if one is known. An unknown leader resolves to nothing and
/// the caller reports it.
pub fn resolve(
    target: &Target,
    size: usize,
    candidates: &[NodeId],
    leader: Option<NodeId>,
    rng: &mut ChaCha8Rng,
) -> Vec<NodeId> {
    let mut pool: Vec<NodeId> = candidates.to_vec();
    pool.sort();
    let mut pick = |k: usize| -> Vec<NodeId> {
        pool.shuffle(rng);
        let mut v: Vec<NodeId> = pool.iter().copied().take(k).collect();
        v.sort();
        v
    };
    let mut out = match target {
        Target::Nodes(nodes) => nodes.clone(),
        Target::Random(k) => pick(*k),
        Target::Leader => leader.into_iter().collect(),
        Target::Followers => (0..size)
            .map(NodeId)
            .filter(|n| Some(*n) != leader)
            .collect(),
        Target::Minority => pick(size.saturating_sub(1) / 2),
        Target::Majority => pick(size / 2 + 1),
        Target::All => (0..size).map(NodeId).collect(),
    };
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn all(n: usize) -> Vec<NodeId> {
        (0..n).map(NodeId).collect()
    }

    #[test]
    fn sizes_of_minority_and_majority() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in 1..8 {
            let min = resolve(&Target::Minority, n, &all(n), None, &mut rng);
            let maj = resolve(&Target::Majority, n, &all(n), None, &mut rng);
            assert_eq!(min.len(), (n - 1) / 2);
            assert_eq!(maj.len(), n / 2 + 1);
        }
    }

    #[test]
    fn random_choices_follow_the_seed() {
        let pick = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            resolve(&Target::Random(2), 5, &all(5), None, &mut rng)
        };
        assert_eq!(pick(7), pick(7));
        assert!((0..20).any(|s| pick(s) != pick(7)));
    }

    #[test]
    fn leader_and_followers() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert_eq!(
            resolve(&Target::Leader, 3, &all(3), Some(NodeId(1)), &mut rng),
            vec![NodeId(1)]
        );
        assert!(resolve(&Target::Leader, 3, &all(3), None, &mut rng).is_empty());
        assert_eq!(
            resolve(&Target::Followers, 3, &all(3), Some(NodeId(1)), &mut rng),
            vec![NodeId(0), NodeId(2)]
        );
    }

    #[test]
    fn random_never_picks_outside_candidates() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..50 {
            let got = resolve(
                &Target::Random(1),
                5,
                &[NodeId(3), NodeId(4)],
                None,
                &mut rng,
            );
            assert!(got == vec![NodeId(3)] || got == vec![NodeId(4)]);
        }
    }
}
