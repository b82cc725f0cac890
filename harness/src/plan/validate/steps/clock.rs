//! Steps of the clock family: `clock` on a target, with exactly one of
//! `offset` (a signed jump), `rate` (a factor) or `strobe` (flips), and the
//! signed offsets `[cluster] monotonic_offset` shares with them. Reads only
//! the keys [`FaultKind::keys`](crate::plan::FaultKind::keys) gives the kind;
//! it never touches a clock.

use super::super::primitives::{backticked, describe, float_value, Tbl, Value};
use super::super::Validator;
use super::StepCtx;
use crate::plan::duration::{format_duration, parse_duration};
use crate::plan::types::{Action, ClockChange, ClockOffset};
use std::time::Duration;
use toml::de::DeValue;

/// The largest clock offset a plan may ask for (either way): ten years.
pub(in crate::plan::validate) const MAX_OFFSET: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The shortest strobe interval: flips are file writes rift makes.
const MIN_STROBE_EVERY: Duration = Duration::from_millis(10);

/// Parses a signed duration: `"+10s"`, `"-1.5s"`, `"250ms"` (no sign:
/// forwards).
pub(crate) fn parse_clock_offset(s: &str) -> Result<ClockOffset, String> {
    let t = s.trim();
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        Some(_) | None => (false, t),
    };
    if rest.starts_with(['+', '-']) {
        return Err(format!(
            "expected a signed duration like \"+10s\" or \"-500ms\", found \"{s}\""
        ));
    }
    let magnitude = parse_duration(rest).map_err(|e| {
        if rest.trim().is_empty() {
            format!("expected a signed duration like \"+10s\" or \"-500ms\", found \"{s}\"")
        } else {
            e
        }
    })?;
    Ok(ClockOffset {
        negative: negative && !magnitude.is_zero(),
        magnitude,
    })
}

