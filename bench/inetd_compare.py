#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Inetd workload: the same tiny HTTP reply, one new TCP connection per request, served by
portunusd (once = true, hello_web door), xinetd (hello_inetd per connection), nginx proxying to
hello_backend, and hello_backend directly; prints requests/s, ratios, and portunusd's memory.

Usage: bench/inetd_compare.py [--build-dir DIR] [--duration SECONDS] [--placement WHERE] [--keep-temp]
The duration defaults to $SECONDS when the environment sets it, else 5 seconds.
--placement: shared (nothing pinned, wrk and the servers on every CPU), split (wrk on the upper
half of the CPUs, every server thread on the others, as with a client on a separate machine) or
both (the default): one warm-up and load per target and placement, shared first, each block of
targets with its own ratio[...] and goal[...] lines. Fewer than 2 CPUs leave split out. The
memory and threads lines come from portunusd's load in the first placement.
Needs wrk, xinetd and nginx (tests/install-deps.sh bench) and a build with the hello_web,
hello_inetd, hello_backend and portunusd targets.
"""

import argparse
import os
import pwd
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench_support import (start_portunusd, prerequisites_present, Sampler, wrk_output, BenchRun, Failure,
                           add_placement_option, free_ports, group_cpu_seconds, load_average, pin_servers,
                           placements, print_process_figures, print_run_header, proc_status, start_on_cpus,
                           tool_version, wait_for_socket_file, write_nginx_config, write_xinetd_config)

ROOT = Path(__file__).resolve().parent.parent
WRK_THREADS = 2
WRK_CONNECTIONS = 16
WARMUP_SECONDS = 1
# More socket errors than this share of the requests makes a run suspect.
ERROR_SHARE_LIMIT = 0.01
GOAL_XINETD = 10.0
GOAL_NGINX = 1.0


def http_get(port, timeout=3.0):
    """One request on a new connection, as wrk sends it; returns the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def wait_for_reply(name, port, procs, timeout=10.0):
    """Waits until the target answers correctly; the first good reply proves the whole chain."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            reply = http_get(port)
            head, _, body = reply.partition(b"\r\n\r\n")
            if reply.startswith(b"HTTP/1.1 200 ") and body.startswith(b"Hello from a door! You are visitor "):
                print(f"check target={name} port={port} status=200 reply_bytes={len(reply)} "
                      f"head_bytes={len(head) + 4} body_bytes={len(body)}")
                return
            last = f"unexpected reply {reply[:80]!r}"
        except OSError as e:
            last = str(e)
        time.sleep(0.05)
    raise Failure(f"{name} on port {port} is not answering: {last}")


def wait_for_log_line(path, text, procs, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise Failure(f"no '{text}' in {path} after {timeout} s")


def cpu_totals():
    """(busy, steal) seconds over all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...; steal is time the hypervisor took.
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle - steal) / tick, steal / tick


WRK_PATTERNS = {
    "rps": re.compile(r"^Requests/sec:\s+(\S+)", re.M),
    "requests": re.compile(r"^\s*(\d+) requests in (\S+), (\S+) read", re.M),
    "errors": re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"),
    "non2xx": re.compile(r"Non-2xx or 3xx responses: (\d+)"),
}


def run_wrk(port, seconds, log_path, cpus=None):
    """One wrk load, its threads on these CPUs (None: unpinned, as this script)."""
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "-H", "Connection: close",
            f"http://127.0.0.1:{port}/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = start_on_cpus(cpus, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      start_new_session=True, text=True)
    out = wrk_output(p, port, seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv)}\n{out}\n")
    if p.returncode != 0:
        raise Failure(f"wrk exited with status {p.returncode}:\n{out}")
    m = WRK_PATTERNS["rps"].search(out)
    n = WRK_PATTERNS["requests"].search(out)
    if not m or not n:
        raise Failure(f"cannot read wrk's output:\n{out}")
    e = WRK_PATTERNS["errors"].search(out)
    x = WRK_PATTERNS["non2xx"].search(out)
    return {
        "rps": m.group(1),
        "requests": int(n.group(1)),
        "elapsed": n.group(2),
        "read": n.group(3),
        "errors": tuple(int(v) for v in e.groups()) if e else (0, 0, 0, 0),
        "non2xx": int(x.group(1)) if x else 0,
        "client_cpu": client_cpu,
    }


