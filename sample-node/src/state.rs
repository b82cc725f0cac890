//! The replicated state machine: commands carried by log entries and what they build — the
//! key-value map, a set per key and a list per key. It applies committed entries only, in index
//! order; it never decides what is committed.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// The payload of the leader's election no-op entry.
pub const NOOP: &str = r#"{"op":"noop"}"#;

/// A command as stored in the log (JSON text, which is also what `GET /ledger` shows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    Noop,
    Put {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        expect: Option<String>,
        value: String,
    },
    Tx {
        data: String,
    },
    /// Add `element` to the set at `key` (adding a present element changes nothing).
    SetAdd {
        key: String,
        element: String,
    },
    /// Append `value` to the end of the list at `key`.
    ListAppend {
        key: String,
        value: String,
    },
}

impl Command {
    pub fn encode(&self) -> String {
        // Serializing these plain string-only variants cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| NOOP.to_string())
    }
}

/// What applying one entry did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A compare-and-set whose expectation did not hold; carries the current value.
    Conflict(Option<String>),
    /// A set add (whether or not the element was there).
    Added,
    /// A list append; carries the value's position in the list (0-based).
    Appended(u64),
}

/// The replicated state: the key-value map (each value remembers the log index that wrote
/// it), the sets and the lists.
#[derive(Default)]
pub struct KvState {
    map: HashMap<String, (String, u64)>,
    sets: HashMap<String, BTreeSet<String>>,
    lists: HashMap<String, Vec<String>>,
}

impl KvState {
    pub fn get(&self, key: &str) -> Option<&(String, u64)> {
        self.map.get(key)
    }

    /// The set at `key`, sorted (empty when nothing was ever added).
    pub fn set(&self, key: &str) -> Vec<String> {
        self.sets
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The list at `key`, in append order (empty when nothing was ever appended).
    pub fn list(&self, key: &str) -> Vec<String> {
        self.lists.get(key).cloned().unwrap_or_default()
    }

    /// Applies one committed entry's payload. Unparseable payloads are ignored (they cannot
    /// come from this node's own API, and every replica ignores them alike).
    pub fn apply(&mut self, index: u64, data: &str) -> Outcome {
        let Ok(cmd) = serde_json::from_str::<Command>(data) else {
            return Outcome::Done;
        };
        match cmd {
            Command::Noop | Command::Tx { .. } => Outcome::Done,
            Command::Put { key, value } => {
                self.map.insert(key, (value, index));
                Outcome::Done
            }
            Command::Cas { key, expect, value } => {
                let current = self.map.get(&key).map(|(v, _)| v.clone());
                if current == expect {
                    self.map.insert(key, (value, index));
                    Outcome::Done
                } else {
                    Outcome::Conflict(current)
                }
            }
            Command::SetAdd { key, element } => {
                self.sets.entry(key).or_default().insert(element);
                Outcome::Added
            }
            Command::ListAppend { key, value } => {
                let list = self.lists.entry(key).or_default();
                list.push(value);
                Outcome::Appended(list.len() as u64 - 1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_applies_only_when_expectation_holds() {
        let mut s = KvState::default();
        let put = Command::Put {
            key: "k".into(),
            value: "a".into(),
        }
        .encode();
        assert_eq!(s.apply(1, &put), Outcome::Done);
        let bad = Command::Cas {
            key: "k".into(),
            expect: None,
            value: "b".into(),
        }
        .encode();
        assert_eq!(s.apply(2, &bad), Outcome::Conflict(Some("a".into())));
        let good = Command::Cas {
            key: "k".into(),
            expect: Some("a".into()),
            value: "c".into(),
        }
        .encode();
        assert_eq!(s.apply(3, &good), Outcome::Done);
        assert_eq!(s.get("k"), Some(&("c".to_string(), 3)));
        assert_eq!(
            serde_json::from_str::<Command>(NOOP).ok(),
            Some(Command::Noop)
        );
    }

    #[test]
    fn sets_are_idempotent_and_sorted_lists_keep_append_order() {
        let mut s = KvState::default();
        let add = |k: &str, e: &str| {
            Command::SetAdd {
                key: k.into(),
                element: e.into(),
            }
            .encode()
        };
        let push = |k: &str, v: &str| {
            Command::ListAppend {
                key: k.into(),
                value: v.into(),
            }
            .encode()
        };
        assert_eq!(s.set("k"), Vec::<String>::new());
        assert_eq!(s.list("k"), Vec::<String>::new());
        for (i, e) in ["b", "a", "b", "c"].into_iter().enumerate() {
            assert_eq!(s.apply(i as u64 + 1, &add("k", e)), Outcome::Added);
        }
        assert_eq!(s.set("k"), ["a", "b", "c"]);
        assert_eq!(s.set("other"), Vec::<String>::new());
        assert_eq!(s.apply(10, &push("k", "z")), Outcome::Appended(0));
        assert_eq!(s.apply(11, &push("k", "y")), Outcome::Appended(1));
        assert_eq!(s.apply(12, &push("j", "y")), Outcome::Appended(0));
        assert_eq!(s.apply(13, &push("k", "z")), Outcome::Appended(2));
        assert_eq!(s.list("k"), ["z", "y", "z"]);
        assert_eq!(s.list("j"), ["y"]);
        // Sets, lists and the kv map are separate namespaces.
        assert_eq!(s.get("k"), None);
        assert_eq!(s.set("j"), Vec::<String>::new());
        // The wire form the ledger shows.
        assert_eq!(add("k", "e"), r#"{"op":"set_add","key":"k","element":"e"}"#);
        assert_eq!(
            push("k", "v"),
            r#"{"op":"list_append","key":"k","value":"v"}"#
        );
    }
}
