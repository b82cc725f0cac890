//! Steps of the process family: kill, restart, pause (by SIGSTOP or the
//! cgroup freezer) and resume, each on a
//! target. Reads only the keys [`FaultKind::keys`](crate::plan::FaultKind::keys)
//! gives these kinds; it never picks nodes (the nemesis does that).

use super::super::primitives::Tbl;
use super::super::Validator;
use super::StepCtx;
use crate::plan::types::{Action, DiskMode, PauseHow, PowerLoss};
use std::time::Duration;

impl Validator<'_> {
    /// `kill`: a target, a signal (SIGKILL by default), an optional
    /// `restart_after`, and `lose_unsynced` (a power loss of the node's
    /// faulty disk, `torn` or not).
    pub(super) fn kill(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        let signal = match t.get("signal") {
            None => Some(libc::SIGKILL),
            Some(v) => self.signal(v, t.field("signal")),
        };
        let restart_after = match t.get("restart_after") {
            None => Some(None),
            Some(_) => self.duration(t, "restart_after", true).map(Some),
        };
        let power_loss = self.power_loss(t, ctx);
        Some(Action::Kill {
            target: target?,
            signal: signal?,
            restart_after: restart_after?,
            power_loss: power_loss?,
        })
    }

    /// `lose_unsynced` (default false) and `torn` (default false, only
    /// with `lose_unsynced = true`); both need `[cluster] disk = "faulty"`.
    fn power_loss(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Option<PowerLoss>> {
        let lose = match t.get("lose_unsynced") {
            None => Some(false),
            Some(_) => self.bool(t, "lose_unsynced"),
        };
        let torn = match t.get("torn") {
            None => Some(false),
            Some(_) => self.bool(t, "torn"),
        };
        let mut ok = true;
        if lose == Some(true) && ctx.disk == Some(DiskMode::Plain) {
            if let Some(v) = t.get("lose_unsynced") {
                self.error(
                    v.span(),
                    t.field("lose_unsynced"),
                    "`lose_unsynced` (a power loss) needs [cluster] disk = \"faulty\": only the faulty disk knows what was not fsynced",
                );
                ok = false;
            }
        }
        if torn == Some(true) && lose == Some(false) {
            if let Some(v) = t.get("torn") {
                self.error(
                    v.span(),
                    t.field("torn"),
                    "`torn` is part of a power loss; it needs `lose_unsynced = true` too",
                );
                ok = false;
            }
        }
        let (lose, torn) = (lose?, torn?);
        if !ok {
            return None;
        }
        Some(lose.then_some(PowerLoss { torn }))
    }

    pub(super) fn restart(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        Some(Action::Restart {
            target: self.target(t, ctx.size, ctx.has_leader)?,
        })
    }

    /// `pause`: a target, resumed after `for` when given; `how` is
    /// "sigstop" (the default) or "freeze" (the cgroup freezer).
    pub(super) fn pause(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        let how = match t.get("how") {
            None => Some(PauseHow::Sigstop),
            Some(v) => self
                .string_value(v, t.field("how"))
                .and_then(|(s, span)| {
                    let how = [PauseHow::Sigstop, PauseHow::Freeze]
                        .into_iter()
                        .find(|h| h.name() == s);
                    if how.is_none() {
                        self.error(
                            span,
                            t.field("how"),
                            format!("expected \"sigstop\" (SIGSTOP, the default) or \"freeze\" (the cgroup freezer), found {s:?}"),
                        );
                    }
                    how
                }),
        };
        Some(Action::Pause {
            target: target?,
            for_: for_?,
            how: how?,
        })
    }

    pub(super) fn resume(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        Some(Action::Resume {
            target: self.target(t, ctx.size, ctx.has_leader)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, ok};
    use crate::plan::types::*;

    #[test]
    fn pause_how_is_sigstop_or_freeze() {
        let pause =
            |how: &str| format!("[[step]]\nat = \"1s\"\nfault = \"pause\"\ntarget = \"n0\"\n{how}");
        let how_of = |p: crate::plan::Plan| match &p.steps[0].action {
            Action::Pause { how, .. } => Some(*how),
            _ => None,
        };
        assert_eq!(how_of(ok(&pause(""))), Some(PauseHow::Sigstop));
        assert_eq!(
            how_of(ok(&pause("how = \"sigstop\"\n"))),
            Some(PauseHow::Sigstop)
        );
        assert_eq!(
            how_of(ok(&pause("how = \"freeze\"\n"))),
            Some(PauseHow::Freeze)
        );
        assert_eq!(
            err(&pause("how = \"frozen\"\n")),
            "step[0].how: expected \"sigstop\" (SIGSTOP, the default) or \"freeze\" (the cgroup freezer), found \"frozen\""
        );
        assert_eq!(
            err(&pause("how = 1\n")),
            "step[0].how: expected a string, found 1"
        );
    }
}
