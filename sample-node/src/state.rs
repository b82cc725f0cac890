//! The replicated state machine: commands carried by log entries and the key-value map they
//! build. It applies committed entries only, in index order; it never decides what is committed.

use std::collections::HashMap;

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
}

/// The key-value map; each value remembers the log index that wrote it.
#[derive(Default)]
pub struct KvState {
    map: HashMap<String, (String, u64)>,
}

impl KvState {
    pub fn get(&self, key: &str) -> Option<&(String, u64)> {
        self.map.get(key)
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
}
