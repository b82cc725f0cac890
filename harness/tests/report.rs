//! Reports without clusters: deterministic reports and histories built here
//! go through the same judging and rendering code a run uses; the CLI's
//! `report`, `compare` and multi-plan `run` are driven as a user would.

use rift::check::availability::{availability, latency, Judge};
use rift::check::verdict::{CheckDetails, CheckResult, Verdict};
use rift::check::{CheckerId, LinearizableDetails, LostWritesDetails};
use rift::fault::{NodeState, Snapshot};
use rift::history::{Op, OpKind, Outcome};
use rift::report::{
    aggregate_markdown, junit_xml, junit_xml_runs, render_html, summary_markdown, ClusterInfo,
    ExpectationResult, FaultEvent, LinkRecord, NodeEventRecord, NodeInfo, OpCounts, PlanInfo,
    PlanRun, Report, RunStatus, REPORT_SCHEMA_VERSION,
};
use rift::NodeId;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------- fixtures

/// Deterministic pseudo-random numbers (an LCG), so fixtures never change.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// Periods: steady, then for each `(start_s, end_s, cut_off nodes, label)`
/// a fault period followed by a steady one.
fn periods(n: usize, faults: &[(f64, f64, Vec<usize>, String)]) -> Vec<Snapshot> {
    let all: Vec<NodeId> = (0..n).map(NodeId).collect();
    let steady = |at_ns: u64| Snapshot {
        at_ns,
        label: "steady".into(),
        states: vec![NodeState::Up; n],
        serving: all.clone(),
    };
    let mut out = vec![steady(0)];
    for (start, end, cut, label) in faults {
        out.push(Snapshot {
            at_ns: (start * 1e9) as u64,
            label: label.clone(),
            states: vec![NodeState::Up; n],
            serving: all
                .iter()
                .copied()
                .filter(|x| !cut.contains(&x.index()))
                .collect(),
        });
        out.push(steady((end * 1e9) as u64));
    }
    out
}

/// Every node gets a request every `every_ms`; cut-off nodes time out after
/// 1 s, others answer in 1-40 ms (a few slower).
fn history(n: usize, dur_s: f64, every_ms: u64, snaps: &[Snapshot], seed: u64) -> Vec<Op> {
    let mut rng = Lcg(seed);
    let mut ops = Vec::new();
    let end_ns = (dur_s * 1e9) as u64;
    let mut t = 0u64;
    while t < end_ns {
        for node in 0..n {
            let at = t + node as u64 * 97_000;
            let idx = snaps.partition_point(|s| s.at_ns <= at).saturating_sub(1);
            let cut = snaps
                .get(idx)
                .is_some_and(|s| !s.serving.contains(&NodeId(node)));
            let lat_us = if cut {
                1_000_000
            } else if rng.next().is_multiple_of(50) {
                40_000 + rng.next() % 160_000
            } else {
                1_000 + rng.next() % 39_000
            };
            let id = ops.len() as u64;
            ops.push(Op {
                id,
                client: node as u32,
                node: NodeId(node),
                kind: if id.is_multiple_of(2) {
                    OpKind::Read
                } else {
                    OpKind::Write
                },
                key: Some(format!("k{}", id % 7)),
                value: (id % 2 == 1).then(|| format!("v{id}")),
                expect: None,
                invoke_ns: at,
                complete_ns: at + lat_us * 1000,
                outcome: if cut { Outcome::Unknown } else { Outcome::Ok },
                result: None,
                values: None,
                status: if cut { None } else { Some(200) },
                error: cut.then(|| "timeout".to_string()),
            });
        }
        t += every_ms * 1_000_000;
    }
    ops
}

fn expectation(name: &str, bound: &str, measured: &str, ok: bool, msg: &str) -> ExpectationResult {
    ExpectationResult {
        name: name.into(),
        bound: bound.into(),
        measured: measured.into(),
        verdict: if ok { Verdict::Pass } else { Verdict::Fail },
        message: msg.into(),
        not_observed: None,
    }
}

