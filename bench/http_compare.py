#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Keep-alive HTTP workload: the same tiny reply over kept-alive connections from portunusd (http
forward to the hello_web door), nginx proxying to http_backend over kept-alive upstream
connections, nginx answering by itself (the ceiling) and http_backend directly; prints requests/s,
p50/p99 latency, ratios, and the memory and threads of portunusd and hello_web.

Usage: bench/http_compare.py [--build-dir DIR] [--duration SECONDS] [--placement WHERE] [--keep-temp]
The duration defaults to $SECONDS when the environment sets it, else 5 seconds.
--placement: shared (nothing pinned, wrk and the servers on every CPU), split (wrk on the upper
half of the CPUs, every server thread on the others, as with a client on a separate machine) or
both (the default): one warm-up and load per target and placement, shared first, each block of
targets with its own ratio[...] and goal[...] lines. Fewer than 2 CPUs leave split out. The
memory and threads lines come from portunusd's load in the first placement.
Needs wrk and nginx (tests/install-deps.sh bench) and a build with the portunusd, hello_web and
http_backend targets, by default in build/http-bench.
"""

import argparse
import decimal
import os
import pwd
import re
import socket
import sys
import time
from pathlib import Path

from bench_support import (start_portunusd, prerequisites_present, SAMPLE_SECONDS, BenchRun, CpuWindow,
                           Failure, Sampler, add_placement_option, free_ports, group_members, load_average,
                           pin_servers, placements, print_process_figures, print_run_header,
                           print_wrk_details, proc_status, ratio, run_wrk, to_ms, tool_version,
                           wait_for_log_line, wait_for_socket_file, write_nginx_config)

ROOT = Path(__file__).resolve().parent.parent
WRK_THREADS = 2
WRK_CONNECTIONS = 64
WARMUP_SECONDS = 1
TARGETS = ["portunusd", "nginx_proxy", "nginx_return", "direct"]
# The goals of the http forward: against the proxy it replaces and against no relay at all.
GOAL_NGINX_PROXY = 1.3
GOAL_DIRECT = 0.6
BODY_PREFIX = b"Hello from a door! You are visitor "
# nginx's own reply, as long as the others' with a 6-digit visitor number: during the measured
# load theirs have 5 or 6 digits (a 42- or 43-byte body), so the bodies differ by a byte at most.
NGINX_BODY = "Hello from a door! You are visitor 123456.\n"


class Response:
    def __init__(self, status, head, body):
        self.status, self.head, self.body = status, head, body

    def header(self, name):
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class Client:
    """One kept-alive connection that reads Content-Length framed responses, which is all the
    targets send."""

    def __init__(self, port, timeout):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.pending = b""

    def send(self):
        self.sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % self.port)

    def receive(self, deadline):
        while b"\r\n\r\n" not in self.pending:
            self._fill(deadline)
        head, _, rest = self.pending.partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        if not m:
            raise Failure(f"port {self.port}: response without Content-Length: {head[:200]!r}")
        length = int(m.group(1))
        while len(rest) < length:
            self.pending = head + b"\r\n\r\n" + rest
            self._fill(deadline)
            rest = self.pending.partition(b"\r\n\r\n")[2]
        self.pending = rest[length:]
        status = head.split(b" ", 2)[1] if head.startswith(b"HTTP/1.1 ") else b"?"
        return Response(status, head, rest[:length])

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("no complete response in time")
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed by the server")
        self.pending += data

    def close(self):
        self.sock.close()


def wait_for_reply(name, port, procs, timeout=10.0):
    """Waits until the target answers correctly twice on one connection: the first good reply
    proves the whole chain, the second that the connection stays open."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            c = Client(port, 3.0)
            try:
                replies = []
                for _ in range(2):
                    c.send()
                    replies.append(c.receive(time.monotonic() + 3.0))
            finally:
                c.close()
            if all(r.status == b"200" and r.body.startswith(BODY_PREFIX) for r in replies):
                r = replies[1]
                print(f"check target={name} port={port} status=200 keep_alive=yes "
                      f"head_bytes={len(r.head) + 4} body_bytes={len(r.body)}")
                return
            last = f"unexpected reply {replies[-1].head[:80]!r}"
        except (OSError, Failure) as e:
            last = str(e)
        time.sleep(0.05)
    raise Failure(f"{name} on port {port} is not answering: {last}")


