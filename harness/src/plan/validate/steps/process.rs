//! Steps of the process family: kill, restart, pause and resume, each on a
//! target. Reads only the keys [`FaultKind::keys`](crate::plan::FaultKind::keys)
//! gives these kinds; it never picks nodes (the nemesis does that).

use super::super::primitives::Tbl;
use super::super::Validator;
use super::StepCtx;
use crate::plan::types::Action;
use std::time::Duration;

impl Validator<'_> {
    /// `kill`: a target, a signal (SIGKILL by default), an optional
    /// `restart_after`.
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
        Some(Action::Kill {
            target: target?,
            signal: signal?,
            restart_after: restart_after?,
        })
    }

    pub(super) fn restart(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        Some(Action::Restart {
            target: self.target(t, ctx.size, ctx.has_leader)?,
        })
    }

    /// `pause`: a target, resumed after `for` when given.
    pub(super) fn pause(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        Some(Action::Pause {
            target: target?,
            for_: for_?,
        })
    }

    pub(super) fn resume(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Action> {
        Some(Action::Resume {
            target: self.target(t, ctx.size, ctx.has_leader)?,
        })
    }
}