/// A report judged from `ops` by the same code a run uses.
fn build_report(
    name: &str,
    n: usize,
    dur_s: f64,
    snaps: Vec<Snapshot>,
    ops: &[Op],
    checks: Vec<CheckResult>,
) -> Report {
    let end_ns = (dur_s * 1e9) as u64;
    let judge = Judge::new(ops, &snaps, 2_000_000_000, end_ns);
    let avail = availability(ops, &judge, n, end_ns);
    let lat = latency(ops, &judge);
    let recovery = judge.recoveries();
    let mut timeline = Vec::new();
    for (i, s) in snaps.iter().enumerate().skip(1) {
        let t = s.at_ns as f64 / 1e9;
        timeline.push(FaultEvent {
            scheduled_s: (t * 10.0).round() / 10.0,
            effective_s: t,
            lag_ms: 0.0,
            action: if s.label == "steady" {
                "heal".into()
            } else {
                "partition".into()
            },
            nodes: Vec::new(),
            detail: s.label.clone(),
            line: 10 + i,
            error: None,
        });
    }
    let mut expectations = vec![
        expectation(
            "availability",
            ">= 99.00%",
            &format!("{:.2}%", avail.overall.ratio() * 100.0),
            avail.overall.ratio() >= 0.99,
            "requests to nodes expected to serve",
        ),
        expectation(
            "p99_latency",
            "<= 30.0ms",
            &format!("{:.1}ms", lat.p99_ms),
            lat.p99_ms <= 30.0,
            &format!("over {} served requests", lat.count),
        ),
    ];
    for c in &checks {
        expectations.push(ExpectationResult {
            name: c.checker.name().into(),
            bound: "no violation".into(),
            measured: c.verdict.to_string(),
            verdict: c.verdict,
            message: c.summary.clone(),
            not_observed: None,
        });
    }
    let verdict = Verdict::all(expectations.iter().map(|e| e.verdict));
    let ok = ops.iter().filter(|o| o.outcome == Outcome::Ok).count() as u64;
    Report {
        schema_version: REPORT_SCHEMA_VERSION,
        rift_version: "0.1.0".into(),
        run_id: "20260101-000000-abcd".into(),
        plan: PlanInfo {
            name: name.into(),
            description: "Cut the cluster <3|2> & heal; \"quotes\" stay text.".into(),
            path: format!("experiments/{name}.toml"),
            hash: "0123abcd".into(),
        },
        label: Some("v1.2.3".into()),
        seed: 7,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        wall_seconds: dur_s + 3.21,
        duration_s: dur_s,
        status: RunStatus::Completed,
        abort_reason: None,
        verdict,
        cluster: ClusterInfo {
            size: n,
            command: "sample-node (bundled)".into(),
            network: "proxy".into(),
            workload: "kv".into(),
            nodes: (0..n)
                .map(|i| NodeInfo {
                    node: NodeId(i),
                    addr: format!("127.0.0.1:{}", 7000 + i),
                    log: format!("nodes/n{i}.log"),
                    command: Vec::new(),
                    env: Default::default(),
                    shell: String::new(),
                })
                .collect(),
            links: vec![
                LinkRecord {
                    from: "n0".into(),
                    to: NodeId(1),
                    connections: 3,
                    bytes_forward: 1_200_000,
                    bytes_back: 40_000,
                    resets: 2,
                },
                LinkRecord {
                    from: "clients".into(),
                    to: NodeId(1),
                    connections: 4,
                    bytes_forward: 90_000,
                    bytes_back: 70_000,
                    resets: 0,
                },
            ],
            ready_s: None,
            wire: None,
            clients: None,
            disks: None,
        },
        timeline,
        node_events: (0..n)
            .map(|i| NodeEventRecord {
                at_s: 0.0,
                node: NodeId(i),
                event: "started".into(),
                detail: format!("pid {}", 100 + i),
                expected: None,
            })
            .chain([
                NodeEventRecord {
                    at_s: dur_s * 0.8,
                    node: NodeId(1),
                    event: "exited".into(),
                    detail: "signal 9".into(),
                    expected: Some(true),
                },
                NodeEventRecord {
                    at_s: dur_s * 0.85,
                    node: NodeId(1),
                    event: "started".into(),
                    detail: "pid 200".into(),
                    expected: None,
                },
            ])
            .collect(),
        periods: snaps,
        ops: OpCounts {
            total: ops.len() as u64,
            ok,
            fail: 0,
            unknown: ops.len() as u64 - ok,
            per_second: ops.len() as f64 / dur_s,
        },
        availability: avail,
        latency: lat,
        recovery,
        final_recovery_s: Some(0.42),
        convergence: None,
        nemesis: None,
        checks,
        expectations,
    }
}

/// The 5-node, 30-second partition run used by most tests.
fn five_nodes() -> (Report, Vec<Op>) {
    let snaps = periods(
        5,
        &[
            (
                5.0,
                15.0,
                vec![0, 4],
                "partition [n0 n4] | [n1 n2 n3]".into(),
            ),
            (20.0, 25.0, vec![2], "partition [n2] | [n0 n1 n3 n4]".into()),
        ],
    );
    let ops = history(5, 30.0, 50, &snaps, 1);
    let bad: Vec<Op> = ops
        .iter()
        .filter(|o| o.node == NodeId(3) && o.invoke_ns > 21_000_000_000)
        .take(2)
        .cloned()
        .collect();
    let checks = vec![
        CheckResult::new(
            Verdict::Fail,
            "key k3: a read saw a value overwritten before it began".into(),
            bad,
            CheckDetails::Linearizable(LinearizableDetails::default()),
        ),
        CheckResult::new(
            Verdict::Pass,
            "every acknowledged write is visible".into(),
            Vec::new(),
            CheckDetails::LostWrites(LostWritesDetails::default()),
        ),
    ];
    assert_eq!(checks[0].checker, CheckerId::Linearizable);
    let r = build_report("partition-majority", 5, 30.0, snaps, &ops, checks);
    (r, ops)
}

/// `time="…"` and `timestamp="…"` attributes replaced, so snapshots hold
/// only what does not change from run to run.
fn redact_times(s: &str) -> String {
    let mut out = s.to_string();
    for attr in [" time=\"", " timestamp=\""] {
        let mut res = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(attr) {
            let (head, tail) = rest.split_at(i + attr.len());
            res.push_str(head);
            res.push_str("[redacted]");
            rest = match tail.find('"') {
                Some(j) => &tail[j..],
                None => "",
            };
        }
        res.push_str(rest);
        out = res;
    }
    out
}

