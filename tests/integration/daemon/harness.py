# SPDX-License-Identifier: MPL-2.0
# The fixture every daemon integration test uses: a private directory, door applications, the
# real portunusd with a generated configuration, clients, and a cleanup that always runs.

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# Filled in by main() from the command line CTest passes.
PROGRAMS = {}

READY_TIMEOUT = 5.0
# No single test may run longer than this; the alarm turns a hang into a failure with cleanup.
TEST_TIME_LIMIT = 60

# Set by CTest for a sanitizer build: there, a process's memory is mostly ASan's shadow and the
# quarantine of freed blocks, so bounds on RSS say nothing about the code and are not asserted.
SANITIZED = os.environ.get("PORTUNUS_SANITIZED", "0") == "1"

# What a sanitizer prints when it finds something; any of these in a child's output fails the test.
_SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:")


def _wrapped(argv, nofile):
    """argv run so that it dies with the test runner, with RLIMIT_NOFILE set if asked.

    If the runner itself is killed (a CTest timeout), its children must not outlive it. util-linux
    setpriv and prlimit set this up and exec the program, which keeps its pid; a preexec_fn could
    do the same, but is unsafe in a process that has threads, as some tests do when they start an
    application.
    """
    prefix = []
    if shutil.which("setpriv"):
        prefix += ["setpriv", "--pdeathsig", "KILL"]
    if nofile is not None:
        prefix += ["prlimit", f"--nofile={nofile}:{nofile}"]
    return prefix + list(argv)


def program(name):
    return PROGRAMS[name]


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout(f"test exceeded its {TEST_TIME_LIMIT} s limit")


