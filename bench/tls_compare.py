#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""HTTPS workloads: the same tiny reply over TLS from portunusd (an https forward to the hello_web
door), nginx terminating TLS with the same certificate and proxying to http_backend over kept-alive
upstream connections, and nginx answering by itself over TLS (the ceiling); two workloads, kept-alive
requests and a new connection with a full handshake per request; prints requests/s, p50/p99,
handshakes/s, CPU per request and per handshake, ratios, and the memory and threads of portunusd,
hello_web and nginx.

Usage: bench/tls_compare.py [--build-dir DIR] [--duration SECONDS] [--placement WHERE] [--keep-temp]
The duration defaults to $SECONDS when the environment sets it, else 5 seconds.
--placement: shared, split or both (the default), as in http_compare.py.
Workloads:
  keepalive: wrk -t2 -c64 --latency over https, kept-alive connections (one handshake each, in
             the warm-up);
  handshake: 8 `openssl s_time -new -www /` clients at once, each opening a connection, making a
             full TLS handshake, sending GET / HTTP/1.0 and reading the reply to the server's
             close, over and over. wrk -H "Connection: close" is not used: it keeps the session
             of a closed connection and resumes it on the next, so it measures resumptions.
             s_time marks each connection `*` (full handshake) or `r` (resumed); the script
             counts both and flags any `r`.
The certificate is a throwaway EC P-256 one made with the openssl command in the run's temporary
directory; both servers allow TLS 1.2 and 1.3 and use OpenSSL's defaults otherwise.
Needs wrk, nginx and openssl (tests/install-deps.sh bench) and a build with the portunusd,
hello_web and http_backend targets, by default in build/http-bench.
"""

import argparse
import http.client
import os
import pwd
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

from bench_support import (start_portunusd, prerequisites_present, SAMPLE_SECONDS, BenchRun, CpuWindow,
                           Failure, Sampler, add_placement_option, free_ports, group_members, kill_group,
                           load_average, pin_servers, placements, print_process_figures, print_run_header,
                           print_wrk_details, proc_status, ratio, run_wrk, start_on_cpus, to_ms, tool_version,
                           wait_for_log_line, wait_for_socket_file, write_nginx_config)

ROOT = Path(__file__).resolve().parent.parent
WRK_THREADS = 2
WRK_CONNECTIONS = 64
# s_time clients run one connection at a time each; eight keep both servers' CPUs busy.
HANDSHAKE_CLIENTS = 8
WARMUP_SECONDS = 1
TARGETS = ["portunusd", "nginx_proxy", "nginx_return"]
WORKLOADS = ["keepalive", "handshake"]
BODY_PREFIX = b"Hello from a door! You are visitor "
# As in http_compare.py: as long as the others' replies with a 6-digit visitor number.
NGINX_BODY = "Hello from a door! You are visitor 123456."
S_TIME_START = re.compile(r"^Collecting connection statistics for \d+ seconds\n", re.M)
S_TIME_COUNT = re.compile(r"^(\d+) connections in [0-9.]+s;", re.M)
S_TIME_BYTES = re.compile(r"^\d+ connections in \d+ real seconds, (\d+) bytes read per connection", re.M)


def make_certificate(tmp):
    """A self-signed EC P-256 certificate for 127.0.0.1, valid for two days, and its key."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                           "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        raise Failure(f"openssl req could not make the certificate:\n{made.stdout}{made.stderr}")
    return cert, key


def write_configs(tmp, ports, user, cert, key):
    door = tmp / "hello_web.door"
    # Only the keys the comparison needs; the rest (tls_min_version 1.2, handshake_timeout,
    # max_requests 1000 as nginx's keepalive_requests) keeps its default.
    (tmp / "portunusd.toml").write_text(f"""\
[daemon]
log_level = "info"
log = "stderr"
access_log = "off"

[[forward]]
name = "hello-https"
protocol = "https"
listen = "127.0.0.1:{ports['portunusd']}"
door = "{door}"
certificate = "{cert}"
private_key = "{key}"
""")
    write_nginx_config(tmp, user, f"""\
    # nginx 1.22 allows TLS 1.0 to 1.2 unless told: the same versions as portunusd's default.
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    upstream backend {{
        server 127.0.0.1:{ports['direct']};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{ports['nginx_proxy']} ssl;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
    server {{
        listen 127.0.0.1:{ports['nginx_return']} ssl;
        location / {{
            default_type "text/plain; charset=utf-8";
            return 200 "{NGINX_BODY}\\n";
        }}
    }}
""")
    return door


