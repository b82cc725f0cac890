//! Judging a run: which checkers a plan selects, their results, and every
//! expectation of the plan held against what was measured.
//!
//! Pure: reads recorded data only, never a process or socket.

use crate::check::availability::{Availability, Latency, Recovery};
use crate::check::verdict::{CheckDetails, CheckResult, Verdict};
use crate::check::{CheckerId, FinalState};
use crate::history::{Op, Outcome};
use crate::plan::{Expectations, Plan};
use crate::report::{Convergence, ExpectationResult, OpCounts};
use std::time::Duration;

/// Runs the checkers the plan selects (expected to hold, or listed in
/// `finds`).
pub(super) fn run_checkers(plan: &Plan, ops: &[Op], final_state: &FinalState) -> Vec<CheckResult> {
    crate::check::run_checkers(&plan.expect.checkers(), ops, final_state)
}

pub(super) fn op_counts(ops: &[Op], elapsed: Duration) -> OpCounts {
    let mut c = OpCounts {
        total: ops.len() as u64,
        ..Default::default()
    };
    for op in ops {
        match op.outcome {
            Outcome::Ok => c.ok += 1,
            Outcome::Fail => c.fail += 1,
            Outcome::Unknown => c.unknown += 1,
        }
    }
    c.per_second = c.total as f64 / elapsed.as_secs_f64().max(1e-3);
    c
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

fn pass_if(ok: bool) -> Verdict {
    if ok {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// The expectation a sample-node style cluster keeps after the final heal:
/// every node at the same commit and chain head.
pub(super) fn convergence(c: &Convergence) -> ExpectationResult {
    ExpectationResult {
        name: "convergence".into(),
        bound: "equal heads".into(),
        measured: match c.seconds {
            Some(s) => format!("{s:.2}s"),
            None => "diverged".into(),
        },
        verdict: pass_if(c.seconds.is_some()),
        message: heads_once(&c.heads),
        not_observed: None,
    }
}

/// Each distinct head once, with the nodes that report it:
/// `n0 n1 n2: commit 747 head 8be0…`.
fn heads_once(heads: &std::collections::BTreeMap<crate::NodeId, String>) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (n, h) in heads {
        match groups.iter_mut().find(|(head, _)| head == h) {
            Some((_, nodes)) => nodes.push(n.to_string()),
            None => groups.push((h.clone(), vec![n.to_string()])),
        }
    }
    groups
        .iter()
        .map(|(h, nodes)| format!("{}: {h}", nodes.join(" ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The expectation an interrupted run cannot meet: it did not run in full.
pub(super) fn completed(end: Duration, duration: Duration, why: &str) -> ExpectationResult {
    ExpectationResult {
        name: "completed".into(),
        bound: "full run".into(),
        measured: format!(
            "{:.1}s of {:.0}s",
            end.as_secs_f64(),
            duration.as_secs_f64()
        ),
        verdict: Verdict::Unknown,
        message: why.to_string(),
        not_observed: None,
    }
}

/// Whether a checker needs what only the final phase (heal, then final
/// reads) provides.
fn needs_final_reads(c: CheckerId) -> bool {
    match c {
        CheckerId::LostWrites
        | CheckerId::LedgerAgreement
        | CheckerId::Set
        | CheckerId::ListAppend => true,
        CheckerId::Linearizable => false,
    }
}

/// An interrupted run never reached its final phase (final heal, recovery
/// after it, convergence, final reads): every expectation that needs it
/// becomes `unknown` with the reason, instead of failing for what the run
/// could not observe. What the run did observe keeps its verdict: a
/// recovery measured slower than the bound, a checker violation found in
/// the history.
pub(super) fn unobserved_after_abort(
    plan: &Plan,
    recovery: &[Recovery],
    checks: &[CheckResult],
    expectations: &mut [ExpectationResult],
    why: &str,
) {
    let reason = format!("not observed: the run was interrupted ({why}) before its final phase");
    for e in expectations.iter_mut() {
        let unobserved = if e.name == "recovery" {
            // Only a recovery measured to be too slow was observed failing;
            // one cut short by the interrupt, and the final heal, were not.
            let bound = plan
                .expect
                .recovery
                .map_or(f64::INFINITY, |b| b.as_secs_f64());
            !recovery
                .iter()
                .any(|r| r.seconds.is_some_and(|s| s > bound))
        } else if e.name == "convergence" {
            true
        } else if let Some(c) = checks.iter().find(|c| c.checker.name() == e.name) {
            // A checker fed by the final reads observed nothing; one fed by
            // the history observed a violation it found, but not the absence
            // of one it must find, nor the history it had no time to gather.
            needs_final_reads(c.checker)
                || c.nothing_to_check
                || (plan.expect.must_find(c.checker) && c.verdict != Verdict::Fail)
        } else {
            false
        };
        if unobserved && e.verdict != Verdict::Pass {
            e.verdict = Verdict::Unknown;
            e.not_observed = Some(reason.clone());
            // The recovery message judges the final heal that never came.
            e.message = if e.message.is_empty() || e.name == "recovery" {
                reason.clone()
            } else {
                format!("{reason}; {}", e.message)
            };
        }
    }
}

/// Holds every expectation of the plan against what was measured.
pub(super) fn judge(
    plan: &Plan,
    avail: &Availability,
    lat: &Latency,
    recovery: &[Recovery],
    final_recovery_s: Option<f64>,
    unexpected_exits: &[String],
    checks: &[CheckResult],
) -> Vec<ExpectationResult> {
    let e = &plan.expect;
    let mut out = Vec::new();
    if let Some(min) = e.availability {
        let r = avail.overall.ratio();
        out.push(ExpectationResult {
            name: "availability".into(),
            bound: format!(">= {:.2}%", min * 100.0),
            measured: format!("{:.2}%", r * 100.0),
            verdict: pass_if(r >= min),
            message: format!(
                "{} of {} requests to nodes expected to serve succeeded",
                avail.overall.served, avail.overall.total
            ),
            not_observed: None,
        });
    }
    for (name, bound, got) in [
        ("p50_latency", e.p50_latency, lat.p50()),
        ("p99_latency", e.p99_latency, lat.p99()),
    ] {
        if let Some(b) = bound {
            // Nothing served is no evidence of speed: the bound fails.
            let got_d = got.map(|g| Duration::from_secs_f64(g.max(0.0) / 1000.0));
            out.push(ExpectationResult {
                name: name.into(),
                bound: format!("<= {}", ms(b)),
                measured: got_d.map_or_else(|| "n/a".to_string(), ms),
                verdict: pass_if(got_d.is_some_and(|g| g <= b)),
                message: match got_d {
                    Some(_) => format!("over {} served requests", lat.count),
                    None => "no request to a node expected to serve was served".to_string(),
                },
                not_observed: None,
            });
        }
    }
    if let Some(b) = e.recovery {
        // A recovery the next change cut short was not observed: it is
        // neither in time nor too slow.
        let observed: Vec<&Recovery> = recovery.iter().filter(|r| !r.cut_short).collect();
        let cut = recovery.len() - observed.len();
        let worst = observed
            .iter()
            .map(|r| r.seconds.unwrap_or(f64::INFINITY))
            .fold(0.0f64, f64::max);
        let never: Vec<String> = observed
            .iter()
            .filter(|r| r.seconds.is_none_or(|s| s > b.as_secs_f64()))
            .map(|r| format!("{} after `{}` at {:.1}s", r.node, r.label, r.at_s))
            .collect();
        let final_ok = final_recovery_s.is_some_and(|s| s <= b.as_secs_f64());
        let measured = if worst.is_finite() {
            format!("{worst:.2}s")
        } else {
            "not recovered".into()
        };
        let mut message = if never.is_empty() {
            "every node served again in time".to_string()
        } else {
            format!("too slow: {}", never.join(", "))
        };
        if cut > 0 {
            message.push_str(&format!(
                "; {cut} recovery window(s) cut short by the next change, not judged"
            ));
        }
        message.push_str(&match final_recovery_s {
            Some(s) => format!("; after the final heal all nodes served in {s:.2}s"),
            None => "; after the final heal not every node served again".into(),
        });
        out.push(ExpectationResult {
            name: "recovery".into(),
            bound: format!("<= {}", ms(b)),
            measured,
            verdict: pass_if(never.is_empty() && final_ok),
            message,
            not_observed: None,
        });
    }
    if e.no_unexpected_exits {
        out.push(ExpectationResult {
            name: "no_unexpected_exits".into(),
            bound: "0".into(),
            measured: unexpected_exits.len().to_string(),
            verdict: pass_if(unexpected_exits.is_empty()),
            message: if unexpected_exits.is_empty() {
                "no node exited on its own".into()
            } else {
                unexpected_exits.join("; ")
            },
            not_observed: None,
        });
    }
    out.extend(checks.iter().map(|c| checker_expectation(e, c)));
    out
}

/// The expectation a plan sets on one checker, held against its result. A
/// checker with nothing to check meets no expectation: it fails, whether
/// the plan expects it to hold or to find a violation.
fn checker_expectation(e: &Expectations, c: &CheckResult) -> ExpectationResult {
    let must_find = e.must_find(c.checker);
    let verdict = if c.nothing_to_check {
        Verdict::Fail
    } else if must_find {
        // A plan that proves a bug passes only when the bug is found.
        match c.verdict {
            Verdict::Fail => Verdict::Pass,
            Verdict::Pass => Verdict::Fail,
            Verdict::Unknown => Verdict::Unknown,
        }
    } else if let (Some(allowed), CheckDetails::LostWrites(d)) = (e.lost_writes, &c.details) {
        // `lost_writes = N` tolerates up to N lost writes, never a value
        // that no one wrote.
        let lost = d.lost_writes as u64;
        let phantoms = !d.phantom_values.is_empty();
        match c.verdict {
            Verdict::Unknown => Verdict::Unknown,
            Verdict::Pass | Verdict::Fail => pass_if(lost <= allowed && !phantoms),
        }
    } else {
        c.verdict
    };
    ExpectationResult {
        name: c.checker.name().to_string(),
        bound: if must_find {
            "must find a violation".into()
        } else {
            "no violation".into()
        },
        measured: format!("{:?}", c.verdict).to_lowercase(),
        verdict,
        message: c.summary.clone(),
        not_observed: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::availability::Ratio;
    use std::collections::BTreeMap;
    use std::path::Path;

    fn plan_with(expect: &str) -> Plan {
        let src = format!("name = \"t\"\nduration = \"30s\"\n[expect]\n{expect}");
        match crate::plan::parse(&src, Path::new("p.toml")) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn availability_of(served: u64, total: u64) -> Availability {
        Availability {
            overall: Ratio { served, total },
            by_class: BTreeMap::new(),
            per_node: Vec::new(),
            phases: Vec::new(),
        }
    }

    #[test]
    fn a_latency_bound_with_nothing_served_fails_as_n_a() {
        let plan = plan_with("p99_latency = \"250ms\"\np50_latency = \"100ms\"\n");
        let out = judge(
            &plan,
            &availability_of(0, 12),
            &Latency::default(),
            &[],
            None,
            &[],
            &[],
        );
        let lat: Vec<&ExpectationResult> = out
            .iter()
            .filter(|e| e.name.ends_with("_latency"))
            .collect();
        assert_eq!(lat.len(), 2);
        for e in lat {
            assert_eq!(e.verdict, Verdict::Fail, "{e:?}");
            assert_eq!(e.measured, "n/a");
        }
    }

    #[test]
    fn a_latency_bound_with_served_requests_is_judged() {
        let plan = plan_with("p99_latency = \"250ms\"\n");
        let fast = Latency {
            count: 3,
            p50_ms: 2.0,
            p99_ms: 3.0,
            ..Latency::default()
        };
        let out = judge(&plan, &availability_of(3, 3), &fast, &[], None, &[], &[]);
        let e = out.iter().find(|e| e.name == "p99_latency");
        assert_eq!(e.map(|e| e.verdict), Some(Verdict::Pass));
        let slow = Latency {
            p99_ms: 300.0,
            ..fast
        };
        let out = judge(&plan, &availability_of(3, 3), &slow, &[], None, &[], &[]);
        let e = out.iter().find(|e| e.name == "p99_latency");
        assert_eq!(e.map(|e| e.verdict), Some(Verdict::Fail));
    }
}

#[cfg(test)]
mod checker_tests {
    #[test]
    fn each_head_is_shown_once_with_its_nodes() {
        let heads: std::collections::BTreeMap<crate::NodeId, String> = [
            (crate::NodeId(0), "commit 7 head ab".to_string()),
            (crate::NodeId(1), "commit 7 head ab".to_string()),
            (crate::NodeId(2), "commit 6 head cd".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            super::heads_once(&heads),
            "n0 n1: commit 7 head ab; n2: commit 6 head cd"
        );
    }

    use super::*;
    use crate::check::{check_linearizable, check_set, CheckerId, LinOptions};
    use std::collections::BTreeMap;

    #[test]
    fn nothing_to_check_fails_every_expectation_on_the_checker() {
        let lin = check_linearizable(&[], &LinOptions::default());
        let set = check_set(&[], &BTreeMap::new());
        for c in [&lin, &set] {
            assert!(c.nothing_to_check);
            let hold = Expectations {
                linearizable: Some(true),
                set: Some(true),
                ..Expectations::default()
            };
            let r = checker_expectation(&hold, c);
            assert_eq!(r.verdict, Verdict::Fail, "{}", r.message);
            assert!(r.message.starts_with("nothing to check"), "{}", r.message);
            let find = Expectations {
                finds: vec![CheckerId::Linearizable, CheckerId::Set],
                ..Expectations::default()
            };
            assert_eq!(checker_expectation(&find, c).verdict, Verdict::Fail);
        }
        // A checker that judged something keeps its verdict.
        let mut judged = lin.clone();
        judged.nothing_to_check = false;
        judged.verdict = Verdict::Pass;
        let hold = Expectations {
            linearizable: Some(true),
            ..Expectations::default()
        };
        assert_eq!(checker_expectation(&hold, &judged).verdict, Verdict::Pass);
    }
}

#[cfg(test)]
mod abort_tests {
    use super::*;
    use crate::check::{check_linearizable, check_lost_writes, LinOptions};
    use std::collections::BTreeMap;
    use std::path::Path;

    fn plan_with(expect: &str) -> Plan {
        let src = format!("name = \"t\"\nduration = \"30s\"\n[expect]\n{expect}");
        match crate::plan::parse(&src, Path::new("p.toml")) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    fn recovery(seconds: Option<f64>) -> Recovery {
        Recovery {
            at_s: 10.0,
            label: "kill".into(),
            node: crate::NodeId(1),
            seconds,
            cut_short: false,
        }
    }

    fn judged_aborted(
        plan: &Plan,
        recovery: &[Recovery],
        checks: &[CheckResult],
    ) -> Vec<ExpectationResult> {
        let avail = crate::check::availability::Availability {
            overall: crate::check::availability::Ratio {
                served: 10,
                total: 10,
            },
            by_class: BTreeMap::new(),
            per_node: Vec::new(),
            phases: Vec::new(),
        };
        let mut out = judge(
            plan,
            &avail,
            &Latency::default(),
            recovery,
            None,
            &[],
            checks,
        );
        unobserved_after_abort(plan, recovery, checks, &mut out, "SIGINT");
        out
    }

    fn named<'a>(out: &'a [ExpectationResult], name: &str) -> &'a ExpectationResult {
        match out.iter().find(|e| e.name == name) {
            Some(e) => e,
            None => panic!("no {name} in {out:?}"),
        }
    }

    #[test]
    fn an_aborted_run_does_not_fail_recovery_or_final_reads_it_never_saw() {
        let plan = plan_with("availability = 0.9\nrecovery = \"5s\"\nlost_writes = 0\n");
        // The node was still recovering when the run was interrupted, and
        // the final heal never happened; no final reads either.
        let lost = check_lost_writes(&[], &BTreeMap::new());
        let out = judged_aborted(&plan, &[recovery(None)], std::slice::from_ref(&lost));
        for name in ["recovery", "lost_writes"] {
            let e = named(&out, name);
            assert_eq!(e.verdict, Verdict::Unknown, "{e:?}");
            let why = e.not_observed.as_deref().unwrap_or("");
            assert!(why.contains("interrupted (SIGINT)"), "{e:?}");
            assert!(e.message.starts_with("not observed"), "{e:?}");
        }
        assert!(!named(&out, "recovery").message.contains("too slow"));
        // What was observed keeps its verdict.
        let avail = named(&out, "availability");
        assert_eq!(avail.verdict, Verdict::Pass);
        assert_eq!(avail.not_observed, None);
    }

    #[test]
    fn an_aborted_run_still_fails_a_recovery_it_measured_too_slow() {
        let plan = plan_with("recovery = \"5s\"\n");
        let out = judged_aborted(&plan, &[recovery(Some(7.5))], &[]);
        let e = named(&out, "recovery");
        assert_eq!(e.verdict, Verdict::Fail, "{e:?}");
        assert_eq!(e.not_observed, None);
    }

    #[test]
    fn an_aborted_run_keeps_a_violation_found_in_the_history() {
        let plan = plan_with("linearizable = true\n");
        let mut lin = check_linearizable(&[], &LinOptions::default());
        lin.nothing_to_check = false;
        lin.verdict = Verdict::Fail;
        let out = judged_aborted(&plan, &[], std::slice::from_ref(&lin));
        assert_eq!(named(&out, "linearizable").verdict, Verdict::Fail);
        // With nothing to check yet, it is unknown rather than a failure.
        let empty = check_linearizable(&[], &LinOptions::default());
        let out = judged_aborted(&plan, &[], std::slice::from_ref(&empty));
        assert_eq!(named(&out, "linearizable").verdict, Verdict::Unknown);
    }
}
