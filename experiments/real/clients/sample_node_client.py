#!/usr/bin/env python3
"""A client of rift's client protocol (docs/client-protocol.md, version 1)
for rift's bundled sample node. Standard library only.

rift starts one of these per logical client and talks JSON lines: it writes
requests on our stdin, we answer on stdout. Anything for people goes to
stderr (rift keeps it in clients/<id>.log).

The one rule that matters: answer `ok` only when the operation happened,
`fail` only when it definitely did not, and `info` when it may or may not
have (a timeout, a connection lost after the request was sent). `info` is
always safe; a wrong `fail` makes rift's checkers report violations that are
the client's fault.

The sample node's API:
  register:    GET /kv/{key}  -> 200 {"value": v} | 404 (absent)
               PUT /kv/{key}  body = value -> 200
               POST /kv/{key}/cas {"expect": str|null, "value": str}
                              -> 200 | 409 {"current": v|null} (refused)
  set:         POST /set/{key} body = element -> 200
               GET /set/{key} -> 200 {"values": [...]}
  list-append: POST /list/{key} body = value -> 200 {"index": n}
               GET /list/{key} -> 200 {"values": [...]}
  leader:      GET /health -> {"leader": "n1" | null, ...}
  errors:      503 = refused before any effect (no leader, stopping);
               504 = proposed but not known to be committed (may happen).
"""

import http.client
import json
import socket
import sys
import urllib.parse

NODES = {}  # name -> (host, port)
TIMEOUT = 1.0  # seconds, from the hello's timeout_ms


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


class Sent(Exception):
    """The request left (or may have left) this client; no answer came."""


class NotSent(Exception):
    """The request never reached the node (connection refused)."""


def call(node, method, path, body=None, headers=None):
    """One HTTP exchange with `node`: (status, parsed JSON body or None).

    Raises NotSent when the connection could not be made (nothing reached
    the node), Sent when anything failed after that (it may have acted).
    """
    host, port = NODES[node]
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT * 0.9)
    try:
        try:
            conn.connect()
        except (ConnectionRefusedError, socket.gaierror) as e:
            raise NotSent(f"connect: {e}")
        except (socket.timeout, OSError) as e:
            # A connect that timed out sent no request either.
            raise NotSent(f"connect: {e}")
        try:
            data = body.encode("utf-8") if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read(1 << 20)
        except (socket.timeout, OSError, http.client.HTTPException) as e:
            raise Sent(f"{type(e).__name__}: {e}")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status, parsed
    finally:
        conn.close()


def quote(key):
    return urllib.parse.quote(key, safe="")


def error_of(status, body):
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"{status} {body['error']}"
    return f"status {status}"


def classify_write(status, body):
    """A write-like answer (write, cas, add, append) that is not a success.

    503: the sample node refused it before proposing it (definitely not
    applied). 4xx: refused before applying. 504 and anything else: it may
    still commit.
    """
    if status == 503 or 400 <= status < 500:
        return {"type": "fail", "error": error_of(status, body)}
    return {"type": "info", "error": error_of(status, body)}


def op_read(node, key):
    try:
        status, body = call(node, "GET", f"/kv/{quote(key)}")
    except (Sent, NotSent) as e:
        # A read changes nothing: a read that failed in any way is a fail.
        return {"type": "fail", "error": str(e)}
    if status == 200 and isinstance(body, dict) and isinstance(body.get("value"), str):
        return {"type": "ok", "value": body["value"]}
    if status == 404:
        return {"type": "ok", "value": None}
    return {"type": "fail", "error": error_of(status, body)}


def exchange_write(node, method, path, body, headers=None):
    """Sends a request that changes state: (status, body), or the answer to
    give when no HTTP answer came."""
    try:
        return call(node, method, path, body, headers), None
    except NotSent as e:
        return None, {"type": "fail", "error": str(e)}
    except Sent as e:
        return None, {"type": "info", "error": str(e)}


def op_write(node, key, value):
    got, failed = exchange_write(node, "PUT", f"/kv/{quote(key)}", value)
    if failed:
        return failed
    status, body = got
    return {"type": "ok"} if status == 200 else classify_write(status, body)


