//! Removing a run's objects, and those of every run whose rift is gone.
//!
//! Everything rift makes carries `io.rift.run`; a run removes its own at
//! its end ([`remove_run`]). A SIGKILLed rift cannot, so each run first
//! sweeps the objects whose labels name a rift process that is gone, or
//! whose pid now belongs to a process started at another time
//! ([`sweep_stale`]; `rift clean` runs it on demand). Objects made by rift
//! on another host (`io.rift.host`) are left alone: this machine cannot
//! tell whether their rift lives.

use std::collections::HashMap;

use bollard::query_parameters as q;

use super::container::{is_not_found, remove_container, remove_volume};
use super::labels::{self, Owner};
use super::{DockerError, Engine};

/// How many objects of each kind were removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Containers.
    pub containers: usize,
    /// Volumes.
    pub volumes: usize,
    /// Images.
    pub images: usize,
    /// Networks.
    pub networks: usize,
}

impl Swept {
    /// Nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == Swept::default()
    }
}

/// Everything of rift's in the engine, with its labels.
struct Labelled {
    containers: Vec<(String, HashMap<String, String>)>,
    volumes: Vec<(String, HashMap<String, String>)>,
    images: Vec<(String, HashMap<String, String>)>,
    networks: Vec<(String, HashMap<String, String>)>,
}

/// Lists the objects carrying `filter` (`io.rift.run` or `io.rift.run=<id>`).
async fn list(e: &Engine, filter: &str) -> Result<Labelled, DockerError> {
    let filters = || {
        Some(HashMap::from([(
            "label".to_string(),
            vec![filter.to_string()],
        )]))
    };
    let api = |what: &str| {
        let what = format!("list {what} labelled {filter}");
        move |source| DockerError::Api { what, source }
    };
    let containers = e
        .client()
        .list_containers(Some(q::ListContainersOptions {
            all: true,
            filters: filters(),
            ..Default::default()
        }))
        .await
        .map_err(api("containers"))?
        .into_iter()
        .filter_map(|c| Some((c.id?, c.labels.unwrap_or_default())))
        .collect();
    let volumes = e
        .client()
        .list_volumes(Some(q::ListVolumesOptions { filters: filters() }))
        .await
        .map_err(api("volumes"))?
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.name, v.labels))
        .collect();
    let images = e
        .client()
        .list_images(Some(q::ListImagesOptions {
            all: false,
            filters: filters(),
            ..Default::default()
        }))
        .await
        .map_err(api("images"))?
        .into_iter()
        .map(|i| (i.id, i.labels))
        .collect();
    let networks = e
        .client()
        .list_networks(Some(q::ListNetworksOptions { filters: filters() }))
        .await
        .map_err(api("networks"))?
        .into_iter()
        .filter_map(|n| Some((n.id?, n.labels.unwrap_or_default())))
        .collect();
    Ok(Labelled {
        containers,
        volumes,
        images,
        networks,
    })
}

/// Removes the listed objects that `doomed` picks: containers first (they
/// hold volumes, networks and images), images last. One failure does not
/// stop the rest; the first is returned after all were tried.
async fn remove_where(
    e: &Engine,
    all: Labelled,
    doomed: impl Fn(&HashMap<String, String>) -> bool,
) -> Result<Swept, DockerError> {
    let mut swept = Swept::default();
    let mut first_err: Option<DockerError> = None;
    let mut note = |r: Result<(), DockerError>, count: &mut usize| match r {
        Ok(()) => *count += 1,
        Err(err) => {
            first_err.get_or_insert(err);
        }
    };
    for (id, l) in &all.containers {
        if doomed(l) {
            note(remove_container(e, id).await, &mut swept.containers);
        }
    }
    for (name, l) in &all.volumes {
        if doomed(l) {
            note(remove_volume(e, name).await, &mut swept.volumes);
        }
    }
    for (id, l) in &all.networks {
        if doomed(l) {
            let r = match e.client().remove_network(id).await {
                Ok(()) => Ok(()),
                Err(err) if is_not_found(&err) => Ok(()),
                Err(source) => Err(DockerError::Api {
                    what: format!("remove network {id}"),
                    source,
                }),
            };
            note(r, &mut swept.networks);
        }
    }
    for (id, l) in &all.images {
        if doomed(l) {
            let options = q::RemoveImageOptions {
                force: true,
                noprune: false,
                ..Default::default()
            };
            let r = match e.client().remove_image(id, Some(options), None).await {
                Ok(_) => Ok(()),
                Err(err) if is_not_found(&err) => Ok(()),
                Err(source) => Err(DockerError::Api {
                    what: format!("remove image {id}"),
                    source,
                }),
            };
            note(r, &mut swept.images);
        }
    }
    match first_err {
        Some(err) => Err(err),
        None => Ok(swept),
    }
}

/// Removes everything of runs whose rift process is gone (on this host).
pub async fn sweep_stale(e: &Engine) -> Result<Swept, DockerError> {
    let all = list(e, labels::RUN).await?;
    remove_where(e, all, |l| labels::owner(l) == Owner::Gone).await
}

/// Removes everything labelled with `run_id`.
pub async fn remove_run(e: &Engine, run_id: &str) -> Result<Swept, DockerError> {
    let all = list(e, &format!("{}={run_id}", labels::RUN)).await?;
    remove_where(e, all, |_| true).await
}

/// Counts what is labelled with `run_id` (nothing, once it is removed).
pub async fn count_run(e: &Engine, run_id: &str) -> Result<Swept, DockerError> {
    let all = list(e, &format!("{}={run_id}", labels::RUN)).await?;
    Ok(Swept {
        containers: all.containers.len(),
        volumes: all.volumes.len(),
        images: all.images.len(),
        networks: all.networks.len(),
    })
}
