#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What the benchmark scripts share: the frame of a run (signals, deadline, processes, temporary
directory, cleanup), errors, process groups, free ports, /proc readings and machine facts."""

import atexit
import datetime
import decimal
import os
import platform
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path



class Failure(Exception):
    """A set-up or validity problem that makes the numbers meaningless."""


class Stop(Exception):
    """A signal or the overall deadline: clean up and leave."""


def on_signal(signum, _frame):
    raise Stop(f"signal {signal.Signals(signum).name}")


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_pid(pid, sig):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Processes:
    """Every process a benchmark starts, each leading a process group of its own so that
    stopping the group also stops what stays in it (nginx's workers)."""

    def __init__(self):
        self.started = []

    def start(self, name, argv, log_path, **popen_args):
        with open(log_path, "wb") as log:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True, **popen_args)
        self.started.append((name, p))
        return p

    def check_alive(self):
        for name, p in self.started:
            if p.poll() is not None:
                raise Failure(f"{name} exited early with status {p.returncode}")

    def stop_all(self):
        # A server that puts what it spawns in a session of its own (xinetd) puts it out of
        # reach of killpg: stop those first, while their parent is alive to reap them.
        strays = set()
        for _, p in self.started:
            for pid in descendants(p.pid):
                try:
                    if os.getpgid(pid) != p.pid:  # nginx's workers stay with their master
                        strays.add(pid)
                except ProcessLookupError:
                    pass
        for pid in strays:
            kill_pid(pid, signal.SIGTERM)
        if strays:
            time.sleep(0.2)
        for _, p in reversed(self.started):
            kill_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for _, p in reversed(self.started):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # Also after the leader is gone: its children may still be in the group.
            kill_group(p.pid, signal.SIGKILL)
            try:
                p.wait(timeout=2)
            except subprocess.TimeoutExpired:
                print(f"warning: pid {p.pid} did not exit", file=sys.stderr)
        for pid in strays:
            kill_pid(pid, signal.SIGKILL)
        self.started.clear()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM)