// ------------------------------------------------------- summary and junit

#[test]
fn summary_markdown_snapshot() {
    let (r, _) = five_nodes();
    insta::assert_snapshot!("summary_md", summary_markdown(&r));
}

#[test]
fn junit_snapshot_has_a_case_per_expectation_with_figure_and_bound() {
    let (r, _) = five_nodes();
    let xml = junit_xml(&[&r]);
    assert!(
        xml.contains("p99_latency: measured ") && xml.contains("bound &lt;= 30.0ms"),
        "{xml}"
    );
    insta::assert_snapshot!("junit_xml", redact_times(&xml));
}

#[test]
fn an_aborted_run_has_no_junit_failure_for_what_it_could_not_observe() {
    let mut r = passing_report("interrupted");
    r.status = RunStatus::Aborted;
    r.abort_reason = Some("interrupted by SIGINT".into());
    let why =
        "not observed: the run was interrupted (interrupted by SIGINT) before its final phase";
    r.expectations.push(ExpectationResult {
        not_observed: Some(why.into()),
        verdict: Verdict::Unknown,
        ..expectation("recovery", "<= 5.00s", "not recovered", false, why)
    });
    r.expectations.push(ExpectationResult {
        verdict: Verdict::Unknown,
        ..expectation(
            "completed",
            "full run",
            "12.0s of 30s",
            false,
            "interrupted by SIGINT",
        )
    });
    r.verdict = Verdict::all(r.expectations.iter().map(|e| e.verdict));
    let xml = junit_xml(&[&r]);
    assert!(!xml.contains("<failure"), "{xml}");
    assert!(
        xml.contains("<skipped") && xml.contains("recovery: not observed: the run was interrupted"),
        "{xml}"
    );
    // The interrupt itself is an error CI does not take as a pass.
    assert!(
        xml.contains("<error") && xml.contains("completed: unknown"),
        "{xml}"
    );
    let md = summary_markdown(&r);
    assert!(md.contains("— ABORTED (interrupted by SIGINT"), "{md}");
    assert!(md.contains("**UNKNOWN** (not observed)"), "{md}");
    assert_eq!(r.outcome_word(), "ABORTED");
    // The page says so too, with the reason next to the expectation.
    let html = render_html(&r, &[]);
    assert!(
        html.contains("<span class=\"badge unknown\">ABORTED</span>"),
        "ABORTED badge"
    );
    assert!(
        html.contains("not observed: the run was interrupted"),
        "reason shown"
    );
}

fn ran(r: Report, dir: &str) -> PlanRun {
    PlanRun::Ran {
        report: Box::new(r),
        run_dir: PathBuf::from(dir),
    }
}

fn passing_report(name: &str) -> Report {
    let snaps = periods(3, &[]);
    let ops = history(3, 10.0, 100, &snaps, 3);
    let mut r = build_report(name, 3, 10.0, snaps, &ops, Vec::new());
    // Only the availability expectation: the fixture's latencies are slow.
    r.expectations.truncate(1);
    r.verdict = Verdict::all(r.expectations.iter().map(|e| e.verdict));
    r
}

#[test]
fn aggregate_of_many_plans_snapshot() {
    let (r, _) = five_nodes();
    let ok = passing_report("quickstart");
    assert_eq!(ok.verdict, Verdict::Pass);
    let runs = vec![
        ran(ok, "results/quickstart/20260101-000000-abcd"),
        ran(r, "results/partition-majority/20260101-000000-abcd"),
        PlanRun::CannotRun {
            plan: "broken".into(),
            error: "node n0 exited before it was ready (exit code 7)".into(),
            log_tail: None,
        },
        PlanRun::Skipped {
            plan: "zz-last".into(),
            reason: "not run: --fail-fast after broken failed".into(),
        },
    ];
    insta::assert_snapshot!("aggregate_summary_md", aggregate_markdown(&runs));
    insta::assert_snapshot!("aggregate_junit_xml", redact_times(&junit_xml_runs(&runs)));
    let table = rift::report::aggregate_table(&runs);
    assert!(table.contains("1 of 4 plans passed: FAIL"), "{table}");
    let codes: Vec<u8> = runs
        .iter()
        .map(|r| rift::cli::exit::Exit::from(rift::run::many::RunEnd::of(r)).code())
        .collect();
    assert_eq!(codes, [0, 1, 3, 0]);
}

// -------------------------------------------------------------- report.html

