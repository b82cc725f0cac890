//! One container's lifecycle, its logs, and the network holder.
//!
//! A container is created once and started again after a kill: the same
//! container, so its writable layer and its `/data` volume survive, and a
//! container that joined a holder's network namespace rejoins it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters as q;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::{build_image, image::image_tag, image_exists, DockerError, Engine, RunLabels};

/// Where a container's data volume is mounted.
pub const DATA_DIR: &str = "/data";

/// The network a container starts with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerNet {
    /// No network at all (only loopback).
    None,
    /// Join another container's network namespace (the holder's id).
    Join(String),
    /// A user-defined bridge network, by name, at a fixed address in it
    /// (`None`: the engine picks one at start).
    Bridge {
        network: String,
        ip: Option<std::net::Ipv4Addr>,
    },
}

/// What to create.
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    /// Container name (unique in the engine).
    pub name: String,
    /// The node it runs (label `io.rift.node`).
    pub node: String,
    /// Image reference.
    pub image: String,
    /// Full argv (argv[0] is the program inside the image).
    pub argv: Vec<String>,
    /// Environment.
    pub env: Vec<(String, String)>,
    /// Its network.
    pub net: ContainerNet,
    /// Whether a labelled named volume is mounted at `/data`.
    pub data_volume: bool,
    /// TCP ports published on the host (same number), for a bridge network.
    pub publish: Vec<u16>,
    /// The run's labels.
    pub labels: RunLabels,
}

/// What some containers need beyond [`ContainerSpec`] (kept apart so that
/// the spec stays as agreed): host paths mounted in, and the host's IPC
/// namespace. libfaketime in a container needs both: its spec file is in
/// the run directory, its shared memory and semaphore in the host's
/// `/dev/shm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerExtras {
    /// Bind mounts: host path, path inside, read-only.
    pub binds: Vec<(PathBuf, PathBuf, bool)>,
    /// Share the host's IPC namespace (and its `/dev/shm`).
    pub ipc_host: bool,
}

/// A container rift created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    /// Engine id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Its data volume's name, if it has one.
    pub volume: Option<String>,
}

/// What the engine says about a container now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    /// Running (paused counts as running, as the engine says).
    pub running: bool,
    /// Frozen by the engine.
    pub paused: bool,
    /// Its main process's pid on the engine's host, while running.
    pub pid: Option<u32>,
    /// Its last exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// The engine's restart count.
    pub restarts_seen: u64,
}

impl Container {
    /// Creates the container (and its labelled data volume) without
    /// starting it. A non-empty `argv` replaces the image's entrypoint
    /// (`argv[0]`) and command (the rest); an empty one keeps the image's.
    pub async fn create(e: &Engine, spec: &ContainerSpec) -> Result<Container, DockerError> {
        Container::create_with(e, spec, &ContainerExtras::default()).await
    }

