//! Small text helpers every rendering of a report shares: the verdict word,
//! escaping for HTML, and Markdown table cells.
//!
//! Leaf module: it depends on no other part of `report/` and never decides
//! anything; it only spells out text.

use crate::check::verdict::Verdict;

/// `PASS`, `FAIL`, `UNKNOWN`: the word people and CI logs see.
pub fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Unknown => "UNKNOWN",
    }
}

/// Requests that were not served, judged apart from the rest:
/// `failed 4 judged (+812 to nodes not expected to serve)`. Only the first
/// figure counts against availability; the rest went to nodes that were
/// down, paused, cut off or still recovering.
pub fn failed_text(judged: u64, not_expected: u64, others: &str) -> String {
    if not_expected == 0 {
        format!("failed {judged} judged")
    } else {
        format!("failed {judged} judged (+{not_expected} {others})")
    }
}

/// Escapes text for HTML bodies and attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// A table cell must not break the row.
pub(super) fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