class Process:
    """A child process whose stdout and stderr go to one log file."""

    def __init__(self, argv, log_path, name, nofile=None, own_session=False):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.check_exit = True
        # own_session: for a process the test stops (SIGSTOP). In the runner's process group, a
        # stopped member makes the kernel send SIGHUP to the whole group whenever the group is
        # orphaned (a shell or runner above it exits), which would kill the application; alone
        # in a session of its own, nothing can orphan it.
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(_wrapped(self.argv, nofile), stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=log, close_fds=True, start_new_session=own_session)

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def count(self, pattern):
        return len(re.findall(pattern, self.log(), re.MULTILINE))

    def wait_log(self, pattern, timeout=5.0, count=1):
        """Waits until `pattern` (a regex) occurs at least `count` times; returns the last match."""
        deadline = time.monotonic() + timeout
        while True:
            matches = list(re.finditer(pattern, self.log(), re.MULTILINE))
            if len(matches) >= count:
                return matches[count - 1]
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: /{pattern}/ seen {len(matches)} time(s), wanted {count}, "
                                     f"within {timeout} s; log:\n{self.tail()}")
            time.sleep(0.02)

    def send_signal(self, sig):
        self.popen.send_signal(sig)

    def wait(self, timeout):
        """The exit status, or None if still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL if it lingers. Returns the exit status (negative: a signal)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.popen.kill()
                self.popen.wait()
                return None
        return self.popen.returncode

    def kill(self):
        if self.alive():
            self.popen.kill()
        self.popen.wait()


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    # JSON string escapes are valid TOML basic-string escapes for everything used here.
    return json.dumps(str(v))


def toml_config(daemon, forwards, apps=()):
    """The configuration text. A forward's "map" entry, a list of dicts, becomes [[forward.map]]
    tables after the forward's own keys; a list value (a map's methods) becomes a TOML array.
    Each of `apps` becomes an [[app]] table; a dict value (its environment) an inline table."""

    def value(v):
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(toml_value(e) for e in v) + "]"
        return toml_value(v)

    lines = ["[daemon]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in daemon.items()]
    for f in forwards:
        lines += ["", "[[forward]]"]
        maps = f.get("map")
        # Sub-tables must follow every key of their parent table, or those keys would land in
        # the last sub-table.
        lines += [f"{k} = {value(v)}" for k, v in f.items() if k != "map" or not isinstance(v, list)]
        for m in maps if isinstance(maps, list) else []:
            lines += ["", "[[forward.map]]"]
            lines += [f"{k} = {value(v)}" for k, v in m.items()]
    for a in apps:
        lines += ["", "[[app]]"]
        for k, v in a.items():
            if isinstance(v, dict):
                v = "{ " + ", ".join(f"{ek} = {toml_value(ev)}" for ek, ev in v.items()) + " }"
                lines.append(f"{k} = {v}")
            else:
                lines.append(f"{k} = {value(v)}")
    return "\n".join(lines) + "\n"


def listen_text(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_listen(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Daemon(Process):
    """A running portunusd and the configuration file it reads."""

    def __init__(self, argv, log_path, config_path, access_log, forwards, nofile=None):
        super().__init__(argv, log_path, "portunusd", nofile)
        self.config_path = config_path
        self.access_log_path = access_log
        self.forwards = forwards

    def access_log(self):
        try:
            with open(self.access_log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (FileNotFoundError, TypeError):
            return ""

    def wait_access_log(self, pattern, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.access_log(), re.MULTILINE)
            if m:
                return m
            if time.monotonic() >= deadline:
                raise AssertionError(f"access log: /{pattern}/ not seen within {timeout} s; log:\n"
                                     + "\n".join(self.access_log().splitlines()[-20:]))
            time.sleep(0.02)


    def wait_closed_sessions(self, forward, n, timeout=10.0):
        """Waits until `n` tcp sessions of `forward` have closed (each writes one access line)."""
        deadline = time.monotonic() + timeout
        while self.access_log().count(f"tcp forward={forward} ") < n:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.access_log().count(f'tcp forward={forward} ')} session(s) of "
                                     f"{forward} closed, expected {n}")
            time.sleep(0.02)


class DaemonTest(unittest.TestCase):
    """Base class: a private directory per test, and cleanup of everything started in it."""

    def setUp(self):
        # Door paths must fit in sun_path (108 bytes), hence a short directory under /tmp. Its
        # mode must be 0755: the daemon refuses a door directory that others can write.
        self.tmp = tempfile.mkdtemp(prefix="pd-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self._processes = []
        self._sockets = []
        self._reserved = []
        self._stop = threading.Event()
        self._threads = []
        self.addCleanup(self._cleanup)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.alarm(TEST_TIME_LIMIT)

    def _cleanup(self):
        signal.alarm(0)
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for s in self._sockets:
            s.close()
        problems = []
        for p in reversed(self._processes):
            was_alive = p.alive()
            status = p.stop()
            if isinstance(p, Daemon) and p.check_exit and was_alive and status != 0:
                problems.append(f"{p.name} exited with status {status} on SIGTERM; log:\n{p.tail()}")
            report = _SANITIZER_REPORT.search(p.log())
            if report:
                problems.append(f"{p.name}: sanitizer report:\n{p.log()[report.start():][:6000]}")
        for s in self._reserved:
            s.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            self.fail("\n".join(problems))

    # ---- paths and ports -------------------------------------------------------------------

    def path(self, name):
        return os.path.join(self.tmp, name)

    def reserve_port(self, host="127.0.0.1", udp=False):
        """A free port on `host`, tcp (and udp too when asked).

        The tcp port stays bound, with SO_REUSEADDR and without listening, until the test ends:
        the daemon (which also sets SO_REUSEADDR) can still bind and listen on it, but nothing
        else picks it meanwhile, not even the kernel for a client's ephemeral port. A connection
        to it when the daemon is not listening is refused, as it would be on a free port.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for _ in range(100):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            port = s.getsockname()[1]
            if udp:
                u = socket.socket(family, socket.SOCK_DGRAM)
                try:
                    u.bind((host, port))
                except OSError:
                    s.close()
                    continue
                finally:
                    u.close()
            self._reserved.append(s)
            return port
        self.fail(f"no free port on {host}")

    # ---- applications ----------------------------------------------------------------------

    def start_app(self, door_name, *args, program_name="test_app", name=None, own_session=False):
        """Starts a door application serving tmp/door_name; returns once the door answers.

        own_session: the test will SIGSTOP it (see Process).
        """
        door = self.path(door_name)
        name = name or f"{program_name}:{door_name}"
        log = self.path(f"{name.replace('/', '_').replace(':', '_')}.log")
        old = os.lstat(door).st_ino if os.path.exists(door) else None
        p = Process([program(program_name), door, *args], log, name, own_session=own_session)
        self._processes.append(p)
        # Ready once the path names this instance's door: a new inode (attach renames a fresh
        # socket over the path), and it accepts connections.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if not p.alive():
                self.fail(f"{name} exited with status {p.popen.returncode}:\n{p.tail()}")
            try:
                if os.lstat(door).st_ino != old:
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                    try:
                        s.connect(door)
                        break
                    finally:
                        s.close()
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.fail(f"{name}: door {door} not ready within {READY_TIMEOUT} s:\n{p.tail()}")
            time.sleep(0.01)
        p.door = door
        return p

    # ---- the daemon ------------------------------------------------------------------------

    def daemon_defaults(self):
        return {
            "log_level": "info",
            "access_log": self.path("access.log"),
            "threads": 2,
            "drain_timeout": "5s",
            # Each test's daemon gets a control door of its own: the default path is shared by
            # every daemon on the machine, and tests run side by side.
            "control_door": self.path("control.door"),
        }

    def write_config(self, text, name="portunusd.toml"):
        path = self.path(name)
        # Write and rename, so a reload never reads a half-written file.
        with open(path + ".new", "w") as f:
            f.write(text)
        os.rename(path + ".new", path)
        return path

    def start_daemon(self, forwards, daemon=None, args=(), wait=True, name="portunusd", nofile=None, apps=()):
        """Writes the configuration and starts portunusd -f on it.

        `forwards` is a list of dicts, one per [[forward]], written as given. With `wait`, returns
        once the daemon logged that it is ready and every tcp forward accepts a connection.
        `nofile` sets the daemon's RLIMIT_NOFILE.
        """
        settings = self.daemon_defaults()
        settings.update(daemon or {})
        daemons = sum(1 for p in self._processes if isinstance(p, Daemon))
        if daemons and settings.get("control_door") == self.path("control.door"):
            # A second daemon in one test gets a control door of its own: the daemon does not
            # take over a door another live daemon serves.
            settings["control_door"] = self.path(f"control-{daemons + 1}.door")
        config = self.write_config(toml_config(settings, forwards, apps), f"{name}.toml")
        access = settings.get("access_log")
        d = Daemon([program("portunusd"), "-f", config, *args], self.path(f"{name}.log"), config,
                   access if access and access.startswith("/") else None, forwards, nofile)
        self._processes.append(d)
        if wait:
            self.wait_ready(d)
        return d

    def wait_ready(self, d):
        deadline = time.monotonic() + READY_TIMEOUT
        while "portunusd ready" not in d.log():
            if not d.alive():
                self.fail(f"portunusd exited with status {d.popen.returncode} before it was ready:\n{d.tail()}")
            if time.monotonic() >= deadline:
                self.fail(f"portunusd not ready within {READY_TIMEOUT} s:\n{d.tail()}")
            time.sleep(0.01)
        for f in d.forwards:
            if f.get("protocol") != "tcp":
                continue
            host, port = split_listen(f["listen"])
            while True:
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        self.fail(f"tcp {f['listen']} refuses connections:\n{d.tail()}")
                    time.sleep(0.01)

    def reload(self, d, forwards, daemon=None, apps=()):
        """Rewrites the configuration, sends SIGHUP and waits for the reload to be logged."""
        settings = self.daemon_defaults()
        settings.update(daemon or {})
        done = d.count(r"reload: \d+ forward\(s\) added")
        self.write_config(toml_config(settings, forwards, apps), os.path.basename(d.config_path))
        d.forwards = forwards
        d.send_signal(signal.SIGHUP)
        return d.wait_log(r"reload: \d+ forward\(s\) added, \d+ changed, \d+ removed", count=done + 1)

    # ---- clients ---------------------------------------------------------------------------

    def connect(self, port, host="127.0.0.1", timeout=3.0):
        s = socket.create_connection((host, port), timeout=timeout)
        self._sockets.append(s)
        return s

    def recv_exact(self, s, n, timeout=3.0):
        """Reads exactly n bytes; fails if the connection ends or stalls first."""
        s.settimeout(timeout)
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                self.fail(f"connection closed after {len(data)} of {n} bytes: {data[:80]!r}")
            data += chunk
        return data

    def exchange(self, s, request, expected, timeout=3.0):
        s.sendall(request)
        reply = self.recv_exact(s, len(expected), timeout)
        self.assertEqual(reply, expected)

    def round_trip(self, port, request, expected=None, host="127.0.0.1", timeout=3.0):
        """One request on a new connection; checks the reply (default: the request echoed)."""
        with socket.create_connection((host, port), timeout=timeout) as s:
            self.exchange(s, request, request if expected is None else expected, timeout)

    def wait_closed(self, s, timeout=3.0):
        """Waits for the peer to close `s` (FIN or RST) with no data first; returns the seconds
        waited."""
        start = time.monotonic()
        s.settimeout(timeout)
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            self.fail(f"connection still open after {timeout} s")
        self.assertEqual(data, b"", "expected the connection to close without a reply")
        return time.monotonic() - start

    def assert_refused(self, port, host="127.0.0.1", within=1.0):
        """Connections to the port are refused, at the latest `within` seconds from now.

        The daemon logs a stop or reload before its listeners have closed (they close on their
        own strands), so a connection made right after the log line may still be accepted.
        """
        deadline = time.monotonic() + within
        while True:
            try:
                socket.create_connection((host, port), timeout=2).close()
            except ConnectionRefusedError:
                return
            if time.monotonic() >= deadline:
                self.fail(f"{listen_text(host, port)} still accepts connections after {within} s")
            time.sleep(0.01)

    def udp_request(self, port, data, host="127.0.0.1", timeout=2.0):
        """Sends one datagram; returns the reply or None if none came within `timeout`."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as u:
            u.settimeout(timeout)
            u.sendto(data, (host, port))
            try:
                return u.recv(65536)
            except socket.timeout:
                return None

    def background(self, fn, *args):
        """Runs fn(stop_event, *args) on a thread that cleanup stops and joins."""
        t = threading.Thread(target=fn, args=(self._stop, *args), daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def call_lines(self, log_path):
        """Calls an instance of test_door_app has started (its --log file)."""
        try:
            with open(log_path) as f:
                return sum(1 for line in f if line.startswith("call "))
        except FileNotFoundError:
            return 0

    def wait_calls(self, log_path, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while self.call_lines(log_path) < n:
            if time.monotonic() >= deadline:
                self.fail(f"{self.call_lines(log_path)} call(s) started, expected {n}")
            time.sleep(0.01)


# ---- /proc ---------------------------------------------------------------------------------

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def cpu_ticks(pid):
    """utime + stime of the whole process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # Fields 14 and 15 of stat(5); the split starts at field 3 (state).
    return int(fields[11]) + int(fields[12])


def status_field(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1:]
    return None


def have_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---- entry point ---------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--portunusd", required=True)
    parser.add_argument("--echo", required=True)
    parser.add_argument("--test-app", required=True)
    parser.add_argument("--hello-web")
    parser.add_argument("--portunus")
    args, rest = parser.parse_known_args()
    PROGRAMS.update(portunusd=args.portunusd, echo=args.echo, test_app=args.test_app,
                    hello_web=args.hello_web, portunus=args.portunus)
    # A test may open a thousand connections; the daemon inherits the raised limit too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 65536:
        hard = 65536
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    prog = unittest.main(module="__main__", argv=[sys.argv[0], *rest], exit=False, verbosity=2)
    result = prog.result
    print(f"{os.path.basename(sys.argv[0])}: {result.testsRun} test(s) in {time.monotonic() - started:.1f} s")
    if not result.wasSuccessful():
        sys.exit(1)
    # Every test skipped (e.g. not root): CTest shows the file as skipped, not passed.
    if result.testsRun and len(result.skipped) == result.testsRun:
        sys.exit(77)
    sys.exit(0)
