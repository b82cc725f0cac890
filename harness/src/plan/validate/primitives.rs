//! The shared reading primitives of the validation pass: the table being
//! read ([`Tbl`]), typed readers for strings, whole numbers, numbers, booleans,
//! durations, sizes and templates, and the wording of "found ..." and "did you
//! mean" in messages. Every reader records its own error and returns `None`;
//! none of them knows any plan section, and none may panic on any input.

use super::Validator;
use crate::plan::duration::{parse_duration, parse_size};
use crate::plan::template::TemplateScope;
use crate::plan::types::{Placeholder, Template};
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

pub(super) type Span = Range<usize>;
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

/// A table being read: possibly absent (then every field takes its default).
pub(super) struct Tbl<'a, 'i> {
    pub(super) t: Option<&'a DeTable<'i>>,
    /// The table's own span (its `[header]` or inline `{...}`), for errors
    /// about missing fields.
    pub(super) span: Span,
    /// Dotted path of the table; empty for the root.
    pub(super) path: String,
}

impl<'a, 'i> Tbl<'a, 'i> {
    pub(super) fn get(&self, key: &str) -> Option<&'a Value<'i>> {
        self.t.and_then(|t| t.get(key))
    }

    pub(super) fn field(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub(super) fn keys(&self) -> impl Iterator<Item = (&'a str, Span)> + 'a {
        self.t
            .into_iter()
            .flat_map(|t| t.iter())
            .map(|(k, _)| (k.get_ref().as_ref(), k.span()))
    }
}

/// What a value is, for "found ..." in messages.
pub(super) fn describe(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            if s.chars().count() > 40 {
                let short: String = s.chars().take(40).collect();
                format!("{short:?}...")
            } else {
                format!("{s:?}")
            }
        }
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(_) => "a date-time".to_string(),
        DeValue::Array(_) => "an array".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    }
}

/// The candidate closest to `name`, if any is close enough to be a typo.
pub(super) fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `` `a`, `b`, `c` `` for messages.
pub(super) fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An integer in any TOML notation (hex, underscores), if `v` is one.
pub(super) fn int_value(v: &DeValue<'_>) -> Option<i128> {
    match v {
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    }
}

/// A float or integer as `f64`, if `v` is a number.
pub(super) fn float_value(v: &DeValue<'_>) -> Option<f64> {
    match v {
        DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
        DeValue::Integer(_) => int_value(v).map(|i| i as f64),
        _ => None,
    }
}

