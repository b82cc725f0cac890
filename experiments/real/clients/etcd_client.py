#!/usr/bin/env python3
"""A rift client (docs/client-protocol.md, version 1) for etcd 3.4, speaking
its v3 JSON gateway over HTTP with the standard library only.

Model `register`: each operation goes to the node it names.
  read   POST /v3/kv/range {key}             (linearizable: etcd's default)
  write  POST /v3/kv/put {key, value}
  cas    POST /v3/kv/txn: compare value == expect (or create_revision == 0
         when `expect` is null, the key is absent), then put; otherwise
         range, so a refusal carries the value it saw
  leader POST /v3/maintenance/status, its `leader` member id named through
         POST /v3/cluster/member/list
Keys and values travel base64-encoded, as the gateway wants.

Outcomes:
  ok    HTTP 200 (a cas only when the txn `succeeded`)
  fail  a read that did not answer (reads change nothing); a write or cas
        whose connection was refused (nothing was sent); a cas whose
        comparison failed (with the current value)
  info  a write or cas sent without a clear answer: a timeout, a lost
        connection, or an error status (etcd's "request timed out" may
        still commit)
"""

import base64
import http.client
import json
import socket
import sys
import time


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode(errors="replace")


class NotSent(Exception):
    pass


class Sent(Exception):
    pass


class Node:
    """A keep-alive HTTP connection to one member."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def post(self, path, body):
        data = json.dumps(body).encode()
        fresh = self.conn is None
        if fresh:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.connect()
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as e:
                self.close()
                raise NotSent("connect %s:%d: %s" % (self.host, self.port, e))
        try:
            self.conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
            r = self.conn.getresponse()
            text = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Sent("%s: %s" % (path, e or "timeout"))
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = {"error": text.decode(errors="replace")[:200]}
        return r.status, doc


class Client:
    def __init__(self, hello):
        self.order = [n["name"] for n in hello["nodes"]]
        t = hello.get("timeout_ms", 1000) / 1000.0
        # Answer before rift's own timeout replaces us.
        self.timeout = max(0.05, t * 0.8)
        self.nodes = {n["name"]: Node(n["host"], n["port"], self.timeout) for n in hello["nodes"]}
        self.addr_names = {"%s:%s" % (n["host"], n["port"]): n["name"] for n in hello["nodes"]}
        self.ids = {}

    def node(self, name):
        return self.nodes.get(name) or self.nodes[self.order[0]]

    def read(self, n, key):
        try:
            status, doc = n.post("/v3/kv/range", {"key": b64(key)})
        except (NotSent, Sent) as e:
            return "fail", {"error": str(e)}
        if status != 200:
            return "fail", {"error": "range: %d %s" % (status, doc.get("error", ""))}
        kvs = doc.get("kvs") or []
        return "ok", {"value": unb64(kvs[0].get("value", "")) if kvs else None}

    def write(self, n, key, value):
        try:
            status, doc = n.post("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        except NotSent as e:
            return "fail", {"error": str(e)}
        except Sent as e:
            return "info", {"error": str(e)}
        if status == 200:
            return "ok", {}
        return "info", {"error": "put: %d %s" % (status, doc.get("error", ""))}

    def cas(self, n, key, expect, value):
        if expect is None:
            cmp = {"key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}
        else:
            cmp = {"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expect)}
        txn = {
            "compare": [cmp],
            "success": [{"request_put": {"key": b64(key), "value": b64(value)}}],
            "failure": [{"request_range": {"key": b64(key)}}],
        }
        try:
            status, doc = n.post("/v3/kv/txn", txn)
        except NotSent as e:
            return "fail", {"error": str(e)}
        except Sent as e:
            return "info", {"error": str(e)}
        if status != 200:
            return "info", {"error": "txn: %d %s" % (status, doc.get("error", ""))}
        if doc.get("succeeded"):
            return "ok", {}
        seen = None
        for r in doc.get("responses") or []:
            kvs = (r.get("response_range") or {}).get("kvs") or []
            if kvs:
                seen = unb64(kvs[0].get("value", ""))
        return "fail", {"refused": True, "value": seen}

    def leader(self, n):
        try:
            status, doc = n.post("/v3/maintenance/status", {})
            if status != 200:
                return "fail", {"error": "status: %d %s" % (status, doc.get("error", ""))}
            lead = doc.get("leader")
            if not lead or lead == "0":
                return "ok", {"value": None}
            if lead not in self.ids:
                status, members = n.post("/v3/cluster/member/list", {})
                for m in members.get("members") or []:
                    name = m.get("name")
                    for url in m.get("clientURLs") or []:
                        name = self.addr_names.get(url.split("://", 1)[-1].rstrip("/"), name)
                    self.ids[m.get("ID")] = name
            return "ok", {"value": self.ids.get(lead)}
        except (NotSent, Sent) as e:
            return "fail", {"error": str(e)}

    def handle(self, op):
        f = op.get("f")
        n = self.node(op.get("node"))
        if f == "read":
            t, rest = self.read(n, op["key"])
        elif f == "write":
            t, rest = self.write(n, op["key"], op["value"])
        elif f == "cas":
            t, rest = self.cas(n, op["key"], op.get("expect"), op["value"])
        elif f == "leader":
            t, rest = self.leader(n)
        else:
            t, rest = "fail", {"error": "unsupported operation %r" % f}
        return dict(rest, type=t, id=op.get("id"))


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
    if hello.get("model") not in (None, "register"):
        send({"type": "error", "error": "this client serves the register model, not %r" % hello.get("model")})
        return
    client = Client(hello)
    log("client", hello.get("client"), "nodes", client.order)
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
            log(op.get("node"), op.get("f"), op.get("key"), "->", answer["type"], answer.get("error"))
        send(answer)


if __name__ == "__main__":
    main()
