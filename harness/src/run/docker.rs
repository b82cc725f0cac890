//! The runner's part of `[cluster] backend = "docker"`: the connection to
//! the engine, the sweep of dead runs' objects before anything starts (and
//! of their libfaketime files in /dev/shm, for every run), the node image,
//! the per-node network holders on the wire or the run's bridge network
//! off it, and the promise that nothing the run made in the engine
//! outlives it.
//!
//! Everything the run makes carries its labels; [`DockerRun`] removes all
//! of it at the end, and its `Drop` does the same on every other exit path
//! (an error, Ctrl-C, a panic). A SIGKILLed rift cannot: the next run's
//! sweep, or `rift clean`, removes what it left.

use super::RunError;
use crate::cluster::{self, DockerSetup};
use crate::docker::{ContainerExtras, ContainerNet, Engine, EngineAt, RunLabels};
use crate::netns::Netns;
use crate::plan::{Backend, DockerImage, NetworkMode, NodeCommand, Plan};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// A run's hold on the engine. Dropping it removes every object labelled
/// with the run's id (blocking, on a thread of its own).
pub(super) struct DockerRun {
    engine: Engine,
    labels: RunLabels,
    image: DockerImage,
    removed: bool,
}

/// What the cluster and the wire need from the engine before the nodes
/// start.
pub(super) struct Prepared {
    pub setup: DockerSetup,
    /// Each node's network namespace (its holder's), for the wire.
    pub homes: Option<Vec<Netns>>,
    /// Off the wire (`network = "none"`): each node's address on the
    /// run's bridge, and where rift reaches it when not there.
    pub places: Option<Vec<Place>>,
}

/// Where a node on the run's bridge listens, and where rift dials it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Place {
    /// Its address on the bridge (`{host}`; what its peers dial).
    pub listen: IpAddr,
    /// Where probes, clients and the leader query dial its client port:
    /// `None` for the bridge address itself (a local engine: this machine
    /// routes to the bridge); a remote engine's host, which publishes the
    /// port.
    pub reach: Option<IpAddr>,
}

/// Connects to the engine when the plan's nodes are containers (a clear
/// error when none answers), and removes what runs whose rift is gone
/// left behind.
pub(super) async fn begin(plan: &Plan, run_id: &str) -> Result<Option<DockerRun>, RunError> {
    // Containers' clocks leave libfaketime's files in /dev/shm when rift
    // is SIGKILLed (no guard shell removes them); every run, of either
    // backend, removes those of dead rifts.
    let shm = crate::clock::faketime::sweep_stale();
    if !shm.is_empty() {
        tracing::info!(
            "removed {} libfaketime files of dead runs from /dev/shm",
            shm.len()
        );
    }
    let Backend::Docker(image) = &plan.backend else {
        return Ok(None);
    };
    let engine = Engine::connect().await.map_err(|source| RunError::Docker {
        what: "connect".into(),
        source,
    })?;
    sweep(&engine).await;
    Ok(Some(DockerRun {
        engine,
        labels: RunLabels::this_process(run_id),
        image: image.clone(),
        removed: false,
    }))
}

/// Removes the objects of runs whose rift is gone; says what it removed.
/// Not this run's problem when it fails: logged only.
pub async fn sweep(engine: &Engine) -> Option<crate::docker::Swept> {
    match crate::docker::sweep_stale(engine).await {
        Ok(s) => {
            if s.containers + s.volumes + s.images + s.networks > 0 {
                tracing::info!(
                    "removed what dead runs left in the Docker engine: {} containers, {} volumes, {} images, {} networks",
                    s.containers,
                    s.volumes,
                    s.images,
                    s.networks
                );
            }
            Some(s)
        }
        Err(e) => {
            tracing::warn!("cannot sweep dead runs' objects from the Docker engine: {e}");
            None
        }
    }
}