def tls_client_context(cert):
    ctx = ssl.create_default_context(cafile=str(cert))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def check_keepalive(name, port, ctx):
    """Two requests on one TLS connection, both answered: the chain works and the connection
    stays open. Returns the version, cipher and ALPN protocol the connection got."""
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        for _ in range(2):
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or not body.startswith(BODY_PREFIX) or r.will_close:
                raise Failure(f"{name}: unexpected kept-alive reply {r.status} {body[:60]!r}")
        s = c.sock
        return s.version(), s.cipher()[0], s.selected_alpn_protocol()
    finally:
        c.close()


def check_close_request(name, port, ctx):
    """The handshake workload's request, as s_time sends it: HTTP/1.0 without a Host header, the
    reply read until the server closes. Returns the bytes read."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or head.split(b" ", 2)[1] != b"200" or not body.startswith(BODY_PREFIX):
        raise Failure(f"{name}: unexpected reply to GET / HTTP/1.0: {data[:120]!r}")
    return len(data)


def wait_for_tls(name, port, ctx, procs, timeout=10.0):
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            version, cipher, alpn = check_keepalive(name, port, ctx)
            close_bytes = check_close_request(name, port, ctx)
            print(f"check target={name} port={port} status=200 keep_alive=yes tls={version} cipher={cipher} "
                  f"alpn={alpn} http10_close_reply_bytes={close_bytes}")
            return
        except (OSError, Failure, http.client.HTTPException) as e:
            last = str(e)
        time.sleep(0.05)
    raise Failure(f"{name} on port {port} is not answering over TLS: {last}")


def run_handshakes(port, seconds, log_path, cpus=None):
    """HANDSHAKE_CLIENTS s_time clients at once for about `seconds` (s_time stops at the first
    whole second past it), on these CPUs. Returns connections, full and resumed handshakes,
    bytes per connection (the smallest client's), handshakes/s over the wall time of the whole
    group, and the clients' CPU seconds."""
    argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds), "-www", "/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    clients = []
    try:
        for _ in range(HANDSHAKE_CLIENTS):
            clients.append(start_on_cpus(cpus, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, start_new_session=True, text=True))
        outs = []
        for p in clients:
            try:
                outs.append(p.communicate(timeout=max(1.0, started + seconds + 30 - time.monotonic()))[0])
            except subprocess.TimeoutExpired:
                raise Failure(f"openssl s_time against port {port} did not finish in {seconds + 30} s")
        elapsed = time.monotonic() - started
    finally:
        for p in clients:
            kill_group(p.pid, signal.SIGKILL)
            p.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "a") as log:
        for out in outs:
            log.write(f"$ {' '.join(argv)}\n{out}\n")
    total = full = resumed = 0
    per_connection = []
    for p, out in zip(clients, outs):
        start = S_TIME_START.search(out)
        count = S_TIME_COUNT.search(out)
        got = S_TIME_BYTES.search(out)
        if p.returncode != 0 or not start or not count or not got:
            raise Failure(f"openssl s_time exited with status {p.returncode}:\n{out[-2000:]}")
        # Between its first line and the summary, one character per connection: `*` a full
        # handshake, `r` a resumed one.
        marks = out[start.end():count.start()]
        total += int(count.group(1))
        full += marks.count("*")
        resumed += marks.count("r")
        per_connection.append(int(got.group(1)))
    return {
        "connections": total,
        "full": full,
        "resumed": resumed,
        "bytes_per_connection": min(per_connection),
        "rate": total / elapsed,
        "elapsed": elapsed,
        "client_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "http-bench"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS", "5")),
                        help="seconds of measured load per target and workload (default: $SECONDS or 5)")
    add_placement_option(parser)
    parser.add_argument("--keep-temp", action="store_true", help="keep the configs, certificate and logs")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1..600")

    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    binaries = {
        "portunusd": build / "portunusd",
        "hello_web": build / "apps" / "hello_web",
        "http_backend": build / "bench" / "http_backend",
    }
    if not prerequisites_present("tls_compare", binaries, ("wrk", "nginx", "openssl")):
        return 2

    chosen, placement_note = placements(args.placement)
    # Every warm-up and load of every placement and workload (s_time runs up to a second over),
    # plus generous start-up and stop time.
    time_limit = len(chosen) * len(WORKLOADS) * len(TARGETS) * (WARMUP_SECONDS + args.duration + 47) + 60

    with BenchRun("tls_compare", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(TARGETS + ["direct"], free_ports(len(TARGETS) + 1)))
        cert, key = make_certificate(tmp)
        door = write_configs(tmp, ports, user, cert, key)
        print_run_header()
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        nginx_version = tool_version(["nginx", "-v"], r"nginx/[0-9.]+")
        openssl_version = tool_version(["openssl", "version"], r"OpenSSL \S+")
        print(f"tools {wrk_version}; {nginx_version}; {openssl_version} (s_time and the servers' library)")
        print("certificate EC P-256, self-signed, made for this run")
        print(f"load keepalive: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s --latency over https; "
              f"handshake: {HANDSHAKE_CLIENTS} x openssl s_time -new -time {args.duration} -www / "
              f"(a full handshake and one HTTP/1.0 request per connection); "
              f"a {WARMUP_SECONDS} s warm-up per target and workload")
        print(f"loadavg before={load_average()}")
        if placement_note:
            print(f"note: {placement_note}")

        hello_web = procs.start("hello_web", [str(binaries["hello_web"]), str(door)], tmp / "hello_web.log")
        wait_for_socket_file(door, hello_web)
        portunusd = start_portunusd(procs, binaries["portunusd"], tmp / "portunusd.toml", tmp)
        backend = procs.start("http_backend", [str(binaries["http_backend"]), str(ports["direct"])],
                              tmp / "http_backend.log")
        nginx = procs.start("nginx", ["nginx", "-p", str(tmp), "-e", str(tmp / "nginx-error.log"), "-c",
                                      str(tmp / "nginx.conf"), "-g", "daemon off;"], tmp / "nginx.log")
        serving = {
            "portunusd": {"portunusd": portunusd.pid, "hello_web": hello_web.pid},
            "nginx_proxy": {"nginx": nginx.pid, "http_backend": backend.pid},
            "nginx_return": {"nginx": nginx.pid},
        }

        wait_for_log_line(tmp / "portunusd.log", "portunusd ready", procs)
        loops = re.search(r"(\d+) event-loop thread", (tmp / "portunusd.log").read_text())
        print(f"portunusd event_loops={loops.group(1) if loops else '?'} (the default for this machine)")
        ctx = tls_client_context(cert)
        for name in TARGETS:
            wait_for_tls(name, ports[name], ctx, procs)
        workers = sorted(pid for pid in group_members(nginx.pid) if pid != nginx.pid)
        print(f"nginx workers={len(workers)}")
        # Idle figures before the first load; nginx's master only reads the configuration, its
        # workers serve.
        watched = {"portunusd": portunusd.pid, "hello_web": hello_web.pid}
        watched.update({f"nginx_worker{i}": pid for i, pid in enumerate(workers)})
        idle = {name: proc_status(pid) for name, pid in watched.items()}
        # Peaks per workload, from the first placement's loads of portunusd and nginx_proxy.
        sampled = {}

        leaders = [p.pid for _, p in procs.started]
        for placement in chosen:
            print(placement.describe())
            tag = placement.name
            results = {w: {} for w in WORKLOADS}
            for workload in WORKLOADS:
                for name in TARGETS:
                    url = f"https://127.0.0.1:{ports[name]}/"
                    pin_servers(leaders, placement.servers)
                    if workload == "keepalive":
                        run_wrk(url, WARMUP_SECONDS, tmp / "wrk.log", placement.client, WRK_THREADS,
                                WRK_CONNECTIONS)
                    else:
                        run_handshakes(ports[name], WARMUP_SECONDS, tmp / "s_time.log", placement.client)
                    procs.check_alive()
                    pin_servers(leaders, placement.servers)
                    sampler = None
                    if name != "nginx_return" and (workload, name) not in sampled:
                        sampler = Sampler(list(watched.values()))
                        sampler.start()
                    window = CpuWindow(serving[name])
                    try:
                        if workload == "keepalive":
                            r = run_wrk(url, args.duration, tmp / "wrk.log", placement.client, WRK_THREADS,
                                        WRK_CONNECTIONS)
                        else:
                            r = run_handshakes(ports[name], args.duration, tmp / "s_time.log", placement.client)
                        window.close()
                    finally:
                        if sampler:
                            sampler.done.set()
                            sampler.join()
                    if sampler:
                        sampled[(workload, name)] = (sampler, {n: proc_status(pid) for n, pid in watched.items()})
                    procs.check_alive()
                    results[workload][name] = r
                    if workload == "keepalive":
                        p = r["percentiles"]
                        print(f"workload=keepalive target={name} rps={r['rps']} p50_ms={to_ms(*p['50'])} "
                              f"p99_ms={to_ms(*p['99'])}")
                        if print_wrk_details(name, r):
                            run.status = 1
                        window.report(name, r["requests"], r["client_cpu"])
                    else:
                        print(f"workload=handshake target={name} handshakes_per_s={r['rate']:.0f} "
                              f"connections={r['connections']} full={r['full']} resumed={r['resumed']} "
                              f"bytes_per_connection={r['bytes_per_connection']} in={r['elapsed']:.2f}s")
                        if r["resumed"] > 0 or r["full"] != r["connections"]:
                            print(f"  FLAGGED target={name}: {r['resumed']} resumed sessions, "
                                  f"{r['connections'] - r['full']} connections without a full handshake")
                            run.status = 1
                        window.report(name, r["connections"], r["client_cpu"], client="s_time", unit="handshake")

            rps = {name: float(r["rps"]) for name, r in results["keepalive"].items()}
            hs = {name: r["rate"] for name, r in results["handshake"].items()}
            print(f"ratio[{tag}] keepalive portunusd/nginx_proxy={ratio(rps['portunusd'], rps['nginx_proxy'])} "
                  f"portunusd/nginx_return={ratio(rps['portunusd'], rps['nginx_return'])}")
            print(f"ratio[{tag}] handshake portunusd/nginx_proxy={ratio(hs['portunusd'], hs['nginx_proxy'])} "
                  f"portunusd/nginx_return={ratio(hs['portunusd'], hs['nginx_return'])}")

        # Each process's figures from the loads it served: portunusd and hello_web from
        # portunusd's, nginx's workers from nginx_proxy's.
        for workload in WORKLOADS:
            figures = {}
            for target, names in (("portunusd", ("portunusd", "hello_web")),
                                  ("nginx_proxy", [n for n in watched if n.startswith("nginx")])):
                if (workload, target) not in sampled:
                    continue
                sampler, after = sampled[(workload, target)]
                figures.update({n: (sampler, after) for n in names})
            names = [n for n in watched if n in figures]
            for n in names:
                sampler, after = figures[n]
                print_process_figures({n: watched[n]}, idle, after, sampler, tag=workload)
        print(f"samples every {SAMPLE_SECONDS:g} s during the measured loads of portunusd and nginx_proxy "
              f"(placement={chosen[0].name}); idle = before the first load")
        print(f"loadavg after={load_average()}")
    return run.status


if __name__ == "__main__":
    sys.exit(main())
