#!/usr/bin/env python3
"""Steady HTTP/1.1 GET load for integration tests, counting every outcome.

Each thread keeps one keep-alive connection and sends GETs back to back until the stop file
appears. Like any HTTP client (RFC 9112 §9.3.1), a GET whose reused connection was closed by
the server before any byte of the answer came back is sent again on a new connection: that is
a keep-alive race, not a lost request. Anything else that is not a 200 counts as a failure.
Writes a JSON summary to --out, and progress (successes so far) to --out.progress.
"""
import argparse
import http.client
import json
import os
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--addr", default="127.0.0.1")
parser.add_argument("--host", required=True)
parser.add_argument("--path", default="/")
parser.add_argument("--threads", type=int, default=4)
parser.add_argument("--stop-file", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--expect-body", default=None)
args = parser.parse_args()

lock = threading.Lock()
counts = {"ok": 0, "failed": 0, "resent": 0, "codes": {}, "errors": []}


def note(ok, code=None, error=None):
    with lock:
        if ok:
            counts["ok"] += 1
        else:
            counts["failed"] += 1
            if code is not None:
                counts["codes"][str(code)] = counts["codes"].get(str(code), 0) + 1
            if error is not None and len(counts["errors"]) < 20:
                counts["errors"].append(error)


def worker():
    conn = None
    reused = False
    while not os.path.exists(args.stop_file):
        if conn is None:
            conn = http.client.HTTPConnection(args.addr, args.port, timeout=30)
            reused = False
        try:
            conn.request("GET", args.path, headers={"Host": args.host})
            resp = conn.getresponse()
            body = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            conn.close()
            conn = None
            if reused:
                with lock:
                    counts["resent"] += 1
                continue  # the keep-alive race: send it again on a new connection
            note(False, error=f"{type(e).__name__}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - every other failure is counted
            conn.close()
            conn = None
            note(False, error=f"{type(e).__name__}: {e}")
            continue
        good = resp.status == 200 and (args.expect_body is None or
                                       body.decode(errors="replace").strip() == args.expect_body)
        note(good, code=resp.status, error=None if good else f"{resp.status} {body[:80]!r}")
        reused = True
        if resp.will_close:
            conn.close()
            conn = None


def progress():
    while not os.path.exists(args.stop_file):
        with lock:
            ok = counts["ok"]
        with open(args.out + ".progress.tmp", "w") as f:
            f.write(str(ok))
        os.replace(args.out + ".progress.tmp", args.out + ".progress")
        time.sleep(0.05)


threads = [threading.Thread(target=worker) for _ in range(args.threads)]
for t in threads:
    t.start()
p = threading.Thread(target=progress)
p.start()
for t in threads:
    t.join()
p.join()
with open(args.out + ".tmp", "w") as f:
    json.dump(counts, f)
os.replace(args.out + ".tmp", args.out)
