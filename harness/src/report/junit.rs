//! JUnit XML for CI: a suite per plan, a test case per expectation; failure
//! messages carry the measured figure and the bound. It renders verdicts
//! already reached and never judges anything itself.

use super::{PlanRun, Report};
use crate::check::verdict::Verdict;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn suite(r: &Report) -> TestSuite {
    let mut suite = TestSuite::new(r.plan.name.clone());
    for e in &r.expectations {
        let status = match (e.verdict, &e.not_observed) {
            // An interrupted run could not observe it: skipped with the
            // reason, never a failure (the run's own `completed` case is
            // the error CI sees).
            (Verdict::Fail | Verdict::Unknown, Some(why)) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("{}: {why}", e.name));
                s.set_description(e.message.clone());
                s
            }
            (Verdict::Pass, _) => TestCaseStatus::success(),
            (Verdict::Fail, None) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "{}: measured {}, bound {}",
                    e.name, e.measured, e.bound
                ));
                s.set_description(e.message.clone());
                s
            }
            // Neither proven nor refuted (a checker ran out of budget, the run
            // was interrupted): an error, so CI does not take it as a pass.
            (Verdict::Unknown, None) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!("{}: unknown ({})", e.name, e.measured));
                s.set_description(e.message.clone());
                s
            }
        };
        let mut case = TestCase::new(e.name.clone(), status);
        case.set_classname(format!("rift.{}", r.plan.name));
        case.set_system_out(e.message.clone());
        suite.add_test_case(case);
    }
    suite.set_time(Duration::from_secs_f64(r.wall_seconds.max(0.0)));
    // What reproduces the run, for whoever reads the CI result.
    suite.add_property(Property::new("seed", r.seed.to_string()));
    suite.add_property(Property::new("label", r.label.clone().unwrap_or_default()));
    suite.add_property(Property::new("run_id", r.run_id.clone()));
    suite.add_property(Property::new("plan_sha256", r.plan.hash.clone()));
    suite
}

/// One document for one or many runs.
pub fn junit_xml(reports: &[&Report]) -> String {
    let mut junit = quick_junit::Report::new("rift");
    for r in reports {
        junit.add_test_suite(suite(r));
    }
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize JUnit report: {e} -->\n"))
}

/// One document for a run of many plans: a suite per plan; a plan that could
/// not run is a suite with one errored case, a skipped plan one skipped case.
pub fn junit_xml_runs(runs: &[PlanRun]) -> String {
    let mut junit = quick_junit::Report::new("rift");
    for run in runs {
        match run {
            PlanRun::Ran { report, .. } => {
                junit.add_test_suite(suite(report));
            }
            PlanRun::CannotRun { plan, error, .. } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!("could not run: {error}"));
                let mut case = TestCase::new("run", s);
                case.set_classname(format!("rift.{plan}"));
                let mut suite = TestSuite::new(plan.clone());
                suite.add_test_case(case);
                junit.add_test_suite(suite);
            }
            PlanRun::Skipped { plan, reason } => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(reason.clone());
                let mut case = TestCase::new("run", s);
                case.set_classname(format!("rift.{plan}"));
                let mut suite = TestSuite::new(plan.clone());
                suite.add_test_case(case);
                junit.add_test_suite(suite);
            }
        }
    }
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize JUnit report: {e} -->\n"))
}