class BenchRun:
    """The frame of one benchmark run, used as `with BenchRun(...) as run:`. Inside it SIGINT,
    SIGTERM, SIGHUP and the overall deadline (`time_limit` seconds, SIGALRM) raise Stop; it
    holds the run's Processes (`run.procs`) and temporary directory (`run.tmp`, mode 0700 as
    portunusd wants for doors). On the way out a Failure or Stop is reported as `NAME: ...`
    and sets `run.status` to 1; the processes are stopped (also by atexit, should something
    skip the with statement's exit) without a second signal cutting that short; and the
    directory is removed unless the run failed or `keep_temp` asks to keep it."""

    def __init__(self, name, time_limit, keep_temp=False, temp_prefix=None):
        self.name = name
        self.time_limit = int(time_limit)
        self.keep_temp = keep_temp
        self.temp_prefix = temp_prefix or name
        self.status = 0
        self.tmp = None
        self.procs = None

    def __enter__(self):
        for s in STOP_SIGNALS:
            signal.signal(s, on_signal)
        signal.alarm(self.time_limit)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.temp_prefix}."))
        self.procs = Processes()
        atexit.register(self.procs.stop_all)
        return self

    def __exit__(self, exc_type, exc, _tb):
        handled = False
        if exc_type is not None and issubclass(exc_type, Failure):
            print(f"{self.name}: {exc}", file=sys.stderr)
            handled = True
        elif exc_type is not None and issubclass(exc_type, Stop):
            print(f"{self.name}: stopped by {exc}", file=sys.stderr)
            handled = True
        if handled:
            self.status = 1
        signal.alarm(0)
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        self.procs.stop_all()
        if self.keep_temp or self.status != 0 or (exc_type is not None and not handled):
            print(f"configs and logs kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return handled


NGINX_PROLOGUE = """\
{user_directive}worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {nginx_tmp}/body;
    proxy_temp_path {nginx_tmp}/proxy;
    fastcgi_temp_path {nginx_tmp}/fastcgi;
    uwsgi_temp_path {nginx_tmp}/uwsgi;
    scgi_temp_path {nginx_tmp}/scgi;
"""


def write_nginx_config(tmp, user, http_body):
    """Writes tmp/nginx.conf for an nginx run in the foreground by this benchmark: its pid file,
    logs and temporary files in `tmp`, no access log, and `http_body` (server and upstream
    blocks, indented by four) inside the http block. Returns its path."""
    nginx_tmp = tmp / "nginx-tmp"
    nginx_tmp.mkdir(exist_ok=True)
    # As root, nginx's workers would switch to nobody and could not enter the 0700 temp dir.
    user_directive = f"user {user};\n" if os.geteuid() == 0 else ""
    path = tmp / "nginx.conf"
    path.write_text(NGINX_PROLOGUE.format(user_directive=user_directive, tmp=tmp, nginx_tmp=nginx_tmp) +
                    http_body + "}\n")
    return path


def write_xinetd_config(tmp, port, server, user):
    """Writes tmp/xinetd.conf: one `nowait` tcp service on 127.0.0.1:`port` running `server`,
    as `user` when this runs as root. No rate limiter (`cps = 0 0`: xinetd's default, 50 per
    second, would switch the service off for 10 s), no cap on instances, and a log of its own
    (tmp/xinetd-service.log) that records failures only, FAIL lines for refused connections.
    Returns its path."""
    user_line = f"    user           = {user}\n" if os.geteuid() == 0 else ""
    path = tmp / "xinetd.conf"
    path.write_text(f"""\
defaults
{{
    log_type       = FILE {tmp}/xinetd-service.log
    log_on_success =
    log_on_failure = HOST
    instances      = UNLIMITED
    per_source     = UNLIMITED
    cps            = 0 0
}}

service hello_inetd
{{
    type           = UNLISTED
    socket_type    = stream
    protocol       = tcp
    wait           = no
{user_line}    bind           = 127.0.0.1
    port           = {port}
    server         = {server}
    instances      = UNLIMITED
    per_source     = UNLIMITED
    cps            = 0 0
}}
""")
    return path


def print_run_header():
    """The first lines of every benchmark's output: when and on what it ran."""
    print(f"date={datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    print(f"machine nproc={os.cpu_count()} kernel={platform.release()} cpu=\"{cpu_model()}\"")


def print_process_figures(watched, idle, after, sampler, tag=""):
    """memory and threads lines for each watched process: `watched` maps a name to its pid,
    `idle` and `after` map it to proc_status() before and after the load, `sampler` has the
    peaks (peak_rss and peak_threads by pid). A `tag` goes in brackets after the line's first
    word (memory[keepalive]), for a script that samples more than one load."""
    label = f"[{tag}]" if tag else ""
    for name, pid in watched.items():
        rss_idle, threads_idle = idle[name]
        rss_after, threads_after = after[name]
        print(f"memory{label} {name} vmrss_kb idle={rss_idle} peak={sampler.peak_rss[pid]} after_load={rss_after}")
        print(f"threads{label} {name} idle={threads_idle} peak={sampler.peak_threads[pid]} "
              f"after_load={threads_after}")


def wrk_output(p, target, seconds):
    """What the wrk process `p` (its own process group, loading `target`, a port or a URL, for
    `seconds`) printed;
    a Failure when it is not done 30 s after its load should have ended. Its group is killed
    either way, so nothing it started outlives the call."""
    try:
        out, _ = p.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        kill_group(p.pid, signal.SIGKILL)
        p.wait()
        raise Failure(f"wrk against {target} did not finish in {seconds + 30} s")
    finally:
        kill_group(p.pid, signal.SIGKILL)
    return out


def wait_for_log_line(path, text, procs, timeout=10.0):
    """Waits until `text` appears in the log at `path`, while every process of `procs` lives."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.02)
    raise Failure(f"no '{text}' in {path} after {timeout} s")


SAMPLE_SECONDS = 0.1


class Sampler(threading.Thread):
    """Keeps the largest VmRSS and thread count seen, polling /proc (cheap: a few reads per
    interval, so it hardly takes CPU from the run it watches)."""

    def __init__(self, pids, interval=SAMPLE_SECONDS):
        super().__init__(daemon=True)
        self.pids = pids
        self.interval = interval
        self.peak_rss = {p: 0 for p in pids}
        self.peak_threads = {p: 0 for p in pids}
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for pid in self.pids:
                rss, threads = proc_status(pid)
                if rss is not None:
                    self.peak_rss[pid] = max(self.peak_rss[pid], rss)
                if threads is not None:
                    self.peak_threads[pid] = max(self.peak_threads[pid], threads)
            self.samples += 1
            self.done.wait(self.interval)


def cpu_totals():
    """CPU seconds of the whole machine so far, from /proc/stat: time in processes, time in
    interrupts (softirq carries the loopback TCP traffic and is charged to no process) and time
    stolen by the hypervisor."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    processes = values[0] + values[1] + values[2]  # user + nice + system
    interrupts = values[5] + values[6]  # irq + softirq
    steal = values[7] if len(values) > 7 else 0
    return processes / hz, interrupts / hz, steal / hz


# Past this share of the CPUs busy with neither the target nor the load generator, a load is
# marked as noisy.
NOISE_SHARE_LIMIT = 0.10


class CpuWindow:
    """The CPU time one measured load took, opened just before the load and closed just after:
    per server part (a name for each process group serving the target), the machine's process
    time, interrupts and steal."""

    def __init__(self, parts):
        self.parts = parts
        self.before = {part: group_cpu_seconds({pgid}) for part, pgid in parts.items()}
        self.busy, self.irq, self.steal = cpu_totals()
        self.started = time.monotonic()

    def close(self):
        self.part_cpu = {part: group_cpu_seconds({pgid}) - self.before[part] for part, pgid in self.parts.items()}
        busy, irq, steal = cpu_totals()
        self.busy, self.irq, self.steal = busy - self.busy, irq - self.irq, steal - self.steal
        self.elapsed = time.monotonic() - self.started
        return self

    def report(self, name, count, client_cpu, client="wrk", unit="request", tag=""):
        """Prints the `cpu` line of a load that served `count` units while the load generator
        (`client`) used `client_cpu` seconds, and a NOISY line when other work took more than
        NOISE_SHARE_LIMIT of the CPUs. Returns True when it did."""
        n = max(count, 1)
        # All the CPUs in either placement: a placement moves the work, the machine stays the same.
        capacity = self.elapsed * (os.cpu_count() or 1)
        # Process time that neither the target nor the client used: other work on the machine
        # (the script's sampler included), which makes a load less comparable to the others.
        server_cpu = sum(self.part_cpu.values())
        other = max(0.0, self.busy - server_cpu - client_cpu)
        # Per process too: where a relay's time goes, the relay or what it relays to.
        parts = " ".join(f"{part}_us_per_{unit}={cpu / n * 1e6:.1f}" for part, cpu in self.part_cpu.items())
        print(f"  cpu{tag} target={name} server_us_per_{unit}={server_cpu / n * 1e6:.1f} ({parts}) "
              f"{client}_us_per_{unit}={client_cpu / n * 1e6:.1f} "
              f"irq_us_per_{unit}={self.irq / n * 1e6:.1f} "
              f"other_busy_percent={other / capacity * 100:.0f} "
              f"steal_percent={self.steal / capacity * 100:.0f}")
        if other / capacity > NOISE_SHARE_LIMIT:
            print(f"  NOISY target={name}: other work took {other / capacity * 100:.0f}% of the CPUs, "
                  f"so this run is not comparable to quiet ones")
            return True
        return False


LATENCY_UNITS = {"us": decimal.Decimal("0.001"), "ms": decimal.Decimal(1), "s": decimal.Decimal(1000),
                 "m": decimal.Decimal(60000), "h": decimal.Decimal(3600000)}

WRK_PATTERNS = {
    "rps": re.compile(r"^Requests/sec:\s+(\S+)", re.M),
    "requests": re.compile(r"^\s*(\d+) requests in (\S+), (\S+) read", re.M),
    "percentile": re.compile(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m|h)\s*$", re.M),
    "errors": re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"),
    "non2xx": re.compile(r"Non-2xx or 3xx responses: (\d+)"),
}


def to_ms(value, unit):
    """wrk's figure in milliseconds, exactly: a change of unit, no rounding."""
    return format((decimal.Decimal(value) * LATENCY_UNITS[unit]).normalize(), "f")


def run_wrk(url, seconds, log_path, cpus=None, threads=2, connections=64, extra=()):
    """One `wrk --latency` load on `url`, its threads on these CPUs (None: unpinned, as the
    calling script), its output appended to `log_path`. Returns its figures: rps (as printed),
    requests, elapsed, read, percentiles ({"50": (value, unit), ...}), errors (connect, read,
    write, timeout), non2xx, and client_cpu (wrk's CPU seconds)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = start_on_cpus(cpus, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                      start_new_session=True, text=True)
    out = wrk_output(p, url, seconds)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(argv)}\n{out}\n")
    if p.returncode != 0:
        raise Failure(f"wrk exited with status {p.returncode}:\n{out}")
    rps = WRK_PATTERNS["rps"].search(out)
    n = WRK_PATTERNS["requests"].search(out)
    percentiles = {m.group(1): (m.group(2), m.group(3)) for m in WRK_PATTERNS["percentile"].finditer(out)}
    if not rps or not n or "50" not in percentiles or "99" not in percentiles:
        raise Failure(f"cannot read wrk's output:\n{out}")
    e = WRK_PATTERNS["errors"].search(out)
    x = WRK_PATTERNS["non2xx"].search(out)
    return {
        "rps": rps.group(1),
        "requests": int(n.group(1)),
        "elapsed": n.group(2),
        "read": n.group(3),
        "percentiles": percentiles,
        "errors": tuple(int(v) for v in e.groups()) if e else (0, 0, 0, 0),
        "non2xx": int(x.group(1)) if x else 0,
        "client_cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def print_wrk_details(name, r, tag=""):
    """The `wrk` detail line of one load run by run_wrk(); returns True when the load had
    non-2xx/3xx responses or socket errors (kept-alive loads on loopback should have none),
    after printing a FLAGGED line."""
    p = r["percentiles"]
    connect, read, write, timeout = r["errors"]
    print(f"  wrk{tag} target={name} requests={r['requests']} in={r['elapsed']} read={r['read']} "
          f"latency p50={''.join(p['50'])} p75={''.join(p.get('75', ('?', '')))} "
          f"p90={''.join(p.get('90', ('?', '')))} p99={''.join(p['99'])} "
          f"non2xx_3xx={r['non2xx']} socket_errors connect={connect} read={read} write={write} "
          f"timeout={timeout}")
    if r["non2xx"] > 0 or connect + read + write + timeout > 0:
        print(f"  FLAGGED target={name}: {r['non2xx']} non-2xx/3xx responses, "
              f"{connect + read + write + timeout} socket errors")
        return True
    return False


def ratio(a, b):
    return f"{a / b:.2f}" if b > 0 else "inf"


def free_ports(count):
    """Ports the kernel hands out as free right now (held together so that they differ)."""
    holders, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            holders.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in holders:
            s.close()
    return ports


def wait_for_socket_file(path, proc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"{path}: the door application exited with status {proc.returncode}")
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise Failure(f"{path}: no door after {timeout} s")


def proc_status(pid):
    """VmRSS in kB and the thread count, from /proc/PID/status."""
    rss = threads = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, threads


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tool_version(argv, pattern):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(0) if m else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def process_stats():
    """(pid, fields after the command) of every process, from /proc/PID/stat: fields[0] is the
    state, [1] the ppid, [2] the pgrp, [11:15] utime, stime, cutime, cstime."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                yield int(entry), f.read().rpartition(")")[2].split()
        except OSError:
            continue


