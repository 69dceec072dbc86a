#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Exec workload: one program per connection, as inetd runs it. The same program (hello_inetd:
reads an HTTP request on stdin, writes a tiny reply on stdout) behind a portunusd exec forward
and behind xinetd, one new TCP connection per request, in interleaved rounds on the same
machine in the same run; prints requests/s per round, the ratio per round and their median.

Usage: bench/exec_compare.py [--build-dir DIR] [--duration SECONDS] [--rounds N] [--keep-temp]
The duration (of each load) defaults to $SECONDS when the environment sets it, else 5 seconds.
Needs wrk and xinetd (tests/install-deps.sh bench) and a build with the portunusd and
hello_inetd targets.
"""

import argparse
import os
import pwd
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench_support import (start_portunusd, BenchRun, Failure, descendants, free_ports, load_average,
                           print_run_header, tool_version, write_xinetd_config)
from inetd_compare import (run_wrk, wait_for_reply, wait_for_log_line, WRK_THREADS, WRK_CONNECTIONS,
                           WARMUP_SECONDS, ERROR_SHARE_LIMIT)

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.2


def write_configs(tmp, ports, program, user):
    (tmp / "portunusd.toml").write_text(f"""\
[daemon]
log_level = "info"
log = "stderr"
access_log = "off"
control_door = "off"

[[forward]]
name = "hello-exec"
protocol = "exec"
listen = "127.0.0.1:{ports['portunusd']}"
command = ["{program}"]
call_timeout = "5s"
""")
    write_xinetd_config(tmp, ports["xinetd"], program, user)


def zombies_of(pid):
    """Children of `pid` in state Z now."""
    out = []
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/stat") as f:
                text = f.read()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] == "Z" and int(fields[1]) == pid:
            out.append(child)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", default=str(ROOT / "build" / "release"))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("SECONDS", "5")),
                        help="seconds of each measured load (default: $SECONDS or 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each loading both targets (default 3)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the configs and logs")
    args = parser.parse_args()
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be 1..600")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")

    build = Path(args.build_dir).resolve()
    portunusd_bin = build / "portunusd"
    program = build / "bench" / "hello_inetd"
    for path in (portunusd_bin, program):
        if not os.access(path, os.X_OK):
            print(f"exec_compare: {path} missing: build the portunusd and hello_inetd targets", file=sys.stderr)
            return 2
    for tool in ("wrk", "xinetd"):
        if shutil.which(tool) is None:
            print(f"exec_compare: {tool} not found: tests/install-deps.sh bench", file=sys.stderr)
            return 2

    targets = ["portunusd", "xinetd"]
    time_limit = args.rounds * len(targets) * (args.duration + 40) + 2 * (WARMUP_SECONDS + 40) + 60
    with BenchRun("exec_compare", time_limit, args.keep_temp) as run:
        tmp, procs = run.tmp, run.procs
        user = pwd.getpwuid(os.geteuid()).pw_name
        ports = dict(zip(targets, free_ports(len(targets))))
        write_configs(tmp, ports, program, user)
        print_run_header()
        wrk_version = tool_version(["wrk", "-v"], r"wrk \S+")
        xinetd_version = tool_version(["xinetd", "-version"], r"[0-9][0-9.]+")
        print(f"tools {wrk_version}; xinetd {xinetd_version}")
        print(f"load wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s -H \"Connection: close\" per target "
              f"and round, {args.rounds} round(s) alternating which goes first, after a {WARMUP_SECONDS} s warm-up "
              f"each; one new connection and one new process per request; program {program.name}")
        print(f"loadavg before={load_average()}")

        portunusd = start_portunusd(procs, portunusd_bin, tmp / "portunusd.toml", tmp)
        procs.start("xinetd", ["xinetd", "-dontfork", "-f", str(tmp / "xinetd.conf"), "-pidfile",
                               str(tmp / "xinetd.pid"), "-filelog", str(tmp / "xinetd.log")],
                    tmp / "xinetd-stderr.log")
        wait_for_log_line(tmp / "portunusd.log", "portunusd ready", procs)
        for name in targets:
            wait_for_reply(name, ports[name], procs)
        for name in targets:
            run_wrk(ports[name], WARMUP_SECONDS, tmp / f"wrk-{name}.log")

        rps = {name: [] for name in targets}
        for r in range(args.rounds):
            order = targets if r % 2 == 0 else list(reversed(targets))
            for name in order:
                procs.check_alive()
                result = run_wrk(ports[name], args.duration, tmp / f"wrk-{name}.log")
                errors = sum(result["errors"])
                if result["non2xx"] or errors > ERROR_SHARE_LIMIT * max(1, result["requests"]):
                    raise Failure(f"{name}: {errors} socket errors, {result['non2xx']} non-2xx in "
                                  f"{result['requests']} requests")
                rps[name].append(float(result["rps"]))
                print(f"round={r + 1} target={name} requests_per_s={float(result['rps']):.0f} "
                      f"requests={result['requests']} socket_errors={errors} client_cpu_s={result['client_cpu']:.2f}")
            print(f"ratio[round {r + 1}] portunusd/xinetd={rps['portunusd'][-1] / rps['xinetd'][-1]:.2f}")
        ratios = [p / x for p, x in zip(rps["portunusd"], rps["xinetd"])]
        median = statistics.median(ratios)
        print(f"ratio[median of {len(ratios)}] portunusd/xinetd={median:.2f} "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
        print(f"goal[exec >= {GOAL}x xinetd] {'met' if median >= GOAL else 'MISSED'}")
        time.sleep(0.5)
        left = zombies_of(portunusd.pid)
        print(f"zombies of portunusd after the run: {len(left)}")
        print(f"loadavg after={load_average()}")
        if left:
            raise Failure(f"zombie children of portunusd: {left}")
    return run.status

if __name__ == "__main__":
    sys.exit(main())
