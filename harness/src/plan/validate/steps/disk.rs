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
    fn errno(
        &mut self,
        t: &Tbl<'_, '_>,
        key: &str,
        allowed: &[Errno],
    ) -> Option<Option<Errno>> {
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