def group_cpu_seconds(pgids):
    """CPU time (user + system) used so far by every process in these process groups, including
    children they have reaped: xinetd's per-connection servers end up in xinetd's cutime."""
    ticks = sum(sum(int(v) for v in fields[11:15]) for _, fields in process_stats() if int(fields[2]) in pgids)
    return ticks / os.sysconf("SC_CLK_TCK")


def group_members(pgid):
    return [pid for pid, fields in process_stats() if int(fields[2]) == pgid]


def descendants(pid):
    """Every live process below pid, found through the parent links in /proc."""
    children = {}
    for child, fields in process_stats():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# Where the load generator runs relative to the servers. `shared`: nothing pinned, wrk and the
# servers take turns on every CPU, so wrk's own time per request is charged to every target
# alike. `split`: wrk on the upper half of the CPUs, every server thread on the others, as with
# a load generator on a separate machine.
PLACEMENTS = ("shared", "split")


def cpu_list(cpus):
    """A CPU set the way the kernel writes Cpus_allowed_list: 0-3,6."""
    ranges, cpus = [], sorted(cpus)
    for cpu in cpus:
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


class Placement:
    """One placement: the CPUs of the servers and of wrk (None for wrk: inherit, unpinned)."""

    def __init__(self, name, servers, client):
        self.name, self.servers = name, frozenset(servers)
        self.client = None if client is None else frozenset(client)

    def describe(self):
        if self.client is None:
            return f"placement={self.name}"
        return f"placement={self.name} servers_cpus={cpu_list(self.servers)} client_cpus={cpu_list(self.client)}"


