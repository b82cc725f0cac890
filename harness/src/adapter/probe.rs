//! The probe adapter: one request per operation, whose status alone says
//! whether the node served (`kind = "probe"`).
//!
//! Knows nothing of keys or state; a probe never changes anything.

use super::{error_text, exchange, Adapter, Call, Request, Response};
use crate::history::{OpKind, Outcome};
use std::net::SocketAddr;

pub struct Probe {
    http: reqwest::Client,
    method: reqwest::Method,
    path: String,
    ok_status: Vec<u16>,
}

impl Probe {
    pub fn new(
        http: reqwest::Client,
        method: &reqwest::Method,
        path: &str,
        ok_status: &[u16],
    ) -> Probe {
        Probe {
            http,
            method: method.clone(),
            path: path.to_string(),
            ok_status: ok_status.to_vec(),
        }
    }

    async fn run(&self, addr: SocketAddr) -> Response {
        let request = self
            .http
            .request(self.method.clone(), format!("http://{addr}{}", self.path));
        match exchange(OpKind::Probe, request).await {
            Ok((status, body)) => classify(&self.ok_status, status, &body),
            Err(failed) => failed,
        }
    }
}

impl Adapter for Probe {
    fn call<'a>(&'a self, addr: SocketAddr, _req: &'a Request) -> Call<'a, Response> {
        Box::pin(self.run(addr))
    }

    fn read_key<'a>(
        &'a self,
        _addr: SocketAddr,
        _key: &'a str,
    ) -> Call<'a, Option<Option<String>>> {
        Box::pin(async { None })
    }
}

fn classify(ok_status: &[u16], status: u16, body: &[u8]) -> Response {
    let ok = ok_status.contains(&status);
    Response {
        outcome: if ok { Outcome::Ok } else { Outcome::Fail },
        result: None,
        values: None,
        status: Some(status),
        error: if ok { None } else { error_text(body) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_success_is_the_status_set() {
        assert_eq!(classify(&[200, 204], 204, b"").outcome, Outcome::Ok);
        assert_eq!(classify(&[200, 204], 404, b"").outcome, Outcome::Fail);
    }
}