/// A small well-formedness check: every tag closed in order (void elements
/// excepted, SVG elements may self-close), attribute values double-quoted,
/// `&` only as an entity, no raw `<` in text.
fn check_well_formed(html: &str) -> Result<(), String> {
    const VOID: [&str; 13] = [
        "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr",
    ];
    let b = html.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut i = 0;
    let at = |i: usize| {
        format!(
            "at byte {i}: …{}…",
            String::from_utf8_lossy(&b[i.saturating_sub(40)..(i + 40).min(b.len())])
        )
    };
    while i < b.len() {
        match b[i] {
            b'<' => {
                if html[i..].starts_with("<!--") {
                    i = html[i..].find("-->").map(|j| i + j + 3).ok_or(at(i))?;
                    continue;
                }
                if html[i..].starts_with("<!DOCTYPE") {
                    i = html[i..].find('>').map(|j| i + j + 1).ok_or(at(i))?;
                    continue;
                }
                let end = html[i..].find('>').map(|j| i + j).ok_or(at(i))?;
                let inner = &html[i + 1..end];
                if let Some(name) = inner.strip_prefix('/') {
                    let top = stack.pop().ok_or(format!("stray </{name}> {}", at(i)))?;
                    if top != name {
                        return Err(format!("</{name}> closes <{top}> {}", at(i)));
                    }
                    i = end + 1;
                    continue;
                }
                let self_closing = inner.ends_with('/');
                let inner = inner.trim_end_matches('/');
                let name_end = inner
                    .find(|c: char| c.is_whitespace())
                    .unwrap_or(inner.len());
                let name = &inner[..name_end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(format!("bad tag name `{name}` {}", at(i)));
                }
                // Attributes: name="value" pairs only.
                let mut rest = inner[name_end..].trim_start();
                while !rest.is_empty() {
                    let eq = rest
                        .find('=')
                        .ok_or(format!("attribute without value {}", at(i)))?;
                    let an = &rest[..eq];
                    if an.is_empty() || !an.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err(format!("bad attribute name `{an}` {}", at(i)));
                    }
                    let v = &rest[eq + 1..];
                    let v = v
                        .strip_prefix('"')
                        .ok_or(format!("unquoted attribute {an} {}", at(i)))?;
                    let close = v
                        .find('"')
                        .ok_or(format!("unterminated attribute {}", at(i)))?;
                    rest = v[close + 1..].trim_start();
                }
                i = end + 1;
                if name == "style" || name == "script" {
                    // Raw text up to the closing tag.
                    let close = format!("</{name}>");
                    i = html[i..].find(&close).map(|j| i + j).ok_or(at(i))?;
                    stack.push(name.to_string());
                    continue;
                }
                if !self_closing && !VOID.contains(&name) {
                    stack.push(name.to_string());
                }
            }
            b'&' => {
                let semi = html[i..].find(';').map(|j| i + j).ok_or(at(i))?;
                let ent = &html[i + 1..semi];
                let ok = !ent.is_empty()
                    && ent.len() <= 8
                    && (ent.chars().all(|c| c.is_ascii_alphanumeric())
                        || ent
                            .strip_prefix('#')
                            .is_some_and(|d| d.chars().all(|c| c.is_ascii_digit())));
                if !ok {
                    return Err(format!("bare & {}", at(i)));
                }
                i = semi + 1;
            }
            b'>' => return Err(format!("stray > {}", at(i))),
            _ => i += 1,
        }
    }
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed: {stack:?}"))
    }
}

/// With RIFT_HTML_PREVIEW=DIR set, the pages rendered here are also written
/// to DIR, to look at them in a browser.
fn preview(name: &str, html: &str) {
    if let Some(dir) = std::env::var_os("RIFT_HTML_PREVIEW") {
        let _ = std::fs::write(Path::new(&dir).join(name), html);
    }
}

fn assert_self_contained(html: &str) {
    let lower = html.to_lowercase();
    for bad in [
        "http://",
        "https://",
        "<script",
        "<link",
        "<iframe",
        "<img",
        "<object",
        "<embed",
        "src=",
        "@import",
        "javascript:",
    ] {
        assert!(!lower.contains(bad), "report.html contains `{bad}`");
    }
    // Links only to files of the run directory: relative, no scheme, no
    // absolute path; `url(` only for the page's own SVG patterns.
    for (i, _) in lower.match_indices("href=\"") {
        let target = &lower[i + 6..];
        let target = &target[..target.find('"').unwrap_or(target.len())];
        assert!(
            !target.contains(':') && !target.starts_with('/') && !target.contains(".."),
            "report.html links outside the run directory: `{target}`"
        );
    }
    assert!(
        !lower.contains("href='"),
        "report.html has a single-quoted link"
    );
    for (i, _) in lower.match_indices("url(") {
        assert!(
            lower[i + 4..].starts_with('#'),
            "report.html uses an external url(): {}",
            &lower[i..(i + 40).min(lower.len())]
        );
    }
    // Protocol-relative URLs: `//` right after a quote or parenthesis.
    for q in ["\"//", "'//", "(//"] {
        assert!(!lower.contains(q), "report.html contains `{q}`");
    }
}

