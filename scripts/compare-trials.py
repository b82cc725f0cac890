#!/usr/bin/env python3
"""How often `rift compare` cries wolf (A/A) and how often it catches a real
slowdown (A/B), measured with real runs. Not part of the test command: a
trial takes tens of minutes.

Two steps, so the expensive one can be resumed and the cheap one repeated:

  collect  runs a plan N times per variant into POOL/<variant>/, the
           variants interleaved (a, b, a, b, ...) so that whatever else the
           machine does falls on both alike. Variants: `base` (the plan as
           shipped) and `slow-apply=MS` (the same plan with the sample node's
           `--bug slow-apply`, MS milliseconds per committed entry). Every run
           uses the plan's seed (`--seeds same`): one fault schedule.

  trials   draws comparisons from the pools and runs `rift compare` on each:
           A/A (--new same as --base): each comparison takes 2K distinct runs
           of one pool at random and splits them K/K; A/B: K runs of each
           pool. Prints one line per comparison and a JSON summary.

Drawing comparisons from a pool larger than 2K runs is cheaper than running
20 fresh pairs of sides (400 runs), but the comparisons share runs, so they
are not independent: the count of false alarms is an estimate of the rate,
not 20 independent trials. `--fresh` makes collect-and-compare use disjoint
runs only (needs POOL >= comparisons * 2K runs).

Example (about 35 min for both plans on 2 cores, debug build):
  cargo build -p rift && cp target/debug/rift /tmp/rift-trial
  scripts/compare-trials.py collect --rift /tmp/rift-trial \\
      --plan experiments/quickstart.toml --pool /tmp/pool-qs --runs 40 \\
      --variant base --variant slow-apply=3
  scripts/compare-trials.py trials --rift /tmp/rift-trial \\
      --base /tmp/pool-qs/base --new /tmp/pool-qs/base --comparisons 10 --per-side 10
  scripts/compare-trials.py trials --rift /tmp/rift-trial \\
      --base /tmp/pool-qs/base --new /tmp/pool-qs/slow-apply-3 --comparisons 20 --per-side 10
"""

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time


def variant_dir(v):
    return v.replace("=", "-")


def plan_for(variant, plan, tmp):
    """The plan file a variant runs, and the environment it needs."""
    env = dict(os.environ)
    if variant == "base":
        return plan, env
    m = re.fullmatch(r"slow-apply=(\d+)", variant)
    if not m:
        sys.exit(f"unknown variant `{variant}`: expected base or slow-apply=MS")
    text = open(plan).read()
    if re.search(r"(?m)^bug\s*=", text):
        sys.exit(f"{plan} already names a bug; slow-apply needs a plan without one")
    # The same plan (same name, schedule and seed) with the slower node.
    out, n = re.subn(r"(?m)^\[cluster\]\s*$", '[cluster]\nbug = "slow-apply"', text, count=1)
    if n != 1:
        sys.exit(f"{plan} has no [cluster] table")
    path = os.path.join(tmp, variant_dir(variant) + "-" + os.path.basename(plan))
    with open(path, "w") as f:
        f.write(out)
    env["SAMPLE_NODE_SLOW_APPLY_MS"] = m.group(1)
    return path, env


def count_runs(d):
    """Run directories (each with a report.json) under d, at any depth up to 2."""
    found = []
    for root, dirs, files in os.walk(d):
        if os.path.islink(root):
            continue
        if "report.json" in files:
            found.append(root)
        if root.count(os.sep) - d.count(os.sep) >= 2:
            dirs[:] = []
    return sorted(found)


def collect(a):
    tmp = tempfile.mkdtemp(prefix="rift-trial-plans-")
    variants = [(v, *plan_for(v, a.plan, tmp)) for v in a.variant]
    started = time.time()
    for i in range(a.runs):
        for v, plan, env in variants:
            out = os.path.join(a.pool, variant_dir(v))
            have = len(count_runs(out)) if os.path.isdir(out) else 0
            if have > i:
                continue  # resumed: this run exists already
            cmd = [a.rift, "run", plan, "--out", out, "--progress", "quiet", "--label", v]
            t0 = time.time()
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            print(
                f"[{time.time() - started:7.0f}s] {v:16} run {i + 1:3}/{a.runs}: exit {r.returncode} "
                f"in {time.time() - t0:.1f}s",
                flush=True,
            )
            if r.returncode not in (0, 1):
                print(r.stderr[-2000:], file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)


