//! The shrinking algorithm, generic and pure: a list of faults and an
//! [`Oracle`] that says whether a candidate list still fails. The cluster
//! runner is one oracle among others (the tests use deterministic and flaky
//! functions).
//!
//! Moves, in order: delete faults delta-debugging style (halves, then
//! quarters, ... then single faults), then shorten the faults that remain
//! ([`Shorten`]: halve their durations down to a floor), then delete again
//! if shortening changed anything, until neither move helps or the oracle
//! is exhausted. Without exhaustion the result fails and is 1-minimal:
//! removing any single fault, or shortening any single fault once more,
//! makes it pass.

use std::fmt;

/// A fault whose durations can be made shorter.
pub trait Shorten: Sized {
    /// The fault with its durations halved (not below the floor it was
    /// built with); `None` when it has none or they are at the floor.
    fn shorter(&self) -> Option<Self>;
}

/// What a candidate tries, for progress lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Move {
    /// The starting list, as it is.
    Original,
    /// Delete the faults at these indices of the current list (a chunk of
    /// `chunks`).
    Delete { indices: Vec<usize>, chunks: usize },
    /// Shorten every fault at once.
    ShortenAll,
    /// Shorten the fault at this index of the current list.
    Shorten { index: usize },
}

impl fmt::Display for Move {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Move::Original => write!(f, "the original schedule"),
            Move::Delete { indices, chunks } => {
                let list: Vec<String> = indices.iter().map(|i| format!("#{i}")).collect();
                write!(f, "delete {} (1/{chunks} of the faults)", list.join(","))
            }
            Move::ShortenAll => write!(f, "halve every duration"),
            Move::Shorten { index } => write!(f, "halve the durations of #{index}"),
        }
    }
}

/// Answers whether a candidate still fails.
pub trait Oracle<T> {
    /// Whether `faults` still fails. `what` says how the candidate was made.
    fn fails(&mut self, faults: &[T], what: &Move) -> bool;

    /// True once the oracle will not run anything more (its budget is
    /// spent, or it was interrupted); the search then stops with what it
    /// has.
    fn exhausted(&self) -> bool {
        false
    }
}

impl<T, F: FnMut(&[T]) -> bool> Oracle<T> for F {
    fn fails(&mut self, faults: &[T], _what: &Move) -> bool {
        self(faults)
    }
}

/// The result of [`shrink`].
#[derive(Clone, Debug, PartialEq)]
pub struct Shrunk<T> {
    /// The smallest failing list found (the input, if nothing smaller
    /// failed).
    pub faults: Vec<T>,
    /// Candidates the oracle was asked about (cached repeats excluded).
    pub candidates: usize,
    /// The search stopped because the oracle was exhausted, so the result
    /// may not be minimal.
    pub exhausted: bool,
}

/// Shrinks `faults`, which the caller has seen fail. Every candidate the
/// oracle is asked about is a sub-list of the current one (in order) with
/// some faults shortened; the same candidate is never asked twice.
pub fn shrink<T, O>(faults: Vec<T>, oracle: &mut O) -> Shrunk<T>
where
    T: Shorten + Clone + PartialEq,
    O: Oracle<T> + ?Sized,
{
    let mut s = Search {
        oracle,
        seen: Vec::new(),
        candidates: 0,
    };
    let mut current = faults;
    loop {
        current = s.delete(current);
        if s.oracle.exhausted() {
            break;
        }
        let (shortened, changed) = s.shorten(current);
        current = shortened;
        if !changed || s.oracle.exhausted() {
            break;
        }
    }
    Shrunk {
        faults: current,
        candidates: s.candidates,
        exhausted: s.oracle.exhausted(),
    }
}

struct Search<'o, T, O: ?Sized> {
    oracle: &'o mut O,
    /// Every candidate asked about, with its answer.
    seen: Vec<(Vec<T>, bool)>,
    candidates: usize,
}

