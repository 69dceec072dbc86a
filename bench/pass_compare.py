#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Static files three ways, in one run on one machine: through a pass forward (file_opener
sends the file itself with sendfile on the client's connection), through an http forward (the
same file_opener, its reply relayed and copied through portunusd) and from nginx serving the
file itself (sendfile on). A 10 MiB and a 1 KiB file, kept-alive wrk loads, the targets
interleaved round by round so background load hits them alike; prints each load, the median
requests/s and MiB/s per target and size, and the ratios pass/nginx and pass/http.

Usage: bench/pass_compare.py [--build-dir DIR] [--duration SECONDS] [--rounds N] [--keep-temp]
The duration (per load) defaults to $SECONDS when the environment sets it, else 3 seconds; the
rounds to 3. Needs wrk and nginx (tests/install-deps.sh bench) and a build with the portunusd
and file_opener targets, by default in build/release. Goals: pass >= 0.9x nginx and >= 2x the
http relay for the 10 MiB file.
"""

import argparse
import atexit
import datetime
import os
import platform
import pwd
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_support import Failure, Stop, on_signal, kill_group, free_ports, wait_for_socket_file, load_average, \
    tool_version, cpu_model

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["pass", "http", "nginx"]
# (name, bytes, wrk connections): a large file is bound by copying, a small one by requests.
SIZES = [("10MiB", 10 * 1024 * 1024, 8), ("1KiB", 1024, 64)]
WRK_THREADS = 2
GOAL_NGINX = 0.9
GOAL_HTTP = 2.0


def start(argv, log_path, procs):
    with open(log_path, "wb") as log:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    procs.append(p)
    return p


def stop_all(procs):
    for p in reversed(procs):
        kill_group(p.pid, signal.SIGTERM)
    for p in reversed(procs):
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill_group(p.pid, signal.SIGKILL)
            p.wait()
    procs.clear()


def wait_for_file(port, name, size, procs, timeout=10.0):
    """Waits until the target serves `name` whole (curl checks the length)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise Failure(f"pid {p.pid} exited early with status {p.returncode}")
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            f"http://127.0.0.1:{port}/{name}"], capture_output=True, text=True, timeout=20)
        last = r.stdout
        if last == f"200 {size}":
            return
        time.sleep(0.05)
    raise Failure(f"port {port} does not serve {name} whole: {last!r}")


