//! Expands plan steps into a time-ordered list of actions, adding the undo
//! action of every step with `for` or `restart_after`.

use crate::plan::{Action, Step};
use std::time::Duration;

/// What to do at a moment of the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Timed {
    /// A step of the plan, as written.
    Step(Box<Action>),
    /// Undo of the step with this index in the schedule: resume paused nodes,
    /// heal a partition, restore links, restart killed nodes, put clocks
    /// back on true time, give slowed nodes their CPU back.
    Undo { of: usize },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Scheduled {
    pub at: Duration,
    pub what: Timed,
    /// Line of the plan step this comes from.
    pub line: usize,
}

/// The plan's steps and their undos, ordered by time; undos of a step come
/// after it even when timed together.
pub fn schedule(steps: &[Step]) -> Vec<Scheduled> {
    let mut out: Vec<Scheduled> = Vec::new();
    for step in steps {
        let idx = out.len();
        out.push(Scheduled {
            at: step.at,
            what: Timed::Step(Box::new(step.action.clone())),
            line: step.line,
        });
        let undo_after = match &step.action {
            Action::Kill { restart_after, .. } => *restart_after,
            Action::Pause { for_, .. }
            | Action::Partition { for_, .. }
            | Action::Degrade { for_, .. }
            | Action::Clock { for_, .. }
            | Action::Slow { for_, .. }
            | Action::Disk { for_, .. } => *for_,
            Action::Restart { .. }
            | Action::Resume { .. }
            | Action::Heal
            | Action::Restore { .. } => None,
        };
        if let Some(after) = undo_after {
            out.push(Scheduled {
                at: step.at + after,
                what: Timed::Undo { of: idx },
                line: step.line,
            });
        }
    }
    // Stable: equal times keep plan order, so an undo never precedes its step.
    let mut indexed: Vec<(usize, Scheduled)> = out.into_iter().enumerate().collect();
    indexed.sort_by_key(|(i, s)| (s.at, *i));
    // Undo indices refer to positions before sorting; remap them.
    let mut new_pos = vec![0; indexed.len()];
    for (pos, (orig, _)) in indexed.iter().enumerate() {
        new_pos[*orig] = pos;
    }
    indexed
        .into_iter()
        .map(|(_, mut s)| {
            if let Timed::Undo { of } = &mut s.what {
                *of = new_pos[*of];
            }
            s
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Target;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn undo_follows_its_step_and_indices_survive_sorting() {
        let steps = vec![
            Step {
                at: secs(2),
                action: Action::Pause {
                    target: Target::Leader,
                    for_: Some(secs(10)),
                    how: crate::plan::PauseHow::Freeze,
                },
                line: 3,
            },
            Step {
                at: secs(5),
                action: Action::Kill {
                    target: Target::All,
                    signal: 9,
                    restart_after: Some(secs(1)),
                    power_loss: None,
                },
                line: 8,
            },
        ];
        let s = schedule(&steps);
        let ats: Vec<u64> = s.iter().map(|x| x.at.as_secs()).collect();
        assert_eq!(ats, vec![2, 5, 6, 12]);
        assert_eq!(s[2].what, Timed::Undo { of: 1 });
        assert_eq!(s[3].what, Timed::Undo { of: 0 });
        assert_eq!(s[3].line, 3);
    }

    #[test]
    fn a_clock_step_is_undone_after_for() {
        let change = crate::plan::ClockChange::Rate(2.0);
        let steps = vec![Step {
            at: secs(1),
            action: Action::Clock {
                target: Target::Leader,
                change,
                for_: Some(secs(3)),
            },
            line: 5,
        }];
        let s = schedule(&steps);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].at, secs(4));
        assert_eq!(s[1].what, Timed::Undo { of: 0 });
    }

    #[test]
    fn a_slow_step_is_undone_after_its_for() {
        let steps = vec![Step {
            at: secs(3),
            action: Action::Slow {
                target: Target::Leader,
                cpu: 0.1,
                for_: Some(secs(4)),
            },
            line: 9,
        }];
        let s = schedule(&steps);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].at, secs(7));
        assert_eq!(s[1].what, Timed::Undo { of: 0 });
        let forever = vec![Step {
            at: secs(3),
            action: Action::Slow {
                target: Target::All,
                cpu: 0.5,
                for_: None,
            },
            line: 9,
        }];
        assert_eq!(schedule(&forever).len(), 1);
    }
}