impl<T, O> Search<'_, T, O>
where
    T: Shorten + Clone + PartialEq,
    O: Oracle<T> + ?Sized,
{
    fn ask(&mut self, c: &[T], what: Move) -> bool {
        if let Some((_, known)) = self.seen.iter().find(|(s, _)| s.as_slice() == c) {
            return *known;
        }
        if self.oracle.exhausted() {
            return false;
        }
        self.candidates += 1;
        let fails = self.oracle.fails(c, &what);
        self.seen.push((c.to_vec(), fails));
        fails
    }

    /// ddmin by complements: split into `n` chunks, try without each; on a
    /// failure keep it and coarsen, else refine, until single faults.
    fn delete(&mut self, mut current: Vec<T>) -> Vec<T> {
        let mut n = current.len().min(2);
        while !current.is_empty() && !self.oracle.exhausted() {
            let len = current.len();
            let mut reduced = false;
            for chunk in chunks(len, n) {
                let rest: Vec<T> = current
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !chunk.contains(i))
                    .map(|(_, f)| f.clone())
                    .collect();
                let what = Move::Delete {
                    indices: chunk.clone(),
                    chunks: n,
                };
                if self.ask(&rest, what) {
                    current = rest;
                    n = n.saturating_sub(1).max(2).min(current.len());
                    reduced = true;
                    break;
                }
                if self.oracle.exhausted() {
                    return current;
                }
            }
            if !reduced {
                if n >= len {
                    break;
                }
                n = (n * 2).min(len);
            }
        }
        current
    }

    /// Halves durations: all at once while that still fails, then fault by
    /// fault, each as far as it still fails. Whether anything changed.
    fn shorten(&mut self, mut current: Vec<T>) -> (Vec<T>, bool) {
        let mut changed = false;
        loop {
            let all: Vec<T> = current
                .iter()
                .map(|f| f.shorter().unwrap_or_else(|| f.clone()))
                .collect();
            let movable = current.iter().filter(|f| f.shorter().is_some()).count();
            // With one movable fault this is the per-fault move below.
            if movable < 2 || !self.ask(&all, Move::ShortenAll) {
                break;
            }
            current = all;
            changed = true;
        }
        for i in 0..current.len() {
            while let Some(s) = current[i].shorter() {
                if self.oracle.exhausted() {
                    return (current, changed);
                }
                let mut c = current.clone();
                c[i] = s;
                if !self.ask(&c, Move::Shorten { index: i }) {
                    break;
                }
                current = c;
                changed = true;
            }
        }
        (current, changed)
    }
}

/// `len` indices split into `n` contiguous chunks of nearly equal size.
fn chunks(len: usize, n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for k in 0..n {
        let end = (k + 1) * len / n;
        if end > start {
            out.push((start..end).collect());
        }
        start = end;
    }
    out
}

/// How the attempts of one candidate went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Attempts that failed the same way as the original run.
    pub failed: usize,
    /// Attempts made.
    pub ran: usize,
    /// Attempts that could not count (the run could not run, was aborted,
    /// or failed differently); included in `ran`.
    pub other: usize,
}

impl Tally {
    /// At least `need` failures.
    pub fn reproduced(&self, need: usize) -> bool {
        self.failed >= need
    }
}

/// One attempt's outcome, as [`m_of_r`] counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Failed at least one of the original run's checkers or expectations.
    SameFailure,
    /// Passed.
    Passed,
    /// Failed otherwise, was aborted, or could not run: does not count.
    Other,
    /// Not run: the budget is spent or the shrink was interrupted.
    NotRun,
}