def run_wrk(port, name, connections, seconds, log_path):
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/{name}"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv)}\n{p.stdout}{p.stderr}\n")
    if p.returncode != 0:
        raise Failure(f"wrk exited with status {p.returncode}:\n{p.stdout}{p.stderr}")
    rps = re.search(r"^Requests/sec:\s+(\S+)", p.stdout, re.M)
    if not rps:
        raise Failure(f"cannot read wrk's output:\n{p.stdout}")
    errors = re.search(r"Socket errors: (.*)", p.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", p.stdout)
    return float(rps.group(1)), (errors.group(1) if errors else "none"), int(non2xx.group(1)) if non2xx else 0


def write_configs(tmp, www, ports, door, user):
    (tmp / "portunusd.toml").write_text(f"""\
[daemon]
log_level = "warn"
access_log = "off"
control_door = "off"

[[forward]]
name = "pass"
protocol = "pass"
listen = "127.0.0.1:{ports['pass']}"
door = "{door}"

[[forward]]
name = "http"
protocol = "http"
listen = "127.0.0.1:{ports['http']}"
door = "{door}"
""")
    user_directive = f"user {user};\n" if os.geteuid() == 0 else ""
    nginx_tmp = tmp / "nginx-tmp"
    nginx_tmp.mkdir()
    (tmp / "nginx.conf").write_text(f"""\
{user_directive}worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    client_body_temp_path {nginx_tmp}/body;
    proxy_temp_path {nginx_tmp}/proxy;
    fastcgi_temp_path {nginx_tmp}/fastcgi;
    uwsgi_temp_path {nginx_tmp}/uwsgi;
    scgi_temp_path {nginx_tmp}/scgi;
    server {{
        listen 127.0.0.1:{ports['nginx']};
        root {www};
    }}
}}
""")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS", "3")),
                        help="seconds of measured load per target, size and round (default: $SECONDS or 3)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-temp", action="store_true", help="keep the configs and logs")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600 or not 1 <= args.rounds <= 50:
        parser.error("--duration must be 1..600 and --rounds 1..50")
    sys.stdout.reconfigure(line_buffering=True)
    build = Path(args.build_dir).resolve()
    binaries = {"portunusd": build / "portunusd", "file_opener": build / "apps" / "file_opener"}
    for name, path in binaries.items():
        if not os.access(path, os.X_OK):
            print(f"pass_compare: {path} missing: build the {name} target first", file=sys.stderr)
            return 2
    for tool in ("wrk", "nginx", "curl"):
        if shutil.which(tool) is None:
            print(f"pass_compare: {tool} not found: tests/install-deps.sh bench", file=sys.stderr)
            return 2
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, on_signal)
    signal.alarm(args.rounds * len(SIZES) * len(TARGETS) * (args.duration + 40) + 120)

    tmp = Path(tempfile.mkdtemp(prefix="pass-compare."))  # mode 0700, as portunusd wants
    procs = []
    atexit.register(stop_all, procs)
    status = 0
    try:
        www = tmp / "www"
        www.mkdir()
        os.chmod(tmp, 0o755)  # nginx's workers must reach the files; portunusd refuses a door directory others may write
        for name, size, _ in SIZES:
            (www / name).write_bytes(os.urandom(size))
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(TARGETS, free_ports(len(TARGETS))))
        door = tmp / "files.door"
        write_configs(tmp, www, ports, door, user)

        print(f"date={datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        print(f"machine nproc={os.cpu_count()} kernel={platform.release()} cpu=\"{cpu_model()}\"")
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        nginx_version = tool_version(["nginx", "-v"], r"nginx/\S+")
        print(f"tools wrk=\"{wrk_version}\" nginx=\"{nginx_version}\"")
        print(f"load duration={args.duration}s rounds={args.rounds} wrk_threads={WRK_THREADS} "
              + " ".join(f"connections[{n}]={c}" for n, _, c in SIZES) + f" loadavg_before={load_average()}")

        start([str(binaries["file_opener"]), str(door), str(www)], tmp / "file_opener.log", procs)
        wait_for_socket_file(door, procs[-1])
        start([str(binaries["portunusd"]), "-f", str(tmp / "portunusd.toml")], tmp / "portunusd.log", procs)
        start(["nginx", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"], tmp / "nginx.log", procs)
        for target in TARGETS:
            for name, size, _ in SIZES:
                wait_for_file(ports[target], name, size, procs)

        results = {(t, n): [] for t in TARGETS for n, _, _ in SIZES}
        for round_number in range(args.rounds):
            # Each round starts with another target, so none is always first after a pause.
            order = TARGETS[round_number % len(TARGETS):] + TARGETS[:round_number % len(TARGETS)]
            for name, size, connections in SIZES:
                for target in order:
                    rps, errors, non2xx = run_wrk(ports[target], name, connections, args.duration, tmp / "wrk.log")
                    results[(target, name)].append(rps)
                    print(f"round={round_number + 1} size={name} target={target} rps={rps:.1f} "
                          f"MiBps={rps * size / 1048576:.1f} socket_errors=\"{errors}\" non2xx={non2xx}")

        for name, size, _ in SIZES:
            med = {t: statistics.median(results[(t, name)]) for t in TARGETS}
            for t in TARGETS:
                print(f"median size={name} target={t} rps={med[t]:.1f} MiBps={med[t] * size / 1048576:.1f} "
                      f"rounds={','.join(f'{v:.0f}' for v in results[(t, name)])}")
            print(f"ratio[{name}] pass/nginx={med['pass'] / med['nginx']:.2f} pass/http={med['pass'] / med['http']:.2f}")
            if name == "10MiB":
                print(f"goal[{name}] pass/nginx>={GOAL_NGINX}: {'met' if med['pass'] >= GOAL_NGINX * med['nginx'] else 'missed'}"
                      f" pass/http>={GOAL_HTTP}: {'met' if med['pass'] >= GOAL_HTTP * med['http'] else 'missed'}")
        print(f"loadavg_after={load_average()}")
    except (Failure, Stop) as e:
        print(f"pass_compare: {e}", file=sys.stderr)
        status = 1
    finally:
        stop_all(procs)
        if args.keep_temp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
