//! Steps of the partition family: partition (a topology, one-way or both
//! ways, for a while) and heal. Resolves topologies by name and groups; it
//! never picks the nodes of a random or leader-based side (the nemesis does).

use super::super::primitives::{describe, Tbl};
use super::super::Validator;
use super::StepCtx;
use crate::plan::target::{groups_topology, parse_topology};
use crate::plan::types::{Action, Topology};
use std::time::Duration;
use toml::de::DeValue;

impl Validator<'_> {
    /// `partition`: a topology, `oneway`, and an optional `for`.
    pub(super) fn partition(
        &mut self,
        t: &Tbl<'_, '_>,
        ctx: &StepCtx,
        for_: Option<Option<Duration>>,
    ) -> Option<Action> {
        let topology = self.topology(t, ctx);
        let oneway = match t.get("oneway") {
            None => Some(false),
            Some(_) => self.bool(t, "oneway"),
        };
        Some(Action::Partition {
            topology: topology?,
            oneway: oneway?,
            for_: for_?,
        })
    }

    /// `topology`: required, a name (`isolate(target)`, `majority-minority`,
    /// ...) or groups of node names.
    fn topology(&mut self, t: &Tbl<'_, '_>, ctx: &StepCtx) -> Option<Topology> {
        let (size, has_leader) = (ctx.size, ctx.has_leader);
        let field = t.field("topology");
        let Some(v) = t.get("topology") else {
            self.error(
                t.span.clone(),
                field,
                "missing; a partition step needs a topology: isolate(target), majority-minority, halves, bridge, ring, or groups like [[\"n0\"], [\"n1\", \"n2\"]]",
            );
            return None;
        };
        let result = match v.get_ref() {
            DeValue::String(s) => parse_topology(s, size),
            DeValue::Array(groups) => {
                let mut resolved = Vec::new();
                let mut ok = true;
                for (g, group) in groups.iter().enumerate() {
                    let gf = format!("{field}[{g}]");
                    match group.get_ref() {
                        DeValue::Array(names) => match self.node_list(names, &gf, size) {
                            Some(ids) => resolved.push(ids),
                            None => ok = false,
                        },
                        other => {
                            ok = false;
                            self.error(
                                group.span(),
                                gf,
                                format!(
                                    "expected a group of node names like [\"n0\", \"n1\"], found {}",
                                    describe(other)
                                ),
                            );
                        }
                    }
                }
                if !ok {
                    return None;
                }
                groups_topology(resolved, size, ctx.size_known)
            }
            other => Err(format!(
                "expected a topology name or groups like [[\"n0\"], [\"n1\", \"n2\"]], found {}",
                describe(other)
            )),
        };
        match result {
            Ok(topology) => {
                if let Topology::Isolate(target) = &topology {
                    self.needs_leader(target, v.span(), field, has_leader)?;
                }
                Some(topology)
            }
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }
}