/// Runs up to `attempts` attempts, stopping as soon as `need` failures are
/// reached or can no longer be.
pub fn m_of_r(need: usize, attempts: usize, mut attempt: impl FnMut() -> Attempt) -> Tally {
    let mut t = Tally::default();
    while t.ran < attempts && t.failed < need && t.failed + (attempts - t.ran) >= need {
        match attempt() {
            Attempt::SameFailure => t.failed += 1,
            Attempt::Passed => {}
            Attempt::Other => t.other += 1,
            Attempt::NotRun => break,
        }
        t.ran += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// A fault with an id and one duration that halves down to 500 ms.
    #[derive(Clone, Debug, PartialEq)]
    struct F {
        id: usize,
        dur: Duration,
    }

    const FLOOR: Duration = Duration::from_millis(500);

    impl Shorten for F {
        fn shorter(&self) -> Option<F> {
            if self.dur <= FLOOR {
                return None;
            }
            Some(F {
                id: self.id,
                dur: (self.dur / 2).max(FLOOR),
            })
        }
    }

    /// An id-only fault: nothing to shorten.
    #[derive(Clone, Debug, PartialEq)]
    struct Id(usize);

    impl Shorten for Id {
        fn shorter(&self) -> Option<Id> {
            None
        }
    }

    fn faults(n: usize, secs: u64) -> Vec<F> {
        (0..n)
            .map(|id| F {
                id,
                dur: Duration::from_secs(secs),
            })
            .collect()
    }

    /// Fails iff faults 3 and 7 are both present with duration >= 2s.
    fn three_and_seven(c: &[F]) -> bool {
        let long = |id| {
            c.iter()
                .any(|f| f.id == id && f.dur >= Duration::from_secs(2))
        };
        long(3) && long(7)
    }

    #[test]
    fn finds_the_two_faults_that_matter_at_their_shortest_failing_durations() {
        let mut calls = 0;
        let mut oracle = |c: &[F]| {
            calls += 1;
            three_and_seven(c)
        };
        let r = shrink(faults(10, 16), &mut oracle);
        assert!(three_and_seven(&r.faults), "{r:?}");
        let ids: Vec<usize> = r.faults.iter().map(|f| f.id).collect();
        assert_eq!(ids, [3, 7]);
        // 16s halves to 8, 4, 2; 1s passes.
        assert!(r.faults.iter().all(|f| f.dur == Duration::from_secs(2)));
        // 1-minimal: removing any one fault passes.
        for i in 0..r.faults.len() {
            let mut c = r.faults.clone();
            c.remove(i);
            assert!(!three_and_seven(&c));
        }
        // No duration can be halved again and still fail.
        for i in 0..r.faults.len() {
            let mut c = r.faults.clone();
            if let Some(s) = c[i].shorter() {
                c[i] = s;
                assert!(!three_and_seven(&c));
            }
        }
        assert!(!r.exhausted);
        assert_eq!(r.candidates, calls);
        assert!(calls < 40, "{calls} candidates");
    }

    #[test]
    fn durations_stop_at_the_floor() {
        // Fails with fault 1 present at all.
        let mut oracle = |c: &[F]| c.iter().any(|f| f.id == 1);
        let r = shrink(faults(4, 3), &mut oracle);
        assert_eq!(r.faults, [F { id: 1, dur: FLOOR }]);
    }

    #[test]
    fn a_schedule_that_fails_without_any_fault_shrinks_to_none() {
        let mut oracle = |_: &[F]| true;
        let r = shrink(faults(5, 1), &mut oracle);
        assert!(r.faults.is_empty());
    }

    #[test]
    fn an_exhausted_oracle_stops_the_search_with_a_failing_list() {
        struct Budget(usize);
        impl Oracle<F> for Budget {
            fn fails(&mut self, c: &[F], _: &Move) -> bool {
                self.0 = self.0.saturating_sub(1);
                three_and_seven(c)
            }
            fn exhausted(&self) -> bool {
                self.0 == 0
            }
        }
        let mut o = Budget(3);
        let r = shrink(faults(10, 16), &mut o);
        assert!(r.exhausted);
        assert!(three_and_seven(&r.faults));
        assert!(r.candidates <= 3);
    }

    #[test]
    fn moves_read_as_what_they_try() {
        let m = Move::Delete {
            indices: vec![2, 3],
            chunks: 4,
        };
        assert_eq!(m.to_string(), "delete #2,#3 (1/4 of the faults)");
        assert_eq!(
            Move::Shorten { index: 1 }.to_string(),
            "halve the durations of #1"
        );
    }

    #[test]
    fn chunks_cover_every_index_once() {
        for len in 0..12 {
            for n in 1..=len.max(1) {
                let all: Vec<usize> = chunks(len, n).concat();
                assert_eq!(all, (0..len).collect::<Vec<_>>(), "len {len} n {n}");
            }
        }
    }

    #[test]
    fn m_of_r_stops_once_decided() {
        // 2 of 3: two failures end it after two attempts.
        let mut n = 0;
        let t = m_of_r(2, 3, || {
            n += 1;
            Attempt::SameFailure
        });
        assert_eq!((t.failed, t.ran, n), (2, 2, 2));
        assert!(t.reproduced(2));
        // Two passes first: 2 of 3 can no longer be reached.
        let mut n = 0;
        let t = m_of_r(2, 3, || {
            n += 1;
            Attempt::Passed
        });
        assert_eq!((t.failed, t.ran, n), (0, 2, 2));
        assert!(!t.reproduced(2));
        // A different failure does not count.
        let mut seq = [Attempt::Other, Attempt::SameFailure, Attempt::SameFailure].into_iter();
        let t = m_of_r(2, 3, || seq.next().unwrap_or(Attempt::NotRun));
        assert_eq!((t.failed, t.ran, t.other), (2, 3, 1));
        // A spent budget stops the count.
        let t = m_of_r(2, 3, || Attempt::NotRun);
        assert_eq!((t.failed, t.ran), (0, 0));
    }

    #[test]
    fn m_of_r_with_a_flaky_oracle() {
        // Fails on every other attempt: 2 of 3 is reached on attempt 3
        // when the first fails, never when the first passes.
        let mut k = 0u32;
        let mut flaky = || {
            k += 1;
            if !k.is_multiple_of(2) {
                Attempt::SameFailure
            } else {
                Attempt::Passed
            }
        };
        let t = m_of_r(2, 3, &mut flaky);
        assert_eq!((t.failed, t.ran), (2, 3));
        let t = m_of_r(2, 3, &mut flaky);
        // k continues at 4 (pass), 5 (fail), 6 (pass).
        assert_eq!((t.failed, t.ran), (1, 3));
        assert!(!t.reproduced(2));
    }

    #[test]
    fn shrinking_with_a_flaky_oracle_keeps_only_what_reproduced() {
        // The real failure needs faults 1 and 4; the oracle counts 2 of 3
        // attempts, and every third attempt passes whatever it runs.
        let mut k = 0usize;
        let mut attempts = 0usize;
        let mut oracle = |c: &[Id]| {
            let t = m_of_r(2, 3, || {
                k += 1;
                attempts += 1;
                let real = c.iter().any(|f| f.0 == 1) && c.iter().any(|f| f.0 == 4);
                if real && !k.is_multiple_of(3) {
                    Attempt::SameFailure
                } else {
                    Attempt::Passed
                }
            });
            t.reproduced(2)
        };
        let r = shrink((0..6).map(Id).collect(), &mut oracle);
        assert_eq!(r.faults, [Id(1), Id(4)]);
    }

    /// Every subset of `n` faults (as bit masks) that fails, by brute force.
    fn brute_force(n: usize, fails: &dyn Fn(u32) -> bool) -> Vec<bool> {
        (0..1u32 << n).map(fails).collect()
    }

    fn mask(c: &[Id]) -> u32 {
        c.iter().fold(0, |m, f| m | 1 << f.0)
    }

    fn check_against_brute_force(n: usize, table: &[bool]) -> Result<(), TestCaseError> {
        let full = (1u32 << n) - 1;
        prop_assume!(table[full as usize]);
        let mut oracle = |c: &[Id]| table[mask(c) as usize];
        let r = shrink((0..n).map(Id).collect(), &mut oracle);
        let m = mask(&r.faults);
        // A subset, in order, each fault once.
        let ids: Vec<usize> = r.faults.iter().map(|f| f.0).collect();
        prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        prop_assert!(table[m as usize], "result {ids:?} does not fail");
        // 1-minimal: every subset one fault smaller passes.
        for f in &ids {
            prop_assert!(
                !table[(m & !(1 << f)) as usize],
                "{ids:?} without {f} still fails"
            );
        }
        // No smaller than the smallest failing subset.
        let smallest = (0..=full)
            .filter(|s| table[*s as usize])
            .map(u32::count_ones)
            .min()
            .unwrap_or(0);
        prop_assert!(m.count_ones() >= smallest);
        Ok(())
    }

    proptest! {
        #[test]
        fn any_oracle_gives_a_failing_1_minimal_subset(
            n in 1usize..=8,
            bits in proptest::collection::vec(any::<bool>(), 256),
        ) {
            let table = brute_force(n, &|s| bits[s as usize]);
            check_against_brute_force(n, &table)?;
        }

        #[test]
        fn monotone_oracles_give_a_failing_1_minimal_subset(
            n in 1usize..=8,
            causes in proptest::collection::vec(0u32..256, 1..4),
        ) {
            // Fails iff the candidate contains one of the causes entirely.
            let causes: Vec<u32> = causes.iter().map(|c| c & ((1 << n) - 1)).collect();
            let table = brute_force(n, &|s| causes.iter().any(|c| s & c == *c));
            check_against_brute_force(n, &table)?;
        }
    }
}
