//! Small identifier types shared by every subsystem.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A node of the cluster under test, by position: `n0`, `n1`, ...
///
/// Names are always derived from the index so that plans, logs, reports and
/// histories agree without a lookup table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

impl NodeId {
    pub fn index(self) -> usize {
        self.0
    }

    pub fn name(self) -> String {
        self.to_string()
    }

    /// Parses `n3` into `NodeId(3)`.
    pub fn parse(s: &str) -> Option<NodeId> {
        let digits = s.strip_prefix('n')?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if digits.len() > 1 && digits.starts_with('0') {
            return None;
        }
        digits.parse().ok().map(NodeId)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        NodeId::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a node name like n0")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_round_trip() {
        assert_eq!(NodeId::parse("n0"), Some(NodeId(0)));
        assert_eq!(NodeId::parse("n12"), Some(NodeId(12)));
        assert_eq!(NodeId(7).to_string(), "n7");
        for bad in ["", "n", "x1", "n01", "n-1", "n1a"] {
            assert_eq!(NodeId::parse(bad), None, "{bad}");
        }
    }
}
