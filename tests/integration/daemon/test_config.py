#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Start-up as an operator sees it: -n, and every failure an operator must fix (exit 96: SMF puts
# the service into maintenance instead of restarting it for ever).
import glob
import os
import socket
import subprocess
import unittest

import harness
from harness import DaemonTest, listen_text, program, toml_config

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def run_daemon(args, cwd=None, timeout=10):
    return subprocess.run([program("portunusd"), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


class ConfigCheck(DaemonTest):
    """None of these starts an application: the daemon must judge the file on its own."""

    def good_config(self, port):
        return toml_config({"log_level": "info"}, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")},
            {"protocol": "udp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")},
        ])

    def test_check_good_file(self):
        # A socket already listening on the configured port shows that -n binds nothing.
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            out = run_daemon(["-n", "-f", self.write_config(self.good_config(port))])
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "configuration OK\n", ""))

    def test_golden_errors(self):
        cases = sorted(glob.glob(os.path.join(GOLDEN, "*.toml")))
        self.assertGreaterEqual(len(cases), 5)
        for path in cases:
            name = os.path.basename(path)
            with open(path[:-len(".toml")] + ".errors") as f:
                expected = f.read()
            for args in (["-n", "-f", name], ["-f", name]):
                with self.subTest(file=name, args=args):
                    # Run from the golden directory so the messages name the file as written there.
                    out = run_daemon(args, cwd=GOLDEN)
                    self.assertEqual(out.returncode, 96, out.stderr)
                    self.assertEqual(out.stdout, "")
                    self.assertEqual(out.stderr, expected)

    def test_a_drain_longer_than_the_service_stop_timeout_is_warned_of(self):
        port = self.reserve_port()
        fits = toml_config({"log_level": "info", "drain_timeout": "55s"}, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")}])
        out = run_daemon(["-n", "-f", self.write_config(fits, "fits.toml")])
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "configuration OK\n", ""))
        long = toml_config({"log_level": "info", "drain_timeout": "2m"}, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")}])
        out = run_daemon(["-n", "-f", self.write_config(long, "long.toml")])
        self.assertEqual((out.returncode, out.stdout), (0, "configuration OK\n"), out.stderr)
        self.assertRegex(out.stderr, r"^portunusd: warning: stop_grace \+ drain_timeout leave too little of the "
                                     r"60 s .* to at least 126 s, or a drain is cut short by SIGKILL\n$")
        graced = toml_config({"log_level": "info", "drain_timeout": "50s", "stop_grace": "10s"}, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")}])
        out = run_daemon(["-n", "-f", self.write_config(graced, "graced.toml")])
        self.assertEqual((out.returncode, out.stdout), (0, "configuration OK\n"), out.stderr)
        self.assertIn("to at least 66 s", out.stderr)

    def test_door_directory_writable_by_others(self):
        unsafe = self.path("unsafe")
        os.mkdir(unsafe)
        os.chmod(unsafe, 0o777)
        with open(os.path.join(GOLDEN, "insecure_door_dir.toml.in")) as f:
            text = f.read().replace("@DIR@", unsafe)
        config = self.write_config(text)
        with open(os.path.join(GOLDEN, "insecure_door_dir.errors.in")) as f:
            expected = f.read().replace("@DIR@", unsafe).replace("@FILE@", config)
        out = run_daemon(["-n", "-f", config])
        self.assertEqual((out.returncode, out.stdout, out.stderr), (96, "", expected))

    def test_missing_file(self):
        missing = self.path("nope.toml")
        out = run_daemon(["-n", "-f", missing])
        self.assertEqual((out.returncode, out.stdout, out.stderr),
                         (96, "", f"{missing}:1:1: cannot read: No such file or directory\n"))

    def test_not_a_regular_file(self):
        # Opening a FIFO for reading waits for a writer: the daemon must refuse it without waiting.
        fifo = self.path("fifo.toml")
        os.mkfifo(fifo)
        for path in (fifo, os.devnull):
            for args in (["-n", "-f", path], ["-f", path]):
                with self.subTest(args=args):
                    try:
                        out = run_daemon(args, timeout=5)
                    except subprocess.TimeoutExpired:
                        self.fail(f"portunusd {' '.join(args)} still running after 5 s")
                    self.assertEqual((out.returncode, out.stdout, out.stderr),
                                     (96, "", f"{path}:1:1: cannot read: not a regular file\n"))

    def test_unknown_option_is_a_usage_error(self):
        out = run_daemon(["-x"])
        self.assertEqual(out.returncode, 64)
        self.assertIn("unknown option '-x'", out.stderr)
        self.assertIn("usage: portunusd", out.stderr)


class FatalStartup(DaemonTest):
    def test_cannot_bind(self):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            config = self.write_config(toml_config({"log_level": "info"}, [
                {"name": "taken", "protocol": "tcp", "listen": listen_text("127.0.0.1", port),
                 "door": self.path("echo.door")}]))
            out = run_daemon(["-f", config])
        self.assertEqual(out.returncode, 96, out.stderr)
        self.assertEqual(out.stdout, "")
        lines = out.stderr.splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        self.assertRegex(lines[0], rf"critical: cannot bind tcp 127\.0\.0\.1:{port} \(forward taken\): "
                                   r"Address already in use$")

    @unittest.skipUnless(os.geteuid() == 0, "needs root: only root may switch user, so only then is the "
                                            "user looked up")
    def test_unknown_user(self):
        port = self.reserve_port()
        config = self.write_config(toml_config({"log_level": "info", "user": "no-such-user-here"}, [
            {"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": self.path("echo.door")}]))
        self.assertEqual(run_daemon(["-n", "-f", config]).returncode, 0)
        out = run_daemon(["-f", config])
        self.assertEqual(out.returncode, 96, out.stderr)
        lines = out.stderr.splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        self.assertRegex(lines[0], r"critical: cannot drop privileges: unknown user 'no-such-user-here'$")


if __name__ == "__main__":
    harness.main()
