//! Where the engine is and the connection to it.

use std::time::Duration;

use super::DockerError;

/// Where the engine answers: on this machine or elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineAt {
    /// A unix socket, or tcp to a loopback address: the engine shares this
    /// machine's kernel, so rift can reach into container namespaces.
    Local(String),
    /// Any other `DOCKER_HOST`: only the engine's API reaches its containers.
    Remote(String),
}

impl std::fmt::Display for EngineAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineAt::Local(h) => write!(f, "{h} (local)"),
            EngineAt::Remote(h) => write!(f, "{h} (remote)"),
        }
    }
}

/// The engine's socket when `DOCKER_HOST` is not set.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long [`Engine::connect`] waits for the engine to answer.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The engine's address from `DOCKER_HOST` (or the default socket). No I/O.
pub fn engine_at() -> EngineAt {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => classify(h.trim()),
        _ => EngineAt::Local(DEFAULT_HOST.to_string()),
    }
}

/// Local when the address is a unix socket or tcp/http to a loopback host.
pub fn classify(host: &str) -> EngineAt {
    if host.starts_with("unix://") {
        return EngineAt::Local(host.to_string());
    }
    let tcp = ["tcp://", "http://", "https://"]
        .iter()
        .any(|scheme| host.starts_with(scheme));
    let loopback = tcp
        && hostname(host).is_some_and(|h| {
            h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    if loopback {
        EngineAt::Local(host.to_string())
    } else {
        EngineAt::Remote(host.to_string())
    }
}

/// The host name or address in an engine address (`tcp://h:2375`,
/// `ssh://user@h`); `None` for a unix socket or an address without one.
fn hostname(address: &str) -> Option<&str> {
    let (scheme, rest) = address.split_once("://")?;
    if scheme == "unix" {
        return None;
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    Some(host).filter(|h| !h.is_empty())
}

impl EngineAt {
    /// The address itself (`unix:///...`, `tcp://...`, `ssh://...`).
    pub fn address(&self) -> &str {
        match self {
            EngineAt::Local(h) | EngineAt::Remote(h) => h,
        }
    }

    /// The engine's host name or address (`None` for a unix socket): where
    /// ports a container publishes are reached.
    pub fn hostname(&self) -> Option<&str> {
        hostname(self.address())
    }
}

/// A connection to the engine, with the API version negotiated.
#[derive(Clone, Debug)]
pub struct Engine {
    docker: bollard::Docker,
    at: EngineAt,
}

impl Engine {
    /// Connects, negotiates the API version and pings (within 3 s).
    pub async fn connect() -> Result<Engine, DockerError> {
        Engine::connect_to(engine_at()).await
    }

    /// Connects to the engine at `at` (see [`Engine::connect`]).
    pub async fn connect_to(at: EngineAt) -> Result<Engine, DockerError> {
        let address = at.address().to_string();
        let docker = bollard::Docker::connect_with_host(&address).map_err(|source| {
            DockerError::Connect {
                at: address.clone(),
                source,
            }
        })?;
        let answered = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            Ok::<_, bollard::errors::Error>(docker)
        })
        .await;
        match answered {
            Ok(Ok(docker)) => Ok(Engine { docker, at }),
            Ok(Err(source)) => Err(DockerError::Connect {
                at: address,
                source,
            }),
            Err(_elapsed) => Err(DockerError::NoAnswer {
                at: address,
                waited: CONNECT_TIMEOUT,
            }),
        }
    }

    /// The API version in use after negotiation (`1.41` on engine 20.10).
    pub fn api_version(&self) -> String {
        let v = self.docker.client_version();
        format!("{}.{}", v.major_version, v.minor_version)
    }

    /// The bollard client, for what this module does not wrap.
    pub fn client(&self) -> &bollard::Docker {
        &self.docker
    }

    /// Where this engine answers.
    pub fn at(&self) -> &EngineAt {
        &self.at
    }

    /// Whether the engine shares this machine's kernel.
    pub fn is_local(&self) -> bool {
        matches!(self.at, EngineAt::Local(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_tcp_and_unix_are_local_others_remote() {
        assert!(matches!(
            classify("unix:///run/docker.sock"),
            EngineAt::Local(_)
        ));
        assert!(matches!(
            classify("tcp://127.0.0.1:2375"),
            EngineAt::Local(_)
        ));
        assert!(matches!(
            classify("tcp://localhost:2375"),
            EngineAt::Local(_)
        ));
        assert!(matches!(classify("tcp://[::1]:2375"), EngineAt::Local(_)));
        assert!(matches!(
            classify("tcp://10.1.2.3:2375"),
            EngineAt::Remote(_)
        ));
        assert!(matches!(classify("ssh://me@box"), EngineAt::Remote(_)));
        assert!(matches!(
            classify("ssh://me@127.0.0.1"),
            EngineAt::Remote(_)
        ));
    }

    #[test]
    fn hostname_of_an_engine_address() {
        assert_eq!(classify("unix:///run/docker.sock").hostname(), None);
        assert_eq!(classify("tcp://10.1.2.3:2375").hostname(), Some("10.1.2.3"));
        assert_eq!(classify("tcp://box.lan").hostname(), Some("box.lan"));
        assert_eq!(classify("ssh://me@box:22").hostname(), Some("box"));
        assert_eq!(classify("tcp://[fd00::5]:2375").hostname(), Some("fd00::5"));
    }
}
