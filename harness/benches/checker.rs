//! Benchmark of the linearizability checker on realistic generated histories.
//!
//! Generates key-value histories that are linearizable by construction (a
//! simulated register with a linearization point inside every operation's
//! window), then times `check_linearizable` on them. Each size runs in a fresh
//! child process of this binary so its peak memory (VmHWM) is its own.
//! Prints one JSON object per run. Never asserts on time: it only measures.
//!
//! `cargo bench -p rift --bench checker` runs 10k, 100k and 1M operations;
//! `RIFT_BENCH_SIZES=10000,100000` chooses others, `RIFT_BENCH_KEYS=5` makes
//! keys hot (more concurrency per key), `RIFT_BENCH_STALE_READ=1` corrupts
//! one read in the middle to time the violation path (search + shrinking).
//!
//! `RIFT_BENCH_CHECKER=set,list_append` (default `linearizable`) times the
//! collection checkers instead (or too: `linearizable,set,list_append`) on
//! set / list-append histories made the same way: one simulated collection
//! per key, a point inside every operation, 20% reads of the whole
//! collection, 3% unknown adds or appends. Their key count defaults to
//! 1000 (`RIFT_BENCH_KEYS` sets it): each read returns its whole
//! collection, so fewer keys make the history itself quadratic in size.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rift::check::{check_linearizable, check_list_append, check_set, LinOptions};
use rift::history::{Op, OpKind, Outcome};
use rift::NodeId;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

