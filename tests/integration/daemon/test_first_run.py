#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# What a new user meets first: the sample configuration checks on a fresh clone, door
# directories the applications have not made yet are a warning while unsafe ones stay errors,
# every problem of a file comes in one run, log = "syslog" without a syslog daemon says so and
# logs to stderr, and serve() names the directory that is missing or not writable.
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
import unittest

import harness
from harness import DaemonTest, listen_text, program, toml_config

SOURCE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
INSECURE = (r"is writable by (its group and others|its group|others) \(mode \d+\), so another user could "
            r"replace the door")


def run_daemon(args, cwd=None, timeout=10):
    return subprocess.run([program("portunusd"), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def line_of(text, needle):
    """The 1-based line of the first line of `text` containing `needle`."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in the configuration")


class DoorDirectories(DaemonTest):
    def forward(self, port, door, **more):
        return {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": door, **more}

    def test_sample_configuration_checks_on_a_fresh_clone(self):
        # The sample's header says to run exactly this first, before the demo made its directory.
        out = run_daemon(["-n", "-f", "etc/portunusd.toml"], cwd=SOURCE)
        self.assertEqual((out.returncode, out.stdout), (0, "configuration OK\n"), out.stderr)
        for line in out.stderr.splitlines():
            self.assertRegex(line, r"^etc/portunusd\.toml:\d+:\d+: warning: door: directory "
                                   r"\"/tmp/portunusd-demo\" does not exist yet; the application that "
                                   r"serves this door needs it")

    def test_missing_directory_is_a_warning_and_the_forward_works_once_it_is_there(self):
        later = self.path("later")
        port = self.reserve_port()
        config = self.write_config(toml_config(self.daemon_defaults(),
                                               [self.forward(port, os.path.join(later, "echo.door"))]))
        out = run_daemon(["-n", "-f", config])
        with open(config) as f:
            at = line_of(f.read(), "later/echo.door")
        self.assertEqual((out.returncode, out.stdout), (0, "configuration OK\n"), out.stderr)
        self.assertRegex(out.stderr, rf"^{re.escape(config)}:{at}:8: warning: door: directory \"{later}\" does not "
                                     r"exist yet; the application that serves this door needs it \(create it, "
                                     r"writable only by its owner, before starting the application\)\n$")

        d = self.start_daemon([self.forward(port, os.path.join(later, "echo.door"))])
        d.wait_log(rf"warning: {re.escape(config)}:{at}:8: door: directory \"{later}\" does not exist yet")
        os.mkdir(later, 0o755)
        app = self.start_app("later/echo.door")
        self.round_trip(port, b"now it is there", b"now it is there")
        # A reload reads the directory again: it exists now, so no new warning.
        warnings = d.count("does not exist yet")
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"reload: \d+ forward\(s\) added", timeout=5)
        time.sleep(0.2)
        self.assertEqual(d.count("does not exist yet"), warnings, d.tail())
        app.stop()

    def test_unsafe_directories_stay_errors(self):
        world = self.path("world")
        sticky = self.path("sticky")
        group = self.path("group")
        for path, mode in ((world, 0o777), (sticky, 0o1777), (group, 0o775)):
            os.mkdir(path)
            os.chmod(path, mode)
        plain = self.path("plain")
        open(plain, "w").close()
        link = self.path("link")
        os.symlink(world, link)
        cases = {world: INSECURE, sticky: INSECURE, group: INSECURE, link: INSECURE,
                 plain: r"is not a directory"}
        for directory, message in cases.items():
            with self.subTest(directory=directory):
                config = self.write_config(toml_config(self.daemon_defaults(), [
                    self.forward(self.reserve_port(), os.path.join(directory, "x.door"))]))
                for args in (["-n", "-f", config], ["-f", config]):
                    out = run_daemon(args)
                    self.assertEqual((out.returncode, out.stdout), (96, ""), out.stderr)
                    self.assertRegex(out.stderr, rf"^{re.escape(config)}:\d+:8: door: .*{message}")
                    self.assertNotIn("portunusd ready", out.stderr)

    def test_every_problem_in_one_run(self):
        world = self.path("world")
        os.mkdir(world)
        os.chmod(world, 0o777)
        missing = self.path("missing")
        p1, p2 = self.reserve_port(), self.reserve_port()
        text = toml_config(self.daemon_defaults(), [
            self.forward(p1, os.path.join(world, "a.door"), max_concurrency=0),
            self.forward(p2, os.path.join(missing, "b.door"), queue=-1),
        ])
        config = self.write_config(text)
        lines = text.splitlines()
        conc = line_of(text, "max_concurrency")
        queue = line_of(text, "queue = -1")
        door_a = line_of(text, "world/a.door")
        door_b = line_of(text, "missing/b.door")
        col = lambda n, key: lines[n - 1].index("=") + 3 if key else 8
        for args in (["-n", "-f", config], ["-f", config]):
            with self.subTest(args=args):
                out = run_daemon(args)
                self.assertEqual((out.returncode, out.stdout), (96, ""), out.stderr)
                got = out.stderr.splitlines()
                self.assertEqual(len(got), 4, out.stderr)
                self.assertRegex(got[0], rf"^{re.escape(config)}:{door_a}:8: door: directory \"{world}\" {INSECURE}")
                self.assertRegex(got[1], rf"^{re.escape(config)}:{conc}:{col(conc, True)}: max_concurrency: ")
                self.assertRegex(got[2], rf"^{re.escape(config)}:{door_b}:8: warning: door: directory \"{missing}\" "
                                         r"does not exist yet")
                self.assertRegex(got[3], rf"^{re.escape(config)}:{queue}:{col(queue, True)}: queue: ")


class SyslogFallback(DaemonTest):
    """log = "syslog" where nothing listens on /dev/log: a warning and the log on stderr.

    The daemon runs in a mount namespace of its own where /dev is a fresh tmpfs (so /dev/log is
    absent, or is a socket this test listens on), with /dev/null put back.
    """

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare(1) for a mount namespace")
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest(f"unshare -m does not work here: {probe.stderr.decode().strip()}")

    def start_hidden(self, config, syslog_socket=None):
        null = self.path("null")
        open(null, "w").close()
        script = (f'mount --bind /dev/null "{null}" && mount -t tmpfs -o mode=0755 tmpfs /dev && '
                  f'touch /dev/null && mount --bind "{null}" /dev/null && ')
        if syslog_socket:
            script += f'touch /dev/log && mount --bind "{syslog_socket}" /dev/log && '
        script += f'exec "{program("portunusd")}" -f "{config}"'
        log = self.path("hidden.log")
        d = harness.Daemon(["unshare", "-m", "--propagation", "private", "sh", "-c", script], log, config, None, [])
        self._processes.append(d)
        return d

    def config(self):
        settings = self.daemon_defaults()
        settings.update(log="syslog", access_log="syslog")
        return self.write_config(toml_config(settings, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", self.reserve_port()), "door": self.path("e.door")}]))

    def test_no_syslog_daemon(self):
        d = self.start_hidden(self.config())
        d.wait_log(r" warning: syslog is not reachable \(/dev/log does not exist\); logging the daemon log and "
                   r"the access log to stderr instead$")
        d.wait_log(r"portunusd ready")
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"syslog is not reachable", count=2)
        self.assertEqual(d.stop(), 0, d.tail())

    def test_a_listening_syslog_gets_the_log(self):
        path = self.path("log.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sockets.append(listener)
        listener.bind(path)
        listener.settimeout(5)
        d = self.start_hidden(self.config(), syslog_socket=path)
        got = b""
        deadline = time.monotonic() + 5
        while b"portunusd ready" not in got and time.monotonic() < deadline:
            try:
                got += listener.recv(4096) + b"\n"
            except socket.timeout:
                break
        self.assertIn(b"portunusd ready", got, d.tail())
        self.assertNotIn("syslog is not reachable", d.log())
        self.assertEqual(d.stop(), 0, d.tail())


class ServeErrors(DaemonTest):
    """serve() says what is wrong with the door's directory, not "no such door"."""

    def run_app(self, door, user=None):
        argv = [program("echo"), door]
        if user is not None:
            argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def test_missing_directory(self):
        missing = self.path("nowhere")
        out = self.run_app(os.path.join(missing, "echo.door"))
        self.assertEqual(out.returncode, 96, out.stderr)
        self.assertEqual(out.stderr, f"echo: cannot serve {missing}/echo.door: directory {missing} does not exist\n")

    def test_not_a_directory(self):
        plain = self.path("plain")
        open(plain, "w").close()
        out = self.run_app(os.path.join(plain, "echo.door"))
        self.assertEqual(out.returncode, 96, out.stderr)
        self.assertEqual(out.stderr, f"echo: cannot serve {plain}/echo.door: {plain} is not a directory\n")

    def test_directory_not_writable(self):
        closed = self.path("closed")
        os.mkdir(closed, 0o555)
        user = None
        if os.geteuid() == 0:
            # Root writes anywhere: run the application as an account that may not.
            if not shutil.which("setpriv"):
                self.skipTest("needs setpriv(1) to run the application as another user")
            user = pwd.getpwnam("nobody")
        out = self.run_app(os.path.join(closed, "echo.door"), user)
        uid = user.pw_uid if user else os.geteuid()
        self.assertEqual(out.returncode, 96, out.stderr)
        self.assertEqual(out.stderr, f"echo: cannot serve {closed}/echo.door: permission denied: uid {uid} cannot "
                                     f"create a door in directory {closed}\n")


if __name__ == "__main__":
    harness.main()