def write_configs(tmp, ports, build, user):
    door = tmp / "hello_web.door"
    (tmp / "portunusd.toml").write_text(f"""\
[daemon]
log_level = "info"
log = "stderr"
access_log = "off"

[[forward]]
name = "hello-web"
protocol = "tcp"
listen = "127.0.0.1:{ports['portunusd']}"
door = "{door}"
once = true
call_timeout = "5s"
max_request = 16384
""")
    write_xinetd_config(tmp, ports["xinetd"], f"{build}/bench/hello_inetd", user)
    # nginx's defaults for proxy_pass: HTTP/1.0 and "Connection: close" to the upstream, that is
    # a new upstream connection per request too (what the single-threaded backend can serve).
    write_nginx_config(tmp, user, f"""\
    server {{
        listen 127.0.0.1:{ports['nginx-proxy']};
        location / {{
            proxy_pass http://127.0.0.1:{ports['direct']};
        }}
    }}
""")
    return door


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS", "5")),
                        help="seconds of measured load per target (default: $SECONDS or 5)")
    add_placement_option(parser)
    parser.add_argument("--keep-temp", action="store_true", help="keep the configs and logs")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1..600")

    build = Path(args.build_dir).resolve()
    binaries = {
        "portunusd": build / "portunusd",
        "hello_web": build / "apps" / "hello_web",
        "hello_inetd": build / "bench" / "hello_inetd",
        "hello_backend": build / "bench" / "hello_backend",
    }
    if not prerequisites_present("inetd_compare", binaries, ("wrk", "xinetd", "nginx")):
        return 2

    targets = ["portunusd", "xinetd", "nginx-proxy", "direct"]
    chosen, placement_note = placements(args.placement)
    # The whole run is bounded: four warm-ups and loads per placement, plus generous start-up and
    # stop time.
    time_limit = len(chosen) * len(targets) * (WARMUP_SECONDS + args.duration + 40) + 60

    with BenchRun("inetd_compare", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(targets, free_ports(len(targets))))
        door = write_configs(tmp, ports, build, user)
        cpus = os.cpu_count()
        print_run_header()
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        nginx_version = tool_version(["nginx", "-v"], r"nginx/[0-9.]+")
        xinetd_version = tool_version(["xinetd", "-version"], r"[0-9][0-9.]+")
        print(f"tools {wrk_version}; {nginx_version}; xinetd {xinetd_version}")
        print(f"load wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s -H \"Connection: close\" "
              f"after a {WARMUP_SECONDS} s warm-up; one new connection per request")
        print(f"loadavg before={load_average()}")
        print(f"note: {cpus} CPU(s). placement=shared: wrk ({WRK_THREADS} threads), the server and the "
              f"application (and whatever else runs, see loadavg) share them all: every target competes "
              f"with its load generator, so the numbers are lower than on a machine with a separate "
              f"client. placement=split: wrk on CPUs of its own, every server thread on the others")
        if placement_note:
            print(f"note: {placement_note}")

        hello_web = procs.start("hello_web", [str(binaries["hello_web"]), str(door)], tmp / "hello_web.log")
        wait_for_socket_file(door, hello_web)
        portunusd = start_portunusd(procs, binaries["portunusd"], tmp / "portunusd.toml", tmp)
        # -filelog: xinetd's own messages (config errors included) go to the temp dir, not syslog.
        xinetd = procs.start("xinetd", ["xinetd", "-dontfork", "-f", str(tmp / "xinetd.conf"), "-pidfile",
                                        str(tmp / "xinetd.pid"), "-filelog", str(tmp / "xinetd.log")],
                             tmp / "xinetd-stderr.log")
        backend = procs.start("hello_backend", [str(binaries["hello_backend"]), str(ports["direct"])],
                              tmp / "hello_backend.log")
        nginx = procs.start("nginx", ["nginx", "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c",
                                      str(tmp / "nginx.conf"), "-g", "daemon off;"], tmp / "nginx.log")

        # Each target's server side, as process groups (each process started leads its own).
        serving = {
            "portunusd": {portunusd.pid, hello_web.pid},
            "xinetd": {xinetd.pid},
            "nginx-proxy": {nginx.pid, backend.pid},
            "direct": {backend.pid},
        }
        # Idle figures once portunusd is serving but before any request reached hello_web.
        wait_for_log_line(tmp / "portunusd.log", "portunusd ready", procs)
        # threads is left to its default, as nginx's worker_processes is left at auto.
        loops = re.search(r"(\d+) event-loop thread", (tmp / "portunusd.log").read_text())
        print(f"portunusd event_loops={loops.group(1) if loops else '?'} (the default for this machine)")
        idle = {name: proc_status(p.pid) for name, p in (("portunusd", portunusd), ("hello_web", hello_web))}
        for name in targets:
            wait_for_reply(name, ports[name], procs)

        # Every process started is a server: the placement pins them all, whichever is measured.
        leaders = [p.pid for _, p in procs.started]
        peaks = None
        after = None
        for placement in chosen:
            print(placement.describe())
            results = {}
            for name in targets:
                # Before the warm-up and again before the load: a thread that a not yet pinned one
                # made while the first pass ran gets the mask too.
                pin_servers(leaders, placement.servers)
                run_wrk(ports[name], WARMUP_SECONDS, tmp / "wrk.log", placement.client)
                pin_servers(leaders, placement.servers)
                sampler = None
                if name == "portunusd" and peaks is None:
                    # 50 ms, the interval of the results recorded in docs/benchmarks.md.
                    sampler = Sampler([portunusd.pid, hello_web.pid], interval=0.05)
                    sampler.start()
                cpu_before = group_cpu_seconds(serving[name])
                busy_before, steal_before = cpu_totals()
                started = time.monotonic()
                try:
                    r = run_wrk(ports[name], args.duration, tmp / "wrk.log", placement.client)
                    server_cpu = group_cpu_seconds(serving[name]) - cpu_before
                    busy_after, steal_after = cpu_totals()
                    elapsed = time.monotonic() - started
                finally:
                    if sampler:
                        sampler.done.set()
                        sampler.join()
                if sampler:
                    peaks = sampler
                    after = {n: proc_status(p.pid) for n, p in (("portunusd", portunusd), ("hello_web", hello_web))}
                procs.check_alive()
                results[name] = r
                connect, read, write, timeout = r["errors"]
                errors = connect + read + write + timeout
                print(f"target={name} rps={r['rps']}")
                print(f"  wrk target={name} requests={r['requests']} in={r['elapsed']} read={r['read']} "
                      f"non2xx_3xx={r['non2xx']} socket_errors connect={connect} read={read} write={write} "
                      f"timeout={timeout}")
                # CPU per request shows where the CPUs went, whatever else was running.
                n = max(r["requests"], 1)
                # What neither the target nor wrk used of the CPUs: other work on the machine (and
                # this script's sampler), which makes a run less comparable to the others. All the
                # CPUs in either placement: split moves the work, the machine stays the same.
                capacity = elapsed * (os.cpu_count() or 1)
                other = max(0.0, (busy_after - busy_before) - server_cpu - r["client_cpu"])
                print(f"  cpu target={name} server_us_per_request={server_cpu / n * 1e6:.0f} "
                      f"wrk_us_per_request={r['client_cpu'] / n * 1e6:.0f} "
                      f"other_busy_percent={other / capacity * 100:.0f} "
                      f"steal_percent={(steal_after - steal_before) / capacity * 100:.0f}")
                if r["non2xx"] > 0:
                    print(f"  INVALID target={name}: {r['non2xx']} responses were not 2xx/3xx")
                    run.status = 1
                if errors > ERROR_SHARE_LIMIT * max(r["requests"], 1):
                    print(f"  INVALID target={name}: {errors} socket errors, more than "
                          f"{ERROR_SHARE_LIMIT:.0%} of the requests")
                    run.status = 1

            tag = placement.name
            p = float(results["portunusd"]["rps"])
            for other in ("xinetd", "nginx-proxy", "direct"):
                o = float(results[other]["rps"])
                print(f"ratio[{tag}] portunusd/{other}={p / o:.2f}" if o > 0 else f"ratio[{tag}] portunusd/{other}=inf")
            for other, goal in (("xinetd", GOAL_XINETD), ("nginx-proxy", GOAL_NGINX)):
                o = float(results[other]["rps"])
                met = o > 0 and p / o >= goal
                print(f"goal[{tag}] portunusd/{other}>={goal:g}: {'met' if met else 'MISSED'}")

        print_process_figures({"portunusd": portunusd.pid, "hello_web": hello_web.pid}, idle, after, peaks)

        print(f"loadavg after={load_average()}")
        # xinetd logs a FAIL line when it refuses a connection (limits, rate): none may appear.
        service_log = tmp / "xinetd-service.log"
        refused = service_log.read_text(errors="replace").count("FAIL") if service_log.exists() else 0
        print(f"xinetd refused_connections={refused}")
        if refused:
            run.status = 1
    return run.status


if __name__ == "__main__":
    sys.exit(main())
