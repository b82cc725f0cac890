//! The labels on everything rift makes in the engine, and what makes a
//! labelled object stale: the rift process that made it is gone.

use std::collections::HashMap;

/// Label: the run id.
pub const RUN: &str = "io.rift.run";
/// Label: the pid of the rift process that made the object.
pub const PID: &str = "io.rift.pid";
/// Label: that process's start time (`/proc/<pid>/stat` field 22).
pub const PID_START: &str = "io.rift.pid-start";
/// Label: the host rift ran on (a pid means nothing on another machine).
pub const HOST: &str = "io.rift.host";
/// Label: the node a container or volume belongs to.
pub const NODE: &str = "io.rift.node";

/// Which run made an object, and which rift process ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunLabels {
    /// The run id.
    pub run_id: String,
    /// The pid of the rift process.
    pub pid: u32,
    /// That process's start time (`/proc/<pid>/stat` field 22, clock ticks
    /// since boot), so a reused pid is not mistaken for a live rift.
    pub pid_start: u64,
}

impl RunLabels {
    /// The labels of a run made by this process.
    pub fn this_process(run_id: &str) -> RunLabels {
        let pid = std::process::id();
        RunLabels {
            run_id: run_id.to_string(),
            pid,
            pid_start: pid_start(pid).unwrap_or(0),
        }
    }

    /// The label map for an object; `node` adds `io.rift.node`.
    pub fn to_map(&self, node: Option<&str>) -> HashMap<String, String> {
        let mut m = HashMap::from([
            (RUN.to_string(), self.run_id.clone()),
            (PID.to_string(), self.pid.to_string()),
            (PID_START.to_string(), self.pid_start.to_string()),
            (HOST.to_string(), host_name()),
        ]);
        if let Some(node) = node {
            m.insert(NODE.to_string(), node.to_string());
        }
        m
    }
}

/// The start time of `pid` (clock ticks after boot), or `None` when no such
/// process exists.
pub fn pid_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // after it start past the last ')'. Field 22 is the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// This machine's host name (empty when unreadable).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Who owns a labelled object, as judged from this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Its rift process is alive (same pid, same start time).
    Alive,
    /// Its rift process is gone, its pid now belongs to another process,
    /// or its labels do not name a process at all.
    Gone,
    /// It was made by rift on another host: this machine cannot tell.
    Elsewhere,
}

/// Judges an object's owner from its labels.
pub fn owner(labels: &HashMap<String, String>) -> Owner {
    if let Some(host) = labels.get(HOST) {
        if *host != host_name() {
            return Owner::Elsewhere;
        }
    }
    let pid = labels.get(PID).and_then(|p| p.parse::<u32>().ok());
    let start = labels.get(PID_START).and_then(|s| s.parse::<u64>().ok());
    match (pid, start) {
        (Some(pid), Some(start)) if pid_start(pid) == Some(start) => Owner::Alive,
        _ => Owner::Gone,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_pid_is_gone() {
        let me = RunLabels::this_process("r1");
        assert!(me.pid_start > 0);
        assert_eq!(owner(&me.to_map(None)), Owner::Alive);
        let mut wrong_start = me.clone();
        wrong_start.pid_start += 1;
        assert_eq!(owner(&wrong_start.to_map(None)), Owner::Gone);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = RunLabels {
            run_id: "r2".into(),
            pid: dead,
            pid_start: 1,
        };
        assert_eq!(owner(&gone.to_map(None)), Owner::Gone);
        let mut other = me.to_map(Some("n1"));
        other.insert(HOST.into(), "some-other-host.invalid".into());
        assert_eq!(owner(&other), Owner::Elsewhere);
        assert_eq!(other.get(NODE).map(String::as_str), Some("n1"));
    }
}