impl Validator<'_> {
    /// `clock`: a target and one change.
    pub(super) fn clock(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        let change = self.clock_change(t);
        Some(Action::Clock {
            target: target?,
            change: change?,
            for_: for_?,
        })
    }

    fn clock_change(&mut self, t: &Tbl<'_, '_>) -> Option<ClockChange> {
        const CHANGES: [&str; 3] = ["offset", "rate", "strobe"];
        let given: Vec<&str> = CHANGES.into_iter().filter(|k| t.get(k).is_some()).collect();
        let Some(&first) = given.first() else {
            self.error(
                t.span.clone(),
                t.field("offset"),
                format!(
                    "missing; a clock step needs one of {}: offset = \"-10s\", rate = 0.5 or strobe = {{ offset = \"5s\", every = \"200ms\" }}",
                    backticked(&CHANGES)
                ),
            );
            return None;
        };
        if let Some(&second) = given.get(1) {
            if let Some(v) = t.get(second) {
                self.error(
                    v.span(),
                    t.field(second),
                    format!(
                        "`{second}` cannot be combined with `{first}`; a clock step makes one change (use another step)"
                    ),
                );
            }
            return None;
        }
        let v = t.get(first)?;
        match first {
            "offset" => self
                .clock_offset_value(v, t.field("offset"))
                .map(ClockChange::Offset),
            "rate" => self.clock_rate(v, t.field("rate")).map(ClockChange::Rate),
            _ => self.strobe(t),
        }
    }

    /// A signed clock offset within [`MAX_OFFSET`] either way.
    pub(in crate::plan::validate) fn clock_offset_value(
        &mut self,
        v: &Value<'_>,
        field: String,
    ) -> Option<ClockOffset> {
        let DeValue::String(s) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected a signed duration like \"+10s\" or \"-500ms\", found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        match parse_clock_offset(s) {
            Ok(o) if o.magnitude > MAX_OFFSET => {
                self.error(
                    v.span(),
                    field,
                    format!(
                        "{o} is too far; a clock offset is at most {} either way",
                        format_duration(MAX_OFFSET)
                    ),
                );
                None
            }
            Ok(o) => Some(o),
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }

    fn clock_rate(&mut self, v: &Value<'_>, field: String) -> Option<f64> {
        let max = ClockChange::MAX_RATE;
        let n = float_value(v.get_ref()).filter(|n| n.is_finite() && *n > 0.0 && *n <= max);
        if n.is_none() {
            self.error(
                v.span(),
                field,
                format!(
                    "expected a clock rate greater than 0 and at most {max} (1 is true time, 2 twice as fast), found {}",
                    describe(v.get_ref())
                ),
            );
        }
        n
    }

    /// `strobe = { offset = "5s", every = "200ms" }`.
    fn strobe(&mut self, t: &Tbl<'_, '_>) -> Option<ClockChange> {
        let s = self.table(t, "strobe")?;
        self.unknown_keys(&s, &["offset", "every"]);
        let offset = match s.get("offset") {
            None => {
                self.error(
                    s.span.clone(),
                    s.field("offset"),
                    "missing; a strobe needs the offset it flips to, like offset = \"5s\"",
                );
                None
            }
            Some(v) => match self.clock_offset_value(v, s.field("offset")) {
                Some(o) if o.is_zero() => {
                    self.error(
                        v.span(),
                        s.field("offset"),
                        "a strobe between true time and itself changes nothing; give a nonzero offset",
                    );
                    None
                }
                other => other,
            },
        };
        let every = match s.get("every") {
            None => {
                self.error(
                    s.span.clone(),
                    s.field("every"),
                    "missing; a strobe needs how often it flips, like every = \"200ms\"",
                );
                None
            }
            Some(v) => match self.duration(&s, "every", true) {
                Some(d) if d < MIN_STROBE_EVERY => {
                    self.error(
                        v.span(),
                        s.field("every"),
                        format!(
                            "a strobe flips at most every {}, found {}",
                            format_duration(MIN_STROBE_EVERY),
                            format_duration(d)
                        ),
                    );
                    None
                }
                other => other,
            },
        };
        Some(ClockChange::Strobe {
            offset: offset?,
            every: every?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, ok};
    use super::*;
    use crate::plan::types::Target;

    fn step(body: &str) -> String {
        format!("[[step]]\nat = \"1s\"\nfault = \"clock\"\n{body}")
    }

    #[test]
    fn signed_offsets() {
        let o = |neg, ms| ClockOffset {
            negative: neg,
            magnitude: Duration::from_millis(ms),
        };
        assert_eq!(parse_clock_offset("-10s"), Ok(o(true, 10_000)));
        assert_eq!(parse_clock_offset("+1.5s"), Ok(o(false, 1_500)));
        assert_eq!(parse_clock_offset("250ms"), Ok(o(false, 250)));
        assert_eq!(parse_clock_offset("-0s"), Ok(o(false, 0)));
        assert!(parse_clock_offset("--1s").is_err());
        assert!(parse_clock_offset("-").is_err());
        assert!(parse_clock_offset("+10").is_err());
        assert_eq!(o(true, 10_000).to_string(), "-10s");
        assert_eq!(o(true, 10_000).as_nanos(), -10_000_000_000);
    }

    #[test]
    fn each_change_parses() {
        let p = ok(&step("target = \"n1\"\noffset = \"-10s\"\nfor = \"2s\"\n"));
        assert_eq!(
            p.steps[0].action,
            Action::Clock {
                target: Target::Nodes(vec![crate::NodeId(1)]),
                change: ClockChange::Offset(ClockOffset {
                    negative: true,
                    magnitude: Duration::from_secs(10)
                }),
                for_: Some(Duration::from_secs(2)),
            }
        );
        assert!(p.uses_clock_faults());
        let p = ok(&step("target = \"leader\"\nrate = 0.5\n"));
        assert_eq!(
            p.steps[0].action,
            Action::Clock {
                target: Target::Leader,
                change: ClockChange::Rate(0.5),
                for_: None,
            }
        );
        let p = ok(&step(
            "target = \"all\"\nstrobe = { offset = \"5s\", every = \"200ms\" }\n",
        ));
        assert_eq!(
            p.steps[0].action,
            Action::Clock {
                target: Target::All,
                change: ClockChange::Strobe {
                    offset: ClockOffset {
                        negative: false,
                        magnitude: Duration::from_secs(5)
                    },
                    every: Duration::from_millis(200)
                },
                for_: None,
            }
        );
        assert!(!ok("").uses_clock_faults());
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            err(&step("target = \"n1\"\n")),
            "step[0].offset: missing; a clock step needs one of `offset`, `rate`, `strobe`: offset = \"-10s\", rate = 0.5 or strobe = { offset = \"5s\", every = \"200ms\" }"
        );
        assert_eq!(
            err(&step("target = \"n1\"\noffset = \"1s\"\nrate = 2\n")),
            "step[0].rate: `rate` cannot be combined with `offset`; a clock step makes one change (use another step)"
        );
        assert_eq!(
            err(&step("target = \"n1\"\nrate = 0\n")),
            "step[0].rate: expected a clock rate greater than 0 and at most 4 (1 is true time, 2 twice as fast), found 0"
        );
        assert_eq!(
            err(&step("target = \"n1\"\nrate = 100\n")),
            "step[0].rate: expected a clock rate greater than 0 and at most 4 (1 is true time, 2 twice as fast), found 100"
        );
        assert_eq!(
            err(&step("target = \"n1\"\noffset = \"10\"\n")),
            "step[0].offset: expected a duration with a unit (ns, us, ms, s, m, h) like \"5s\", found \"10\""
        );
        assert_eq!(
            err(&step("target = \"n1\"\noffset = 10\n")),
            "step[0].offset: expected a signed duration like \"+10s\" or \"-500ms\", found 10"
        );
        assert_eq!(
            err(&step("target = \"n1\"\noffset = \"-100000h\"\n")),
            "step[0].offset: -100000h is too far; a clock offset is at most 87600h either way"
        );
        assert_eq!(
            err(&step(
                "target = \"n1\"\nstrobe = { offset = \"0s\", every = \"1ms\", x = 1 }\n"
            )),
            "step[0].strobe.offset: a strobe between true time and itself changes nothing; give a nonzero offset\nstep[0].strobe.every: a strobe flips at most every 10ms, found 1ms\nstep[0].strobe.x: unknown field `x`; expected one of `offset`, `every`"
        );
        assert_eq!(
            err(&step("target = \"n1\"\nstrobe = { offset = \"1s\" }\n")),
            "step[0].strobe.every: missing; a strobe needs how often it flips, like every = \"200ms\""
        );
        assert_eq!(
            err(&step("offset = \"1s\"\nlinks = \"all\"\n")),
            "step[0].target: missing; this step needs a target: n0.., [\"n0\", \"n2\"], random, random(k), leader, followers, minority, majority, all\nstep[0].links: `links` does not apply to a clock step; a clock step takes `at`, `fault`, `target`, `offset`, `rate`, `strobe`, `for`"
        );
    }

    #[test]
    fn clock_steps_need_no_network() {
        let p = ok(&format!(
            "[cluster]\nnetwork = \"none\"\n{}",
            step("target = \"n0\"\noffset = \"+1s\"\n")
        ));
        assert_eq!(p.steps.len(), 1);
    }
}