impl Validator<'_> {
    pub(super) fn error(
        &mut self,
        span: Span,
        field: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push((span, field.into(), message.into()));
    }

    /// Reports keys not in `allowed`, suggesting the closest allowed one.
    pub(super) fn unknown_keys(&mut self, tbl: &Tbl<'_, '_>, allowed: &[&str]) {
        for (key, span) in tbl.keys() {
            if !allowed.contains(&key) {
                let msg = unknown_field(key, allowed);
                self.error(span, tbl.field(key), msg);
            }
        }
    }

    /// A sub-table; `None` (after an error) when the value is not a table.
    pub(super) fn table<'a, 'i>(&mut self, parent: &Tbl<'a, 'i>, key: &str) -> Option<Tbl<'a, 'i>> {
        let field = parent.field(key);
        match parent.get(key) {
            None => Some(Tbl {
                t: None,
                span: parent.span.clone(),
                path: field,
            }),
            Some(v) => match v.get_ref() {
                DeValue::Table(t) => Some(Tbl {
                    t: Some(t),
                    span: v.span(),
                    path: field,
                }),
                other => {
                    self.error(
                        v.span(),
                        field,
                        format!("expected a table, found {}", describe(other)),
                    );
                    None
                }
            },
        }
    }

    pub(super) fn string(&mut self, tbl: &Tbl<'_, '_>, key: &str) -> Option<(String, Span)> {
        let v = tbl.get(key)?;
        self.string_value(v, tbl.field(key))
    }

    pub(super) fn string_value(&mut self, v: &Value<'_>, field: String) -> Option<(String, Span)> {
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), v.span())),
            other => {
                self.error(
                    v.span(),
                    field,
                    format!("expected a string, found {}", describe(other)),
                );
                None
            }
        }
    }

    pub(super) fn bool(&mut self, tbl: &Tbl<'_, '_>, key: &str) -> Option<bool> {
        let v = tbl.get(key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    v.span(),
                    tbl.field(key),
                    format!("expected true or false, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// A whole number in `lo..=hi`.
    pub(super) fn int(&mut self, tbl: &Tbl<'_, '_>, key: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = tbl.get(key)?;
        self.int_value(v, tbl.field(key), lo, hi)
    }

    pub(super) fn int_value(
        &mut self,
        v: &Value<'_>,
        field: String,
        lo: u64,
        hi: u64,
    ) -> Option<u64> {
        let n = int_value(v.get_ref())
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| (lo..=hi).contains(n));
        if n.is_none() {
            let range = if hi == u64::MAX {
                format!("a whole number of at least {lo}")
            } else {
                format!("a whole number from {lo} to {hi}")
            };
            self.error(
                v.span(),
                field,
                format!("expected {range}, found {}", describe(v.get_ref())),
            );
        }
        n
    }

    /// A finite number (integer or float) in `lo..=hi`; `lo_open` excludes `lo`.
    pub(super) fn number(
        &mut self,
        tbl: &Tbl<'_, '_>,
        key: &str,
        lo: f64,
        lo_open: bool,
        hi: f64,
    ) -> Option<f64> {
        let v = tbl.get(key)?;
        let n = float_value(v.get_ref())
            .filter(|n| n.is_finite() && (if lo_open { *n > lo } else { *n >= lo }) && *n <= hi);
        if n.is_none() {
            let expected = if lo_open {
                format!("a number greater than {lo} and at most {hi}")
            } else {
                format!("a number from {lo} to {hi}")
            };
            self.error(
                v.span(),
                tbl.field(key),
                format!("expected {expected}, found {}", describe(v.get_ref())),
            );
        }
        n
    }

    pub(super) fn duration(
        &mut self,
        tbl: &Tbl<'_, '_>,
        key: &str,
        positive: bool,
    ) -> Option<Duration> {
        let v = tbl.get(key)?;
        let field = tbl.field(key);
        let DeValue::String(s) = v.get_ref() else {
            self.error(
                v.span(),
                field,
                format!(
                    "expected a duration like \"5s\" or \"250ms\", found {}",
                    describe(v.get_ref())
                ),
            );
            return None;
        };
        match parse_duration(s) {
            Ok(d) if positive && d.is_zero() => {
                self.error(v.span(), field, "expected a duration greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(msg) => {
                self.error(v.span(), field, msg);
                None
            }
        }
    }

    /// A size greater than zero: a whole number of bytes, or a string like
    /// `"100MB"` or `"20MiB"`.
    pub(super) fn size(&mut self, tbl: &Tbl<'_, '_>, key: &str) -> Option<u64> {
        let v = tbl.get(key)?;
        let expected = || {
            format!(
                "expected a number of bytes or a size like \"100MB\", found {}",
                describe(v.get_ref())
            )
        };
        let parsed = match v.get_ref() {
            DeValue::String(s) => parse_size(s),
            DeValue::Integer(_) => int_value(v.get_ref())
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(expected),
            DeValue::Float(_)
            | DeValue::Boolean(_)
            | DeValue::Datetime(_)
            | DeValue::Array(_)
            | DeValue::Table(_) => Err(expected()),
        };
        match parsed {
            Ok(0) => {
                self.error(
                    v.span(),
                    tbl.field(key),
                    "expected a size greater than zero",
                );
                None
            }
            Ok(n) => Some(n),
            Err(msg) => {
                self.error(v.span(), tbl.field(key), msg);
                None
            }
        }
    }

    pub(super) fn template(
        &mut self,
        v: &Value<'_>,
        field: String,
        scope: TemplateScope,
        peer_port_ok: bool,
    ) -> Option<Template> {
        let (s, span) = self.string_value(v, field.clone())?;
        match Template::parse(&s, scope) {
            Ok(t) if !peer_port_ok && t.uses(Placeholder::PeerPort) => {
                self.error(
                    span,
                    field,
                    "`{peer_port}` needs `separate_peer_port = true` in [cluster]",
                );
                None
            }
            Ok(t) => Some(t),
            Err(msg) => {
                self.error(span, field, msg);
                None
            }
        }
    }

    pub(super) fn http_path(&mut self, t: &Tbl<'_, '_>, key: &str) -> Option<String> {
        let (p, span) = self.string(t, key)?;
        if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.error(
                span,
                t.field(key),
                format!("expected an HTTP path starting with `/`, found {p:?}"),
            );
            return None;
        }
        Some(p)
    }
}

/// "unknown field", with the closest allowed key or the whole list.
pub(super) fn unknown_field(key: &str, allowed: &[&str]) -> String {
    match suggest(key, allowed) {
        Some(s) => format!("unknown field `{key}`, did you mean `{s}`?"),
        None => format!(
            "unknown field `{key}`; expected one of {}",
            backticked(allowed)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{err, ok};

    #[test]
    fn integers_honour_toml_notation() {
        assert_eq!(ok("seed = 0x10\n[cluster]\nsize = 1_0\n").seed, Some(16));
        assert_eq!(ok("[cluster]\nsize = 1_0\n").cluster.size, 10);
        assert_eq!(
            err("seed = -1\n"),
            "seed: expected a whole number of at least 0, found -1"
        );
    }
}