def check_concurrency(name, port, count, timeout=10.0):
    """Opens `count` connections, sends a request on each while all stay open, and wants every
    response, twice. wrk counts no error for a connection that never gets an answer, so a target
    that serves only some connections at a time would otherwise pass with a fine-looking rate."""
    deadline = time.monotonic() + timeout
    clients = []
    try:
        for _ in range(count):
            clients.append(Client(port, timeout))
        for round_number in (1, 2):
            for c in clients:
                c.send()
            answered = 0
            for c in clients:
                try:
                    if c.receive(deadline).status == b"200":
                        answered += 1
                except (OSError, Failure):
                    pass
            if answered != count:
                raise Failure(f"{name}: only {answered} of {count} concurrent kept-alive connections "
                              f"answered in round {round_number} within {timeout} s")
    finally:
        for c in clients:
            c.close()


def write_configs(tmp, ports, user):
    door = tmp / "hello_web.door"
    # Only the keys the comparison needs; everything else (max_concurrency 64, max_requests 1000,
    # the same as nginx's keepalive_requests) keeps its default.
    (tmp / "portunusd.toml").write_text(f"""\
[daemon]
log_level = "info"
log = "stderr"
access_log = "off"

[[forward]]
name = "hello-web"
protocol = "http"
listen = "127.0.0.1:{ports['portunusd']}"
door = "{door}"
""")
    write_nginx_config(tmp, user, f"""\
    # Kept-alive upstream connections, the way portunusd keeps its door connections: without
    # them nginx would open a TCP connection to the backend per request.
    upstream backend {{
        server 127.0.0.1:{ports['direct']};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{ports['nginx_proxy']};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{ports['nginx_return']};
        location / {{
            default_type "text/plain; charset=utf-8";
            return 200 "{NGINX_BODY.rstrip(chr(10))}\\n";
        }}
    }}
""")
    return door


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "http-bench"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS", "5")),
                        help="seconds of measured load per target (default: $SECONDS or 5)")
    add_placement_option(parser)
    parser.add_argument("--keep-temp", action="store_true", help="keep the configs and logs")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1..600")

    # Each line as soon as it is known, also into a file or pipe: a long run shows its progress.
    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    binaries = {
        "portunusd": build / "portunusd",
        "hello_web": build / "apps" / "hello_web",
        "http_backend": build / "bench" / "http_backend",
    }
    if not prerequisites_present("http_compare", binaries, ("wrk", "nginx")):
        return 2

    chosen, placement_note = placements(args.placement)
    # The whole run is bounded: every warm-up and load of every placement, plus generous start-up
    # and stop time.
    time_limit = len(chosen) * len(TARGETS) * (WARMUP_SECONDS + args.duration + 45) + 60

    with BenchRun("http_compare", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(TARGETS, free_ports(len(TARGETS))))

        def url(name):
            return f"http://127.0.0.1:{ports[name]}/"

        door = write_configs(tmp, ports, user)
        cpus = os.cpu_count()
        print_run_header()
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        nginx_version = tool_version(["nginx", "-v"], r"nginx/[0-9.]+")
        print(f"tools {wrk_version}; {nginx_version}")
        print(f"load wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s --latency, kept-alive "
              f"connections, after a {WARMUP_SECONDS} s warm-up per target")
        print(f"loadavg before={load_average()}")
        print(f"note: {cpus} CPU(s). placement=shared: wrk ({WRK_THREADS} threads), the server and the "
              f"application (and whatever else runs, see loadavg) share them all: every target competes "
              f"with its load generator. placement=split: wrk on CPUs of its own, every server thread "
              f"on the others")
        if placement_note:
            print(f"note: {placement_note}")

        hello_web = procs.start("hello_web", [str(binaries["hello_web"]), str(door)], tmp / "hello_web.log")
        wait_for_socket_file(door, hello_web)
        portunusd = start_portunusd(procs, binaries["portunusd"], tmp / "portunusd.toml", tmp)
        backend = procs.start("http_backend", [str(binaries["http_backend"]), str(ports["direct"])],
                              tmp / "http_backend.log")
        nginx = procs.start("nginx", ["nginx", "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c",
                                      str(tmp / "nginx.conf"), "-g", "daemon off;"], tmp / "nginx.log")
        # The server side of each target, as process groups (each process started leads its own).
        serving = {
            "portunusd": {"portunusd": portunusd.pid, "hello_web": hello_web.pid},
            "nginx_proxy": {"nginx": nginx.pid, "http_backend": backend.pid},
            "nginx_return": {"nginx": nginx.pid},
            "direct": {"http_backend": backend.pid},
        }

        # Idle figures once portunusd is serving but before any request reached hello_web.
        wait_for_log_line(tmp / "portunusd.log", "portunusd ready", procs)
        # threads is left to its default, as nginx's worker_processes is left at auto.
        loops = re.search(r"(\d+) event-loop thread", (tmp / "portunusd.log").read_text())
        print(f"portunusd event_loops={loops.group(1) if loops else '?'} (the default for this machine)")
        watched = {"portunusd": portunusd.pid, "hello_web": hello_web.pid}
        idle = {name: proc_status(pid) for name, pid in watched.items()}
        for name in TARGETS:
            wait_for_reply(name, ports[name], procs)
        for name in TARGETS:
            check_concurrency(name, ports[name], WRK_CONNECTIONS)
        print(f"check all targets answer {WRK_CONNECTIONS} concurrent kept-alive connections")
        # worker_processes auto: one worker per CPU, the master does not serve.
        print(f"nginx workers={len(group_members(nginx.pid)) - 1}")

        # Every process started is a server: the placement pins them all, whichever is measured.
        leaders = [p.pid for _, p in procs.started]
        sampler = None
        sampled_in = None
        after = None
        for placement in chosen:
            print(placement.describe())
            results = {}
            for name in TARGETS:
                # Before the warm-up and again before the load: a thread that a not yet pinned one
                # made while the first pass ran gets the mask too.
                pin_servers(leaders, placement.servers)
                run_wrk(url(name), WARMUP_SECONDS, tmp / "wrk.log", placement.client, WRK_THREADS, WRK_CONNECTIONS)
                procs.check_alive()
                pin_servers(leaders, placement.servers)
                sampling = name == "portunusd" and sampler is None
                if sampling:
                    sampler = Sampler(list(watched.values()))
                    sampled_in = placement.name
                    sampler.start()
                window = CpuWindow(serving[name])
                try:
                    r = run_wrk(url(name), args.duration, tmp / "wrk.log", placement.client,
                                WRK_THREADS, WRK_CONNECTIONS)
                    window.close()
                finally:
                    if sampling:
                        sampler.done.set()
                        sampler.join()
                if sampling:
                    after = {n: proc_status(pid) for n, pid in watched.items()}
                procs.check_alive()
                results[name] = r
                p = r["percentiles"]
                print(f"target={name} rps={r['rps']} p50_ms={to_ms(*p['50'])} p99_ms={to_ms(*p['99'])}")
                # Kept-alive connections to a local server have no reason to fail: any error flags it.
                if print_wrk_details(name, r):
                    run.status = 1
                window.report(name, r["requests"], r["client_cpu"])

            tag = placement.name
            rps = {name: float(r["rps"]) for name, r in results.items()}
            print(f"ratio[{tag}] portunusd/nginx_proxy={ratio(rps['portunusd'], rps['nginx_proxy'])}")
            print(f"ratio[{tag}] portunusd/direct={ratio(rps['portunusd'], rps['direct'])}")
            print(f"ratio[{tag}] portunusd/nginx_return={ratio(rps['portunusd'], rps['nginx_return'])}")
            p99 = {name: decimal.Decimal(to_ms(*r["percentiles"]["99"])) for name, r in results.items()}
            goals = [
                (f"portunusd/nginx_proxy>={GOAL_NGINX_PROXY:g}", rps["nginx_proxy"] > 0 and
                 rps["portunusd"] / rps["nginx_proxy"] >= GOAL_NGINX_PROXY),
                (f"portunusd/direct>={GOAL_DIRECT:g}", rps["direct"] > 0 and
                 rps["portunusd"] / rps["direct"] >= GOAL_DIRECT),
                ("p99 portunusd<=nginx_proxy", p99["portunusd"] <= p99["nginx_proxy"]),
            ]
            for text, met in goals:
                print(f"goal[{tag}] {text}: {'met' if met else 'MISSED'}")

        print_process_figures(watched, idle, after, sampler)
        print(f"samples={sampler.samples} every {SAMPLE_SECONDS:g} s during portunusd's measured load "
              f"(placement={sampled_in})")
        print(f"loadavg after={load_average()}")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
