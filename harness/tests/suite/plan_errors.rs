//! Plan errors as a person sees them: each malformed fixture must produce
//! exactly `file:line:column: field: message`; a full plan must produce the
//! expected `Plan`; and no input at all may make the parser panic.

use proptest::prelude::*;
use rift::plan::{self, *};
use rift::NodeId;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const FIXTURES: &str = "tests/fixtures/plans";

/// The error text for a fixture, loaded through a relative path so that the
/// message is the same on every machine (cargo runs tests in the package dir).
fn error_of(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    match plan::load(Path::new(&path)) {
        Ok(p) => panic!("{name} should be invalid, parsed as {p:#?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_field_suggests_the_close_one() {
    assert_eq!(
        error_of("unknown_field.toml"),
        "tests/fixtures/plans/unknown_field.toml:5:1: cluster.sise: unknown field `sise`, did you mean `size`?"
    );
}

#[test]
fn wrong_type_names_expected_and_found() {
    assert_eq!(
        error_of("wrong_type.toml"),
        "tests/fixtures/plans/wrong_type.toml:7:8: cluster.size: expected a whole number from 1 to 64, found \"five\""
    );
}

#[test]
fn bad_duration_names_the_unit() {
    assert_eq!(
        error_of("bad_duration.toml"),
        "tests/fixtures/plans/bad_duration.toml:2:12: duration: unknown duration unit `secs` in \"40secs\"; use ns, us, ms, s, m or h"
    );
}

#[test]
fn unknown_placeholder_is_named_with_the_valid_ones() {
    assert_eq!(
        error_of("unknown_placeholder.toml"),
        "tests/fixtures/plans/unknown_placeholder.toml:6:19: cluster.args[1]: unknown placeholder `{nmae}`, did you mean `{name}`? valid here: {id}, {name}, {host}, {port}, {peer_port}, {data_dir}, {peers}"
    );
}

#[test]
fn peer_placeholder_outside_each_peer_is_rejected() {
    assert_eq!(
        error_of("peer_outside_each_peer.toml"),
        "tests/fixtures/plans/peer_outside_each_peer.toml:7:13: cluster.args[1]: `{peer}` is only valid inside { each_peer = [...] }; valid here: {id}, {name}, {host}, {port}, {peer_port}, {data_dir}, {peers}"
    );
}

#[test]
fn unknown_node_in_target_points_at_the_name() {
    assert_eq!(
        error_of("unknown_node.toml"),
        "tests/fixtures/plans/unknown_node.toml:10:17: step[0].target[1]: unknown node `n7`; this cluster has n0 to n4"
    );
}

#[test]
fn step_at_or_after_the_end_is_rejected() {
    assert_eq!(
        error_of("at_beyond_duration.toml"),
        "tests/fixtures/plans/at_beyond_duration.toml:5:6: step[0].at: 45s is not before the end of the run (duration = \"40s\")"
    );
}

#[test]
fn a_late_step_still_has_its_target_checked() {
    let src = "name = \"late\"\nduration = \"40s\"\n[cluster]\nsize = 3\n\n[[step]]\nat = \"45s\"\nfault = \"kill\"\ntarget = \"n7\"\n";
    let err = match plan::parse(src, Path::new("late.toml")) {
        Ok(p) => panic!("should be invalid, parsed as {p:#?}"),
        Err(e) => e,
    };
    let lines: Vec<String> = err.errors().iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("step[0].at: 45s is not before the end"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("step[0].target: unknown node `n7`"),
        "{lines:#?}"
    );
}

#[test]
fn field_of_another_fault_kind_is_named() {
    assert_eq!(
        error_of("wrong_fault_field.toml"),
        "tests/fixtures/plans/wrong_fault_field.toml:8:1: step[0].topology: `topology` does not apply to a kill step; a kill step takes `at`, `fault`, `target`, `signal`, `restart_after`, `lose_unsynced`, `torn`"
    );
}

#[test]
fn toml_syntax_errors_have_a_position() {
    assert_eq!(
        error_of("bad_syntax.toml"),
        "tests/fixtures/plans/bad_syntax.toml:6:18: invalid TOML: invalid basic string, expected `\"`"
    );
}

#[test]
fn step_field_typo_suggests_within_the_fault_kind() {
    assert_eq!(
        error_of("step_field_typo.toml"),
        "tests/fixtures/plans/step_field_typo.toml:8:1: step[0].restart_afer: unknown field `restart_afer`, did you mean `restart_after`?"
    );
}

#[test]
fn overlapping_groups_are_rejected() {
    assert_eq!(
        error_of("overlapping_groups.toml"),
        "tests/fixtures/plans/overlapping_groups.toml:10:12: step[0].topology: node `n1` is in more than one group"
    );
}

#[test]
fn non_loopback_host_is_rejected() {
    assert_eq!(
        error_of("not_loopback.toml"),
        "tests/fixtures/plans/not_loopback.toml:5:8: cluster.host: expected a loopback IP address (127.0.0.0/8 or ::1), found \"10.0.0.1\"; rift only ever uses loopback"
    );
}

#[test]
fn clients_through_proxies_need_the_proxy_mesh() {
    assert_eq!(
        error_of("via_without_mesh.toml"),
        "tests/fixtures/plans/via_without_mesh.toml:7:7: workload.via: client proxies are part of the proxy mesh; set [cluster] network = \"proxy\""
    );
}

#[test]
fn client_proxies_are_refused_under_netns() {
    assert_eq!(
        error_of("via_under_netns.toml"),
        "tests/fixtures/plans/via_under_netns.toml:6:7: workload.via: client proxies are part of the proxy mesh; under network = \"netns\" the workload's traffic always crosses the wire: drop `via`"
    );
}

#[test]
fn connection_faults_are_refused_under_netns() {
    assert_eq!(
        error_of("reset_under_netns.toml"),
        "tests/fixtures/plans/reset_under_netns.toml:11:9: step[0].reset: `reset` is a proxy-mesh fault (it resets TCP connections); network = \"netns\" carries packets: use `loss` or a partition instead"
    );
}

#[test]
fn packet_faults_are_refused_under_the_proxy_mesh() {
    assert_eq!(
        error_of("loss_under_proxy.toml"),
        "tests/fixtures/plans/loss_under_proxy.toml:7:8: step[0].loss: `loss` is a packet-level fault that needs network = \"netns\"; network = \"proxy\" relays TCP byte streams, not packets"
    );
}

#[test]
fn capture_needs_the_netns_wire() {
    assert_eq!(
        error_of("capture_without_netns.toml"),
        "tests/fixtures/plans/capture_without_netns.toml:6:11: cluster.capture: capture records the packets of the netns wire, which network = \"proxy\" does not have; it needs network = \"netns\""
    );
}

/// The error text for a fixture loaded with `--network`.
fn error_under(network: NetworkMode, name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    let overrides = Overrides {
        network: Some(network),
    };
    match plan::load_with(Path::new(&path), &overrides) {
        Ok(p) => panic!("{name} should be invalid under {network}, parsed as {p:#?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_network_override_is_validated_against_and_errors_still_point_into_the_file() {
    // Each fixture is valid under the network it was refused for.
    let load_under = |network, name: &str| {
        let path = Path::new(FIXTURES).join(name);
        let overrides = Overrides {
            network: Some(network),
        };
        let p = plan::load_with(&path, &overrides).unwrap();
        // The validated plan carries the override (the report records it).
        assert_eq!(p.cluster.network, network);
        p
    };
    let p = load_under(NetworkMode::Netns, "loss_under_proxy.toml");
    assert!(matches!(
        &p.steps[0].action,
        Action::Degrade { degradation, .. } if degradation.loss == Some(0.1)
    ));
    let p = load_under(NetworkMode::Proxy, "reset_under_netns.toml");
    // The hash is still that of the file's bytes.
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("reset_under_netns.toml")).unwrap();
    let same = text.replace("network = \"netns\"", "network = \"proxy\"");
    assert_ne!(
        p.hash,
        plan::parse(&same, Path::new("x.toml")).unwrap().hash
    );
    assert_eq!(
        p.hash,
        plan::parse_with(
            &text,
            Path::new("x.toml"),
            &Overrides {
                network: Some(NetworkMode::Proxy)
            }
        )
        .unwrap()
        .hash
    );
    load_under(NetworkMode::Netns, "capture_without_netns.toml");
    assert_eq!(
        error_under(NetworkMode::None, "loss_under_proxy.toml"),
        "tests/fixtures/plans/loss_under_proxy.toml:6:9: step[0].fault: a degrade step needs network faults, but --network none"
    );
    // The full plan (netns) under the proxy mesh: every packet-level
    // setting, each where the file has it, the override named.
    let f = "tests/fixtures/plans/full.toml";
    let needs = "needs network = \"netns\"; --network proxy relays TCP byte streams, not packets";
    let capture =
        "capture records the packets of the netns wire, which --network proxy does not have; it needs network = \"netns\"";
    assert_eq!(
        error_under(NetworkMode::Proxy, "full.toml"),
        [
            format!("{f}:18:11: cluster.capture: {capture}"),
            format!("{f}:19:17: cluster.capture_limit: {capture}"),
            format!("{f}:35:16: step[0].distribution: `distribution` is how the jitter of each packet is drawn, a packet-level setting that {needs}"),
            format!("{f}:37:8: step[0].loss: `loss` is a packet-level fault that {needs}"),
            format!("{f}:38:13: step[0].duplicate: `duplicate` is a packet-level fault that {needs}"),
            format!("{f}:39:11: step[0].reorder: `reorder` is a packet-level fault that {needs}"),
            format!("{f}:40:7: step[0].gap: `gap` is how long a reordered packet is held back, a packet-level setting that {needs}"),
            format!("{f}:41:11: step[0].corrupt: `corrupt` is a packet-level fault that {needs}"),
        ]
        .join("\n")
    );
}

#[test]
fn shipped_bug_plans_validate_under_either_network_with_faults() {
    let dir = Path::new("../experiments/bugs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        for network in [NetworkMode::Proxy, NetworkMode::Netns] {
            let overrides = Overrides {
                network: Some(network),
            };
            match plan::load_with(&path, &overrides) {
                Ok(p) => assert_eq!(p.cluster.network, network),
                Err(e) => panic!("{} under --network {network}: {e}", path.display()),
            }
        }
    }
    assert!(seen > 0, "no bug plans in {}", dir.display());
}

#[test]
fn availability_is_a_bound_not_something_to_find() {
    assert_eq!(
        error_of("finds_availability.toml"),
        "tests/fixtures/plans/finds_availability.toml:6:26: expect.finds[1]: `availability` is a bound, not a checker: write `availability = 0.99` in [expect] for the minimum success ratio; `finds` takes `linearizable`, `lost_writes`, `ledger_agreement`, `set`, `list_append`"
    );
}

#[test]
fn missing_name_points_at_the_top() {
    assert_eq!(
        error_of("missing_name.toml"),
        "tests/fixtures/plans/missing_name.toml:1:1: name: missing; every plan needs a name"
    );
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let path = Path::new(FIXTURES).join("many_errors.toml");
    let err = plan::load(&path).unwrap_err();
    assert_eq!(err.errors().len(), 6, "{err}");
    let f = "tests/fixtures/plans/many_errors.toml";
    assert_eq!(
        err.to_string(),
        [
            format!("{f}:1:8: name: expected letters, digits, `-` and `_` only (it names a directory), found \"many errors\""),
            format!("{f}:5:8: cluster.size: expected a whole number from 1 to 64, found 0"),
            format!("{f}:6:7: cluster.bug: unknown bug `stale-read`, did you mean `stale-reads`?"),
            format!("{f}:10:8: workload.keys: `keys` only applies to kind = \"kv\", this workload is \"probe\""),
            format!("{f}:16:7: step[0].for: expected a duration greater than zero"),
            format!("{f}:19:16: expect.availability: expected a number from 0 to 1, found 1.5"),
        ]
        .join("\n")
    );
}

#[test]
fn unreadable_file_is_an_io_error() {
    let err = plan::load(Path::new("tests/fixtures/plans/does-not-exist.toml")).unwrap_err();
    assert!(matches!(err, PlanError::Io { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with("tests/fixtures/plans/does-not-exist.toml: cannot read plan: "));
}

fn tpl(s: &str, scope: TemplateScope) -> Template {
    Template::parse(s, scope).unwrap()
}

fn node(s: &str) -> ArgTemplate {
    ArgTemplate::One(tpl(s, TemplateScope::Node))
}

#[test]
fn full_plan_parses_to_the_expected_value() {
    let path = Path::new(FIXTURES).join("full.toml");
    let got = plan::load(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let n = |v: &[usize]| v.iter().map(|&i| NodeId(i)).collect::<Vec<_>>();
    let step_line = |at: &str| -> usize {
        // The line of the `[[step]]` header just above `at = "..."`.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let i = lines
            .iter()
            .position(|l| *l == format!("at = \"{at}\""))
            .unwrap();
        i // 0-based index of the `at` line = 1-based line of the header
    };
    let expected = Plan {
        nemesis: None,
        name: "full-plan".into(),
        description: "Every field, to prove the whole format parses.".into(),
        seed: Some(7),
        duration: secs(40),
        path: path.clone(),
        hash: got.hash.clone(),
        cluster: ClusterSpec {
            size: 5,
            host: std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
            command: NodeCommand::External {
                program: "/usr/bin/some-server".into(),
                args: vec![
                    node("--name"),
                    node("{name}"),
                    node("--listen"),
                    node("{host}:{port}"),
                    ArgTemplate::EachPeer(vec![
                        tpl("--peer", TemplateScope::EachPeer),
                        tpl("{peer}", TemplateScope::EachPeer),
                    ]),
                    node("--data"),
                    node("{data_dir}"),
                    node("--raft={peer_port}"),
                    ArgTemplate::One(Template::literal("{literal}")),
                ],
            },
            env: BTreeMap::from([
                ("NODE".to_string(), tpl("{name}", TemplateScope::Node)),
                ("RUST_LOG".to_string(), Template::literal("info")),
            ]),
            ready: Readiness {
                probe: ReadyProbe::Tcp,
                timeout: secs(5),
            },
            leader: Some(LeaderQuery::named("/status", "/raft/leader")),
            network: NetworkMode::Netns,
            peers: PeersFormat {
                format: tpl("{name}=http://{host}:{port}", TemplateScope::PeersFormat),
                separator: ";".into(),
                include_self: true,
            },
            separate_peer_port: true,
            stop_timeout: secs(2),
            capture: Some(Capture { limit: 20 << 20 }),
            clock: Default::default(),
        },
        workload: WorkloadSpec {
            kind: WorkloadKind::Kv {
                keys: 20,
                mix: KvMix {
                    read: 0.5,
                    write: 0.4,
                    cas: 0.1,
                },
                http: None,
            },
            clients: 10,
            rate: 400.0,
            timeout: ms(1500),
            via: ClientRoute::Direct,
            client: None,
        },
        steps: vec![
            Step {
                at: secs(5),
                action: Action::Partition {
                    topology: Topology::MajorityMinority,
                    oneway: true,
                    for_: Some(secs(10)),
                },
                line: step_line("5s"),
            },
            // Two steps at 20s keep their file order (stable sort).
            Step {
                at: secs(20),
                action: Action::Kill {
                    target: Target::Leader,
                    signal: libc::SIGTERM,
                    restart_after: Some(secs(5)),
                    power_loss: None,
                },
                line: 51,
            },
            Step {
                at: secs(20),
                action: Action::Pause {
                    target: Target::Nodes(n(&[0, 2])),
                    for_: Some(secs(2)),
                    how: rift::plan::PauseHow::Sigstop,
                },
                line: 58,
            },
            Step {
                at: secs(25),
                action: Action::Partition {
                    topology: Topology::Groups(vec![n(&[0, 1]), n(&[2, 3, 4])]),
                    oneway: false,
                    for_: None,
                },
                line: step_line("25s"),
            },
            Step {
                at: secs(26),
                action: Action::Heal,
                line: step_line("26s"),
            },
            Step {
                at: secs(27),
                action: Action::Restart {
                    target: Target::Random(2),
                },
                line: step_line("27s"),
            },
            Step {
                at: secs(28),
                action: Action::Resume {
                    target: Target::All,
                },
                line: step_line("28s"),
            },
            Step {
                at: secs(30),
                action: Action::Degrade {
                    links: LinkSelector::Links(vec![
                        (NodeId(0), NodeId(1)),
                        (NodeId(1), NodeId(0)),
                    ]),
                    degradation: Degradation {
                        latency: Some(ms(50)),
                        jitter: Some(ms(10)),
                        distribution: Distribution::Normal,
                        bandwidth: Some(1_000_000),
                        loss: Some(0.01),
                        duplicate: Some(0.02),
                        reorder: Some(0.05),
                        gap: Some(ms(3)),
                        corrupt: Some(0.001),
                        reset: None,
                        stall: None,
                    },
                    for_: Some(secs(10)),
                },
                line: step_line("30s"),
            },
            Step {
                at: secs(35),
                action: Action::Restore {
                    links: LinkSelector::Nodes(Target::Nodes(n(&[3]))),
                },
                line: step_line("35s"),
            },
            Step {
                at: secs(36),
                action: Action::Partition {
                    topology: Topology::Isolate(Target::Leader),
                    oneway: false,
                    for_: None,
                },
                line: step_line("36s"),
            },
        ],
        expect: Expectations {
            availability: Some(0.99),
            p50_latency: Some(ms(20)),
            p99_latency: Some(ms(250)),
            recovery: Some(secs(5)),
            no_unexpected_exits: false,
            linearizable: Some(true),
            lost_writes: Some(0),
            ledger_agreement: Some(true),
            set: None,
            list_append: None,
            finds: vec![],
        },
        disk: rift::plan::DiskMode::Plain,
        backend: rift::plan::Backend::Process,
    };
    assert_eq!(got, expected);
    // The hash is the SHA-256 of the file's bytes, and parse agrees with load.
    assert_eq!(got.hash.len(), 64);
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(plan::parse(&text, &path).unwrap(), got);
    assert_ne!(
        plan::parse(&format!("{text}\n# changed\n"), &path)
            .unwrap()
            .hash,
        got.hash
    );
}

#[test]
fn minimal_plan_takes_every_default() {
    let p = plan::parse(
        "name = \"min\"\nduration = \"10s\"\n",
        Path::new("min.toml"),
    )
    .unwrap();
    assert_eq!(p.seed, None);
    assert_eq!(p.description, "");
    let c = &p.cluster;
    assert_eq!(c.size, 3);
    assert_eq!(c.host.to_string(), "127.0.0.1");
    assert_eq!(c.command, NodeCommand::SampleNode { bugs: vec![] });
    assert_eq!(c.network, NetworkMode::Proxy);
    assert_eq!(
        c.ready,
        Readiness {
            probe: ReadyProbe::Http {
                path: "/health".into()
            },
            timeout: Duration::from_secs(10)
        }
    );
    assert_eq!(c.leader, Some(LeaderQuery::named("/health", "/leader")));
    assert_eq!(c.peers.format.to_string(), "{name}={host}:{port}");
    assert_eq!(c.peers.separator, ",");
    assert!(!c.peers.include_self);
    assert!(!c.separate_peer_port);
    assert_eq!(c.stop_timeout, Duration::from_secs(5));
    assert_eq!(p.workload.clients, 4);
    assert_eq!(p.workload.rate, 100.0);
    assert_eq!(p.workload.timeout, Duration::from_secs(1));
    assert!(matches!(p.workload.kind, WorkloadKind::Kv { keys: 10, .. }));
    assert!(p.steps.is_empty());
    assert_eq!(p.expect, Expectations::default());

    // An external command defaults to the probe workload and no leader.
    let p = plan::parse(
        "name = \"ext\"\nduration = \"10s\"\n[cluster]\ncommand = \"/bin/true\"\n",
        Path::new("ext.toml"),
    )
    .unwrap();
    assert_eq!(p.cluster.leader, None);
    assert_eq!(
        p.workload.kind,
        WorkloadKind::Probe {
            method: reqwest::Method::GET,
            path: "/health".into(),
            ok_status: vec![200]
        }
    );
}

/// A valid plan the mutation strategy starts from.
const BASE: &str = include_str!("../fixtures/plans/full.toml");

/// Values and keys that are each valid somewhere in a plan, so that line
/// edits mostly produce valid TOML that the validator has to judge.
const VALUES: &[&str] = &[
    "\"5s\"",
    "\"0s\"",
    "\"-1s\"",
    "\"99h\"",
    "5",
    "0",
    "-1",
    "1.5",
    "true",
    "[]",
    "{}",
    "\"n0\"",
    "\"n9\"",
    "\"leader\"",
    "\"random(9)\"",
    "[\"n0\", \"n0\"]",
    "[[\"n0\"], []]",
    "\"{peer}\"",
    "\"{nope}\"",
    "\"{\"",
    "{ each_peer = [\"{peer}\"] }",
    "\"kill\"",
    "\"heal\"",
    "\"isolate(all)\"",
    "\"ring\"",
    "\"1MB/s\"",
    "\"100MB\"",
    "\"normal\"",
    "\"netns\"",
    "\"none\"",
    "\"probe\"",
    "\"\"",
    "1e400",
    "nan",
    "9223372036854775807",
    "1979-05-27T07:32:00Z",
];
const KEYS: &[&str] = &[
    "name",
    "duration",
    "size",
    "host",
    "command",
    "args",
    "bug",
    "bugs",
    "network",
    "ready",
    "leader",
    "kind",
    "keys",
    "mix",
    "at",
    "fault",
    "target",
    "topology",
    "links",
    "signal",
    "for",
    "restart_after",
    "latency",
    "jitter",
    "bandwidth",
    "distribution",
    "loss",
    "duplicate",
    "reorder",
    "gap",
    "corrupt",
    "reset",
    "stall",
    "capture",
    "capture_limit",
    "finds",
    "sise",
    "[cluster]",
    "[[step]]",
    "[expect]",
    "[workload]",
];

fn mutated() -> impl Strategy<Value = String> {
    // Mostly line edits (keep TOML valid, stress the validator), some raw
    // character edits (stress the TOML parser and positions). Positions are
    // taken modulo the length and moved back to a character boundary.
    let edit = (
        0usize..6,
        any::<usize>(),
        any::<usize>(),
        "[\\[\\]{}=\"',.#\\n a-z0-9_-]{0,8}",
    );
    proptest::collection::vec(edit, 1..5).prop_map(|edits| {
        let mut s = BASE.to_string();
        for (kind, a, b, text) in edits {
            let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
            if lines.is_empty() {
                lines.push(String::new());
            }
            let i = a % lines.len();
            match kind {
                0 => {
                    lines.remove(i);
                }
                1 => {
                    let copy = lines[i].clone();
                    lines.insert(b % (lines.len() + 1), copy);
                }
                2 | 3 => {
                    if let Some((key, _)) = lines[i].split_once(" = ") {
                        lines[i] = format!("{key} = {}", VALUES[b % VALUES.len()]);
                    }
                }
                4 => {
                    let rest = lines[i].split_once(" = ").map(|(_, v)| v.to_string());
                    let key = KEYS[b % KEYS.len()];
                    match rest {
                        Some(v) if !key.starts_with('[') => lines[i] = format!("{key} = {v}"),
                        Some(_) => lines[i] = key.to_string(),
                        None => {}
                    }
                }
                _ => {
                    let mut t = lines.join("\n");
                    let mut at = a % (t.len() + 1);
                    while !t.is_char_boundary(at) {
                        at -= 1;
                    }
                    let mut end = (at + b % 40).min(t.len());
                    while !t.is_char_boundary(end) {
                        end -= 1;
                    }
                    t.replace_range(at..end, &text);
                    lines = vec![t];
                }
            }
            s = lines.join("\n");
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(src in "\\PC{0,200}") {
        if let Err(e) = plan::parse(&src, Path::new("p.toml")) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn mutated_plans_never_panic_and_errors_have_positions(src in mutated()) {
        match plan::parse(&src, Path::new("p.toml")) {
            Ok(p) => prop_assert!(p.steps.windows(2).all(|w| w[0].at <= w[1].at)),
            Err(e) => {
                for one in e.errors() {
                    let text = one.to_string();
                    prop_assert!(text.starts_with("p.toml:"), "{}", text);
                }
            }
        }
    }

    #[test]
    fn durations_never_panic(s in "\\PC{0,20}") {
        let _ = plan::parse_duration(&s);
        let _ = plan::parse_rate(&s);
        let _ = plan::parse_signal(&s);
        let _ = plan::parse_target(&s, 5);
        let _ = plan::parse_topology(&s, 5);
        let _ = Template::parse(&s, TemplateScope::EachPeer);
    }
}

#[test]
fn leader_forms_are_one_at_a_time_and_equals_is_a_plain_value() {
    assert_eq!(
        error_of("leader_ids_and_equals.toml"),
        "tests/fixtures/plans/leader_ids_and_equals.toml:6:79: cluster.leader.ids: give either `equals` (each node says whether it leads) or `ids` (the value is a member id), not both"
    );
    assert_eq!(
        error_of("leader_equals_table.toml"),
        "tests/fixtures/plans/leader_equals_table.toml:10:10: cluster.leader.equals: expected the value the leader answers at `pointer` (a string, an integer or a boolean, like \"leader\" or true), found a table"
    );
}
