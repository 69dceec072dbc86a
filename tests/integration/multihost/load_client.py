#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Continuous, bounded HTTP load for the multihost test, run in the client's namespace: worker
# threads send GET /echo over kept-alive connections (each opened anew every --reconnect
# requests) and check every answer. Stops at --duration, --max-requests or SIGTERM, then prints
# one JSON object: counts, failures with their times, the hosts that answered and when, and what
# each answer says the application saw as X-Forwarded-For.
#
# usage: load_client.py HOST PORT [--connections N] [--duration S] [--max-requests N]
#                       [--reconnect N] [--expect-xff ADDR]

import argparse
import http.client
import json
import re
import signal
import threading
import time

# http_test_app's /echo body is the request as the application received it.
_XFF = re.compile(rb"^X-Forwarded-For: *([^\r\n]*)\r?$", re.IGNORECASE | re.MULTILINE)
_FORWARDED = re.compile(rb"^Forwarded: *([^\r\n]*)\r?$", re.IGNORECASE | re.MULTILINE)
# Hosts' answers are counted in bins of this many seconds, so that the test can tell when a
# host stopped and started answering.
BIN = 0.05


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.total = 0
        self.ok = 0
        self.failures = []
        self.failure_count = 0
        self.by_host = {}
        self.host_bins = {}
        self.xff = {}
        self.forwarded = {}

    def success(self, t, host, xff, forwarded):
        with self.lock:
            self.total += 1
            self.ok += 1
            self.by_host[host] = self.by_host.get(host, 0) + 1
            self.host_bins.setdefault(host, set()).add(int(t / BIN))
            self.xff[xff] = self.xff.get(xff, 0) + 1
            self.forwarded[forwarded] = self.forwarded.get(forwarded, 0) + 1

    def failure(self, t, why):
        with self.lock:
            self.total += 1
            self.failure_count += 1
            if len(self.failures) < 50:
                self.failures.append([t, why])


def worker(host, port, stop, deadline, budget, reconnect, tally):
    conn = None
    sent = 0
    while not stop.is_set() and time.monotonic() < deadline:
        with budget["lock"]:
            if budget["left"] <= 0:
                return
            budget["left"] -= 1
        if conn is None or sent >= reconnect:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=5)
            sent = 0
        sent += 1
        try:
            conn.request("GET", "/echo", headers={"User-Agent": "multihost-load"})
            r = conn.getresponse()
            body = r.read()
            now = time.monotonic()
            app = r.getheader("X-App")
            if r.status != 200 or not app or not body.startswith(b"GET /echo "):
                tally.failure(now, f"status {r.status} X-App {app} body {body[:80]!r}")
                conn.close()
                conn = None
                continue
            m = _XFF.search(body)
            f = _FORWARDED.search(body)
            tally.success(now, app, m.group(1).decode() if m else None, f.group(1).decode() if f else None)
            if r.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as e:
            tally.failure(time.monotonic(), f"{type(e).__name__}: {e}")
            conn.close()
            conn = None
    if conn is not None:
        conn.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--max-requests", type=int, default=500000)
    p.add_argument("--reconnect", type=int, default=50)
    args = p.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    tally = Tally()
    started = time.monotonic()
    deadline = started + args.duration
    budget = {"lock": threading.Lock(), "left": args.max_requests}
    threads = [threading.Thread(target=worker, args=(args.host, args.port, stop, deadline, budget,
                                                     args.reconnect, tally), daemon=True)
               for _ in range(args.connections)]
    for t in threads:
        t.start()
    # The main thread only waits, so that SIGTERM is handled at once.
    while any(t.is_alive() for t in threads) and not stop.is_set():
        stop.wait(0.05)
    stop.set()
    for t in threads:
        t.join(10)
    ended = time.monotonic()
    print(json.dumps({
        "started": started, "ended": ended, "total": tally.total, "ok": tally.ok,
        "failed": tally.failure_count, "failures": tally.failures, "by_host": tally.by_host,
        "host_bins": {h: sorted(b) for h, b in tally.host_bins.items()}, "bin": BIN,
        "xff": {str(k): v for k, v in tally.xff.items()},
        "forwarded": {str(k): v for k, v in tally.forwarded.items()},
    }), flush=True)


if __name__ == "__main__":
    main()