def placements(choice):
    """The placements to measure, in order, for --placement shared, split or both, and a note
    (else None) to print. The CPUs are those this script may use; split gives wrk the upper half
    (rounded down: the servers keep the odd one out) and the servers the rest. Fewer than 2 CPUs
    leave no room for split: the note says so and only shared runs."""
    usable = sorted(os.sched_getaffinity(0))
    shared = Placement("shared", usable, None)
    wanted = PLACEMENTS if choice == "both" else (choice,)
    if "split" in wanted and len(usable) < 2:
        return [shared], (f"placement split needs 2 CPUs and this script may use {len(usable)}: "
                          f"running placement shared only")
    half = len(usable) - len(usable) // 2
    split = Placement("split", usable[:half], usable[half:])
    return [p for p in (shared, split) if p.name in wanted], None


def add_placement_option(parser):
    parser.add_argument("--placement", choices=("shared", "split", "both"), default="both",
                        help="shared: nothing pinned; split: wrk on the upper half of the CPUs, the "
                             "servers on the rest; both (default): shared, then split")


def pin_servers(leaders, cpus):
    """Sets the CPU affinity of every thread of the servers: each process in the process groups
    these leaders lead (nginx's workers) and each descendant of a leader (xinetd's servers, in
    sessions of their own). Threads and processes created later inherit it from their creator.
    One that exits meanwhile is skipped; one that cannot be pinned makes the placement void.
    Returns the number of threads set."""
    # One pass over /proc: the process group and the parent of every process.
    pgids, pids, children = set(leaders), set(), {}
    for pid, fields in process_stats():
        if int(fields[2]) in pgids:
            pids.add(pid)
        children.setdefault(int(fields[1]), []).append(pid)
    todo = list(leaders)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in pids:
                pids.add(child)
                todo.append(child)
    pinned = 0
    for pid in sorted(pids):
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
                # Read back: a cpuset or a policy may narrow or refuse the mask without an error.
                if os.sched_getaffinity(tid) != set(cpus):
                    raise Failure(f"thread {tid} of pid {pid}: affinity {cpu_list(os.sched_getaffinity(tid))} "
                                  f"instead of {cpu_list(cpus)}")
                pinned += 1
            except ProcessLookupError:
                pass  # the thread exited since the listing
            except OSError as e:
                raise Failure(f"cannot set the CPU affinity of thread {tid} of pid {pid}: {e}")
    return pinned