def side_dir(root, name, runs):
    """A directory holding copies of the given runs' reports, as compare reads them."""
    d = os.path.join(root, name)
    os.makedirs(d)
    for i, run in enumerate(runs):
        r = os.path.join(d, f"run{i:02}")
        os.makedirs(r)
        shutil.copy(os.path.join(run, "report.json"), r)
    return d


def trials(a):
    base = count_runs(a.base)
    same = os.path.realpath(a.base) == os.path.realpath(a.new)
    new = base if same else count_runs(a.new)
    k, n = a.per_side, a.comparisons
    need_base = 2 * k if same else k
    if len(base) < need_base or len(new) < k:
        sys.exit(f"pools too small: base {len(base)}, new {len(new)} runs; need {need_base} and {k}")
    if a.fresh:
        need = n * (2 * k if same else k)
        if len(base) < need or (not same and len(new) < need):
            sys.exit(f"--fresh needs {need} runs per pool")
    rng = random.Random(a.seed)
    order_b, order_n = base[:], new[:]
    rng.shuffle(order_b)
    rng.shuffle(order_n)
    results = []
    metric_verdicts = {}
    work = tempfile.mkdtemp(prefix="rift-trial-")
    total_compare_s = 0.0
    for c in range(n):
        if same:
            pick = order_b[c * 2 * k:(c + 1) * 2 * k] if a.fresh else rng.sample(base, 2 * k)
            b_runs, n_runs = pick[:k], pick[k:]
        else:
            b_runs = order_b[c * k:(c + 1) * k] if a.fresh else rng.sample(base, k)
            n_runs = order_n[c * k:(c + 1) * k] if a.fresh else rng.sample(new, k)
        root = os.path.join(work, f"c{c:02}")
        bd, nd = side_dir(root, "base", b_runs), side_dir(root, "new", n_runs)
        cmd = [a.rift, "compare", bd, nd, "--format", "json"] + a.compare_arg
        t0 = time.time()
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        total_compare_s += time.time() - t0
        regressions = []
        try:
            doc = json.loads(r.stdout)
            for p in doc.get("plans", []):
                for m in p.get("metrics", []):
                    v = m.get("verdict")
                    key = v if isinstance(v, str) else next(iter(v))
                    metric_verdicts.setdefault(m.get("metric"), {}).setdefault(key, 0)
                    metric_verdicts[m.get("metric")][key] += 1
                    if key == "regression":
                        regressions.append(m.get("metric"))
        except (json.JSONDecodeError, AttributeError, StopIteration):
            print(r.stdout[-2000:], r.stderr[-2000:], file=sys.stderr)
        flagged = r.returncode == 1
        results.append({"comparison": c, "exit": r.returncode, "regression": flagged, "metrics": regressions})
        print(f"comparison {c + 1:2}/{n}: exit {r.returncode} {'REGRESSION ' + ','.join(regressions) if flagged else ''}", flush=True)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    summary = {
        "kind": "A/A" if same else "A/B",
        "base": a.base,
        "new": a.new,
        "pool_runs": {"base": len(base), "new": len(new)},
        "comparisons": n,
        "per_side": k,
        "fresh": a.fresh,
        "flagged_regression": sum(1 for r in results if r["regression"]),
        "errors": sum(1 for r in results if r["exit"] not in (0, 1)),
        "mean_compare_seconds": round(total_compare_s / n, 4),
        "verdicts_per_metric": metric_verdicts,
    }
    print(json.dumps(summary, indent=2))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="run the pools")
    c.add_argument("--rift", required=True)
    c.add_argument("--plan", required=True)
    c.add_argument("--pool", required=True)
    c.add_argument("--runs", type=int, required=True)
    c.add_argument("--variant", action="append", required=True)
    t = sub.add_parser("trials", help="compare draws from the pools")
    t.add_argument("--rift", required=True)
    t.add_argument("--base", required=True)
    t.add_argument("--new", required=True)
    t.add_argument("--comparisons", type=int, default=20)
    t.add_argument("--per-side", type=int, default=10)
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--fresh", action="store_true")
    t.add_argument("--compare-arg", action="append", default=[], help="passed to rift compare")
    a = p.parse_args()
    collect(a) if a.cmd == "collect" else trials(a)


if __name__ == "__main__":
    main()
