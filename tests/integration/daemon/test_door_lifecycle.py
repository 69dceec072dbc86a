#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Applications that die, restart, upgrade in place or never started, under a daemon that stays up.
import os
import signal
import socket
import threading
import time

import harness
from harness import DaemonTest, listen_text


def tcp(name, port, door, **extra):
    return {"name": name, "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": door, **extra}


class AppRestart(DaemonTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door", "--tag", "first")
        self.port = self.reserve_port()
        self.daemon = self.start_daemon([tcp("app", self.port, self.app.door)])

    def assert_request_fails_promptly(self, request=b"anyone there?"):
        s = self.connect(self.port)
        s.sendall(request)
        self.assertLess(self.wait_closed(s, timeout=3.0), 1.0)

    def test_killed_app_then_restarted(self):
        self.round_trip(self.port, b"before")
        self.app.kill()  # SIGKILL: the door's socket file stays behind, with nobody serving it
        self.assert_request_fails_promptly()
        self.assert_request_fails_promptly()
        self.daemon.wait_log(r"warning: forward app: door .*app\.door: no server at the door")
        self.start_app("app.door", "--tag", "second")
        self.round_trip(self.port, b"after restart")
        self.round_trip(self.port, b"who", b"second")
        self.assertTrue(self.daemon.alive())

    def test_app_crashes_mid_call(self):
        s = self.connect(self.port)
        self.exchange(s, b"before", b"before")
        s.sendall(b"crash")
        self.assertLess(self.wait_closed(s, timeout=3.0), 1.0)
        self.assertIsNotNone(self.app.wait(3.0))
        self.daemon.wait_log(r"warning: forward app: door .*app\.door: the door server died or abandoned the call")
        self.assert_request_fails_promptly()
        self.start_app("app.door", "--tag", "second")
        self.round_trip(self.port, b"who", b"second")

    def test_restart_under_connections_the_event_loops_hold(self):
        # Sequential requests leave door connections with both event loops; the application
        # then goes away and comes back between two requests, which must both succeed.
        d = self.restart_daemon_at_debug_level()
        for i in range(6):
            self.round_trip(self.port, f"warm {i}".encode())
        d.wait_log(r"an event loop (took|batches its calls on) a door connection of its own")
        self.app.kill()
        self.app.wait(3.0)
        self.start_app("app.door", "--tag", "second")
        for i in range(6):
            self.round_trip(self.port, b"who", b"second")
        self.assertTrue(d.alive())

    def restart_daemon_at_debug_level(self):
        self.assertEqual(self.daemon.stop(), 0)
        self.daemon = self.start_daemon([tcp("app", self.port, self.app.door)], daemon={"log_level": "debug"},
                                        name="portunusd-debug")
        return self.daemon

    def test_handler_exception_fails_only_that_call(self):
        s = self.connect(self.port)
        s.sendall(b"throw")
        self.assertLess(self.wait_closed(s, timeout=3.0), 1.0)
        # The application lives on, and so does the daemon's door handle.
        self.assertTrue(self.app.alive())
        self.round_trip(self.port, b"fine again")


def client_loop(stop, port, results, lock):
    i = 0
    while not stop.is_set():
        i += 1
        request = b"request %d" % i
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                s.sendall(request)
                data = b""
                while len(data) < len(request):
                    chunk = s.recv(64)
                    if not chunk:
                        raise ConnectionError(f"closed after {data!r}")
                    data += chunk
                if data != request:
                    raise AssertionError(f"{data!r} != {request!r}")
            with lock:
                results["ok"] += 1
        except Exception as e:
            with lock:
                results["failed"].append(f"request {i}: {e!r}")


def lasting_loop(stop, s, results, lock):
    i = 0
    while not stop.is_set():
        i += 1
        request = b"lasting %d;" % i
        try:
            s.sendall(request)
            data = b""
            while len(data) < len(request):
                chunk = s.recv(64)
                if not chunk:
                    raise ConnectionError(f"closed after {data!r}")
                data += chunk
            if data != request:
                raise AssertionError(f"{data!r} != {request!r}")
            with lock:
                results["ok"] += 1
        except Exception as e:
            with lock:
                results["failed"].append(f"lasting request {i}: {e!r}")
            return


class Upgrade(DaemonTest):
    def test_zero_downtime_upgrade(self):
        old = self.start_app("app.door", "--tag", "v1")
        port = self.reserve_port()
        self.start_daemon([tcp("app", port, old.door)])
        lock = threading.Lock()
        fresh = {"ok": 0, "failed": []}
        lasting = {"ok": 0, "failed": []}
        self.background(client_loop, port, fresh, lock)
        self.background(lasting_loop, self.connect(port), lasting, lock)

        def progress(n, timeout=5.0):
            with lock:
                target = (fresh["ok"] + n, lasting["ok"] + n)
            deadline = time.monotonic() + timeout
            while True:
                with lock:
                    if fresh["ok"] >= target[0] and lasting["ok"] >= target[1]:
                        return
                    if fresh["failed"] or lasting["failed"]:
                        self.fail(f"failures: {fresh['failed'][:5]} {lasting['failed'][:5]}")
                self.assertLess(time.monotonic(), deadline, "the client loops stalled")
                time.sleep(0.01)

        progress(50)
        new = self.start_app("app.door", "--tag", "v2", name="test_app:v2")
        progress(50)
        old.send_signal(signal.SIGTERM)
        self.assertEqual(old.wait(5.0), 0)
        progress(100)
        self._stop.set()
        self.assertEqual(fresh["failed"], [])
        self.assertEqual(lasting["failed"], [])
        self.round_trip(port, b"who", b"v2")
        # The old instance must not have removed the path the new one now owns.
        self.assertTrue(os.path.exists(new.door))


class MissingDoor(DaemonTest):
    def test_forward_to_a_door_nobody_serves(self):
        app = self.start_app("real.door")
        good, missing = self.reserve_port(), self.reserve_port()
        d = self.start_daemon([tcp("good", good, app.door), tcp("missing", missing, self.path("nobody.door"))])
        for _ in range(3):
            s = self.connect(missing)
            s.sendall(b"hello?")
            self.assertLess(self.wait_closed(s, timeout=3.0), 1.0)
            self.round_trip(good, b"unaffected")
        d.wait_log(r"warning: forward missing: door .*nobody\.door: no such door")
        self.assertTrue(d.alive())
        # The door is opened lazily: once an application appears, the forward works.
        self.start_app("nobody.door", "--prefix", "late:")
        self.round_trip(missing, b"now", b"late:now")


if __name__ == "__main__":
    harness.main()