def op_cas(node, key, expect, value):
    body = json.dumps({"expect": expect, "value": value})
    got, failed = exchange_write(node, "POST", f"/kv/{quote(key)}/cas", body,
                                 {"content-type": "application/json"})
    if failed:
        return failed
    status, parsed = got
    if status == 200:
        return {"type": "ok"}
    if status == 409:
        # Refused because the current value is not `expect` (absent counts
        # as a value): a correct refusal, marked so, with what it saw.
        current = parsed.get("current") if isinstance(parsed, dict) else None
        return {"type": "fail", "refused": True,
                "value": current if isinstance(current, str) else None,
                "error": "cas refused: value differs"}
    return classify_write(status, parsed)


def op_add(node, key, element):
    got, failed = exchange_write(node, "POST", f"/set/{quote(key)}", element)
    if failed:
        return failed
    status, body = got
    return {"type": "ok"} if status == 200 else classify_write(status, body)


def op_append(node, key, value):
    got, failed = exchange_write(node, "POST", f"/list/{quote(key)}", value)
    if failed:
        return failed
    status, body = got
    if status != 200:
        return classify_write(status, body)
    index = body.get("index") if isinstance(body, dict) else None
    return {"type": "ok", "value": None if index is None else str(index)}


def op_read_collection(node, kind, key):
    try:
        status, body = call(node, "GET", f"/{kind}/{quote(key)}")
    except (Sent, NotSent) as e:
        return {"type": "fail", "error": str(e)}
    if status == 200 and isinstance(body, dict) and isinstance(body.get("values"), list) \
            and all(isinstance(v, str) for v in body["values"]):
        return {"type": "ok", "values": body["values"]}
    if status == 404:
        return {"type": "ok", "values": []}
    return {"type": "fail", "error": error_of(status, body)}


def op_leader(node):
    try:
        status, body = call(node, "GET", "/health")
    except (Sent, NotSent) as e:
        return {"type": "fail", "error": str(e)}
    if status == 200 and isinstance(body, dict):
        leader = body.get("leader")
        return {"type": "ok", "value": leader if isinstance(leader, str) else None}
    return {"type": "fail", "error": error_of(status, body)}


def handle(req):
    f, node, key = req.get("f"), req.get("node"), req.get("key")
    if node not in NODES:
        return {"type": "fail", "error": f"unknown node {node!r}"}
    if f == "read":
        return op_read(node, key)
    if f == "write":
        return op_write(node, key, req.get("value"))
    if f == "cas":
        return op_cas(node, key, req.get("expect"), req.get("value"))
    if f == "add":
        return op_add(node, key, req.get("value"))
    if f == "read-set":
        return op_read_collection(node, "set", key)
    if f == "append":
        return op_append(node, key, req.get("value"))
    if f == "read-list":
        return op_read_collection(node, "list", key)
    if f == "leader":
        return op_leader(node)
    # Not sent anywhere: a definite failure.
    return {"type": "fail", "error": f"unknown operation {f!r}"}


def main():
    global TIMEOUT
    hello = json.loads(sys.stdin.readline())
    if hello.get("type") != "hello" or hello.get("protocol") != 1:
        send({"type": "error", "error": "expected a protocol 1 hello"})
        return
    for n in hello["nodes"]:
        NODES[n["name"]] = (n["host"], n["port"])
    TIMEOUT = max(hello.get("timeout_ms", 1000), 50) / 1000.0
    log(f"client {hello['client']}: model {hello['model']}, {len(NODES)} nodes")
    send({"type": "ready"})
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("type") != "invoke":
            log(f"ignoring {line.strip()}")
            continue
        try:
            answer = handle(req)
        except Exception as e:  # a bug here: we cannot know what happened
            log(f"op {req.get('id')}: {type(e).__name__}: {e}")
            answer = {"type": "info", "error": f"client error: {e}"}
        answer["id"] = req["id"]
        send(answer)


if __name__ == "__main__":
    main()
