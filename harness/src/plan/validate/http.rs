//! The HTTP key-value adapter's tables (`[workload.http.read]`, `write`,
//! `cas`): method, path, headers, body, status classes and where the value
//! is. It checks templates name only the adapter's placeholders; it never
//! renders them nor sends a request.

use super::primitives::{backticked, describe, Tbl, Value};
use super::Validator;
use crate::plan::types::{HttpKv, HttpOp, KvMix, ValueAt};
use reqwest::Method;
use toml::de::DeValue;

/// Fields of one operation of the HTTP key-value adapter.
const HTTP_OP_KEYS: &[&str] = &[
    "method",
    "path",
    "headers",
    "body",
    "ok",
    "not_found",
    "precondition_failed",
    "refused",
    "value",
];
/// Placeholders an adapter template may use.
const HTTP_PLACEHOLDERS: &[&str] = &["key", "value", "expect", "value_json", "expect_json"];

impl Validator<'_> {
    /// `[workload.http]`: `read` and `write` required, `cas` when the mix
    /// has compare-and-set operations.
    pub(super) fn http_kv(&mut self, h: &Tbl<'_, '_>, mix: Option<&KvMix>) -> Option<HttpKv> {
        self.unknown_keys(h, &["read", "write", "cas", "cas_absent"]);
        let op = |v: &mut Self, name: &str, required: bool| -> Option<Option<HttpOp>> {
            if h.get(name).is_none() {
                if required {
                    v.error(
                        h.span.clone(),
                        h.field(name),
                        format!("the HTTP adapter needs a `{name}` operation"),
                    );
                    return None;
                }
                return Some(None);
            }
            let t = v.table(h, name)?;
            v.http_op(&t, name).map(Some)
        };
        let read = op(self, "read", true);
        let write = op(self, "write", true);
        let needs_cas = mix.is_some_and(|m| m.cas > 0.0);
        let cas = op(self, "cas", needs_cas);
        let cas_absent = op(self, "cas_absent", false);
        if let (Some(None), Some(Some(_))) = (&cas, &cas_absent) {
            let span = h.get("cas_absent").map_or(h.span.clone(), |v| v.span());
            self.error(
                span,
                h.field("cas_absent"),
                "`cas_absent` shapes only the cas that expects the key to be absent; give `cas` for the others too",
            );
            return None;
        }
        Some(HttpKv {
            read: read??,
            write: write??,
            cas: cas?,
            cas_absent: cas_absent?,
        })
    }

    fn http_op(&mut self, t: &Tbl<'_, '_>, name: &str) -> Option<HttpOp> {
        self.unknown_keys(t, HTTP_OP_KEYS);
        let method = self.http_method(t, name);
        let path = match t.get("path") {
            None => {
                self.error(t.span.clone(), t.field("path"), "missing field `path`");
                None
            }
            Some(_) => self
                .http_path(t, "path")
                .and_then(|p| self.http_template(t, "path", p)),
        };
        let body = match self.string(t, "body") {
            None if t.get("body").is_some() => None,
            None => Some(None),
            Some((b, _)) => self.http_template(t, "body", b).map(Some),
        };
        let headers = self.headers(t);
        let statuses = |v: &mut Self, key: &str, default: Vec<u16>| match t.get(key) {
            None => Some(default),
            Some(x) => v.statuses(x, t.field(key)),
        };
        let ok = statuses(self, "ok", vec![200]);
        let not_found = statuses(
            self,
            "not_found",
            if name == "read" {
                vec![404]
            } else {
                Vec::new()
            },
        );
        let precondition_failed = statuses(
            self,
            "precondition_failed",
            if is_cas(name) {
                vec![409, 412]
            } else {
                Vec::new()
            },
        );
        let refused = statuses(self, "refused", Vec::new());
        if name == "read" {
            if let Some(v) = t.get("refused") {
                self.error(
                    v.span(),
                    t.field("refused"),
                    "`refused` only applies to `write` and `cas`; every failed read is a definite failure",
                );
            }
        }
        if !is_cas(name) {
            if let Some(v) = t.get("precondition_failed") {
                self.error(
                    v.span(),
                    t.field("precondition_failed"),
                    "`precondition_failed` only applies to the `cas` and `cas_absent` operations",
                );
            }
        }
        let value = self.value_at(t);
        Some(HttpOp {
            method: method?,
            path: path?,
            headers: headers?,
            body: body?,
            ok: ok?,
            not_found: not_found?,
            precondition_failed: precondition_failed?,
            refused: refused?,
            value: value?,
        })
    }

    /// `method`: an HTTP method in capitals; GET for `read`, POST otherwise.
    fn http_method(&mut self, t: &Tbl<'_, '_>, name: &str) -> Option<Method> {
        match self.string(t, "method") {
            None if t.get("method").is_some() => None,
            None if name == "read" => Some(Method::GET),
            None => Some(Method::POST),
            Some((m, span)) => {
                let method = (!m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()))
                    .then(|| Method::from_bytes(m.as_bytes()).ok())
                    .flatten();
                if method.is_none() {
                    self.error(
                        span,
                        t.field("method"),
                        format!("expected an HTTP method in capitals such as \"PUT\", found {m:?}"),
                    );
                }
                method
            }
        }
    }

    /// `headers`: names (letters, digits, `-`, `_`; kept in lower case) to
    /// value templates.
    fn headers(&mut self, t: &Tbl<'_, '_>) -> Option<Vec<(String, String)>> {
        let mut headers = Some(Vec::new());
        if t.get("headers").is_none() {
            return headers;
        }
        let ht = self.table(t, "headers")?;
        for (k, _) in ht.keys() {
            let valid = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
            let v = self
                .string(&ht, k)
                .and_then(|(v, _)| self.http_template(&ht, k, v));
            if !valid {
                self.error(
                    ht.get(k).map(|v| v.span()).unwrap_or(ht.span.clone()),
                    ht.field(k),
                    "a header name has only letters, digits, `-` and `_`",
                );
            }
            match (v, headers.as_mut()) {
                (Some(v), Some(hs)) if valid => hs.push((k.to_ascii_lowercase(), v)),
                _ => headers = None,
            }
        }
        headers
    }

    /// `value`: "body" (the default) or a JSON pointer.
    fn value_at(&mut self, t: &Tbl<'_, '_>) -> Option<ValueAt> {
        match self.string(t, "value") {
            None if t.get("value").is_some() => None,
            None => Some(ValueAt::Body),
            Some((v, span)) => {
                if v == "body" {
                    Some(ValueAt::Body)
                } else if v.starts_with('/') {
                    Some(ValueAt::Pointer(v))
                } else {
                    self.error(
                        span,
                        t.field("value"),
                        format!("expected \"body\" or a JSON pointer such as \"/data/value\", found {v:?}"),
                    );
                    None
                }
            }
        }
    }

    /// Checks that a template only names the adapter's placeholders. A `{`
    /// not followed by a lowercase name and `}` is literal text (JSON bodies).
    fn http_template(&mut self, t: &Tbl<'_, '_>, key: &str, text: String) -> Option<String> {
        for name in placeholder_names(&text) {
            if !HTTP_PLACEHOLDERS.contains(&name) {
                let span = t.get(key).map(|v| v.span()).unwrap_or(t.span.clone());
                self.error(
                    span,
                    t.field(key),
                    format!(
                        "unknown placeholder `{{{name}}}`; the adapter knows {}",
                        backticked(HTTP_PLACEHOLDERS)
                    ),
                );
                return None;
            }
        }
        Some(text)
    }

    /// An array of HTTP status codes, at least one.
    pub(super) fn statuses(&mut self, v: &Value<'_>, field: String) -> Option<Vec<u16>> {
        let DeValue::Array(items) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected an array of HTTP status codes, found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        if items.is_empty() {
            self.error(v.span(), field, "expected at least one HTTP status code");
            return None;
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            out.push(self.int_value(item, format!("{field}[{i}]"), 100, 599)? as u16);
        }
        Some(out)
    }
}

