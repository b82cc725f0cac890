#!/usr/bin/env python3
"""A rift client (docs/client-protocol.md, version 1) for Redis watched by
Sentinel, standard library only.

Model `set`: `add` is SADD to the current primary, `read-set` is SMEMBERS
from it. The primary is whatever the sentinel on the operation's node says
(SENTINEL get-master-addr-by-name), asked afresh for every operation, as a
Sentinel-aware client does: a client whose sentinel is cut off with the old
primary keeps writing there, which is Jepsen's 2013 Redis scenario.

Vars (the plan's `[workload] client.vars`):
  sentinel_port  the sentinels' port on every node (default 26379)
  master_name    the name the sentinels monitor (default "rift")

Outcomes:
  ok    SADD answered with an integer; SMEMBERS with an array
  fail  nothing was sent to the primary (no sentinel answer, no primary,
        connection refused), or Redis answered an error (READONLY,
        NOREPLICAS, ...): Redis checks those before running the command
  info  the command was sent and no answer came (timeout, connection lost)
"""

import json
import socket
import sys
import time


class RespError(Exception):
    """An error reply (`-ERR ...`): the command did not run."""


class Sent(Exception):
    """The connection failed after the command was written."""


class NotSent(Exception):
    """The connection failed before any byte of the command left."""


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RespError(rest.decode(errors="replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [read_reply(f) for _ in range(n)]
    raise ConnectionError("bad reply type %r" % kind)


class Conn:
    """One RESP connection; reconnects lazily after any failure."""

    def __init__(self, host, port, timeout):
        self.addr = (host, int(port))
        self.timeout = timeout
        self.sock = None
        self.f = None

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = self.f = None

    def call(self, *args):
        if self.sock is None:
            try:
                self.sock = socket.create_connection(self.addr, timeout=self.timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.f = self.sock.makefile("rb")
            except OSError as e:
                self.close()
                raise NotSent("connect %s:%d: %s" % (self.addr[0], self.addr[1], e))
        try:
            self.sock.sendall(encode(*args))
        except OSError as e:
            # sendall may have written part of the command.
            self.close()
            raise Sent("send: %s" % e)
        try:
            reply = read_reply(self.f)
        except (OSError, ConnectionError, ValueError) as e:
            self.close()
            raise Sent("no answer: %s" % (e or "timeout"))
        if isinstance(reply, RespError):
            raise reply
        return reply


class Client:
    def __init__(self, hello):
        self.nodes = {n["name"]: n for n in hello["nodes"]}
        self.by_addr = {(n["host"], int(n["port"])): n["name"] for n in hello["nodes"]}
        v = hello.get("vars") or {}
        self.sentinel_port = int(v.get("sentinel_port", 26379))
        self.master = v.get("master_name", "rift")
        # Answer before rift's own timeout kills us.
        t = hello.get("timeout_ms", 1000) / 1000.0
        self.timeout = max(0.05, t * 0.8)
        self.conns = {}

    def conn(self, host, port):
        key = (host, int(port))
        c = self.conns.get(key)
        if c is None:
            c = self.conns[key] = Conn(host, port, self.timeout)
        return c

    def primary(self, node):
        """The primary's address as the sentinel on `node` sees it."""
        n = self.nodes.get(node) or next(iter(self.nodes.values()))
        s = self.conn(n["host"], self.sentinel_port)
        try:
            r = s.call("SENTINEL", "get-master-addr-by-name", self.master)
        except (Sent, NotSent, RespError) as e:
            raise NotSent("sentinel on %s: %s" % (n["name"], e))
        if not r:
            raise NotSent("sentinel on %s knows no primary %s" % (n["name"], self.master))
        return r[0], int(r[1])

    def handle(self, op):
        f = op.get("f")
        oid = op.get("id")
        try:
            if f == "leader":
                host, port = self.primary(op.get("node"))
                return {"type": "ok", "id": oid, "value": self.by_addr.get((host, port))}
            if f not in ("add", "read-set"):
                return {"type": "fail", "id": oid, "error": "unsupported operation %r" % f}
            host, port = self.primary(op.get("node"))
            c = self.conn(host, port)
            if f == "add":
                r = c.call("SADD", op["key"], op["value"])
                if isinstance(r, int):
                    return {"type": "ok", "id": oid}
                return {"type": "info", "id": oid, "error": "SADD answered %r" % (r,)}
            r = c.call("SMEMBERS", op["key"])
            if isinstance(r, list):
                return {"type": "ok", "id": oid, "values": sorted(r)}
            return {"type": "fail", "id": oid, "error": "SMEMBERS answered %r" % (r,)}
        except NotSent as e:
            return {"type": "fail", "id": oid, "error": str(e)}
        except RespError as e:
            return {"type": "fail", "id": oid, "error": "refused: %s" % e}
        except Sent as e:
            if f == "add":
                return {"type": "info", "id": oid, "error": str(e)}
            return {"type": "fail", "id": oid, "error": str(e)}


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def main():
    line = sys.stdin.readline()
    if not line:
        return
    hello = json.loads(line)
    if hello.get("type") != "hello" or hello.get("protocol") != 1:
        send({"type": "error", "error": "expected a protocol 1 hello"})
        return
    if hello.get("model") not in (None, "set"):
        send({"type": "error", "error": "this client serves the set model, not %r" % hello.get("model")})
        return
    client = Client(hello)
    log("client", hello.get("client"), "nodes", sorted(client.nodes), "sentinel port", client.sentinel_port)
    send({"type": "ready"})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        op = json.loads(line)
        if op.get("type") != "invoke":
            continue
        answer = client.handle(op)
        if answer["type"] != "ok":
            log(op.get("node"), op.get("f"), op.get("key"), op.get("value"), "->", answer["type"], answer.get("error"))
        send(answer)


if __name__ == "__main__":
    main()
