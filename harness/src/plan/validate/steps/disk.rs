//! The `disk` step: faults of a target's faulty disk (`fsync`, `write`,
//! `read` errors, `latency` with `jitter`, `corrupt` reads) for `for`, until
//! a later disk step on the node replaces them, or until the run's final
//! heal. Needs `[cluster] disk = "faulty"`. Reads only the keys
//! [`FaultKind::keys`](crate::plan::FaultKind::keys) gives `disk`.

use super::super::primitives::{describe, float_value, Tbl};
use super::super::Validator;
use super::StepCtx;
use crate::disk::{DiskFaults, Errno};
use crate::plan::types::{Action, DiskMode};
use std::time::Duration;

/// The keys of a disk step that are faults (at least one is required).
const FAULT_KEYS: [&str; 6] = ["fsync", "write", "read", "latency", "jitter", "corrupt"];

/// The name a plan uses for `e`.
pub fn errno_name(e: Errno) -> &'static str {
    match e {
        Errno::Eio => "eio",
        Errno::Enospc => "enospc",
    }
}

impl Validator<'_> {
    /// `disk`: a target and at least one fault.
    pub(super) fn disk(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let target = self.target(t, ctx.size, ctx.has_leader);
        let mut ok = true;
        if ctx.disk == Some(DiskMode::Plain) {
            let span = t.get("fault").map(|v| v.span()).unwrap_or(t.span.clone());
            self.error(
                span,
                t.field("fault"),
                "a disk step needs [cluster] disk = \"faulty\" (the nodes' data directories on the faulty disk)",
            );
            ok = false;
        }
        if FAULT_KEYS.iter().all(|k| t.get(k).is_none()) {
            self.error(
                t.span.clone(),
                t.path.clone(),
                "a disk step needs at least one of `fsync`, `write`, `read`, `latency`, `corrupt`",
            );
            ok = false;
        }
        let fsync = self.errno(t, "fsync", &[Errno::Eio]);
        let write = self.errno(t, "write", &[Errno::Eio, Errno::Enospc]);
        let read = self.errno(t, "read", &[Errno::Eio]);
        let latency = match t.get("latency") {
            None => Some(None),
            Some(_) => self.duration(t, "latency", false).map(Some),
        };
        let jitter = match t.get("jitter") {
            None => Some(None),
            Some(v) => {
                let j = self.duration(t, "jitter", false).map(Some);
                if t.get("latency").is_none() {
                    self.error(
                        v.span(),
                        t.field("jitter"),
                        "`jitter` varies `latency`; give `latency` too",
                    );
                    ok = false;
                }
                j
            }
        };
        let corrupt = match t.get("corrupt") {
            None => Some(None),
            Some(v) => {
                let p = float_value(v.get_ref()).filter(|p| p.is_finite() && *p > 0.0 && *p <= 1.0);
                if p.is_none() {
                    self.error(
                        v.span(),
                        t.field("corrupt"),
                        format!(
                            "expected a probability per read greater than 0 and at most 1 (0.01 flips a bit in 1% of reads), found {}",
                            describe(v.get_ref())
                        ),
                    );
                }
                p.map(Some)
            }
        };
        let faults = DiskFaults {
            fsync: fsync?,
            write: write?,
            read: read?,
            latency: latency?,
            jitter: jitter?,
            corrupt: corrupt?,
        };
        if !ok {
            return None;
        }
        Some(Action::Disk {
            target: target?,
            faults,
            for_: for_?,
        })
    }

    /// An errno key: absent, or one of `allowed` by name.
    fn errno(&mut self, t: &Tbl<'_, '_>, key: &str, allowed: &[Errno]) -> Option<Option<Errno>> {
        let Some(v) = t.get(key) else {
            return Some(None);
        };
        let (s, span) = self.string_value(v, t.field(key))?;
        let found = allowed.iter().copied().find(|e| errno_name(*e) == s);
        if found.is_none() {
            let names: Vec<String> = allowed
                .iter()
                .map(|e| format!("\"{}\"", errno_name(*e)))
                .collect();
            self.error(
                span,
                t.field(key),
                format!(
                    "expected {} (the error the node's {key} gets), found {s:?}",
                    names.join(" or ")
                ),
            );
        }
        found.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::testing::{err, ok};
    use crate::disk::{DiskFaults, Errno};
    use crate::plan::types::*;
    use std::time::Duration;

    fn disk(body: &str) -> String {
        format!("[cluster]\ndisk = \"faulty\"\n[[step]]\nat = \"1s\"\nfault = \"disk\"\n{body}")
    }

    #[test]
    fn faults_by_key() {
        let p = ok(&disk(
            "target = \"leader\"\nfsync = \"eio\"\nwrite = \"enospc\"\nlatency = \"20ms\"\njitter = \"5ms\"\ncorrupt = 0.01\nfor = \"3s\"\n",
        ));
        assert_eq!(p.disk, DiskMode::Faulty);
        assert_eq!(
            p.steps[0].action,
            Action::Disk {
                target: Target::Leader,
                faults: DiskFaults {
                    fsync: Some(Errno::Eio),
                    write: Some(Errno::Enospc),
                    latency: Some(Duration::from_millis(20)),
                    jitter: Some(Duration::from_millis(5)),
                    corrupt: Some(0.01),
                    ..DiskFaults::default()
                },
                for_: Some(Duration::from_secs(3)),
            }
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        assert_eq!(
            err(&disk("target = \"n1\"\nfsync = \"enospc\"\nread = 5\n")),
            "step[0].fsync: expected \"eio\" (the error the node's fsync gets), found \"enospc\"\nstep[0].read: expected a string, found 5"
        );
        assert_eq!(
            err(&disk("target = \"n1\"\nwrite = \"EIO\"\n")),
            "step[0].write: expected \"eio\" or \"enospc\" (the error the node's write gets), found \"EIO\""
        );
        assert_eq!(
            err(&disk("target = \"n1\"\ncorrupt = 2\n")),
            "step[0].corrupt: expected a probability per read greater than 0 and at most 1 (0.01 flips a bit in 1% of reads), found 2"
        );
        assert_eq!(
            err(&disk("target = \"n1\"\njitter = \"5ms\"\n")),
            "step[0].jitter: `jitter` varies `latency`; give `latency` too"
        );
        assert_eq!(
            err(&disk("target = \"n1\"\nfor = \"2s\"\n")),
            "step[0]: a disk step needs at least one of `fsync`, `write`, `read`, `latency`, `corrupt`"
        );
        assert_eq!(
            err("[[step]]\nat = \"1s\"\nfault = \"disk\"\ntarget = \"n1\"\nfsync = \"eio\"\n"),
            "step[0].fault: a disk step needs [cluster] disk = \"faulty\" (the nodes' data directories on the faulty disk)"
        );
        assert_eq!(
            err("[cluster]\ndisk = \"fuse\"\n"),
            "cluster.disk: expected \"plain\" (a directory, the default) or \"faulty\" (the faulty disk: FUSE, root), found \"fuse\""
        );
    }

    #[test]
    fn power_loss_needs_the_faulty_disk_and_torn_needs_it_too() {
        let kill = "[[step]]\nat = \"1s\"\nfault = \"kill\"\ntarget = \"n1\"\n";
        assert_eq!(
            err(&format!("{kill}lose_unsynced = true\n")),
            "step[0].lose_unsynced: `lose_unsynced` (a power loss) needs [cluster] disk = \"faulty\": only the faulty disk knows what was not fsynced"
        );
        assert_eq!(
            err(&format!(
                "[cluster]\ndisk = \"faulty\"\n{kill}torn = true\n"
            )),
            "step[0].torn: `torn` is part of a power loss; it needs `lose_unsynced = true` too"
        );
        let p = ok(&format!(
            "[cluster]\ndisk = \"faulty\"\n{kill}lose_unsynced = true\ntorn = true\nrestart_after = \"2s\"\n"
        ));
        assert_eq!(
            p.steps[0].action,
            Action::Kill {
                target: Target::Nodes(vec![crate::NodeId(1)]),
                signal: libc::SIGKILL,
                restart_after: Some(Duration::from_secs(2)),
                power_loss: Some(PowerLoss { torn: true }),
            }
        );
        // Without the faulty disk, false is fine.
        assert!(matches!(
            ok(&format!("{kill}lose_unsynced = false\n")).steps[0].action,
            Action::Kill {
                power_loss: None,
                ..
            }
        ));
    }
}
