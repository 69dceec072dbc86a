#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# The readiness protocol as a service manager sees it: a datagram socket the test binds and names
# in NOTIFY_SOCKET hears READY=1 once the ports accept, RELOADING=1 / READY=1 around a reload
# (SIGHUP or `portunus reload`, a bad file included) and STOPPING=1 when a drain begins.
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, listen_text  # noqa: E402


def parse(datagram):
    """A notification as a dict of its NAME=value lines."""
    fields = {}
    for line in datagram.decode().splitlines():
        name, _, value = line.partition("=")
        fields[name] = value
    return fields


class Notify(DaemonTest):
    abstract = False

    def setUp(self):
        super().setUp()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sockets.append(self.listener)
        if self.abstract:
            name = f"pd-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.listener.bind("\0" + name)
            self.notify_socket = "@" + name
        else:
            self.listener.bind(self.path("notify.sock"))
            self.notify_socket = self.path("notify.sock")
        self.app = self.start_app("echo.door")
        self.port = self.reserve_port()
        self.forwards = [{"protocol": "tcp", "listen": listen_text("127.0.0.1", self.port), "door": self.app.door}]

    def start(self, daemon=None):
        os.environ["NOTIFY_SOCKET"] = self.notify_socket
        try:
            return self.start_daemon(self.forwards, daemon=daemon, wait=False)
        finally:
            del os.environ["NOTIFY_SOCKET"]

    def receive(self, d, timeout=5.0):
        """The next notification, within `timeout` seconds."""
        self.listener.settimeout(timeout)
        try:
            return parse(self.listener.recv(4096))
        except socket.timeout:
            self.fail(f"no notification within {timeout} s; daemon log:\n{d.tail()}")

    def ready(self):
        d = self.start()
        m = self.receive(d)
        # The first thing the manager hears is READY, and the port serves at that moment.
        self.assertEqual(m.get("READY"), "1", m)
        self.round_trip(self.port, b"served at READY")
        self.assertEqual(m.get("MAINPID"), str(d.pid))
        self.assertIn("serving 1 forward(s)", m.get("STATUS", ""))
        return d

    def test_ready_once_the_port_serves(self):
        self.ready()

    def test_sighup_reloading_then_ready(self):
        d = self.ready()
        before = time.monotonic_ns() // 1000
        d.send_signal(signal.SIGHUP)
        m = self.receive(d)
        self.assertEqual(m.get("RELOADING"), "1", m)
        # CLOCK_MONOTONIC, as Python's monotonic clock on Linux.
        usec = int(m["MONOTONIC_USEC"])
        self.assertTrue(before <= usec <= time.monotonic_ns() // 1000, (before, usec))
        m = self.receive(d)
        self.assertEqual(m.get("READY"), "1", m)
        self.assertIn("reloaded", m.get("STATUS", ""))
        self.round_trip(self.port, b"after reload")

    def test_bad_reload_ends_ready_with_the_failure_in_status(self):
        d = self.ready()
        settings = self.daemon_defaults()
        settings["threads"] = "many"
        self.write_config(harness.toml_config(settings, self.forwards), os.path.basename(d.config_path))
        d.send_signal(signal.SIGHUP)
        self.assertEqual(self.receive(d).get("RELOADING"), "1")
        m = self.receive(d)
        self.assertEqual(m.get("READY"), "1", m)
        self.assertIn("reload failed", m.get("STATUS", ""))
        self.assertIn("threads", m.get("STATUS", ""))
        self.assertIn("still serving the previous configuration", m["STATUS"])
        self.round_trip(self.port, b"old configuration still serves")

    def test_portunus_reload_notifies_too(self):
        if not harness.program("portunus"):
            self.skipTest("the portunus CLI was not given")
        d = self.ready()
        p = subprocess.run([harness.program("portunus"), "reload", "--control", self.path("control.door")],
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.receive(d).get("RELOADING"), "1")
        self.assertEqual(self.receive(d).get("READY"), "1")

    def test_sigterm_stopping(self):
        d = self.ready()
        d.send_signal(signal.SIGTERM)
        m = self.receive(d)
        self.assertEqual(m.get("STOPPING"), "1", m)
        self.assertIn("SIGTERM", m.get("STATUS", ""))
        self.assertEqual(d.wait(10), 0)

    def test_a_manager_that_is_gone_stops_nothing(self):
        # Nobody reads the socket any more: every send fails, the daemon serves on and says so once.
        self.listener.close()
        if not self.abstract:
            os.unlink(self.notify_socket)
        d = self.start()
        self.wait_ready(d)
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"reload: \d+ forward\(s\) added")
        self.round_trip(self.port, b"still serving")
        self.assertEqual(d.count("cannot notify the service manager"), 1, d.tail())


class NotifyAbstract(Notify):
    abstract = True


class NoNotifySocket(DaemonTest):
    def test_bad_notify_socket_is_reported_and_ignored(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        os.environ["NOTIFY_SOCKET"] = "relative/path"
        try:
            d = self.start_daemon([{"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}])
        finally:
            del os.environ["NOTIFY_SOCKET"]
        d.wait_log("NOTIFY_SOCKET 'relative/path' is neither")
        self.round_trip(port, b"served")


if __name__ == "__main__":
    harness.main()
