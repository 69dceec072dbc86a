#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What metrics cost: the http workload of http_compare.py against two portunusd daemons in one
sitting, one with metrics_listen set and scraped every second, one without, taking turns; and how
long one scrape of a daemon with 100 forwards takes.

Usage: bench/metrics_overhead.py [--build-dir DIR] [--duration SECONDS] [--rounds N] [--keep-temp]
Prints requests/s of each turn, the ratio with/without per round and overall (goal >= 0.98), and
the scrape time of a 100-forward daemon (goal < 5 ms). Needs wrk (tests/install-deps.sh bench)
and a build with the portunusd and hello_web targets, by default in build/http-bench.
"""

import argparse
import http.client
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

from bench_support import (BenchRun, Failure, free_ports, load_average, print_run_header, wait_for_socket_file)
from http_compare import run_wrk, wait_for_log_line, wait_for_reply

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_INTERVAL = 1.0
MANY_FORWARDS = 100
SCRAPES = 50
GOAL_RATIO = 0.98
GOAL_SCRAPE_MS = 5.0


def daemon_config(tmp, name, door, port, metrics_port=None, forwards=1, forward_ports=None):
    lines = ["[daemon]", 'log_level = "info"', 'log = "stderr"', 'access_log = "off"',
             f'control_door = "{tmp / (name + ".control")}"']
    if metrics_port:
        lines.append(f'metrics_listen = "127.0.0.1:{metrics_port}"')
    ports = [port] if forwards == 1 else forward_ports
    for i in range(forwards):
        lines += ["", "[[forward]]", f'name = "web-{i}"', 'protocol = "http"',
                  f'listen = "127.0.0.1:{ports[i]}"', f'door = "{door}"']
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def scrape(port, path="/metrics"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        if r.status != 200:
            raise Failure(f"GET {path} on {port}: {r.status}")
        return body
    finally:
        c.close()


class Scraper(threading.Thread):
    """Scrapes /metrics every second, as a Prometheus server with a short interval would."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.count = 0

    def run(self):
        while not self.stop.wait(SCRAPE_INTERVAL):
            scrape(self.port)
            self.count += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "http-bench"))
    parser.add_argument("--duration", type=int, default=4, help="seconds of load per turn (default 4)")
    parser.add_argument("--rounds", type=int, default=4, help="turns per daemon (default 4)")
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 20:
        parser.error("--duration must be 1..120 and --rounds 1..20")
    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    portunusd, hello_web = build / "portunusd", build / "apps" / "hello_web"
    for path in (portunusd, hello_web):
        if not os.access(path, os.X_OK):
            print(f"metrics_overhead: {path} missing: build it first", file=sys.stderr)
            return 2
    if shutil.which("wrk") is None:
        print("metrics_overhead: wrk not found: tests/install-deps.sh bench", file=sys.stderr)
        return 2
    time_limit = 2 * args.rounds * (args.duration + 40) + 120

    with BenchRun("metrics_overhead", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        print_run_header()
        print(f"loadavg before={load_average()}")
        door = tmp / "hello_web.door"
        app = procs.start("hello_web", [str(hello_web), str(door)], tmp / "hello_web.log")
        wait_for_socket_file(door, app)
        plain_port, metered_port, metrics_port = free_ports(3)
        plain_conf = daemon_config(tmp, "plain", door, plain_port)
        metered_conf = daemon_config(tmp, "metered", door, metered_port, metrics_port)
        procs.start("plain", [str(portunusd), "-f", str(plain_conf)], tmp / "plain.log")
        procs.start("metered", [str(portunusd), "-f", str(metered_conf)], tmp / "metered.log")
        wait_for_log_line(tmp / "plain.log", "portunusd ready", procs)
        wait_for_log_line(tmp / "metered.log", "portunusd ready", procs)
        wait_for_reply("plain", plain_port, procs)
        wait_for_reply("metered", metered_port, procs)
        scrape(metrics_port)

        # Both served the same application, one after the other: its door is shared, and the
        # turns alternate so that drift in the machine's load reaches both alike.
        results = {"plain": [], "metered": []}
        for r in range(args.rounds):
            for name, port in (("plain", plain_port), ("metered", metered_port)) if r % 2 == 0 else \
                    (("metered", metered_port), ("plain", plain_port)):
                run_wrk(port, 1, tmp / "wrk.log")  # warm-up
                scraper = Scraper(metrics_port) if name == "metered" else None
                if scraper:
                    scraper.start()
                out = run_wrk(port, args.duration, tmp / "wrk.log")
                if scraper:
                    scraper.stop.set()
                    scraper.join()
                procs.check_alive()
                rps = float(out["rps"])
                results[name].append(rps)
                extra = f" scrapes={scraper.count}" if scraper else ""
                print(f"round={r + 1} daemon={name} rps={rps:.0f} errors={sum(out['errors'])} "
                      f"non2xx={out['non2xx']}{extra}")
            print(f"round={r + 1} ratio metered/plain={results['metered'][-1] / results['plain'][-1]:.3f}")
        overall = statistics.mean(results["metered"]) / statistics.mean(results["plain"])
        print(f"mean rps plain={statistics.mean(results['plain']):.0f} metered={statistics.mean(results['metered']):.0f}")
        print(f"ratio metered/plain={overall:.3f} goal>={GOAL_RATIO} {'met' if overall >= GOAL_RATIO else 'NOT MET'}")

        # A daemon with many forwards: how long one scrape takes, measured by the client.
        many_ports = free_ports(MANY_FORWARDS + 1)
        many_conf = daemon_config(tmp, "many", door, None, many_ports[0], MANY_FORWARDS, many_ports[1:])
        procs.start("many", [str(portunusd), "-f", str(many_conf)], tmp / "many.log")
        wait_for_log_line(tmp / "many.log", "portunusd ready", procs)
        for p in many_ports[1:11]:
            wait_for_reply("many", p, procs)
        times = []
        size = 0
        for _ in range(SCRAPES):
            start = time.perf_counter()
            size = len(scrape(many_ports[0]))
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        median = statistics.median(times)
        print(f"scrape forwards={MANY_FORWARDS} bytes={size} ms median={median:.2f} p90={times[int(0.9 * len(times))]:.2f} "
              f"max={times[-1]:.2f} goal<{GOAL_SCRAPE_MS} {'met' if median < GOAL_SCRAPE_MS else 'NOT MET'}")
        print(f"loadavg after={load_average()}")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
