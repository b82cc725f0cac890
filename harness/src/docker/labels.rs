//! The labels on everything rift makes in the engine.

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
        RunLabels {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            pid_start: 0,
        }
    }
}
