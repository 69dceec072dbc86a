#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What the PROXY protocol costs: the http workload through HAProxy to two portunusd daemons
in one sitting, one behind `send-proxy-v2` with proxy_protocol = true, one behind a plain
HAProxy server line, taking turns; once over kept-alive connections (the header is paid once
per connection) and once with a new connection per request (`Connection: close`, the header
paid on every request).

Usage: bench/proxy_protocol_bench.py [--build-dir DIR] [--duration SECONDS] [--rounds N]
                                     [--workload keepalive|close|both] [--keep-temp]
Prints requests/s of each turn, the ratio proxied/plain per round and overall, and the load
average before and after (the machine may be shared: read the numbers with it). Needs wrk and
haproxy (tests/install-deps.sh bench) and a build with the portunusd and hello_web targets, by
default in build/http-bench:
    cmake -S . -B build/http-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF
    cmake --build build/http-bench -j2 --target portunusd hello_web
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_support import (wrk_output, BenchRun, Failure, free_ports, load_average, print_run_header,
                           tool_version, wait_for_socket_file)
from http_compare import WRK_PATTERNS, wait_for_log_line, wait_for_reply

ROOT = Path(__file__).resolve().parent.parent
WRK_THREADS = 2
WRK_CONNECTIONS = 32
WORKLOADS = ("keepalive", "close")


def daemon_config(tmp, name, door, port, proxied):
    lines = ["[daemon]", 'log_level = "info"', 'log = "stderr"', 'access_log = "off"', "threads = 1",
             f'control_door = "{tmp / (name + ".control")}"', "", "[[forward]]", f'name = "{name}"',
             'protocol = "http"', f'listen = "127.0.0.1:{port}"', f'door = "{door}"']
    if proxied:
        lines += ["proxy_protocol = true", 'proxy_protocol_from = ["127.0.0.1"]']
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def haproxy_config(tmp, name, front, back, proxied):
    # mode tcp: one server connection per client connection, so the header is sent exactly once
    # per client connection, and HAProxy does the same work for both daemons.
    text = f"""global
    maxconn 1024
    nbthread 1

defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s

frontend fe
    bind 127.0.0.1:{front}
    default_backend be

backend be
    server portunusd 127.0.0.1:{back}{' send-proxy-v2' if proxied else ''}
"""
    path = tmp / f"haproxy-{name}.cfg"
    path.write_text(text)
    return path


def run_wrk(port, seconds, log_path, close):
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{port}/")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, text=True)
    out = wrk_output(p, port, seconds)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv)}\n{out}\n")
    if p.returncode != 0:
        raise Failure(f"wrk exited with status {p.returncode}:\n{out}")
    rps = WRK_PATTERNS["rps"].search(out)
    if not rps:
        raise Failure(f"cannot read wrk's output:\n{out}")
    e = WRK_PATTERNS["errors"].search(out)
    x = WRK_PATTERNS["non2xx"].search(out)
    return float(rps.group(1)), (sum(int(v) for v in e.groups()) if e else 0), (int(x.group(1)) if x else 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "http-bench"))
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per turn (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="turns per daemon and workload (default 3)")
    parser.add_argument("--workload", choices=(*WORKLOADS, "both"), default="both")
    parser.add_argument("--keep-temp", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.duration <= 120 or not 1 <= args.rounds <= 20:
        parser.error("--duration must be 1..120 and --rounds 1..20")
    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    portunusd, hello_web = build / "portunusd", build / "apps" / "hello_web"
    for path in (portunusd, hello_web):
        if not os.access(path, os.X_OK):
            print(f"proxy_protocol_bench: {path} missing: build it first", file=sys.stderr)
            return 2
    for tool in ("wrk", "haproxy"):
        if shutil.which(tool) is None:
            print(f"proxy_protocol_bench: {tool} not found: tests/install-deps.sh bench", file=sys.stderr)
            return 2
    workloads = WORKLOADS if args.workload == "both" else (args.workload,)
    time_limit = 2 * len(workloads) * args.rounds * (args.duration + 40) + 120

    with BenchRun("proxy_protocol_bench", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        print_run_header()
        haproxy_version = tool_version(["haproxy", "-v"], r"version [0-9.]+")
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        print(f"haproxy={haproxy_version} wrk={wrk_version} threads={WRK_THREADS} connections={WRK_CONNECTIONS}")
        print(f"loadavg before={load_average()}")
        door = tmp / "hello_web.door"
        app = procs.start("hello_web", [str(hello_web), str(door)], tmp / "hello_web.log")
        wait_for_socket_file(door, app)
        plain_back, proxied_back, plain_front, proxied_front = free_ports(4)
        fronts = {"plain": plain_front, "proxied": proxied_front}
        for name, back, proxied in (("plain", plain_back, False), ("proxied", proxied_back, True)):
            conf = daemon_config(tmp, name, door, back, proxied)
            procs.start(name, [str(portunusd), "-f", str(conf)], tmp / f"{name}.log")
            wait_for_log_line(tmp / f"{name}.log", "portunusd ready", procs)
            ha = haproxy_config(tmp, name, fronts[name], back, proxied)
            procs.start(f"haproxy-{name}", ["haproxy", "-db", "-f", str(ha)], tmp / f"haproxy-{name}.log")
        for name, port in fronts.items():
            wait_for_reply(f"haproxy-{name}", port, procs)

        for workload in workloads:
            close = workload == "close"
            results = {"plain": [], "proxied": []}
            # Turns alternate, and each round starts with the other daemon, so that drift in the
            # machine's load reaches both alike.
            for r in range(args.rounds):
                order = ("plain", "proxied") if r % 2 == 0 else ("proxied", "plain")
                for name in order:
                    run_wrk(fronts[name], 1, tmp / "wrk.log", close)  # warm-up
                    rps, errors, non2xx = run_wrk(fronts[name], args.duration, tmp / "wrk.log", close)
                    procs.check_alive()
                    results[name].append(rps)
                    print(f"workload={workload} round={r + 1} daemon={name} rps={rps:.0f} errors={errors} "
                          f"non2xx={non2xx}")
                print(f"workload={workload} round={r + 1} ratio proxied/plain="
                      f"{results['proxied'][-1] / results['plain'][-1]:.3f}")
            plain, proxied = statistics.mean(results["plain"]), statistics.mean(results["proxied"])
            # The median of the per-round ratios resists one turn that a neighbour's burst hit.
            ratios = [b / a for a, b in zip(results["plain"], results["proxied"])]
            print(f"workload={workload} mean rps plain={plain:.0f} proxied={proxied:.0f} "
                  f"ratio proxied/plain={proxied / plain:.3f} median round ratio={statistics.median(ratios):.3f} "
                  f"spread plain={min(results['plain']):.0f}..{max(results['plain']):.0f} "
                  f"proxied={min(results['proxied']):.0f}..{max(results['proxied']):.0f}")
        print(f"loadavg after={load_average()}")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