fn keys() -> usize {
    std::env::var("RIFT_BENCH_KEYS")
        .ok()
        .and_then(|k| k.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(100)
}
const CLIENTS: u32 = 16;
const NODES: usize = 5;
const UNKNOWN_RATIO: f64 = 0.03;
const TIMEOUT_NS: u64 = 1_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(pos) = args.iter().position(|a| a == "--child-collection") {
        let model = args.get(pos + 1).cloned().unwrap_or_default();
        let n = args
            .get(pos + 2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        child_collection(&model, n);
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--child") {
        let n = args
            .get(pos + 1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(10_000);
        let threads = args.get(pos + 2).and_then(|s| s.parse().ok()).unwrap_or(0);
        child(n, threads);
        return;
    }
    let sizes: Vec<usize> = std::env::var("RIFT_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000, 1_000_000]);
    let Ok(me) = std::env::current_exe() else {
        eprintln!("cannot find the bench binary to re-run it");
        std::process::exit(1);
    };
    let checkers = std::env::var("RIFT_BENCH_CHECKER").unwrap_or_else(|_| "linearizable".into());
    let checkers: Vec<&str> = checkers.split(',').map(str::trim).collect();
    for &n in &sizes {
        for model in ["set", "list_append"] {
            if !checkers.contains(&model) {
                continue;
            }
            match Command::new(&me)
                .args(["--child-collection", model, &n.to_string()])
                .output()
            {
                Ok(out) if out.status.success() => {
                    print!("{}", String::from_utf8_lossy(&out.stdout));
                }
                Ok(out) => eprintln!(
                    "{model} size {n}: child failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("{model} size {n}: cannot start child: {e}"),
            }
        }
    }
    if !checkers.contains(&"linearizable") {
        return;
    }
    for n in sizes {
        for threads in [0usize, 1] {
            match Command::new(&me)
                .args(["--child", &n.to_string(), &threads.to_string()])
                .output()
            {
                Ok(out) if out.status.success() => {
                    print!("{}", String::from_utf8_lossy(&out.stdout));
                }
                Ok(out) => eprintln!(
                    "size {n}: child failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => eprintln!("size {n}: cannot start child: {e}"),
            }
        }
    }
}

fn child(n: usize, threads: usize) {
    let started = Instant::now();
    let mut ops = generate(n, 42);
    let corrupted =
        std::env::var_os("RIFT_BENCH_STALE_READ").is_some() && make_stale_read(&mut ops);
    let gen_ms = started.elapsed().as_secs_f64() * 1e3;
    let hwm_history_kb = vm_hwm_kb();
    // Reset the peak to the current size so the check's own peak is seen.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before_check_kb = vm_hwm_kb();

    let opts = LinOptions {
        threads,
        ..LinOptions::default()
    };
    let started = Instant::now();
    let result = check_linearizable(&ops, &opts);
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    let hwm_total_kb = vm_hwm_kb();

    let unknown = ops.iter().filter(|o| o.outcome == Outcome::Unknown).count();
    let report = serde_json::json!({
        "bench": "check_linearizable",
        "ops": n,
        "keys": keys(),
        "clients": CLIENTS,
        "unknown_ops": unknown,
        "threads": if threads == 0 {
            std::thread::available_parallelism().map_or(1, |p| p.get())
        } else {
            threads
        },
        "generate_ms": round(gen_ms),
        "check_ms": round(check_ms),
        "ops_per_s": round(n as f64 / (check_ms / 1e3)),
        "stale_read_injected": corrupted,
        "verdict": result.verdict,
        "counterexample_ops": result.counterexample.len(),
        "steps": result.details.linearizable().map(|d| d.steps),
        "keys_unknown": result.details.linearizable().map(|d| d.keys_unknown),
        "peak_rss_after_generate_kb": hwm_history_kb,
        "peak_rss_during_check_kb": hwm_total_kb,
        "rss_before_check_kb": reset.then_some(rss_before_check_kb).flatten(),
    });
    println!("{report}");
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Peak resident set size of this process, from /proc/self/status.
fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Makes the ok read nearest the middle return the first value ever written
/// to its key, long overwritten. Returns whether such a read was found.
fn make_stale_read(ops: &mut [Op]) -> bool {
    let mid = ops.len() / 2;
    let Some(r) = (mid..ops.len()).find(|&i| {
        ops[i].kind == OpKind::Read && ops[i].outcome == Outcome::Ok && ops[i].result.is_some()
    }) else {
        return false;
    };
    let first = ops[..r]
        .iter()
        .find(|o| o.kind == OpKind::Write && o.outcome == Outcome::Ok && o.key == ops[r].key)
        .and_then(|o| o.value.clone());
    ops[r].result = first;
    true
}

/// A planned operation before the register decides its result.
struct Planned {
    op: Op,
    /// When it takes effect; None if it never does (unknown, not applied).
    point: Option<u64>,
}

/// `n` operations from `CLIENTS` sequential clients over `KEYS` keys, with
/// overlapping durations and a few unknown outcomes; linearizable because
/// every result is computed by a register at the op's linearization point.
fn generate(n: usize, seed: u64) -> Vec<Op> {
    let keys = keys();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut clock: Vec<u64> = (0..CLIENTS)
        .map(|_| rng.random_range(0..1_000_000))
        .collect();
    let mut planned: Vec<Planned> = Vec::with_capacity(n);
    for i in 0..n {
        let client = rng.random_range(0..CLIENTS);
        let invoke = clock[client as usize] + rng.random_range(0..200_000);
        let unknown = rng.random_bool(UNKNOWN_RATIO);
        // Mostly fast, sometimes slow: latency spread over 0.1 ms .. 20 ms.
        let dur = if rng.random_bool(0.9) {
            rng.random_range(100_000..2_000_000)
        } else {
            rng.random_range(2_000_000..20_000_000)
        };
        let complete = invoke + if unknown { TIMEOUT_NS } else { dur };
        clock[client as usize] = complete;
        let roll: f64 = rng.random();
        let kind = if roll < 0.5 {
            OpKind::Read
        } else if roll < 0.9 {
            OpKind::Write
        } else {
            OpKind::Cas
        };
        let point = if unknown && (kind == OpKind::Read || rng.random_bool(0.5)) {
            None
        } else {
            // An unknown op that applied may land well after the client gave up.
            Some(rng.random_range(invoke..=invoke + dur))
        };
        planned.push(Planned {
            op: Op {
                id: i as u64,
                client,
                node: NodeId(rng.random_range(0..NODES)),
                kind,
                key: Some(format!("k{}", rng.random_range(0..keys))),
                value: (kind != OpKind::Read).then(|| format!("c{client}-{i}")),
                expect: None,
                invoke_ns: invoke,
                complete_ns: complete,
                outcome: if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok
                },
                result: None,
                values: None,
                status: None,
                error: None,
            },
            point,
        });
    }

    let mut order: Vec<usize> = (0..planned.len())
        .filter(|&i| planned[i].point.is_some())
        .collect();
    order.sort_by_key(|&i| planned[i].point);
    let mut registers: std::collections::HashMap<String, String> = Default::default();
    for i in order {
        let op = &mut planned[i].op;
        let key = op.key.clone().unwrap_or_default();
        let current = registers.get(&key).cloned();
        match op.kind {
            OpKind::Read => op.result = current,
            OpKind::Write => {
                if let Some(v) = op.value.clone() {
                    registers.insert(key, v);
                }
            }
            _ => {
                // Most cas expect the current value; the rest get a 409.
                if rng.random_bool(0.7) {
                    op.expect = current;
                    if let Some(v) = op.value.clone() {
                        registers.insert(key, v);
                    }
                } else {
                    op.expect = Some(format!("stale-{i}"));
                    if op.outcome == Outcome::Ok {
                        op.outcome = Outcome::Fail;
                        op.status = Some(409);
                    }
                }
            }
        }
    }
    for p in planned
        .iter_mut()
        .filter(|p| p.point.is_none() && p.op.kind == OpKind::Cas)
    {
        p.op.expect = Some(format!("never-{}", p.op.id));
    }
    let mut ops: Vec<Op> = planned.into_iter().map(|p| p.op).collect();
    ops.sort_by_key(|o| (o.invoke_ns, o.id));
    for (i, op) in ops.iter_mut().enumerate() {
        op.id = i as u64;
    }
    ops
}

/// Times the set or list-append checker on `n` generated operations.
fn child_collection(model: &str, n: usize) {
    let list = model == "list_append";
    let keys = std::env::var("RIFT_BENCH_KEYS")
        .ok()
        .and_then(|k| k.parse().ok())
        .filter(|&k| k > 0)
        .unwrap_or(1000);
    let started = Instant::now();
    let ops = generate_collection(n, keys, list, 42);
    let gen_ms = started.elapsed().as_secs_f64() * 1e3;
    let values_read: usize = ops
        .iter()
        .filter_map(|o| o.values.as_ref())
        .map(Vec::len)
        .sum();
    let hwm_history_kb = vm_hwm_kb();
    let started = Instant::now();
    let none = BTreeMap::new();
    let result = if list {
        check_list_append(&ops, &none)
    } else {
        check_set(&ops, &none)
    };
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    let report = serde_json::json!({
        "bench": if list { "check_list_append" } else { "check_set" },
        "ops": n,
        "keys": keys,
        "values_read": values_read,
        "generate_ms": round(gen_ms),
        "check_ms": round(check_ms),
        "ops_per_s": round(n as f64 / (check_ms / 1e3)),
        "verdict": result.verdict,
        "summary": result.summary,
        "peak_rss_after_generate_kb": hwm_history_kb,
        "peak_rss_during_check_kb": vm_hwm_kb(),
    });
    println!("{report}");
}

/// `n` adds/appends and whole-collection reads over `keys` keys, each with a
/// point inside its interval where a correct collection applies it.
fn generate_collection(n: usize, keys: usize, list: bool, seed: u64) -> Vec<Op> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut planned: Vec<(u64, bool, Op)> = Vec::with_capacity(n);
    for i in 0..n {
        let invoke = i as u64 * 50_000 + rng.random_range(0..200_000);
        let dur = rng.random_range(100_000..5_000_000);
        let read = rng.random_bool(0.2);
        let unknown = !read && rng.random_bool(UNKNOWN_RATIO);
        let applied = !unknown || rng.random_bool(0.5);
        let kind = match (read, list) {
            (true, true) => OpKind::ReadList,
            (true, false) => OpKind::ReadSet,
            (false, true) => OpKind::Append,
            (false, false) => OpKind::Add,
        };
        let point = rng.random_range(invoke..=invoke + dur);
        planned.push((
            point,
            applied,
            Op {
                id: i as u64,
                client: (i % CLIENTS as usize) as u32,
                node: NodeId(rng.random_range(0..NODES)),
                kind,
                key: Some(format!("k{}", rng.random_range(0..keys))),
                value: (!read).then(|| format!("v{i}")),
                expect: None,
                invoke_ns: invoke,
                complete_ns: invoke + if unknown { TIMEOUT_NS } else { dur },
                outcome: if unknown {
                    Outcome::Unknown
                } else {
                    Outcome::Ok
                },
                result: None,
                values: None,
                status: (!unknown).then_some(200),
                error: unknown.then(|| "timeout".to_string()),
            },
        ));
    }
    planned.sort_by_key(|(p, _, o)| (*p, o.id));
    let mut state: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (_, applied, op) in planned.iter_mut() {
        let key = op.key.clone().unwrap_or_default();
        let coll = state.entry(key).or_default();
        match op.kind {
            OpKind::ReadSet | OpKind::ReadList => op.values = Some(coll.clone()),
            OpKind::Add | OpKind::Append => {
                if *applied {
                    coll.extend(op.value.clone());
                }
            }
            OpKind::Read | OpKind::Write | OpKind::Cas | OpKind::Probe => {}
        }
    }
    let mut ops: Vec<Op> = planned.into_iter().map(|(_, _, o)| o).collect();
    ops.sort_by_key(|o| o.id);
    ops
}
