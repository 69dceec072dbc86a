#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# SIGHUP under load: forwards added, removed and changed while an unchanged one never misses.
import os
import re
import signal
import socket
import threading
import time

import harness
from harness import DaemonTest, listen_text


class Load:
    """Request/response loops against one port; counts successes and keeps every failure."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []

    def record(self, error=None):
        with self.lock:
            if error is None:
                self.ok += 1
            else:
                self.failures.append(error)

    def count(self):
        with self.lock:
            return self.ok


def exchange(s, request, expected):
    s.sendall(request)
    data = b""
    while len(data) < len(expected):
        chunk = s.recv(len(expected) - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} bytes")
        data += chunk
    if data != expected:
        raise AssertionError(f"got {data!r}, expected {expected!r}")


def new_connections(stop, load, port, prefix):
    i = 0
    while not stop.is_set():
        i += 1
        request = b"new connection %d" % i
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                exchange(s, request, prefix + request)
            load.record()
        except Exception as e:  # every kind of failure counts, and is reported
            load.record(f"new connection {i}: {e!r}")


def one_connection(stop, load, s, prefix):
    i = 0
    while not stop.is_set():
        i += 1
        request = b"long-lived %d;" % i
        try:
            exchange(s, request, prefix + request)
            load.record()
        except Exception as e:
            load.record(f"long-lived request {i}: {e!r}")
            return


def release_fifo_reader(path):
    """Opens `path` for writing and closes it, which ends a blocked open() for reading with EOF."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return  # not a FIFO any more, or nobody is waiting on it
    os.close(fd)