    /// [`Container::create`] with bind mounts and the host's IPC namespace.
    pub async fn create_with(
        e: &Engine,
        spec: &ContainerSpec,
        extras: &ContainerExtras,
    ) -> Result<Container, DockerError> {
        let labels = spec.labels.to_map(Some(&spec.node));
        let volume = if spec.data_volume {
            let name = format!("{}-data", spec.name);
            e.client()
                .create_volume(bollard::models::VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                })
                .await
                .map_err(|source| DockerError::Api {
                    what: format!("create volume {name}"),
                    source,
                })?;
            Some(name)
        } else {
            None
        };
        let network_mode = match &spec.net {
            ContainerNet::None => "none".to_string(),
            ContainerNet::Join(id) => format!("container:{id}"),
            ContainerNet::Bridge { network, .. } => network.clone(),
        };
        // The address is the endpoint's, fixed at create: it stays the
        // same across every start of the container.
        let networking_config = match &spec.net {
            ContainerNet::Bridge {
                network,
                ip: Some(ip),
            } => Some(bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.clone(),
                    bollard::models::EndpointSettings {
                        ipam_config: Some(bollard::models::EndpointIpamConfig {
                            ipv4_address: Some(ip.to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )])),
            }),
            ContainerNet::Bridge { ip: None, .. } | ContainerNet::None | ContainerNet::Join(_) => {
                None
            }
        };
        let mut exposed = Vec::new();
        let mut bindings = HashMap::new();
        for port in &spec.publish {
            let key = format!("{port}/tcp");
            exposed.push(key.clone());
            bindings.insert(
                key,
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some(port.to_string()),
                }]),
            );
        }
        let (entrypoint, cmd) = match spec.argv.split_first() {
            Some((program, rest)) => (Some(vec![program.clone()]), Some(rest.to_vec())),
            None => (None, None),
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint,
            cmd,
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            networking_config,
            host_config: Some(HostConfig {
                network_mode: Some(network_mode),
                binds: Some(binds(volume.as_deref(), extras)).filter(|b| !b.is_empty()),
                ipc_mode: extras.ipc_host.then(|| "host".to_string()),
                port_bindings: (!bindings.is_empty()).then_some(bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = q::CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        let created = e.client().create_container(Some(options), body).await;
        match created {
            Ok(r) => Ok(Container {
                id: r.id,
                name: spec.name.clone(),
                volume,
            }),
            Err(source) => {
                if let Some(v) = &volume {
                    if let Err(err) = remove_volume(e, v).await {
                        // Labelled: the run's removal or a later sweep takes it.
                        tracing::warn!("{err}");
                    }
                }
                Err(DockerError::Api {
                    what: format!("create container {}", spec.name),
                    source,
                })
            }
        }
    }

    /// Starts it (again: the same container, its volume kept).
    pub async fn start(&self, e: &Engine) -> Result<(), DockerError> {
        e.client()
            .start_container(&self.id, None::<q::StartContainerOptions>)
            .await
            .map_err(|source| self.api("start", source))
    }

    /// Sends `signal` (a number, as `libc::SIGKILL`) to its main process.
    pub async fn kill(&self, e: &Engine, signal: i32) -> Result<(), DockerError> {
        let options = q::KillContainerOptions {
            signal: signal.to_string(),
        };
        e.client()
            .kill_container(&self.id, Some(options))
            .await
            .map_err(|source| self.api("kill", source))
    }

    /// Freezes it (the engine's cgroup freezer).
    pub async fn pause(&self, e: &Engine) -> Result<(), DockerError> {
        e.client()
            .pause_container(&self.id)
            .await
            .map_err(|source| self.api("pause", source))
    }

    /// Thaws it.
    pub async fn unpause(&self, e: &Engine) -> Result<(), DockerError> {
        e.client()
            .unpause_container(&self.id)
            .await
            .map_err(|source| self.api("unpause", source))
    }

    /// Its state now.
    pub async fn state(&self, e: &Engine) -> Result<ContainerState, DockerError> {
        let r = e
            .client()
            .inspect_container(&self.id, None::<q::InspectContainerOptions>)
            .await
            .map_err(|source| self.api("inspect", source))?;
        let st = r.state.unwrap_or_default();
        let running = st.running.unwrap_or(false);
        let pid = st
            .pid
            .filter(|&p| running && p > 0)
            .and_then(|p| u32::try_from(p).ok());
        // The engine reports exit code 0 for a container never started or
        // still running; only a finished one has a real exit code.
        let finished = !running
            && st
                .finished_at
                .as_deref()
                .is_some_and(|t| !t.starts_with("0001-"));
        Ok(ContainerState {
            running,
            paused: st.paused.unwrap_or(false),
            pid,
            exit_code: st.exit_code.filter(|_| finished),
            restarts_seen: r
                .restart_count
                .and_then(|c| u64::try_from(c).ok())
                .unwrap_or(0),
        })
    }

    /// Limits it to `cpus` CPUs (the CFS quota over a 100 ms period, as
    /// `docker update --cpus`); `None` lifts the limit. Takes effect at
    /// once on a running container.
    pub async fn set_cpus(&self, e: &Engine, cpus: Option<f64>) -> Result<(), DockerError> {
        const PERIOD_US: i64 = 100_000;
        // The engine takes -1 as "no quota"; 1 ms is the kernel's minimum.
        let quota = cpus.map_or(-1, |c| ((c * PERIOD_US as f64) as i64).max(1_000));
        let body = bollard::models::ContainerUpdateBody {
            cpu_period: Some(PERIOD_US),
            cpu_quota: Some(quota),
            ..Default::default()
        };
        e.client()
            .update_container(&self.id, body)
            .await
            .map_err(|source| self.api("update cpu quota of", source))?;
        Ok(())
    }

    /// Removes it by force (SIGKILL first if it runs), and its volume.
    /// A container or volume already gone is no error.
    pub async fn remove(&self, e: &Engine) -> Result<(), DockerError> {
        remove_container(e, &self.id).await?;
        if let Some(v) = &self.volume {
            remove_volume(e, v).await?;
        }
        Ok(())
    }

    /// Appends its stdout and stderr to `to`, across restarts, until it is
    /// removed (or the task is aborted). Each start's output is followed
    /// from where the last one ended, so nothing is written twice.
    pub fn follow_logs(&self, e: &Engine, to: PathBuf) -> tokio::task::JoinHandle<()> {
        let e = e.clone();
        let id = self.id.clone();
        tokio::spawn(async move {
            if let Err(err) = follow(&e, &id, &to).await {
                tracing::warn!("logs of container {id} into {}: {err}", to.display());
            }
        })
    }

    fn api(&self, what: &str, source: BollardError) -> DockerError {
        DockerError::Api {
            what: format!("{what} container {}", self.name),
            source,
        }
    }
}

/// The engine's bind strings: the data volume, then `extras`' host paths.
fn binds(volume: Option<&str>, extras: &ContainerExtras) -> Vec<String> {
    let mut b: Vec<String> = volume
        .map(|v| format!("{v}:{DATA_DIR}"))
        .into_iter()
        .collect();
    for (host, inside, read_only) in &extras.binds {
        let mode = if *read_only { ":ro" } else { "" };
        b.push(format!("{}:{}{mode}", host.display(), inside.display()));
    }
    b
}

/// Whether an engine error says the object does not exist.
pub(crate) fn is_not_found(err: &BollardError) -> bool {
    matches!(
        err,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(crate) async fn remove_container(e: &Engine, id: &str) -> Result<(), DockerError> {
    let options = q::RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match e.client().remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        // "removal already in progress" (409): someone else removes it.
        Err(BollardError::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(source) => Err(DockerError::Api {
            what: format!("remove container {id}"),
            source,
        }),
    }
}

pub(crate) async fn remove_volume(e: &Engine, name: &str) -> Result<(), DockerError> {
    let options = q::RemoveVolumeOptions { force: true };
    match e.client().remove_volume(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(source) => Err(DockerError::Api {
            what: format!("remove volume {name}"),
            source,
        }),
    }
}

/// How often a log follower looks for the next start of a stopped
/// container.
const RESTART_POLL: Duration = Duration::from_millis(100);

async fn follow(e: &Engine, id: &str, to: &Path) -> Result<(), std::io::Error> {
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(to)
        .await?;
    // The timestamp of the last line written (the engine's fixed-width
    // RFC 3339, so strings order as times do).
    let mut last: Option<String> = None;
    let mut followed_start: Option<String> = None;
    loop {
        let inspect = match e
            .client()
            .inspect_container(id, None::<q::InspectContainerOptions>)
            .await
        {
            Ok(r) => r,
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(std::io::Error::other(err)),
        };
        let st = inspect.state.unwrap_or_default();
        let started = st.started_at.clone();
        let running = st.running.unwrap_or(false);
        if followed_start.is_some() && started == followed_start && !running {
            // Stopped since the last follow ended: wait for the next start.
            tokio::time::sleep(RESTART_POLL).await;
            continue;
        }
        if followed_start.is_none()
            && !running
            && st
                .finished_at
                .as_deref()
                .is_none_or(|t| t.starts_with("0001-"))
        {
            // Created, never started yet.
            tokio::time::sleep(RESTART_POLL).await;
            continue;
        }
        followed_start = started;
        let since = last.as_deref().and_then(seconds_of).unwrap_or(0);
        let options = q::LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            timestamps: true,
            tail: "all".into(),
            ..Default::default()
        };
        let mut stream = e.client().logs(id, Some(options));
        while let Some(item) = stream.next().await {
            let chunk = match item {
                Ok(out) => out.into_bytes(),
                Err(err) if is_not_found(&err) => return Ok(()),
                Err(_) => break,
            };
            for line in chunk.split_inclusive(|&b| b == b'\n') {
                let (stamp, text) = split_stamp(line);
                if let (Some(stamp), Some(prev)) = (stamp, last.as_deref()) {
                    if stamp <= prev {
                        continue;
                    }
                }
                file.write_all(text).await?;
                if let Some(stamp) = stamp {
                    last = Some(stamp.to_string());
                }
            }
            file.flush().await?;
        }
        // The stream ended: the container stopped, or the engine broke
        // the stream off. Look again shortly (no line is lost: the next
        // follow starts from the last one written).
        tokio::time::sleep(RESTART_POLL).await;
    }
}

/// Splits `"<timestamp> <text>"` as the engine sends it with timestamps.
fn split_stamp(line: &[u8]) -> (Option<&str>, &[u8]) {
    let Some(space) = line.iter().position(|&b| b == b' ') else {
        return (None, line);
    };
    match std::str::from_utf8(&line[..space]) {
        Ok(stamp) if stamp.len() >= 20 && stamp.as_bytes()[4] == b'-' => {
            (Some(stamp), &line[space + 1..])
        }
        _ => (None, line),
    }
}

/// Unix seconds of an RFC 3339 UTC timestamp (`2026-12-01T23:30:00.1Z`).
fn seconds_of(stamp: &str) -> Option<i32> {
    let date = stamp.get(0..10)?;
    let time = stamp.get(11..19)?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (proleptic Gregorian), after H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    i32::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// One holder image per run, built once even when nodes start together.
static HOLDER_IMAGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The host's `sleep` (coreutils), the holder's only program.
fn sleep_binary() -> Option<PathBuf> {
    ["/bin/sleep", "/usr/bin/sleep"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Starts the network holder of `node`: a container with no network whose
/// only job (`sleep infinity`) is to own a network namespace, as the pause
/// container does in a Kubernetes pod. Returns it and its host pid; the
/// wire reaches its namespace at `/proc/<pid>/ns/net`. The holder image
/// (the host's `sleep` and its libraries) is built on first use in a run.
pub async fn start_holder(
    e: &Engine,
    labels: &RunLabels,
    node: &str,
) -> Result<(Container, u32), DockerError> {
    let sleep = sleep_binary().ok_or_else(|| DockerError::Libraries {
        path: PathBuf::from("sleep"),
        reason: "neither /bin/sleep nor /usr/bin/sleep exists for the network holder".into(),
    })?;
    let image = image_tag(&labels.run_id, "holder");
    {
        let _one_build = HOLDER_IMAGE.lock().await;
        if !image_exists(e, &image).await? {
            build_image(e, &sleep, &[], labels, "holder").await?;
        }
    }
    let spec = ContainerSpec {
        name: format!("{}-net", container_name(&labels.run_id, node)),
        node: node.to_string(),
        image,
        argv: vec![sleep.to_string_lossy().into_owned(), "infinity".into()],
        env: Vec::new(),
        net: ContainerNet::None,
        data_volume: false,
        publish: Vec::new(),
        labels: labels.clone(),
    };
    let holder = Container::create(e, &spec).await?;
    let started = async {
        holder.start(e).await?;
        holder
            .state(e)
            .await?
            .pid
            .ok_or_else(|| DockerError::NotRunning {
                name: holder.name.clone(),
            })
    }
    .await;
    match started {
        Ok(pid) => Ok((holder, pid)),
        Err(err) => {
            if let Err(err) = holder.remove(e).await {
                // Labelled: the run's removal or a later sweep takes it.
                tracing::warn!("{err}");
            }
            Err(err)
        }
    }
}

/// A container name for `node` of run `run_id` (`rift-<run>-<node>`,
/// within the engine's `[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn container_name(run_id: &str, node: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    format!("rift-{}-{}", clean(run_id), clean(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_split_and_convert() {
        let (s, t) = split_stamp(b"2026-12-01T23:30:05.000000001Z hello\n");
        assert_eq!(s, Some("2026-12-01T23:30:05.000000001Z"));
        assert_eq!(t, b"hello\n");
        assert_eq!(seconds_of("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(seconds_of("2026-12-01T23:30:05.1Z"), Some(1_796_167_805));
        assert_eq!(container_name("r 1", "n/1"), "rift-r-1-n-1");
    }
}