/// `cas` and `cas_absent` (the compare-and-set operations).
fn is_cas(name: &str) -> bool {
    matches!(name, "cas" | "cas_absent")
}

/// Every `{name}` (lowercase letters and `_`) in an adapter template.
fn placeholder_names(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('{') {
        let after = &text[i + 1..];
        let len = after
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
            .count();
        if len > 0 && after[len..].starts_with('}') {
            out.push(&after[..len]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, ok};
    use crate::plan::types::*;

    #[test]
    fn http_adapter_blocks() {
        let p = ok(r#"[workload]
kind = "kv"
mix = { read = 1, write = 1 }
[workload.http.read]
path = "/items/{key}"
value = "/data/value"
headers = { x-token = "t-{key}" }
[workload.http.write]
method = "PUT"
path = "/items/{key}"
body = '{"value": {value_json}}'
ok = [200, 201]
"#);
        let WorkloadKind::Kv { http: Some(h), .. } = p.workload.kind else {
            panic!("expected an adapter");
        };
        assert_eq!(h.read.method, "GET");
        assert_eq!(h.read.not_found, vec![404]);
        assert_eq!(h.read.value, ValueAt::Pointer("/data/value".into()));
        assert_eq!(
            h.read.headers,
            vec![("x-token".to_string(), "t-{key}".to_string())]
        );
        assert_eq!(h.write.ok, vec![200, 201]);
        assert_eq!(h.write.value, ValueAt::Body);
        assert_eq!(h.cas, None);
        assert_eq!(
            err("[workload]\n[workload.http.read]\npath = \"/x/{key}\"\n[workload.http.write]\npath = \"/x/{key}\"\n"),
            "workload.http.cas: the HTTP adapter needs a `cas` operation"
        );
        assert_eq!(
            err("[workload]\nmix = { read = 1 }\n[workload.http.read]\npath = \"/x/{id}\"\n[workload.http.write]\npath = \"/x\"\n"),
            "workload.http.read.path: unknown placeholder `{id}`; the adapter knows `key`, `value`, `expect`, `value_json`, `expect_json`"
        );
        assert_eq!(
            err("[workload]\nmix = { read = 1 }\n[workload.http.read]\npath = \"/x\"\nvalue = \"data\"\n[workload.http.write]\npath = \"/x\"\n"),
            "workload.http.read.value: expected \"body\" or a JSON pointer such as \"/data/value\", found \"data\""
        );
        assert_eq!(
            err("[workload]\nkind = \"ledger\"\n[expect]\nlost_writes = 0\n"),
            "expect.lost_writes: the `lost_writes` checker needs workload kind = \"kv\"; for the ledger, `ledger_agreement` checks every acknowledged transaction"
        );
    }

    #[test]
    fn methods_are_parsed_once() {
        let body = "[workload]\nmix = { read = 1 }\n[workload.http.read]\nmethod = \"QUERY\"\npath = \"/x\"\n[workload.http.write]\npath = \"/x\"\n";
        let WorkloadKind::Kv { http: Some(h), .. } = ok(body).workload.kind else {
            panic!("expected an adapter");
        };
        assert_eq!(
            h.read.method,
            reqwest::Method::from_bytes(b"QUERY").unwrap()
        );
        assert_eq!(h.write.method, reqwest::Method::POST);
        assert_eq!(
            err(&body.replace("QUERY", "get")),
            "workload.http.read.method: expected an HTTP method in capitals such as \"PUT\", found \"get\""
        );
        assert_eq!(
            err("[workload]\nkind = \"probe\"\nmethod = \"FETCH\"\n"),
            "workload.method: expected one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, found \"FETCH\""
        );
    }

    #[test]
    fn cas_absent_has_a_shape_of_its_own_or_none() {
        let head = "[workload]\n[workload.http.read]\npath = \"/x/{key}\"\n[workload.http.write]\npath = \"/x/{key}\"\n[workload.http.cas]\npath = \"/x/{key}/cas\"\n";
        let WorkloadKind::Kv { http: Some(h), .. } = ok(head).workload.kind else {
            panic!("expected an adapter");
        };
        assert_eq!(h.cas_absent, None);
        // A refused cas reads the current value from every listed status.
        assert_eq!(h.cas.map(|c| c.precondition_failed), Some(vec![409, 412]));
        let with = format!(
            "{head}[workload.http.cas_absent]\nmethod = \"PUT\"\npath = \"/x/{{key}}?create_only=1\"\nbody = \"{{value}}\"\nprecondition_failed = [409]\nok = [201]\n"
        );
        let WorkloadKind::Kv { http: Some(h), .. } = ok(&with).workload.kind else {
            panic!("expected an adapter");
        };
        let a = h.cas_absent.expect("cas_absent");
        assert_eq!(a.method, reqwest::Method::PUT);
        assert_eq!(a.path, "/x/{key}?create_only=1");
        assert_eq!((a.ok, a.precondition_failed), (vec![201], vec![409]));
        assert_eq!(
            err("[workload]\nmix = { read = 1, write = 1 }\n[workload.http.read]\npath = \"/x\"\n[workload.http.write]\npath = \"/x\"\n[workload.http.cas_absent]\npath = \"/x\"\n"),
            "workload.http.cas_absent: `cas_absent` shapes only the cas that expects the key to be absent; give `cas` for the others too"
        );
        assert_eq!(
            err(&format!("{head}[workload.http.cas_absent]\npath = \"/x/{{nope}}\"\n")),
            "workload.http.cas_absent.path: unknown placeholder `{nope}`; the adapter knows `key`, `value`, `expect`, `value_json`, `expect_json`"
        );
        assert_eq!(
            err("[workload]\nmix = { read = 1 }\n[workload.http.read]\npath = \"/x\"\nprecondition_failed = [412]\n[workload.http.write]\npath = \"/x\"\n"),
            "workload.http.read.precondition_failed: `precondition_failed` only applies to the `cas` and `cas_absent` operations"
        );
    }
}
