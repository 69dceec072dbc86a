# SPDX-License-Identifier: MPL-2.0
# A small network of Linux network namespaces: a client, an HAProxy balancer and N hosts, each
# host running portunusd and http_test_app. The multihost test and bench/multihost_bench.py
# share it. Every namespace is named PREFIX-<runner pid>-<random>-<role>, so a run can delete
# the leftovers of runs whose process is gone without touching a run still going on.
#
#   client 10.77.1.2 ──veth── 10.77.1.1 balancer (bridge br0 10.77.2.1) ──veth── host i 10.77.2.1i

import os
import random
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

from harness import Process, toml_config  # noqa: E402

PREFIX = "pdmh"
CLIENT_ADDR = "10.77.1.2"
FRONT_ADDR = "10.77.1.1"
BACK_ADDR = "10.77.2.1"
FRONT_PORT = 8080
FORWARD_PORT = 8088
METRICS_PORT = 9187
COMMAND_TIMEOUT = 10


def host_addr(i):
    return f"10.77.2.{10 + i}"


class Unavailable(Exception):
    """What this machine lacks to build the network (not root, no ip netns, no haproxy)."""


def _run(argv, check=True):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {(r.stderr + r.stdout).strip()}")
    return r


def missing_requirements(need_haproxy=True):
    """Why the network cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if not shutil.which("ip"):
        return "no ip(8) (Debian package iproute2)"
    if need_haproxy and not shutil.which("haproxy"):
        return "no haproxy (Debian package haproxy; tests/install-deps.sh test)"
    probe = f"{PREFIX}-probe-{os.getpid()}"
    r = _run(["ip", "netns", "add", probe], check=False)
    if r.returncode != 0:
        return f"ip netns add failed: {r.stderr.strip()}"
    _run(["ip", "netns", "del", probe], check=False)
    return None


def _namespaces():
    r = _run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _kill_namespace(ns):
    """Kills every process still in `ns`, then deletes it."""
    for _ in range(50):
        pids = [int(p) for p in _run(["ip", "netns", "pids", ns], check=False).stdout.split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    _run(["ip", "netns", "del", ns], check=False)


def remove_stale():
    """Deletes the namespaces and directories of earlier runs whose runner process is gone."""
    stale = []
    for ns in _namespaces():
        m = re.fullmatch(rf"{PREFIX}-(\d+)-\w+-\w+", ns)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            stale.append(ns)
    for ns in stale:
        _kill_namespace(ns)
    for d in os.listdir("/tmp"):
        m = re.fullmatch(rf"{PREFIX}-(\d+)-\w+", d)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            shutil.rmtree(os.path.join("/tmp", d), ignore_errors=True)
            stale.append(d)
    return stale


class Lab:
    """The namespaces, links and processes of one run. Use as a context manager: leaving it, by
    return or by exception, stops every process and deletes every namespace it made."""

    def __init__(self, programs, hosts=3, workdir=None):
        self.programs = programs
        self.hosts = hosts
        suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
        self.name = f"{PREFIX}-{os.getpid()}-{suffix}"
        self.created = []
        self.processes = []
        # Door paths must fit in sun_path, and the daemon wants a door directory of mode 0755.
        self.tmp = workdir or os.path.join("/tmp", self.name)
        os.makedirs(self.tmp, mode=0o755, exist_ok=True)
        os.chmod(self.tmp, 0o755)
        self.daemons = {}
        self.apps = {}
        self.haproxy = None

    def ns(self, role):
        return f"{self.name}-{role}"

    def path(self, name):
        return os.path.join(self.tmp, name)

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- the network -------------------------------------------------------------------------

    def _add_ns(self, role):
        ns = self.ns(role)
        _run(["ip", "netns", "add", ns])
        self.created.append(ns)
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])
        return ns

    def _build(self):
        remove_stale()
        bal = self._add_ns("bal")
        cli = self._add_ns("cli")
        _run(["ip", "-n", bal, "link", "add", "br0", "type", "bridge"])
        _run(["ip", "-n", bal, "addr", "add", f"{BACK_ADDR}/24", "dev", "br0"])
        _run(["ip", "-n", bal, "link", "set", "br0", "up"])
        # Both ends are made inside the namespaces, so no name is ever taken in the host's own.
        _run(["ip", "-n", cli, "link", "add", "eth0", "type", "veth", "peer", "name", "front", "netns", bal])
        _run(["ip", "-n", cli, "addr", "add", f"{CLIENT_ADDR}/24", "dev", "eth0"])
        _run(["ip", "-n", cli, "link", "set", "eth0", "up"])
        _run(["ip", "-n", bal, "addr", "add", f"{FRONT_ADDR}/24", "dev", "front"])
        _run(["ip", "-n", bal, "link", "set", "front", "up"])
        for i in range(1, self.hosts + 1):
            h = self._add_ns(f"h{i}")
            _run(["ip", "-n", h, "link", "add", "eth0", "type", "veth", "peer", "name", f"h{i}", "netns", bal])
            _run(["ip", "-n", h, "addr", "add", f"{host_addr(i)}/24", "dev", "eth0"])
            _run(["ip", "-n", h, "link", "set", "eth0", "up"])
            _run(["ip", "-n", bal, "link", "set", f"h{i}", "master", "br0"])
            _run(["ip", "-n", bal, "link", "set", f"h{i}", "up"])

    def close(self):
        for p in reversed(self.processes):
            p.kill()
        for ns in reversed(self.created):
            _kill_namespace(ns)
        self.created = []
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- processes ---------------------------------------------------------------------------

    def spawn(self, role, argv, name, cpu=None):
        """Starts argv in the namespace of `role` (ip netns exec keeps the pid), optionally pinned."""
        prefix = ["ip", "netns", "exec", self.ns(role)]
        if cpu is not None:
            prefix += ["taskset", "-c", str(cpu)]
        p = Process(prefix + list(argv), self.path(f"{name}.log"), name)
        self.processes.append(p)
        return p

    def start_app(self, i, cpu=None, program="test_app"):
        """Starts host i's application: http_test_app tagged "h<i>", or another door program that
        takes its door path alone (hello_web)."""
        door = self.path(f"h{i}.door")
        old = os.lstat(door).st_ino if os.path.exists(door) else None
        argv = [self.programs[program], door] + (["--tag", f"h{i}"] if program == "test_app" else [])
        app = self.spawn(f"h{i}", argv, f"app-h{i}", cpu)
        self.apps[i] = app
        _wait(lambda: os.path.exists(door) and os.lstat(door).st_ino != old and app.alive(),
              5.0, f"h{i}: door {door} did not appear", app)
        return app

    def daemon_config(self, i, threads=1, proxy_protocol=True, drain_timeout="5s", stop_grace=None):
        forward = {"name": "web", "protocol": "http", "listen": f"{host_addr(i)}:{FORWARD_PORT}",
                   "door": self.path(f"h{i}.door"), "max_concurrency": 256, "queue": 4096}
        if proxy_protocol:
            forward["proxy_protocol"] = True
            forward["proxy_protocol_from"] = [f"{BACK_ADDR}/32"]
        daemon = {"log_level": "info", "threads": threads, "drain_timeout": drain_timeout,
                  "access_log": self.path(f"access-h{i}.log"),
                  "control_door": self.path(f"control-h{i}.door"),
                  "metrics_listen": f"{host_addr(i)}:{METRICS_PORT}"}
        if stop_grace:
            daemon["stop_grace"] = stop_grace
        return toml_config(daemon, [forward])

    def start_daemon(self, i, cpu=None, **config):
        path = self.path(f"h{i}.toml")
        with open(path, "w") as f:
            f.write(self.daemon_config(i, **config))
        log = self.path(f"portunusd-h{i}.log")
        start = os.path.getsize(log) if os.path.exists(log) else 0
        d = self.spawn(f"h{i}", [self.programs["portunusd"], "-f", path], f"portunusd-h{i}", cpu)
        self.daemons[i] = d

        def ready():
            with open(log, "rb") as f:
                f.seek(start)
                return b"portunusd ready" in f.read()

        _wait(ready, 5.0, f"h{i}: portunusd not ready", d)
        return d

    def start_haproxy(self, config_text, cpu=None):
        path = self.path("haproxy.cfg")
        with open(path, "w") as f:
            f.write(config_text)
        _run(["haproxy", "-c", "-f", path])
        self.haproxy = self.spawn("bal", ["haproxy", "-db", "-f", path], "haproxy", cpu)
        return self.haproxy

    def stats_socket(self):
        return self.path("haproxy.sock")


def _wait(predicate, timeout, what, process=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        if process is not None and not process.alive():
            raise AssertionError(f"{what}: {process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {timeout} s" + (f":\n{process.tail()}" if process else ""))
        time.sleep(0.01)


def haproxy_config(lab, template_path, hosts, send_proxy=True, inter="200ms", maxconn=2000):
    """The balancer's configuration: the template beside this file with this run's values."""
    with open(template_path) as f:
        text = f.read()
    servers = "\n".join(
        f"    server h{i} {host_addr(i)}:{FORWARD_PORT}" + (" send-proxy-v2" if send_proxy else "")
        for i in range(1, hosts + 1))
    values = {"STATS_SOCKET": lab.stats_socket(), "FRONT": f"{FRONT_ADDR}:{FRONT_PORT}", "SERVERS": servers,
              "INTER": inter, "METRICS_PORT": str(METRICS_PORT), "MAXCONN": str(maxconn)}
    return re.sub(r"@(\w+)@", lambda m: values[m.group(1)], text)


def server_states(sock_path):
    """{server: status} of the portunusd backend, from HAProxy's stats socket."""
    return {sv: fields["status"] for sv, fields in server_stats(sock_path).items()}


def server_stats(sock_path):
    """{server: {field: value}} of the portunusd backend (HAProxy's `show stat` columns)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    px, sv = header.index("pxname"), header.index("svname")
    out = {}
    for line in lines[1:]:
        f = line.split(",")
        if len(f) >= len(header) - 1 and f[px] == "portunusd" and f[sv] not in ("BACKEND", "FRONTEND"):
            out[f[sv]] = dict(zip(header, f))
    return out
