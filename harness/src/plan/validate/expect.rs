//! The `[expect]` section: bounds (availability, latencies, recovery), the
//! checkers expected to hold, and `finds` (checkers that must report a
//! violation), each checked against the workload it needs. Checkers are
//! named by [`CheckerId`]; it never runs one.

use super::primitives::{backticked, describe, suggest, Tbl};
use super::Validator;
use crate::check::CheckerId;
use crate::plan::types::{Expectations, WorkloadKind, WorkloadSpec};

const EXPECT_KEYS: &[&str] = &[
    "availability",
    "p50_latency",
    "p99_latency",
    "recovery",
    "no_unexpected_exits",
    "linearizable",
    "lost_writes",
    "ledger_agreement",
    "set",
    "list_append",
    "finds",
];

impl Validator<'_> {
    pub(super) fn expect(
        &mut self,
        e: &Tbl<'_, '_>,
        workload: Option<&WorkloadSpec>,
    ) -> Option<Expectations> {
        self.unknown_keys(e, EXPECT_KEYS);
        let mut ok = true;
        let mut x = Expectations::default();
        macro_rules! opt {
            ($key:literal, $read:expr) => {
                match e.get($key) {
                    None => None,
                    Some(_) => {
                        let r = $read;
                        ok &= r.is_some();
                        r
                    }
                }
            };
        }
        x.availability = opt!(
            "availability",
            self.number(e, "availability", 0.0, false, 1.0)
        );
        x.p50_latency = opt!("p50_latency", self.duration(e, "p50_latency", true));
        x.p99_latency = opt!("p99_latency", self.duration(e, "p99_latency", true));
        x.recovery = opt!("recovery", self.duration(e, "recovery", true));
        if let Some(b) = opt!("no_unexpected_exits", self.bool(e, "no_unexpected_exits")) {
            x.no_unexpected_exits = b;
        }
        x.linearizable = opt!("linearizable", self.bool(e, "linearizable"));
        x.lost_writes = opt!("lost_writes", self.int(e, "lost_writes", 0, u64::MAX));
        x.ledger_agreement = opt!("ledger_agreement", self.bool(e, "ledger_agreement"));
        x.set = opt!("set", self.bool(e, "set"));
        x.list_append = opt!("list_append", self.bool(e, "list_append"));
        ok &= self.finds(e, &mut x);
        ok &= self.checkers_fit_workload(e, &x, workload);
        ok.then_some(x)
    }

    /// `finds`: checker names, each once, none also expected to hold.
    /// Fills `x.finds`; false after any error.
    fn finds(&mut self, e: &Tbl<'_, '_>, x: &mut Expectations) -> bool {
        let Some(v) = e.get("finds") else {
            return true;
        };
        let toml::de::DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                e.field("finds"),
                format!(
                    "expected an array of checker names, found {}",
                    describe(v.get_ref())
                ),
            );
            return false;
        };
        let names = CheckerId::names();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let f = format!("{}[{i}]", e.field("finds"));
            let Some((name, span)) = self.string_value(item, f.clone()) else {
                ok = false;
                continue;
            };
            let problem = match CheckerId::from_name(&name) {
                None if name == "availability" => Some(format!(
                    "`availability` is a bound, not a checker: write `availability = 0.99` in [expect] for the minimum success ratio; `finds` takes {}",
                    backticked(&names)
                )),
                None => {
                    let hint = suggest(&name, &names)
                        .map(|s| format!(", did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("; checkers: {}", backticked(&names)));
                    Some(format!("unknown checker `{name}`{hint}"))
                }
                Some(c) if x.must_find(c) => Some(format!("checker `{name}` is listed twice")),
                Some(c) if x.expects_to_hold(c) => Some(format!(
                    "`{name}` cannot both be expected to hold and to find a violation"
                )),
                Some(c) => {
                    x.finds.push(c);
                    None
                }
            };
            if let Some(msg) = problem {
                ok = false;
                self.error(span, f, msg);
            }
        }
        ok
    }

    /// The history checkers need the kv workload's reads and writes; false
    /// after an error.
    fn checkers_fit_workload(
        &mut self,
        e: &Tbl<'_, '_>,
        x: &Expectations,
        workload: Option<&WorkloadSpec>,
    ) -> bool {
        let Some(workload) = workload else {
            return true;
        };
        let mut ok = true;
        let kv = matches!(workload.kind, WorkloadKind::Kv { .. });
        if !kv
            && (x.expects_to_hold(CheckerId::Linearizable) || x.must_find(CheckerId::Linearizable))
        {
            let v = e.get("linearizable").or_else(|| e.get("finds"));
            if let Some(v) = v {
                ok = false;
                self.error(
                    v.span(),
                    e.field(if e.get("linearizable").is_some() {
                        "linearizable"
                    } else {
                        "finds"
                    }),
                    "the linearizability checker needs workload kind = \"kv\"",
                );
            }
        }
        // lost_writes compares key-value writes with final reads; ledger
        // transactions are covered by ledger_agreement (which reads the chain
        // under any workload: the sample node's kv operations are entries too).
        let checker = CheckerId::LostWrites;
        if !kv {
            let declared = e.get(checker.name()).filter(|_| x.expects_to_hold(checker));
            let found = x.must_find(checker).then(|| e.get("finds")).flatten();
            if let Some(v) = declared.or(found) {
                ok = false;
                self.error(
                    v.span(),
                    e.field(if declared.is_some() {
                        checker.name()
                    } else {
                        "finds"
                    }),
                    format!(
                        "the `{checker}` checker needs workload kind = \"kv\"; for the ledger, `ledger_agreement` checks every acknowledged transaction"
                    ),
                );
            }
        }
        // set and list_append read their own models' operations.
        for (checker, fits, kind) in [
            (
                CheckerId::Set,
                matches!(workload.kind, WorkloadKind::Set { .. }),
                "set",
            ),
            (
                CheckerId::ListAppend,
                matches!(workload.kind, WorkloadKind::ListAppend { .. }),
                "list-append",
            ),
        ] {
            if fits {
                continue;
            }
            let declared = e.get(checker.name()).filter(|_| x.expects_to_hold(checker));
            let found = x.must_find(checker).then(|| e.get("finds")).flatten();
            if let Some(v) = declared.or(found) {
                ok = false;
                self.error(
                    v.span(),
                    e.field(if declared.is_some() {
                        checker.name()
                    } else {
                        "finds"
                    }),
                    format!("the `{checker}` checker needs workload kind = \"{kind}\""),
                );
            }
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, ok};
    use crate::check::CheckerId;

    #[test]
    fn expectations() {
        let p = ok("[expect]\nfinds = [\"linearizable\", \"lost_writes\"]\navailability = 1\n");
        assert_eq!(
            p.expect.finds,
            vec![CheckerId::Linearizable, CheckerId::LostWrites]
        );
        assert_eq!(p.expect.availability, Some(1.0));
        assert_eq!(
            err("[expect]\nlinearizable = true\nfinds = [\"linearizable\"]\n"),
            "expect.finds[0]: `linearizable` cannot both be expected to hold and to find a violation"
        );
        assert_eq!(
            err("[expect]\nfinds = [\"linearisable\"]\n"),
            "expect.finds[0]: unknown checker `linearisable`, did you mean `linearizable`?"
        );
        assert_eq!(
            err("[workload]\nkind = \"ledger\"\n[expect]\nlinearizable = true\n"),
            "expect.linearizable: the linearizability checker needs workload kind = \"kv\""
        );
        assert_eq!(
            err("[expect]\nrecovery = 5\n"),
            "expect.recovery: expected a duration like \"5s\" or \"250ms\", found 5"
        );
        assert_eq!(
            err("[expect]\nzzz = 1\n"),
            "expect.zzz: unknown field `zzz`; expected one of `availability`, `p50_latency`, `p99_latency`, `recovery`, `no_unexpected_exits`, `linearizable`, `lost_writes`, `ledger_agreement`, `set`, `list_append`, `finds`"
        );
    }

    #[test]
    fn availability_is_a_bound_not_a_checker() {
        assert_eq!(
            err("[expect]\nfinds = [\"availability\"]\n"),
            "expect.finds[0]: `availability` is a bound, not a checker: write `availability = 0.99` in [expect] for the minimum success ratio; `finds` takes `linearizable`, `lost_writes`, `ledger_agreement`, `set`, `list_append`"
        );
        assert_eq!(
            err("[expect]\navailability = 0.9\nfinds = [\"availability\"]\n"),
            "expect.finds[0]: `availability` is a bound, not a checker: write `availability = 0.99` in [expect] for the minimum success ratio; `finds` takes `linearizable`, `lost_writes`, `ledger_agreement`, `set`, `list_append`"
        );
        assert_eq!(
            err("[expect]\nfinds = [\"zzz\"]\n"),
            "expect.finds[0]: unknown checker `zzz`; checkers: `linearizable`, `lost_writes`, `ledger_agreement`, `set`, `list_append`"
        );
        assert_eq!(
            err("[expect]\nfinds = [\"lost_writes\", \"lost_writes\"]\n"),
            "expect.finds[1]: checker `lost_writes` is listed twice"
        );
    }

    #[test]
    fn selected_checkers_are_the_held_and_the_found_in_checker_order() {
        let x = ok("[expect]\nledger_agreement = true\nfinds = [\"lost_writes\"]\n").expect;
        assert_eq!(
            x.checkers(),
            vec![CheckerId::LostWrites, CheckerId::LedgerAgreement]
        );
        assert!(x.must_find(CheckerId::LostWrites));
        assert!(!x.must_find(CheckerId::LedgerAgreement));
        let x = ok("[expect]\nlinearizable = false\nlost_writes = 3\n").expect;
        assert_eq!(x.checkers(), vec![CheckerId::LostWrites]);
        assert!(ok("").expect.checkers().is_empty());
    }

    #[test]
    fn set_and_list_append_are_expected_by_name_and_need_their_workloads() {
        let x = ok("[workload]\nkind = \"set\"\n[expect]\nset = true\n").expect;
        assert_eq!(x.checkers(), vec![CheckerId::Set]);
        let x =
            ok("[workload]\nkind = \"list-append\"\n[expect]\nfinds = [\"list_append\"]\n").expect;
        assert_eq!(x.checkers(), vec![CheckerId::ListAppend]);
        assert!(x.must_find(CheckerId::ListAppend));
        assert_eq!(
            err("[workload]\nkind = \"ledger\"\n[expect]\nset = true\n"),
            "expect.set: the `set` checker needs workload kind = \"set\""
        );
        assert_eq!(
            err("[workload]\nkind = \"set\"\n[expect]\nfinds = [\"list_append\"]\n"),
            "expect.finds: the `list_append` checker needs workload kind = \"list-append\""
        );
    }
}
