#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What supervision costs and gives: the first request after scale to zero (an on-demand
hello_web that idle_stop stopped) against xinetd starting a program for a request; the daemon's
memory idle and at peak; and requests/s with 1, 2 and 4 instances of an application limited to
one thread that waits 2 ms per request.

Usage: bench/supervise_bench.py [--build-dir DIR] [--duration SECONDS] [--rounds N] [--keep-temp]
Goals: cold start <= 20 ms (median); 4 instances >= 3.6x one. Needs wrk and xinetd
(tests/install-deps.sh bench) and a build with portunusd, hello_web, hello_inetd and slow_app
(by default in build/http-bench).
"""

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

from bench_support import (BenchRun, Failure, free_ports, load_average, print_run_header, proc_status,
                           write_xinetd_config)
from http_compare import run_wrk, wait_for_log_line

ROOT = Path(__file__).resolve().parent.parent
GOAL_COLD_MS = 20.0
GOAL_SCALING = 3.6


def get(port, timeout=10.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise Failure(f"GET on {port}: {r.status}")
    finally:
        c.close()


def pids_with_arg(arg):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if arg.encode() in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def daemon_toml(tmp, name, forwards, apps):
    lines = ["[daemon]", 'log_level = "info"', 'log = "stderr"', 'access_log = "off"',
             f'control_door = "{tmp / (name + ".control")}"']
    for f in forwards:
        lines += ["", "[[forward]]"] + [f"{k} = {v}" for k, v in f.items()]
    for a in apps:
        lines += ["", "[[app]]"] + [f"{k} = {v}" for k, v in a.items()]
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def q(text):
    return '"' + str(text) + '"'


def cold_start(tmp, build, procs, rounds):
    port, = free_ports(1)
    door = tmp / "cold.door"
    conf = daemon_toml(tmp, "cold", [{"name": q("web"), "protocol": q("http"), "listen": q(f"127.0.0.1:{port}"),
                                      "door": q(door)}],
                       [{"name": q("web"), "door": q(door), "command": f'[{q(build / "apps" / "hello_web")}, {q(door)}]',
                         "start": q("on_demand"), "idle_stop": q("1s")}])
    d = procs.start("cold", [str(build / "portunusd"), "-f", str(conf)], tmp / "cold.log")
    wait_for_log_line(tmp / "cold.log", "portunusd ready", procs)
    idle = proc_status(d.pid)
    times = []
    for _ in range(rounds):
        deadline = time.monotonic() + 10
        while pids_with_arg(str(door)):
            if time.monotonic() > deadline:
                raise Failure("the on-demand app did not stop when idle")
            time.sleep(0.05)
        start = time.perf_counter()
        get(port)
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times), idle


def xinetd_start(tmp, build, procs, rounds):
    port, = free_ports(1)
    write_xinetd_config(tmp, port, build / "bench" / "hello_inetd", "root")
    procs.start("xinetd", ["xinetd", "-dontfork", "-f", str(tmp / "xinetd.conf"), "-pidfile", str(tmp / "xinetd.pid")],
                tmp / "xinetd.log")
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise Failure("xinetd does not listen")
            time.sleep(0.05)
    time.sleep(0.2)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        get(port)
        times.append((time.perf_counter() - start) * 1000)
        time.sleep(0.05)
    return sorted(times)


def instances_rps(tmp, build, procs, count, seconds):
    port, = free_ports(1)
    door = tmp / f"slow{count}.door"
    conf = daemon_toml(tmp, f"slow{count}",
                       [{"name": q("web"), "protocol": q("http"), "listen": q(f"127.0.0.1:{port}"), "door": q(door)}],
                       [{"name": q("slow"), "door": q(door), "instances": count,
                         "command": f'[{q(build / "bench" / "slow_app")}, {q(door)}]'}])
    d = procs.start(f"slow{count}", [str(build / "portunusd"), "-f", str(conf)], tmp / f"slow{count}.log")
    wait_for_log_line(tmp / f"slow{count}.log", "portunusd ready", procs)
    deadline = time.monotonic() + 10
    while (tmp / f"slow{count}.log").read_text().count(" serves ") < count:
        if time.monotonic() > deadline:
            raise Failure(f"{count} instance(s) did not all serve")
        time.sleep(0.05)
    get(port)
    run_wrk(port, 1, tmp / "wrk.log")
    out = run_wrk(port, seconds, tmp / "wrk.log")
    peak = proc_status(d.pid)
    errors = sum(out["errors"]) + out["non2xx"]
    os.kill(d.pid, signal.SIGTERM)
    d.wait(timeout=20)
    # Stopped on purpose: no longer one of the processes that must stay alive.
    procs.started = [(name, p) for name, p in procs.started if p is not d]
    return float(out["rps"]), errors, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "http-bench"))
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    for rel in ("portunusd", "apps/hello_web", "bench/hello_inetd", "bench/slow_app"):
        if not os.access(build / rel, os.X_OK):
            print(f"supervise_bench: {build / rel} missing: build it first", file=sys.stderr)
            return 2
    for tool in ("wrk", "xinetd"):
        if shutil.which(tool) is None:
            print(f"supervise_bench: {tool} not found: tests/install-deps.sh bench", file=sys.stderr)
            return 2
    time_limit = 600
    with BenchRun("supervise_bench", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        print_run_header()
        print(f"loadavg before={load_average()}")
        cold, idle = cold_start(tmp, build, procs, args.rounds)
        inetd = xinetd_start(tmp, build, procs, args.rounds)
        med_cold, med_inetd = statistics.median(cold), statistics.median(inetd)
        print(f"cold_start portunusd on_demand hello_web ms median={med_cold:.2f} p90={cold[int(0.9 * len(cold))]:.2f} "
              f"max={cold[-1]:.2f} (n={len(cold)}) goal<={GOAL_COLD_MS} {'met' if med_cold <= GOAL_COLD_MS else 'NOT MET'}")
        print(f"cold_start xinetd hello_inetd ms median={med_inetd:.2f} p90={inetd[int(0.9 * len(inetd))]:.2f} "
              f"max={inetd[-1]:.2f} (n={len(inetd)})")
        print(f"memory portunusd idle, app stopped: rss_kib={idle[0]} threads={idle[1]}")
        results = {}
        for n in (1, 2, 4):
            rps, errors, peak = instances_rps(tmp, build, procs, n, args.duration)
            results[n] = rps
            print(f"instances={n} rps={rps:.0f} errors={errors} daemon_rss_kib={peak[0]} threads={peak[1]}")
        scale = results[4] / results[1] if results[1] else 0
        print(f"scaling 4 instances / 1 = {scale:.2f} goal>={GOAL_SCALING} {'met' if scale >= GOAL_SCALING else 'NOT MET'}")
        print(f"loadavg after={load_average()}")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
