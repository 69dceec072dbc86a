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
import os
import pwd
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_support import (prerequisites_present, BenchRun, Failure, free_ports, load_average,
                           print_run_header, tool_version, wait_for_socket_file, write_nginx_config)

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["pass", "http", "nginx"]
# (name, bytes, wrk connections): a large file is bound by copying, a small one by requests.
SIZES = [("10MiB", 10 * 1024 * 1024, 8), ("1KiB", 1024, 64)]
WRK_THREADS = 2
GOAL_NGINX = 0.9
GOAL_HTTP = 2.0


def wait_for_file(port, name, size, procs, timeout=10.0):
    """Waits until the target serves `name` whole (curl checks the length)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        procs.check_alive()
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
    write_nginx_config(tmp, user, f"""\
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{ports['nginx']};
        root {www};
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
    if not prerequisites_present("pass_compare", binaries, ("wrk", "nginx", "curl")):
        return 2
    time_limit = args.rounds * len(SIZES) * len(TARGETS) * (args.duration + 40) + 120
    with BenchRun("pass_compare", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        www = tmp / "www"
        www.mkdir()
        os.chmod(tmp, 0o755)  # nginx's workers must reach the files; portunusd refuses a door directory others may write
        for name, size, _ in SIZES:
            (www / name).write_bytes(os.urandom(size))
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(TARGETS, free_ports(len(TARGETS))))
        door = tmp / "files.door"
        write_configs(tmp, www, ports, door, user)

        print_run_header()
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        nginx_version = tool_version(["nginx", "-v"], r"nginx/\S+")
        print(f"tools wrk=\"{wrk_version}\" nginx=\"{nginx_version}\"")
        print(f"load duration={args.duration}s rounds={args.rounds} wrk_threads={WRK_THREADS} "
              + " ".join(f"connections[{n}]={c}" for n, _, c in SIZES) + f" loadavg_before={load_average()}")

        app = procs.start("file_opener", [str(binaries["file_opener"]), str(door), str(www)], tmp / "file_opener.log")
        wait_for_socket_file(door, app)
        procs.start("portunusd", [str(binaries["portunusd"]), "-f", str(tmp / "portunusd.toml")], tmp / "portunusd.log")
        procs.start("nginx", ["nginx", "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"], tmp / "nginx.log")
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
    return run.status


if __name__ == "__main__":
    sys.exit(main())