def start_on_cpus(cpus, argv, **popen_args):
    """Popen(argv) with the child on these CPUs (None: as this script). The calling thread takes
    the mask for the fork and gives it back: the child inherits it before exec, so wrk's threads
    all start on it, and no preexec_fn runs in a child forked while the sampler thread runs."""
    if cpus is None:
        return subprocess.Popen(argv, **popen_args)
    own = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return subprocess.Popen(argv, **popen_args)
    finally:
        os.sched_setaffinity(0, own)


def prerequisites_present(script, binaries, tools):
    """Whether every program of `binaries` (target name -> path) is built and every command of
    `tools` installed; says on stderr what is missing and how to get it."""
    present = True
    for name, path in binaries.items():
        if not os.access(path, os.X_OK):
            print(f"{script}: {path} missing: build the {name} target first", file=sys.stderr)
            present = False
    for tool in tools:
        if shutil.which(tool) is None:
            print(f"{script}: {tool} not found: tests/install-deps.sh bench", file=sys.stderr)
            present = False
    return present


def start_portunusd(procs, portunusd_bin, conf, tmp):
    """Starts portunusd on `conf` after `portunusd -n` has accepted it (a generated config that
    is wrong fails here, with the daemon's own messages, rather than as a load that never
    connects). Its output goes to tmp/portunusd.log."""
    check = subprocess.run([str(portunusd_bin), "-n", "-f", str(conf)], capture_output=True, text=True, timeout=10)
    if check.returncode != 0:
        raise Failure(f"portunusd -n rejects the generated config:\n{check.stdout}{check.stderr}")
    return procs.start("portunusd", [str(portunusd_bin), "-f", str(conf)], tmp / "portunusd.log")
