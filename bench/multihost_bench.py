#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Throughput through HAProxy to 1, 2 and 3 portunusd hosts, each host a network namespace with
portunusd (one event loop) and hello_web, HAProxy in a balancer namespace (the configuration of
tests/integration/multihost/haproxy.cfg.in, PROXY v2 included) and wrk in
a client namespace. Prints requests/s, latency and the CPU each part used, per host count.

Usage: bench/multihost_bench.py [--build-dir DIR] [--duration SECONDS] [--connections N]
                                [--no-pin] [--keep-temp]
Pinning (default): host i's daemon and application run on CPU (i-1) mod nCPU with taskset;
HAProxy and wrk are not pinned. With fewer CPUs than hosts, hosts share CPUs: this then
measures what spreading load over hosts costs, not how it scales.
Needs root (network namespaces), haproxy and wrk (tests/install-deps.sh test bench) and a build
with the portunusd and hello_web targets, by default in build/release.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration" / "multihost"))

import lab as labmod  # noqa: E402


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(lab, duration, connections, threads=2):
    argv = ["ip", "netns", "exec", lab.ns("cli"), "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            "--latency", f"http://{labmod.FRONT_ADDR}:{labmod.FRONT_PORT}/"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if r.returncode != 0:
        raise RuntimeError(f"wrk failed: {r.stderr}")
    out = r.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # The latency distribution's lines, not the "+/- Stdev" percentages of the thread stats.
    p50 = re.search(r"^\s+50%\s+(\S+)$", out, re.MULTILINE).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)$", out, re.MULTILINE).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return rps, p50, p99, int(errors.group(1)) if errors else 0, socket_errors.group(1) if socket_errors else "none"


def measure(programs, hosts, args, ncpu):
    with labmod.Lab(programs, hosts=hosts) as lab:
        for i in range(1, hosts + 1):
            cpu = None if args.no_pin else (i - 1) % ncpu
            lab.start_app(i, cpu=cpu, program="hello_web")
            lab.start_daemon(i, cpu=cpu)
        lab.start_haproxy(labmod.haproxy_config(lab, ROOT / "tests" / "integration" / "multihost" / "haproxy.cfg.in",
                                                hosts, inter="1s", maxconn=4000))
        deadline = time.monotonic() + 10
        while True:
            try:
                states = labmod.server_states(lab.stats_socket())
            except OSError:
                states = {}
            if len(states) == hosts and all(s.startswith("UP") for s in states.values()):
                break
            if not lab.haproxy.alive():
                raise RuntimeError(f"haproxy exited:\n{lab.haproxy.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"HAProxy servers not all UP: {states}")
            time.sleep(0.05)
        run_wrk(lab, 2, args.connections)  # warm-up
        watched = {"haproxy": lab.haproxy.pid}
        for i in range(1, hosts + 1):
            watched[f"portunusd-h{i}"] = lab.daemons[i].pid
            watched[f"hello_web-h{i}"] = lab.apps[i].pid
        before = {k: cpu_seconds(p) for k, p in watched.items()}
        started = time.monotonic()
        rps, p50, p99, non2xx, socket_errors = run_wrk(lab, args.duration, args.connections)
        elapsed = time.monotonic() - started
        cpu = {k: (cpu_seconds(p) - before[k]) / elapsed for k, p in watched.items()}
        return {"hosts": hosts, "rps": rps, "p50": p50, "p99": p99, "non2xx": non2xx,
                "socket_errors": socket_errors, "cpu": cpu}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS_PER_RUN", "10")))
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()

    why = labmod.missing_requirements()
    if why:
        sys.exit(f"multihost_bench: {why}")
    build = Path(args.build_dir)
    programs = {"portunusd": str(build / "portunusd"), "hello_web": str(build / "apps" / "hello_web")}
    for name, path in programs.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"multihost_bench: no {name} at {path}; build it first")
    ncpu = len(os.sched_getaffinity(0))
    pinning = "nothing pinned" if args.no_pin else f"hosts pinned: host i on CPU (i-1) mod {ncpu}"
    print(f"multihost_bench: {ncpu} CPU(s); {pinning}; "
          f"HAProxy and wrk unpinned; wrk -t2 -c{args.connections} -d{args.duration}s; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'hosts':>5} {'requests/s':>11} {'p50':>9} {'p99':>9} {'non-2xx':>8}  cpu (fraction of one CPU)")
    for hosts in (1, 2, 3):
        r = measure(programs, hosts, args, ncpu)
        cpu = " ".join(f"{k}={v:.2f}" for k, v in r["cpu"].items())
        print(f"{r['hosts']:>5} {r['rps']:>11.0f} {r['p50']:>9} {r['p99']:>9} {r['non2xx']:>8}  {cpu}"
              f"  (socket errors {r['socket_errors']})", flush=True)


if __name__ == "__main__":
    main()
