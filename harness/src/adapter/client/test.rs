//! `rift client-test`: a short scripted session through one client process
//! against a live cluster, checking that every answer is well-formed and
//! consistent with the model (a write then a read returns the value; a cas
//! from the wrong expectation is refused; ...).
//!
//! Returns one line per problem; never judges anything but the client.

use super::{ClientPool, Session};
use crate::adapter::{Request, Response};
use crate::history::{OpKind, Outcome};
use crate::NodeId;

/// Runs the script for the pool's model; what is wrong, one line each
/// (empty: the client is OK). `tag` makes keys and values unique.
pub async fn script(pool: &ClientPool, tag: &str) -> Vec<String> {
    let mut s = Script {
        session: pool.session(0),
        node: NodeId(0),
        wrong: Vec::new(),
    };
    // The leader, when the client can tell: operations go there.
    let (_, r) = s.session.leader(NodeId(0)).await;
    match (r.outcome, r.result) {
        (Outcome::Ok, Some(name)) => match NodeId::parse(&name) {
            Some(n) if n.index() < pool.shared.nodes.len() => s.node = n,
            Some(_) | None => s
                .wrong
                .push(format!("leader: `{name}` is not a node of the cluster")),
        },
        (Outcome::Ok, None) => {}
        (Outcome::Fail | Outcome::Unknown, _) => s.wrong.push(format!(
            "leader: {}",
            r.error.unwrap_or_else(|| "no answer".into())
        )),
    }
    match pool.model() {
        "set" => s.set(tag).await,
        "list-append" => s.list(tag).await,
        _ => s.register(tag).await,
    }
    let mut wrong = s.wrong;
    drop(s.session);
    // Protocol breaches were recorded as problems (and the client replaced).
    wrong.extend(pool.problems().first);
    wrong
}

struct Script {
    session: Session,
    node: NodeId,
    wrong: Vec<String>,
}

fn req(kind: OpKind, key: &str, value: Option<&str>, expect: Option<&str>) -> Request {
    Request {
        kind,
        key: Some(key.to_string()),
        value: value.map(str::to_string),
        expect: expect.map(str::to_string),
    }
}

impl Script {
    async fn op(&mut self, what: &str, r: Request) -> Response {
        let (_, resp) = self.session.call(self.node, &r).await;
        if resp.outcome == Outcome::Unknown {
            self.wrong.push(format!(
                "{what}: info ({}) on a healthy cluster",
                resp.error.as_deref().unwrap_or("no reason")
            ));
        }
        resp
    }

    fn expect_ok(&mut self, what: &str, r: &Response) -> bool {
        if r.outcome == Outcome::Ok {
            return true;
        }
        if r.outcome == Outcome::Fail {
            self.wrong.push(format!(
                "{what}: fail ({}) where ok was expected",
                r.error.as_deref().unwrap_or("refused")
            ));
        }
        false
    }

    async fn read_is(&mut self, what: &str, key: &str, want: Option<&str>) {
        let r = self.op(what, req(OpKind::Read, key, None, None)).await;
        if self.expect_ok(what, &r) && r.result.as_deref() != want {
            self.wrong
                .push(format!("{what}: read {:?}, expected {want:?}", r.result));
        }
    }

    async fn refused(&mut self, what: &str, r: Request, current: Option<&str>) {
        let resp = self.op(what, r).await;
        match resp.outcome {
            Outcome::Fail if resp.error.is_none() => {
                if resp.result.is_some() && resp.result.as_deref() != current {
                    self.wrong.push(format!(
                        "{what}: refusal says the value is {:?}, it is {current:?}",
                        resp.result
                    ));
                }
            }
            Outcome::Fail => self.wrong.push(format!(
                "{what}: fail without `\"refused\": true` ({}): a refused cas must say so",
                resp.error.as_deref().unwrap_or("")
            )),
            Outcome::Ok => self
                .wrong
                .push(format!("{what}: ok, but the expectation did not hold")),
            Outcome::Unknown => {}
        }
    }

    async fn register(&mut self, tag: &str) {
        let k = format!("ct-{tag}-a");
        let k2 = format!("ct-{tag}-b");
        let (v1, v2) = (format!("{tag}.1"), format!("{tag}.2"));
        self.read_is("read of an absent key", &k, None).await;
        let r = self
            .op("write", req(OpKind::Write, &k, Some(&v1), None))
            .await;
        self.expect_ok("write", &r);
        self.read_is("read after write", &k, Some(&v1)).await;
        let r = self
            .op(
                "cas from the right value",
                req(OpKind::Cas, &k, Some(&v2), Some(&v1)),
            )
            .await;
        self.expect_ok("cas from the right value", &r);
        self.read_is("read after cas", &k, Some(&v2)).await;
        let wrong_cas = req(OpKind::Cas, &k, Some("never"), Some("not-the-value"));
        self.refused("cas from a wrong value", wrong_cas, Some(&v2))
            .await;
        let absent_on_present = req(OpKind::Cas, &k, Some("never"), None);
        self.refused(
            "cas from absent on a present key",
            absent_on_present,
            Some(&v2),
        )
        .await;
        self.read_is("read after refused cas", &k, Some(&v2)).await;
        let r = self
            .op("cas from absent", req(OpKind::Cas, &k2, Some(&v1), None))
            .await;
        self.expect_ok("cas from absent", &r);
        self.read_is("read after cas from absent", &k2, Some(&v1))
            .await;
    }

    async fn collection(&mut self, tag: &str, write: OpKind, read: OpKind, ordered: bool) {
        let k = format!("ct-{tag}");
        let empty = format!("ct-{tag}-empty");
        let (e1, e2) = (format!("{tag}.1"), format!("{tag}.2"));
        for e in [&e1, &e2] {
            let r = self.op("add/append", req(write, &k, Some(e), None)).await;
            self.expect_ok("add/append", &r);
        }
        let r = self.op("read", req(read, &k, None, None)).await;
        if self.expect_ok("read", &r) {
            let mut got = r.values.unwrap_or_default();
            if !ordered {
                got.sort();
            }
            if got != [e1.clone(), e2.clone()] {
                self.wrong
                    .push(format!("read: {got:?}, expected [{e1:?}, {e2:?}]"));
            }
        }
        let r = self
            .op("read of an empty key", req(read, &empty, None, None))
            .await;
        if self.expect_ok("read of an empty key", &r)
            && r.values.as_ref().is_some_and(|v| !v.is_empty())
        {
            self.wrong
                .push(format!("read of an empty key: {:?}, expected []", r.values));
        }
    }

    async fn set(&mut self, tag: &str) {
        self.collection(tag, OpKind::Add, OpKind::ReadSet, false)
            .await;
    }

    async fn list(&mut self, tag: &str) {
        self.collection(tag, OpKind::Append, OpKind::ReadList, true)
            .await;
    }
}
