//! The `slow` step: a target kept running on a fraction of a CPU (`cpu`),
//! for `for` or until the run's final heal. Reads only the keys
//! [`FaultKind::keys`](crate::plan::FaultKind::keys) gives `slow`.

use super::super::primitives::{describe, float_value, Tbl};
use super::super::Validator;
use super::StepCtx;
use crate::plan::types::Action;
use std::time::Duration;

/// The most CPUs a `slow` step may leave a node (a quota of this many
/// periods); more is no slowdown on any machine rift runs on.
pub(crate) const MAX_CPU: f64 = 1024.0;

impl Validator<'_> {
    /// `slow`: a target and `cpu`, the CPUs it keeps (0 < cpu <= 1024).
    pub(super) fn slow(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        let cpu = match t.get("cpu") {
            None => {
                self.error(
                    t.span.clone(),
                    t.field("cpu"),
                    "missing; a slow step needs `cpu`, the share of one CPU the node keeps, greater than 0 (0.1 is 10% of one CPU)",
                );
                None
            }
            Some(v) => {
                let n =
                    float_value(v.get_ref()).filter(|n| n.is_finite() && *n > 0.0 && *n <= MAX_CPU);
                if n.is_none() {
                    self.error(
                        v.span(),
                        t.field("cpu"),
                        format!(
                            "expected a number of CPUs greater than 0 and at most {MAX_CPU} (0.1 is 10% of one CPU, 2 is two CPUs), found {}",
                            describe(v.get_ref())
                        ),
                    );
                }
                n
            }
        };
        Some(Action::Slow {
            target: target?,
            cpu: cpu?,
            for_: for_?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, ok};
    use crate::plan::types::*;
    use std::time::Duration;

    fn slow(body: &str) -> String {
        format!("[[step]]\nat = \"1s\"\nfault = \"slow\"\n{body}")
    }

    #[test]
    fn cpu_is_a_positive_share() {
        let p = ok(&slow("target = \"leader\"\ncpu = 0.05\nfor = \"3s\"\n"));
        assert_eq!(
            p.steps[0].action,
            Action::Slow {
                target: Target::Leader,
                cpu: 0.05,
                for_: Some(Duration::from_secs(3)),
            }
        );
        assert_eq!(
            ok(&slow("target = \"n1\"\ncpu = 2\n")).steps[0].action,
            Action::Slow {
                target: Target::Nodes(vec![crate::NodeId(1)]),
                cpu: 2.0,
                for_: None,
            }
        );
        for (bad, found) in [
            ("0", "0"),
            ("-0.5", "-0.5"),
            ("2000", "2000"),
            ("\"10%\"", "\"10%\""),
        ] {
            assert_eq!(
                err(&slow(&format!("target = \"n1\"\ncpu = {bad}\n"))),
                format!("step[0].cpu: expected a number of CPUs greater than 0 and at most 1024 (0.1 is 10% of one CPU, 2 is two CPUs), found {found}")
            );
        }
        assert_eq!(
            err(&slow("target = \"n1\"\n")),
            "step[0].cpu: missing; a slow step needs `cpu`, the share of one CPU the node keeps, greater than 0 (0.1 is 10% of one CPU)"
        );
        // The full message names file, line and column of the value.
        let src = "name = \"t\"\nduration = \"30s\"\n[[step]]\nat = \"1s\"\nfault = \"slow\"\ntarget = \"n1\"\ncpu = -1\n[[step]]\nat = \"2s\"\nfault = \"pause\"\ntarget = \"n1\"\nhow = \"thaw\"\n";
        let e = crate::plan::parse_with(
            src,
            std::path::Path::new("p.toml"),
            &crate::plan::Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.contains("p.toml:7:7: step[0].cpu: expected a number of CPUs greater than 0"),
            "{e}"
        );
        assert!(
            e.contains("p.toml:12:7: step[1].how: expected \"sigstop\""),
            "{e}"
        );
        assert_eq!(
            err(&slow("target = \"n1\"\ncpu = 0.5\nsignal = 9\n")),
            "step[0].signal: `signal` does not apply to a slow step; a slow step takes `at`, `fault`, `target`, `cpu`, `for`"
        );
    }
}