impl DockerRun {
    /// The node image (found, or built from `binary`) and, on the wire,
    /// one network holder per node whose namespace the wire adopts.
    /// With clock faults, libfaketime goes into the image and every node
    /// container shares `run_dir/nodes` (its spec files) and the host's
    /// `/dev/shm` (its shared memory).
    pub async fn prepare(
        &self,
        spec: &crate::plan::ClusterSpec,
        run_dir: &std::path::Path,
    ) -> Result<Prepared, RunError> {
        let mut extra_files = Vec::new();
        let mut extras = ContainerExtras::default();
        if spec.clock.faketime {
            let library = crate::clock::faketime::find_library()
                .map_err(|why| RunError::Cluster(cluster::ClusterError::Clock(why)))?;
            extra_files.push(library);
            let nodes = run_dir.join("nodes");
            std::fs::create_dir_all(&nodes).map_err(|source| RunError::RunDir {
                path: nodes.display().to_string(),
                source,
            })?;
            extras.binds.push((nodes.clone(), nodes, false));
            extras.ipc_host = true;
        }
        let began = std::time::Instant::now();
        let image =
            cluster::node_image(&self.engine, &self.image, &self.labels, &extra_files).await?;
        tracing::info!(
            "node image {image} ready in {:.2} s",
            began.elapsed().as_secs_f64()
        );
        let sample_program = match (&spec.command, &self.image) {
            (NodeCommand::SampleNode { .. }, DockerImage::Binary(b)) => {
                // The image holds the binary at its host path. rift itself
                // runs the sample node with its hidden subcommand.
                let program = std::fs::canonicalize(b).unwrap_or_else(|_| b.clone());
                let is_rift = program.file_name().is_some_and(|n| n == "rift");
                Some(cluster::SampleNodeProgram {
                    program,
                    leading_args: if is_rift {
                        vec!["sample-node".into()]
                    } else {
                        Vec::new()
                    },
                })
            }
            (NodeCommand::SampleNode { .. }, DockerImage::Image(_))
            | (NodeCommand::External { .. }, DockerImage::Binary(_) | DockerImage::Image(_)) => {
                None
            }
        };
        let (nets, homes, places) = match spec.network {
            NetworkMode::Netns => {
                if !self.engine.is_local() {
                    return Err(RunError::DockerRemote(self.engine.at().to_string()));
                }
                let began = std::time::Instant::now();
                let holders = cluster::start_holders(&self.engine, &self.labels, spec.size).await?;
                tracing::info!(
                    "{} network holders running in {:.2} s",
                    spec.size,
                    began.elapsed().as_secs_f64()
                );
                let mut homes = Vec::with_capacity(spec.size);
                for pid in &holders.pids {
                    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
                    let ns = Netns::open(&path).map_err(|source| RunError::RunDir {
                        path: path.display().to_string(),
                        source,
                    })?;
                    homes.push(ns);
                }
                let nets = holders
                    .containers
                    .iter()
                    .map(|c| ContainerNet::Join(c.id.clone()))
                    .collect();
                (nets, Some(homes), None)
            }
            NetworkMode::None => {
                let (nets, places) = self.bridge(spec.size).await?;
                (nets, None, Some(places))
            }
            NetworkMode::Proxy => {
                return Err(RunError::DockerNetwork(spec.network.name()));
            }
        };
        Ok(Prepared {
            setup: DockerSetup {
                engine: self.engine.clone(),
                labels: self.labels.clone(),
                image,
                nets,
                sample_program,
                extras,
                publish: !self.engine.is_local(),
            },
            homes,
            places,
        })
    }

    /// The run's bridge network and each node's fixed address on it. A
    /// local engine's bridge is internal (the nodes reach nothing outside
    /// the run's network; this machine still reaches them); a remote
    /// engine's is not, since it publishes the nodes' client ports.
    async fn bridge(&self, size: usize) -> Result<(Vec<ContainerNet>, Vec<Place>), RunError> {
        let local = self.engine.is_local();
        let began = std::time::Instant::now();
        let bridge = crate::docker::create_bridge_subnet(&self.engine, &self.labels, local)
            .await
            .map_err(|source| RunError::Docker {
                what: "create the run's bridge network".into(),
                source,
            })?;
        tracing::info!(
            "bridge network {} on {} in {:.2} s",
            bridge.name,
            bridge.subnet(),
            began.elapsed().as_secs_f64()
        );
        let reach = remote_host(self.engine.at())?;
        let mut nets = Vec::with_capacity(size);
        let mut places = Vec::with_capacity(size);
        for i in 0..size {
            let ip = bridge.node_addr(i).ok_or(RunError::DockerBridgeFull {
                subnet: bridge.subnet(),
                nodes: size,
            })?;
            nets.push(ContainerNet::Bridge {
                network: bridge.name.clone(),
                ip: Some(ip),
            });
            places.push(place(ip, reach));
        }
        Ok((nets, places))
    }

