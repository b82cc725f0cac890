#!/usr/bin/env python3
"""Drive a rift client (docs/client-protocol.md) by hand, without rift.

    drive.py --nodes n0=127.0.0.1:6379,n1=127.0.0.2:6379 [--model set]
             [--var sentinel_port=26379 ...] [--timeout-ms 1000]
             [--script FILE] -- COMMAND [ARGS...]

Starts COMMAND, sends the hello with those nodes, waits for `ready`, then
sends one operation per script line (from FILE, or standard input) and prints
each operation and its answer. Script lines:

    NODE add KEY VALUE          NODE read-set KEY
    NODE append KEY VALUE       NODE read-list KEY
    NODE write KEY VALUE        NODE read KEY
    NODE cas KEY EXPECT VALUE   (EXPECT `-` means absent, null)
    NODE leader
    sleep SECONDS
    {"f": ..., ...}             (a raw operation; `type` and `id` are added)

Blank lines and lines starting with `#` are skipped. Exits 0 when the client
answered every operation with a well-formed answer, 1 otherwise.
"""

import argparse
import json
import subprocess
import sys
import time

FIELDS = {
    "add": ["key", "value"],
    "append": ["key", "value"],
    "write": ["key", "value"],
    "read-set": ["key"],
    "read-list": ["key"],
    "read": ["key"],
    "cas": ["key", "expect", "value"],
    "leader": [],
}


def parse_nodes(spec):
    nodes = []
    for part in spec.split(","):
        name, addr = part.split("=", 1)
        host, port = addr.rsplit(":", 1)
        nodes.append({"name": name, "host": host, "port": int(port), "addr": "%s:%s" % (host, port)})
    return nodes


def parse_line(line):
    if line.startswith("{"):
        return json.loads(line)
    words = line.split()
    if words[0] == "sleep":
        return {"sleep": float(words[1])}
    node, f, rest = words[0], words[1], words[2:]
    if f not in FIELDS:
        raise ValueError("unknown operation %r" % f)
    names = FIELDS[f]
    if len(rest) != len(names):
        raise ValueError("%s takes %s" % (f, " ".join(n.upper() for n in names) or "nothing"))
    op = {"f": f, "node": node}
    for k, v in zip(names, rest):
        op[k] = None if (k == "expect" and v == "-") else v
    return op


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", required=True, help="NAME=HOST:PORT,...")
    ap.add_argument("--model", default="set")
    ap.add_argument("--var", action="append", default=[], help="NAME=VALUE, sent in the hello's vars")
    ap.add_argument("--timeout-ms", type=int, default=1000)
    ap.add_argument("--client-id", type=int, default=0)
    ap.add_argument("--script", help="operations, one per line (default: standard input)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("give the client command after --")

    hello = {
        "type": "hello",
        "protocol": 1,
        "client": a.client_id,
        "model": a.model,
        "nodes": parse_nodes(a.nodes),
        "vars": dict(v.split("=", 1) for v in a.var),
        "timeout_ms": a.timeout_ms,
    }
    script = open(a.script) if a.script else sys.stdin
    lines = [l.strip() for l in script if l.strip() and not l.strip().startswith("#")]

    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(msg):
        p.stdin.write(json.dumps(msg) + "\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise SystemExit("client exited (status %s)" % p.wait())
        return json.loads(line)

    bad = 0
    t0 = time.monotonic()
    answer = ask(hello)
    print("hello -> %s" % json.dumps(answer))
    if answer.get("type") != "ready":
        p.kill()
        return 1
    oid = 0
    for line in lines:
        op = parse_line(line)
        if "sleep" in op:
            print("sleep %gs" % op["sleep"])
            time.sleep(op["sleep"])
            continue
        oid += 1
        op = dict(op, type="invoke", id=oid)
        start = time.monotonic()
        answer = ask(op)
        ms = (time.monotonic() - start) * 1000
        well_formed = answer.get("id") == oid and answer.get("type") in ("ok", "fail", "info")
        bad += not well_formed
        shown = {k: v for k, v in op.items() if k not in ("type", "id")}
        rest = {k: v for k, v in answer.items() if k not in ("type", "id")}
        print("%7.3fs %-4s %-9s %-38s -> %-4s %s (%.1f ms)%s" % (
            time.monotonic() - t0, shown.pop("node", ""), shown.pop("f"),
            " ".join("%s=%s" % (k, json.dumps(v)) for k, v in shown.items()),
            answer.get("type"), json.dumps(rest) if rest else "", ms,
            "" if well_formed else "  <- MALFORMED"))
    p.stdin.close()
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