class Reload(DaemonTest):
    def setUp(self):
        super().setUp()
        self.a = self.start_app("a.door", "--prefix", "A:")
        self.b = self.start_app("b.door", "--prefix", "B:")
        self.steady, self.gone, self.changed, self.added = (self.reserve_port(udp=True) for _ in range(4))

    def fwd(self, name, port, door, protocol="tcp"):
        return {"name": name, "protocol": protocol, "listen": listen_text("127.0.0.1", port), "door": door}

    def wait_for(self, predicate, what, timeout=5.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                self.fail(f"timed out waiting for {what() if callable(what) else what}")
            time.sleep(0.01)

    def test_reload_under_load(self):
        before = [self.fwd("steady", self.steady, self.a.door), self.fwd("steady-udp", self.steady, self.a.door, "udp"),
                  self.fwd("gone", self.gone, self.a.door), self.fwd("changed", self.changed, self.a.door)]
        after = [self.fwd("steady", self.steady, self.a.door), self.fwd("steady-udp", self.steady, self.a.door, "udp"),
                 self.fwd("changed", self.changed, self.b.door), self.fwd("added", self.added, self.b.door)]
        d = self.start_daemon(before)

        fresh, lasting, old_changed = Load(), Load(), Load()
        self.background(new_connections, fresh, self.steady, b"A:")
        self.background(one_connection, lasting, self.connect(self.steady), b"A:")
        # Sessions opened before the reload finish on the settings they started with.
        self.background(one_connection, old_changed, self.connect(self.changed), b"A:")
        loads = (fresh, lasting, old_changed)
        self.wait_for(lambda: all(l.count() >= 20 for l in loads), "load to get going")

        counts = [l.count() for l in loads]
        reloaded = time.monotonic()
        m = self.reload(d, after)
        self.assertEqual(m.group(0), "reload: 1 forward(s) added, 1 changed, 1 removed")
        # Two more reloads that change nothing must not disturb anything either.
        self.reload(d, after)
        self.reload(d, after)
        # Keep the load on for a while after the last reload, so that late effects (a listener
        # closed behind the scenes, a drained session) would show up as failures.
        self.wait_for(lambda: all(l.count() >= c + 200 for l, c in zip(loads, counts))
                      and time.monotonic() - reloaded > 0.5,
                      lambda: f"load after the reloads: {[l.count() for l in loads]} requests answered "
                              f"(from {counts}), failures {[l.failures[:3] for l in loads]}")
        self._stop.set()
        for name, l in zip(("new connections", "long-lived connection", "long-lived on changed"), loads):
            self.assertEqual(l.failures, [], f"{name}: {l.ok} ok")

        self.round_trip(self.added, b"added", b"B:added")
        self.round_trip(self.changed, b"changed", b"B:changed")
        self.assert_refused(self.gone)
        self.round_trip(self.steady, b"steady", b"A:steady")
        self.assertEqual(self.udp_request(self.steady, b"steady udp"), b"A:steady udp")
        self.assertTrue(d.alive())

    def test_invalid_config_keeps_the_old_one(self):
        forwards = [self.fwd("steady", self.steady, self.a.door), self.fwd("other", self.gone, self.b.door)]
        d = self.start_daemon(forwards)
        with open(d.config_path) as f:
            good = f.read()
        self.write_config(good + "\n[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:1\"\ndoor = \"relative.door\"\n"
                          "colour = \"blue\"\n", "portunusd.toml")
        lines = good.count("\n")
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"reload: configuration has 2 error\(s\); still running the previous one")
        log = d.log()
        self.assertIn(f"{d.config_path}:{lines + 5}:8: door: \"relative.door\" is not an absolute path", log)
        self.assertIn(f"{d.config_path}:{lines + 6}:1: unknown key \"colour\" in [[forward]]", log)
        self.assertTrue(d.alive())
        self.round_trip(self.steady, b"still", b"A:still")
        self.round_trip(self.gone, b"still", b"B:still")

        # The daemon still listens for SIGHUP, and a fixed file is taken.
        m = self.reload(d, [self.fwd("steady", self.steady, self.b.door)])
        self.assertEqual(m.group(0), "reload: 0 forward(s) added, 1 changed, 1 removed")
        self.round_trip(self.steady, b"fixed", b"B:fixed")
        self.assert_refused(self.gone)

    def test_fifo_in_place_of_the_config_is_refused(self):
        forwards = [self.fwd("steady", self.steady, self.a.door), self.fwd("other", self.gone, self.b.door)]
        d = self.start_daemon(forwards)
        started = time.monotonic()
        self.round_trip(self.steady, b"before", b"A:before")
        baseline = time.monotonic() - started

        os.unlink(d.config_path)
        os.mkfifo(d.config_path)
        # Should the daemon wait for a writer after all, this lets it go before cleanup stops it.
        self.addCleanup(release_fifo_reader, d.config_path)
        hups = d.count(r"SIGHUP: reloading")
        d.send_signal(signal.SIGHUP)
        d.wait_log(r"SIGHUP: reloading", count=hups + 1)
        # The reload runs on the loop that accepts connections: requests made right after it
        # must be answered as fast as before.
        bound = max(1.0, 5 * baseline)
        for i in range(5):
            request = b"during %d" % i
            started = time.monotonic()
            try:
                self.round_trip(self.steady, request, b"A:" + request, timeout=bound + 2)
                self.round_trip(self.gone, request, b"B:" + request, timeout=bound + 2)
            except (OSError, AssertionError) as e:
                self.fail(f"request {i} after SIGHUP with a FIFO as the config: {e!r}; log:\n{d.tail()}")
            elapsed = time.monotonic() - started
            self.assertLess(elapsed, 2 * bound, f"request {i} after SIGHUP took {elapsed:.2f} s")
        d.wait_log(rf"error: {re.escape(d.config_path)}:1:1: cannot read: not a regular file")
        d.wait_log(r"reload: configuration has 1 error\(s\); still running the previous one")
        self.assertTrue(d.alive())

        # A regular file in its place is read again on the next SIGHUP.
        os.unlink(d.config_path)
        m = self.reload(d, [self.fwd("steady", self.steady, self.b.door)])
        self.assertEqual(m.group(0), "reload: 0 forward(s) added, 1 changed, 1 removed")
        self.round_trip(self.steady, b"fixed", b"B:fixed")
        self.assert_refused(self.gone)

    def test_widening_the_listen_address(self):
        # 127.0.0.1:P becomes 0.0.0.0:P: a new listener, and the old one goes. The port must
        # keep answering; the old socket cannot stay bound while the new one binds over it.
        d = self.start_daemon([self.fwd("web", self.steady, self.a.door),
                               self.fwd("web-udp", self.steady, self.a.door, "udp")])
        wide = [{**self.fwd("web", self.steady, self.a.door), "listen": f"0.0.0.0:{self.steady}"},
                {**self.fwd("web-udp", self.steady, self.a.door, "udp"), "listen": f"0.0.0.0:{self.steady}"}]
        m = self.reload(d, wide)
        self.assertNotIn("cannot bind", d.log())
        self.assertEqual(m.group(0), "reload: 2 forward(s) added, 0 changed, 2 removed")
        self.round_trip(self.steady, b"wide", b"A:wide")
        self.assertEqual(self.udp_request(self.steady, b"wide udp"), b"A:wide udp")

    def test_every_forward_key_is_reloaded(self):
        # Each step changes one key of one forward from the configuration before it; the reload
        # must report that forward as changed (or, for the keys that identify a forward, as
        # replaced). Keys a reload does not compare would keep running on the old value.
        a, b = self.a.door, self.b.door
        tcp = {"name": "t", "protocol": "tcp", "listen": listen_text("127.0.0.1", self.steady), "door": a,
               "max_concurrency": 8, "queue": 16, "read_timeout": "5s", "idle_timeout": "6s",
               "call_timeout": "7s", "max_request": 4096, "once": False}
        # Without call_timeout of its own: the [daemon] default applies to it.
        udp = {"name": "u", "protocol": "udp", "listen": listen_text("127.0.0.1", self.steady), "door": a,
               "max_concurrency": 8, "queue": 16, "max_request": 4096}
        web = {"name": "h", "protocol": "http", "listen": listen_text("127.0.0.1", self.changed), "door": a,
               "max_concurrency": 8, "queue": 16, "read_timeout": "5s", "idle_timeout": "6s",
               "call_timeout": "7s", "max_header_bytes": 8192, "max_headers": 50,
               "max_body": 100000, "header_timeout": "4s", "max_requests": 100,
               "map": [{"method": ["GET"], "prefix": "/m", "door": b}]}
        forwards = [tcp, udp, web]
        daemon = {}
        d = self.start_daemon(forwards)
        self.round_trip(self.steady, b"before", b"A:before")

        # Forwards that only moved in the file (a line added above them) are unchanged.
        moved = self.reload(d, forwards, {"max_connections": 10000})
        self.assertEqual(moved.group(0), "reload: 0 forward(s) added, 0 changed, 0 removed")

        changed = "reload: 0 forward(s) added, 1 changed, 0 removed"
        replaced = "reload: 1 forward(s) added, 0 changed, 1 removed"

        def set_key(f, key, value):
            f[key] = value

        def set_map(f, key, value):
            f["map"][0][key] = value

        steps = [
            (tcp, "name", "t2", set_key, changed), (tcp, "door", b, set_key, changed),
            (tcp, "max_concurrency", 9, set_key, changed), (tcp, "queue", 17, set_key, changed),
            (tcp, "read_timeout", "5500ms", set_key, changed), (tcp, "idle_timeout", "6500ms", set_key, changed),
            (tcp, "call_timeout", "7500ms", set_key, changed), (tcp, "max_request", 4097, set_key, changed),
            (tcp, "once", True, set_key, changed),
            (udp, "name", "u2", set_key, changed), (udp, "door", b, set_key, changed),
            (udp, "max_concurrency", 9, set_key, changed), (udp, "queue", 17, set_key, changed),
            (udp, "max_request", 4097, set_key, changed),
            (daemon, "call_timeout", "8s", set_key, changed),
            (web, "name", "h2", set_key, changed), (web, "door", b, set_key, changed),
            (web, "max_concurrency", 9, set_key, changed), (web, "queue", 17, set_key, changed),
            (web, "read_timeout", "5500ms", set_key, changed), (web, "idle_timeout", "6500ms", set_key, changed),
            (web, "call_timeout", "7500ms", set_key, changed),
            (web, "max_header_bytes", 8193, set_key, changed), (web, "max_headers", 51, set_key, changed),
            (web, "max_body", 100001, set_key, changed), (web, "header_timeout", "4500ms", set_key, changed),
            (web, "max_requests", 101, set_key, changed),
            (web, "method", ["GET", "POST"], set_map, changed), (web, "prefix", "/n", set_map, changed),
            (web, "door", a, set_map, changed),
            (web, "map", [{"method": ["GET", "POST"], "prefix": "/n", "door": a},
                          {"method": "*", "prefix": "/o", "door": b}], set_key, changed),
            (tcp, "listen", listen_text("127.0.0.1", self.added), set_key, replaced),
            (udp, "protocol", "tcp", set_key, replaced),
        ]
        ignored = []
        for f, key, value, apply, expected in steps:
            apply(f, key, value)
            m = self.reload(d, forwards, daemon)
            what = f"{'daemon' if f is daemon else f['protocol'] + ' ' + f['name']}: {key} = {value!r}"
            if m.group(0) != expected:
                ignored.append(f"{what}: {m.group(0)}")
            # Where it is cheap to see, the new value is in effect for new connections.
            if f is tcp and key == "door":
                self.round_trip(self.steady, b"door", b"B:door")
            elif f is udp and key == "door":
                self.assertEqual(self.udp_request(self.steady, b"door"), b"B:door")
            elif f is tcp and key == "once":
                s = self.connect(self.steady)
                self.exchange(s, b"once", b"B:once")
                self.wait_closed(s)
            elif f is tcp and key == "listen":
                self.round_trip(self.added, b"moved", b"B:moved")
                self.assert_refused(self.steady)
        self.assertEqual(ignored, [], "keys a reload did not pick up")
        self.assertTrue(d.alive())


if __name__ == "__main__":
    harness.main()