#[test]
fn report_html_is_well_formed_self_contained_and_shows_what_matters() {
    let (r, ops) = five_nodes();
    let html = render_html(&r, &ops);
    preview("five-nodes.html", &html);
    if let Err(e) = check_well_formed(&html) {
        panic!("report.html is not well formed: {e}");
    }
    assert_self_contained(&html);
    // Every row has axis labels: the cluster row's and each node row's rate
    // scale (5 nodes + all).
    let rate_axes = html.matches("/s</text>").count();
    assert!(rate_axes > 5, "{rate_axes} rate axis labels");
    // Untrusted text is escaped.
    assert!(html.contains("Cut the cluster &lt;3|2&gt; &amp; heal; &quot;quotes&quot;"));
    // Verdict first, then every expectation with its figure.
    let verdict = html.find("badge fail").unwrap_or(usize::MAX);
    let timeline = html.find("<h2>Timeline").unwrap_or(0);
    assert!(verdict < timeline);
    for e in &r.expectations {
        assert!(
            html.contains(&format!("<td>{}</td>", e.measured)),
            "{}",
            e.name
        );
    }
    // Every fault period drawn and labelled, the restart and exit marked, and
    // the counterexample highlighted.
    for i in [1, 3] {
        assert!(html.contains(&format!("data-period=\"{i}\"")), "period {i}");
    }
    assert!(html.contains("#1 partition [n0 n4] | [n1 n2 n3]"));
    // What each link carried, client links by name.
    assert!(html.contains("<h2>Network links</h2>"));
    assert!(html.contains("<td>clients → n1</td>"));
    assert_eq!(html.matches("class=\"exit\"").count(), 1);
    assert_eq!(html.matches("class=\"start\"").count(), 1);
    assert_eq!(html.matches("class=\"ce\"").count(), 2);
    // Per node: rate bars and p50/p99 latency lines (6 rows with "all").
    assert_eq!(html.matches("stroke=\"#1565c0\"").count(), 6);
    assert_eq!(html.matches("stroke=\"#8e24aa\"").count(), 6);
}