    /// Removes everything the run made in the engine.
    pub async fn end(mut self) {
        self.removed = true;
        remove(&self.engine, &self.labels.run_id).await;
    }
}

/// Where rift dials a node at `ip` on the run's bridge: the address itself,
/// or the remote engine's host (`reach`), which publishes the node's port.
fn place(ip: Ipv4Addr, reach: Option<IpAddr>) -> Place {
    Place {
        listen: IpAddr::V4(ip),
        reach,
    }
}

/// The remote engine's host as an address (`None` for a local engine):
/// where the ports its containers publish are reached.
fn remote_host(at: &EngineAt) -> Result<Option<IpAddr>, RunError> {
    match at {
        EngineAt::Local(_) => Ok(None),
        EngineAt::Remote(address) => {
            let unresolved = || RunError::DockerRemoteHost(address.clone());
            let host = at.hostname().ok_or_else(unresolved)?;
            if let Ok(ip) = host.parse::<IpAddr>() {
                return Ok(Some(ip));
            }
            (host, 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map(|a| Some(a.ip()))
                .ok_or_else(unresolved)
        }
    }
}

async fn remove(engine: &Engine, run_id: &str) {
    let began = std::time::Instant::now();
    match crate::docker::remove_run(engine, run_id).await {
        Ok(s) => tracing::info!(
            "removed the run's {} containers, {} volumes, {} images, {} networks in {:.2} s",
            s.containers,
            s.volumes,
            s.images,
            s.networks,
            began.elapsed().as_secs_f64()
        ),
        Err(e) => tracing::warn!(
            "cannot remove the run's objects from the Docker engine ({e}); `rift clean` removes them"
        ),
    }
}

impl Drop for DockerRun {
    /// Every exit path but the normal one: the removal runs on a thread of
    /// its own with its own runtime and connection (the caller's runtime
    /// may be the one unwinding), and the drop waits for it.
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let run_id = self.labels.run_id.clone();
        let done = std::thread::Builder::new()
            .name("rift-docker-cleanup".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(async {
                        match Engine::connect().await {
                            Ok(engine) => {
                                remove(&engine, &run_id).await;
                                // A request the interrupted run had in
                                // flight (an image load, a create) may
                                // still land: look again for a moment.
                                for _ in 0..8 {
                                    tokio::time::sleep(Duration::from_millis(250)).await;
                                    let left = crate::docker::count_run(&engine, &run_id).await;
                                    if left.is_ok_and(|s| !s.is_empty()) {
                                        remove(&engine, &run_id).await;
                                    }
                                }
                            }
                            Err(e) => tracing::warn!(
                                "cannot reach the Docker engine to remove run {run_id}'s objects ({e}); `rift clean` removes them"
                            ),
                        }
                    }),
                    Err(e) => tracing::warn!("cannot start the Docker cleanup: {e}"),
                }
            });
        if let Ok(t) = done {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::classify;

    #[test]
    fn a_local_engines_nodes_are_dialled_at_their_bridge_address() {
        let at = classify("unix:///var/run/docker.sock");
        let reach = remote_host(&at).unwrap();
        assert_eq!(reach, None);
        let p = place(Ipv4Addr::new(198, 19, 3, 2), reach);
        assert_eq!(p.listen, IpAddr::from([198, 19, 3, 2]));
        assert_eq!(p.reach, None);
        // Loopback tcp is local too.
        assert_eq!(
            remote_host(&classify("tcp://127.0.0.1:2375")).unwrap(),
            None
        );
    }

    #[test]
    fn a_remote_engines_nodes_are_dialled_at_its_host() {
        let at = classify("tcp://192.0.2.7:2375");
        let reach = remote_host(&at).unwrap();
        assert_eq!(reach, Some(IpAddr::from([192, 0, 2, 7])));
        let p = place(Ipv4Addr::new(198, 19, 3, 4), reach);
        // The node listens on its bridge address; rift dials the engine's
        // host, where the node's port is published at the same number.
        assert_eq!(p.listen, IpAddr::from([198, 19, 3, 4]));
        assert_eq!(p.reach, Some(IpAddr::from([192, 0, 2, 7])));
        assert_eq!(
            remote_host(&classify("ssh://me@[fd00::9]:22")).unwrap(),
            Some("fd00::9".parse().unwrap())
        );
        assert!(matches!(
            remote_host(&EngineAt::Remote("ssh://".into())),
            Err(RunError::DockerRemoteHost(_))
        ));
    }
}