/// The part of the page from heading `id` to the next heading.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let from = html
        .find(&format!("<h2 id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &html[from + 4..];
    &rest[..rest.find("<h2").unwrap_or(rest.len())]
}

#[test]
fn judged_failures_are_drawn_apart_listed_and_agree_with_availability() {
    let snaps = periods(
        5,
        &[(
            5.0,
            15.0,
            vec![0, 4],
            "partition [n0 n4] | [n1 n2 n3]".into(),
        )],
    );
    let mut ops = history(5, 30.0, 50, &snaps, 3);
    // n1, on the majority side and well past its recovery window, fails
    // three requests: those count. The cut-off n0 and n4 fail many: those
    // do not.
    let mut failed = Vec::new();
    for o in ops
        .iter_mut()
        .filter(|o| o.node == NodeId(1) && o.invoke_ns > 10_000_000_000)
        .take(3)
    {
        o.outcome = Outcome::Unknown;
        o.status = None;
        o.error = Some("connection reset".into());
        failed.push(o.id);
    }
    let r = build_report("judged", 5, 30.0, snaps, &ops, Vec::new());
    assert_eq!(
        r.availability.overall.total - r.availability.overall.served,
        3
    );
    let html = render_html(&r, &ops);
    preview("judged.html", &html);
    if let Err(e) = check_well_formed(&html) {
        panic!("report.html is not well formed: {e}");
    }
    assert_self_contained(&html);
    // Judged failures solid red, the others hatched grey, both explained.
    assert!(html.contains("<path class=\"judged\""));
    assert!(html.contains("<path class=\"unjudged\""));
    assert!(html.contains("fill=\"url(#unjudged)\""));
    assert!(html.contains("<pattern id=\"unjudged\""));
    assert!(html.contains("not judged"));
    let table = section(&html, "judged-failures");
    assert!(table.contains("3 request(s) to nodes expected to serve"));
    assert_eq!(table.matches("<tr><td class=\"num\">").count(), 3);
    for id in failed {
        assert!(table.contains(&format!(">op {id}</a>")), "op {id}: {table}");
    }
    assert!(table.contains("<td>connection reset</td>"));
    assert!(!table.contains("<td>n0</td>") && !table.contains("<td>n4</td>"));
    assert!(table.contains("href=\"history.jsonl\""));
    // Files of the run directory, relative.
    for f in ["report.json", "history.jsonl", "final.json"] {
        assert!(html.contains(&format!("<a href=\"{f}\">")), "{f}");
    }
}

#[test]
fn faults_recoveries_and_bands_share_numbers_and_heads_show_once() {
    let (mut r, ops) = five_nodes();
    let head = |h: &str| format!("commit 741 head {}", h.repeat(64));
    r.convergence = Some(rift::report::Convergence {
        seconds: None,
        heads: [(0, "a"), (1, "a"), (2, "b"), (3, "a"), (4, "b")]
            .into_iter()
            .map(|(n, h)| (NodeId(n), head(h)))
            .collect(),
    });
    let html = render_html(&r, &ops);
    if let Err(e) = check_well_formed(&html) {
        panic!("report.html is not well formed: {e}");
    }
    // The Faults table names the period each action opened, as the bands do.
    assert!(html.contains("<td>#1 partition [n0 n4] | [n1 n2 n3]</td></tr>"));
    assert!(html.contains("<td>#2 steady</td></tr>"));
    // A recovery names the change it recovers from, not just "steady".
    let rec = section(&html, "recovery");
    assert!(
        rec.contains("<td>heal (steady)</td><td>#2 steady</td>"),
        "{rec}"
    );
    assert!(rec.contains("<td>partition (partition [n2] | [n0 n1 n3 n4])</td>"));
    // Two distinct heads, each once, with their nodes.
    let conv = section(&html, "convergence");
    assert_eq!(conv.matches("<code title=").count(), 2);
    assert!(conv.contains("<td>n0 n1 n3</td>") && conv.contains("<td>n2 n4</td>"));
    assert!(conv.contains("commit 741 head aaaaaaaaaaaa…"));
    assert!(conv.contains("never agreed"));
}

#[test]
fn without_judged_failures_the_table_says_none() {
    let (r, ops) = five_nodes();
    assert_eq!(r.availability.overall.total, r.availability.overall.served);
    let html = render_html(&r, &ops);
    assert!(section(&html, "judged-failures").contains("None: every request"));
    assert!(html.contains("<path class=\"unjudged\""));
    assert!(!html.contains("<path class=\"judged\""));
}

#[test]
fn report_html_without_history_still_renders() {
    let (r, _) = five_nodes();
    let html = render_html(&r, &[]);
    if let Err(e) = check_well_formed(&html) {
        panic!("{e}");
    }
    assert!(html.contains("No request history"));
}

#[test]
fn twenty_five_nodes_ten_minutes_stays_small_and_drops_no_fault() {
    // 60 faults, some only 20 ms long, over 10 minutes on 25 nodes.
    let mut faults = Vec::new();
    let mut rng = Lcg(9);
    for k in 0..60 {
        let start = 5.0 + k as f64 * 9.8;
        let len = if k % 7 == 0 {
            0.02
        } else {
            1.0 + (rng.next() % 600) as f64 / 100.0
        };
        let cut = vec![(k * 3) % 25, (k * 7 + 1) % 25];
        faults.push((
            start,
            start + len,
            cut,
            format!("partition #{k} isolating two nodes"),
        ));
    }
    let snaps = periods(25, &faults);
    let ops = history(25, 600.0, 250, &snaps, 2);
    assert!(ops.len() > 50_000);
    let r = build_report("big", 25, 600.0, snaps.clone(), &ops, Vec::new());
    let html = render_html(&r, &ops);
    preview("big.html", &html);
    let start = html.find("<svg").unwrap_or(0);
    let end = html.find("</svg>").unwrap_or(html.len());
    let svg = end - start;
    assert!(svg < 1_000_000, "timeline SVG is {svg} bytes");
    assert!(
        html.len() < 1_500_000,
        "report.html is {} bytes",
        html.len()
    );
    for (i, p) in snaps.iter().enumerate() {
        if p.label != "steady" {
            assert!(
                html.contains(&format!("data-period=\"{i}\"")),
                "period {i} not drawn"
            );
        }
    }
    if let Err(e) = check_well_formed(&html) {
        panic!("{e}");
    }
    assert_self_contained(&html);
}

// ------------------------------------------------------------- the CLI

fn rift() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rift"));
    c.env_remove("RUST_LOG");
    c
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write_json(path: &Path, v: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn write_run(dir: &Path, r: &Report, ops: &[Op]) {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{e}"));
    write_json(&dir.join("report.json"), r);
    let lines: Vec<String> = ops
        .iter()
        .map(|o| serde_json::to_string(o).unwrap_or_default())
        .collect();
    std::fs::write(dir.join("history.jsonl"), lines.join("\n")).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn rift_report_regenerates_the_three_views() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = dir
        .path()
        .join("partition-majority")
        .join("20260101-000000-abcd");
    let (r, ops) = five_nodes();
    write_run(&run, &r, &ops);
    let o = rift()
        .arg("report")
        .arg(&run)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{}", show(&o));
    let read =
        |f: &str| std::fs::read_to_string(run.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    assert_eq!(read("summary.md"), summary_markdown(&r));
    assert_eq!(
        redact_times(&read("junit.xml")),
        redact_times(&junit_xml(&[&r]))
    );
    assert_eq!(read("report.html"), render_html(&r, &ops));

    let o = rift()
        .arg("report")
        .arg(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

/// A report.json as rift wrote it before checker details were typed: three
/// checkers that failed, with their details.
const OLD_REPORT: &str = "tests/fixtures/report-v1/report.json";

#[test]
fn a_report_written_before_typed_details_still_reads_renders_and_compares() {
    let r = Report::read(Path::new(OLD_REPORT)).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<CheckerId> = r.checks.iter().map(|c| c.checker).collect();
    // The report predates the set and list_append checkers: its three.
    assert_eq!(
        names,
        [
            CheckerId::Linearizable,
            CheckerId::LostWrites,
            CheckerId::LedgerAgreement
        ]
    );
    let lost = r.checks[1].details.lost_writes().map(|d| d.lost_writes);
    assert_eq!(lost, Some(2));
    // Written again, it is the same JSON.
    let text = std::fs::read_to_string(OLD_REPORT).unwrap_or_else(|e| panic!("{e}"));
    let old: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(serde_json::to_value(&r).ok(), Some(old));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = dir.path().join("old-format").join("20260101-000000-old1");
    std::fs::create_dir_all(&run).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(run.join("report.json"), &text).unwrap_or_else(|e| panic!("{e}"));
    let o = rift()
        .arg("report")
        .arg(&run)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(o.status.success(), "{}", show(&o));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap_or_else(|e| panic!("{e}"));
    assert!(html.contains("Checker ledger_agreement"), "{html}");
    let o = compare(&run, &run, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for c in [
        CheckerId::Linearizable,
        CheckerId::LostWrites,
        CheckerId::LedgerAgreement,
    ] {
        assert!(out.contains(&format!("checker {c}")), "{c}:\n{out}");
    }
}

/// The same report with latencies tripled and 3 % of served requests failed.
fn doctored(r: &Report) -> Report {
    let mut d = r.clone();
    for b in &mut d.latency.histogram_us {
        b[0] *= 3;
    }
    d.latency.p50_ms *= 3.0;
    d.latency.p99_ms *= 3.0;
    let lost = d.availability.overall.total * 3 / 100;
    d.availability.overall.served -= lost;
    d.run_id = "20260102-000000-beef".into();
    d.label = Some("v1.3.0-rc1".into());
    d
}

fn compare(base: &Path, new: &Path, extra: &[&str]) -> Output {
    rift()
        .arg("compare")
        .arg(base)
        .arg(new)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn compare_a_report_with_itself_finds_no_regression() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (r, _) = five_nodes();
    let p = dir.path().join("report.json");
    write_json(&p, &r);
    let o = compare(&p, &p, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("no regression"), "{out}");
    for m in [
        "availability",
        "p50_latency",
        "p99_latency",
        "worst_recovery",
        "final_recovery",
        "ops_per_s",
        "checker linearizable",
        "unexpected_exits",
        "node_exits",
    ] {
        assert!(out.contains(m), "{m} missing:\n{out}");
    }
    assert!(!out.contains("REGRESSION"), "{out}");
}

#[test]
fn compare_against_worse_latency_and_availability_is_a_regression() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (r, _) = five_nodes();
    // Results trees, as CI keeps them: OUT/<plan>/<run-id>/report.json,
    // five runs a side (one run a side would leave the noise unknown and
    // judge no liveness metric: docs/compare.md).
    let base = dir.path().join("base");
    let new = dir.path().join("new");
    let worse = doctored(&r);
    for i in 0..5 {
        for (root, rep, day) in [(&base, &r, "01"), (&new, &worse, "02")] {
            let mut x = rep.clone();
            x.run_id = format!("202601{day}-00000{i}-abcd");
            let d = root.join("partition-majority").join(&x.run_id);
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
            write_json(&d.join("report.json"), &x);
        }
    }

    let o = compare(&base, &new, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = |m: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(m))
            .unwrap_or_else(|| panic!("no {m} line:\n{out}"))
            .to_string()
    };
    assert!(line("availability").contains("REGRESSION"), "{out}");
    assert!(line("p99_latency").contains("REGRESSION"), "{out}");
    assert!(line("p50_latency").contains("REGRESSION"), "{out}");
    assert!(!line("ops_per_s").contains("REGRESSION"), "{out}");
    assert!(out.contains("build v1.3.0-rc1"), "{out}");

    // One run a side: the noise is unknown, so no liveness regression.
    let o = compare(
        &base.join("partition-majority").join("20260101-000000-abcd"),
        &new.join("partition-majority").join("20260102-000000-abcd"),
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("noise unknown"),
        "{}",
        show(&o)
    );

    // The percentiles come from the histogram, not the rounded figures: a
    // report whose figures alone were doctored compares as the same
    // (judged against the base's five runs).
    let mut figures_only = r.clone();
    figures_only.latency.p99_ms *= 10.0;
    let f = dir.path().join("figures-only.json");
    write_json(&f, &figures_only);
    let o = compare(&base, &f, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    // Nothing served on the new side: its latency is n/a, never 0 ms (which
    // would read as an improvement).
    let mut nothing = r.clone();
    nothing.latency = Default::default();
    let z = dir.path().join("nothing-served.json");
    write_json(&z, &nothing);
    let o = compare(&base, &z, &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    let p99 = out
        .lines()
        .find(|l| l.trim_start().starts_with("p99_latency"))
        .unwrap_or_else(|| panic!("no p99 line:\n{out}"));
    assert!(p99.contains("n/a") && !p99.contains("0.0ms"), "{p99}");

    // Thresholds are configurable.
    let o = compare(
        &base,
        &new,
        &[
            "--max-latency-regression",
            "500%",
            "--min-availability-delta",
            "-5%",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    // Markdown and JSON.
    let o = compare(&base, &new, &["--format", "md"]);
    assert_eq!(o.status.code(), Some(1));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(
        md.contains("| availability |") && md.contains("**REGRESSION"),
        "{md}"
    );
    let o = compare(&base, &new, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    assert_eq!(v["regressions"], 3);
    assert_eq!(v["plans"][0]["plan"], "partition-majority");
    let avail = &v["plans"][0]["metrics"][1];
    assert_eq!(avail["metric"], "availability");
    assert_eq!(avail["verdict"], "regression");
}

#[test]
fn compare_refuses_another_schema_version_clearly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (r, _) = five_nodes();
    let p = dir.path().join("report.json");
    write_json(&p, &r);
    let mut v = serde_json::to_value(&r).unwrap_or_default();
    v["schema_version"] = serde_json::json!(REPORT_SCHEMA_VERSION + 1);
    let q = dir.path().join("future.json");
    write_json(&q, &v);
    let o = compare(&p, &q, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("schema version {}", REPORT_SCHEMA_VERSION + 1))
            && err.contains("incompatible"),
        "{err}"
    );
    let o = compare(&p, &dir.path().join("missing"), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn run_many_plans_from_a_directory_with_fail_fast() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let plans = dir.path().join("plans");
    std::fs::create_dir_all(&plans).unwrap_or_else(|e| panic!("{e}"));
    // Sorted by file name: the broken plan runs first.
    std::fs::write(
        plans.join("a-broken.toml"),
        r#"
name = "broken"
duration = "2s"
[cluster]
size = 1
command = "/bin/sh"
args = ["-c", "exit 7"]
network = "none"
ready = { tcp = true, timeout = "3s" }
[workload]
kind = "probe"
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        plans.join("b-ok.toml"),
        r#"
name = "ok"
duration = "2s"
[cluster]
size = 1
[workload]
kind = "kv"
clients = 2
rate = 40
keys = 3
[expect]
availability = 0.9
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(plans.join("notes.txt"), "not a plan").unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("results");
    let run = |extra: &[&str]| {
        rift()
            .args(["run", "--progress", "quiet", "--out"])
            .arg(&out)
            .arg(&plans)
            .args(extra)
            .output()
            .unwrap_or_else(|e| panic!("{e}"))
    };

    let o = run(&["--fail-fast"]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap_or_default();
    assert!(
        junit.contains("could not run") && junit.contains("<skipped"),
        "{junit}"
    );
    assert!(
        !out.join("ok").exists(),
        "--fail-fast still ran the second plan"
    );

    let o = run(&[]);
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("all plans:") && stdout.contains("1 of 2 plans passed"),
        "{}",
        show(&o)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap_or_default();
    assert!(
        summary.contains("| ok | PASS |") && summary.contains("| broken | CANNOT RUN |"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap_or_default();
    assert!(
        junit.contains("testsuite name=\"ok\"") && junit.contains("testsuite name=\"broken\""),
        "{junit}"
    );
    assert!(out.join("ok").join("latest").join("report.html").is_file());
    // The plan's runs.json lists the run (the plan that could not run has
    // no report, hence no entry).
    let index = std::fs::read_to_string(out.join("ok").join("runs.json")).unwrap_or_default();
    let index: serde_json::Value = serde_json::from_str(&index).unwrap_or_default();
    let runs = index["runs"].as_array().cloned().unwrap_or_default();
    assert_eq!(runs.len(), 1, "{index}");
    assert_eq!(runs[0]["verdict"], "pass", "{index}");
    let run_dir = runs[0]["dir"].as_str().unwrap_or_default();
    assert!(
        out.join("ok").join(run_dir).join("report.json").is_file(),
        "{index}"
    );
    assert!(!out.join("broken").join("runs.json").exists());

    // An empty directory is a command-line error.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap_or_else(|e| panic!("{e}"));
    let o = rift()
        .args(["run", "--out"])
        .arg(&out)
        .arg(&empty)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
}

#[test]
fn the_well_formedness_check_rejects_broken_html() {
    for bad in [
        "<p><b>x</p></b>",
        "<div class=x></div>",
        "<p>a & b</p>",
        "<p>unclosed",
        "<svg><rect></svg>",
        "</p>",
    ] {
        assert!(check_well_formed(bad).is_err(), "accepted {bad}");
    }
    assert!(check_well_formed(
        "<!DOCTYPE html><p a=\"1\">x &amp; <br> y</p><svg><rect x=\"1\"/></svg>"
    )
    .is_ok());
}

/// Nothing served: latency is `n/a` everywhere a person reads it; a SIGKILL
/// escalation is a node event in every view; each node's command line is
/// in report.json and report.html.
#[test]
fn no_latency_escalations_and_command_lines_are_rendered() {
    let (mut r, ops) = five_nodes();
    r.latency = Default::default();
    r.node_events.push(NodeEventRecord {
        at_s: 31.5,
        node: NodeId(2),
        event: "escalated".into(),
        detail: "still running 5.00s after SIGTERM: SIGKILLed".into(),
        expected: None,
    });
    r.cluster.nodes[0].command = vec!["/opt/db/bin/db".into(), "--name".into(), "n 0".into()];
    r.cluster.nodes[0].env = [("RUST_LOG".to_string(), "info".to_string())].into();
    r.cluster.nodes[0].shell = "RUST_LOG=info /opt/db/bin/db --name 'n 0'".into();

    let md = summary_markdown(&r);
    assert!(md.contains("p50 n/a · p99 n/a"), "{md}");
    assert!(
        md.contains("**SIGKILL:** n2 at 31.50s: still running 5.00s after SIGTERM: SIGKILLed"),
        "{md}"
    );
    let html = render_html(&r, &ops);
    assert!(
        html.contains("<b>n/a</b><span>p50 latency</span>"),
        "p50 tile"
    );
    assert!(
        html.contains("<b>n/a</b><span>p99 latency</span>"),
        "p99 tile"
    );
    assert!(!html.contains("0.0 ms"), "no served request has no latency");
    assert!(html.contains("RUST_LOG=info /opt/db/bin/db --name &#39;n 0&#39;"));
    assert!(html.contains("<td>escalated</td>"));
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["cluster"]["nodes"][0]["command"],
        serde_json::json!(["/opt/db/bin/db", "--name", "n 0"])
    );
    assert_eq!(
        json["cluster"]["nodes"][0]["env"],
        serde_json::json!({"RUST_LOG": "info"})
    );
    assert!(json["cluster"]["nodes"][1].get("command").is_none());
    assert_eq!(json["latency"]["count"], 0);
    let back: Report = serde_json::from_value(json).expect("read back");
    assert_eq!(back.cluster.nodes, r.cluster.nodes);
    assert_eq!(back.latency.p99(), None);
}
