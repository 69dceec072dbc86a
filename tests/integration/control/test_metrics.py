#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# /metrics and /health on a real daemon with real applications: counters exact after a load,
# promtool's check, health through a drain and a door that comes and goes, hostile clients.
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, listen_text  # noqa: E402

INSTALL_DEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "install-deps.sh")

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_metrics(text):
    """{(name, ((label, value), ...)): value} for every sample of a scrape."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    if key not in samples:
        raise AssertionError(f"no sample {name}{labels}; have: "
                             + ", ".join(sorted({n for n, _ in samples if n.startswith(name[:20])})))
    return samples[key]


def is_cumulative(name):
    return name.endswith(("_total", "_bucket", "_count", "_sum"))


class MetricsTest(DaemonTest):
    def setUp(self):
        super().setUp()
        self.mport = self.reserve_port()

    def start_metrics_daemon(self, forwards, **daemon):
        settings = {"metrics_listen": listen_text("127.0.0.1", self.mport), "control_door": "off"}
        settings.update(daemon)
        d = self.start_daemon(forwards, settings)
        deadline = time.monotonic() + harness.READY_TIMEOUT
        while True:
            try:
                status, _, _ = self.request("/health")
                if status in (200, 503):
                    break
            except OSError:
                pass
            if time.monotonic() >= deadline:
                self.fail(f"metrics_listen not serving within {harness.READY_TIMEOUT} s:\n{d.tail()}")
            time.sleep(0.01)
        # The harness's readiness probes are connections too: wait until they are closed.
        for f in forwards:
            if f.get("protocol") in ("tcp", "http"):
                self.wait_for(lambda f=f: value(self.scrape(), "portunusd_forward_connections_open",
                                                forward=f["name"], protocol=f["protocol"]) == 0)
        return d

    # ---- clients ---------------------------------------------------------------------------

    def request(self, path, method="GET", raw=None, timeout=5.0):
        """One request on a new connection to the metrics port; (status, {header: value}, body)."""
        with socket.create_connection(("127.0.0.1", self.mport), timeout=timeout) as s:
            s.sendall(raw if raw is not None else
                      f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode("latin-1"))
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, v = line.partition(":")
            headers[name.strip().lower()] = v.strip()
        return status, headers, body

    def curl(self, path, *args):
        p = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args, f"http://127.0.0.1:{self.mport}{path}"],
                           capture_output=True, timeout=15, stdin=subprocess.DEVNULL)
        self.assertEqual(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        return head.decode("latin-1"), body.decode("utf-8")

    def scrape(self):
        head, body = self.curl("/metrics")
        self.assertTrue(head.startswith("HTTP/1.1 200 "), head)
        return parse_metrics(body)

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                self.fail(f"{what} not met within {timeout} s")
            time.sleep(0.02)

    # ---- the tests -------------------------------------------------------------------------

    def test_counters_are_monotonic_under_load_and_exact_after_it(self):
        echo = self.start_app("echo.door")
        web = self.start_app("web.door", program_name="hello_web")
        tport, hport = self.reserve_port(), self.reserve_port()
        self.start_metrics_daemon([
            {"name": "echo", "protocol": "tcp", "listen": listen_text("127.0.0.1", tport), "door": echo.door},
            {"name": "web", "protocol": "http", "listen": listen_text("127.0.0.1", hport), "door": web.door},
        ])
        before = self.scrape()

        n = 400
        totals = {"tcp_in": 0, "tcp_out": 0, "http_in": 0, "http_out": 0}
        errors = []

        def tcp_load(stop):
            for i in range(n):
                payload = b"ping %d" % i
                try:
                    with socket.create_connection(("127.0.0.1", tport), timeout=5) as s:
                        s.sendall(payload)
                        got = self.recv_exact(s, len(payload), timeout=5)
                except (AssertionError, OSError) as e:
                    errors.append(f"tcp request {i}: {e}")
                    return
                if got != payload:
                    errors.append(f"tcp request {i}: {got!r}")
                    return
                totals["tcp_in"] += len(payload)
                totals["tcp_out"] += len(got)

        def http_load(stop):
            request = b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            for i in range(n):
                with socket.create_connection(("127.0.0.1", hport), timeout=5) as s:
                    s.sendall(request)
                    got = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        got += chunk
                if not got.startswith(b"HTTP/1.1 200 "):
                    errors.append(f"http request {i}: {got[:200]!r}")
                    return
                totals["http_in"] += len(request)
                totals["http_out"] += len(got)

        threads = [self.background(tcp_load), self.background(http_load)]
        scrapes = [before]
        while any(t.is_alive() for t in threads):
            scrapes.append(self.scrape())
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(scrapes), 3, "the load ended before it could be scraped")

        def settled():
            s = self.scrape()
            scrapes.append(s)
            return (value(s, "portunusd_forward_connections_open", forward="echo", protocol="tcp") == 0
                    and value(s, "portunusd_forward_connections_open", forward="web", protocol="http") == 0
                    and value(s, "portunusd_forward_requests_total", forward="web", protocol="http")
                    >= value(before, "portunusd_forward_requests_total", forward="web", protocol="http") + n)
        self.wait_for(settled, what="every load connection closed")

        # Counters never go back, scrape after scrape.
        for earlier, later in zip(scrapes, scrapes[1:]):
            for key, v in earlier.items():
                if is_cumulative(key[0]) and key in later:
                    self.assertGreaterEqual(later[key], v, f"{key} went back from {v} to {later[key]}")

        after = scrapes[-1]

        def delta(name, **labels):
            return value(after, name, **labels) - value(before, name, **labels)

        for fwd, proto, sent, received in (("echo", "tcp", "tcp_in", "tcp_out"), ("web", "http", "http_in", "http_out")):
            with self.subTest(forward=fwd):
                self.assertEqual(delta("portunusd_forward_connections_total", forward=fwd, protocol=proto), n)
                self.assertEqual(delta("portunusd_forward_requests_total", forward=fwd, protocol=proto), n)
                self.assertEqual(delta("portunusd_forward_received_bytes_total", forward=fwd, protocol=proto),
                                 totals[sent])
                self.assertEqual(delta("portunusd_forward_sent_bytes_total", forward=fwd, protocol=proto),
                                 totals[received])
                self.assertEqual(delta("portunusd_door_call_duration_seconds_count", forward=fwd, protocol=proto), n)
                self.assertEqual(delta("portunusd_door_call_duration_seconds_bucket", forward=fwd, protocol=proto,
                                       le="+Inf"), n)
                for kind in ("timeout", "door_gone", "interrupted", "queue_full", "too_large", "other"):
                    self.assertEqual(value(after, "portunusd_forward_failures_total", forward=fwd, protocol=proto,
                                           kind=kind), 0)
        self.assertEqual(delta("portunusd_door_calls_total", forward="echo", door=echo.door), n)
        self.assertEqual(delta("portunusd_door_calls_total", forward="web", door=web.door), n)
        self.assertEqual(value(after, "portunusd_door_up", forward="web", door=web.door), 1)
        self.assertEqual(value(after, "portunusd_door_state", forward="web", door=web.door, state="open"), 1)

    def test_promtool_accepts_the_page(self):
        promtool = shutil.which("promtool")
        if not promtool and os.geteuid() == 0:
            subprocess.run(["bash", INSTALL_DEPS, "test"], stdin=subprocess.DEVNULL, timeout=900, check=False)
            promtool = shutil.which("promtool")
            self.assertIsNotNone(promtool, "tests/install-deps.sh test did not install promtool (package prometheus)")
        if not promtool:
            self.skipTest("promtool is not installed and this is not root: "
                          "apt-get install prometheus, or run tests/install-deps.sh test as root")
        app = self.start_app("app.door")
        tport, uport = self.reserve_port(), self.reserve_port(udp=True)
        self.start_metrics_daemon([
            {"name": "tcp-app", "protocol": "tcp", "listen": listen_text("127.0.0.1", tport), "door": app.door},
            {"name": "udp-app", "protocol": "udp", "listen": listen_text("127.0.0.1", uport), "door": app.door},
            {"name": "web", "protocol": "http", "listen": listen_text("127.0.0.1", self.reserve_port()),
             "door": self.path("nobody.door")},
        ])
        self.round_trip(tport, b"hello")
        self.assertEqual(self.udp_request(uport, b"datagram"), b"datagram")

        head, body = self.curl("/metrics")
        fields = head.lower().split("\r\n")
        self.assertIn("content-type: text/plain; version=0.0.4; charset=utf-8", fields)
        self.assertIn("connection: close", fields)
        p = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode("utf-8", "replace"))
        samples = parse_metrics(body)
        self.assertEqual(value(samples, "portunusd_forward_requests_total", forward="udp-app", protocol="udp"), 1)
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 0)
        self.assertGreater(value(samples, "process_open_fds"), 0)
        self.assertGreaterEqual(value(samples, "portunusd_threads"), 2)
        self.assertEqual(value(samples, "portunusd_draining"), 0)

    def test_health_turns_503_at_once_on_sigterm_while_a_slow_call_finishes(self):
        calls = self.path("calls.log")
        app = self.start_app("slow.door", "--log", calls)
        port = self.reserve_port()
        d = self.start_metrics_daemon(
            [{"name": "slow", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}],
            drain_timeout="10s")
        self.assertEqual(self.request("/health")[::2], (200, b"ok\n"))
        self.assertEqual(self.request("/health/slow")[0], 200)

        s = self.connect(port)
        s.sendall(b"sleep:1500:slow answer")
        self.wait_calls(calls, 1)
        sent = time.monotonic()
        d.send_signal(signal.SIGTERM)
        while True:
            status, headers, body = self.request("/health")
            if status == 503:
                break
            self.assertLess(time.monotonic() - sent, 1.0, "still 200 a second after SIGTERM")
            time.sleep(0.002)
        # A sanitizer build runs every handler several times slower.
        self.assertLess(time.monotonic() - sent, 0.5 if harness.SANITIZED else 0.1)
        self.assertEqual(body, b"draining\n")
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(self.request("/health/slow")[::2], (503, b"draining\n"))
        self.assertEqual(value(self.scrape(), "portunusd_draining"), 1)

        self.assertEqual(self.recv_exact(s, len(b"slow answer")), b"slow answer")
        self.assertEqual(d.wait(5.0), 0, d.tail())
        self.assertGreater(time.monotonic() - sent, 1.2)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", self.mport), timeout=2).close()

    def test_stop_grace_serves_new_clients_while_health_is_503(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_metrics_daemon(
            [{"name": "web", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}],
            stop_grace="1500ms", drain_timeout="5s")
        kept = self.connect(port)
        self.exchange(kept, b"before", b"before")
        sent = time.monotonic()
        d.send_signal(signal.SIGTERM)
        d.wait_log(r"SIGTERM: stopping in 1500 ms; /health answers 503 meanwhile")
        self.assertEqual(self.request("/health")[::2], (503, b"draining\n"))
        # Within the grace: new connections are accepted and served, open ones too.
        served = 0
        while time.monotonic() - sent < 1.0:
            self.round_trip(port, b"during the grace %d" % served)
            served += 1
            time.sleep(0.05)
        self.assertGreater(served, 5)
        self.exchange(kept, b"still open", b"still open")
        self.assertEqual(self.request("/health/web")[0], 503)
        # Then the drain: refused, and the daemon leaves.
        self.assert_refused(port, within=2.0)
        self.assertGreater(time.monotonic() - sent, 1.4)
        self.assertEqual(d.wait(5.0), 0, d.tail())

    def test_forward_health_follows_its_door(self):
        a = self.start_app("a.door")
        b = self.start_app("b.door")
        aport, bport = self.reserve_port(), self.reserve_port()
        self.start_metrics_daemon([
            {"name": "a", "protocol": "tcp", "listen": listen_text("127.0.0.1", aport), "door": a.door},
            {"name": "b", "protocol": "tcp", "listen": listen_text("127.0.0.1", bport), "door": b.door},
        ])
        self.round_trip(aport, b"one")
        self.assertEqual(self.request("/health/a")[::2], (200, b"ok\n"))
        self.assertEqual(self.request("/health/nope")[0], 404)
        self.assertEqual(self.request("/health/b")[0], 200)

        a.stop()
        if os.path.lexists(a.door):
            os.unlink(a.door)
        status, _, body = self.request("/health/a")
        self.assertEqual((status, body), (503, f"door missing: {a.door}\n".encode()))
        self.assertEqual(self.request("/health/b")[0], 200)
        self.assertEqual(self.request("/health")[0], 200)
        samples = self.scrape()
        self.assertEqual(value(samples, "portunusd_door_up", forward="a", door=a.door), 0)
        self.assertEqual(value(samples, "portunusd_door_state", forward="a", door=a.door, state="missing"), 1)

        self.start_app("a.door")
        self.wait_for(lambda: self.request("/health/a")[0] == 200, what="/health/a back to 200")
        self.round_trip(aport, b"two")
        self.assertEqual(self.request("/health/a")[::2], (200, b"ok\n"))
        self.assertEqual(value(self.scrape(), "portunusd_door_up", forward="a", door=a.door), 1)

    def test_routes_methods_and_head(self):
        app = self.start_app("app.door")
        self.start_metrics_daemon(
            [{"name": "x", "protocol": "tcp", "listen": listen_text("127.0.0.1", self.reserve_port()),
              "door": app.door}])
        status, headers, body = self.request("/metrics", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertGreater(int(headers["content-length"]), 1000)
        self.assertEqual(self.request("/nothing")[0], 404)
        self.assertEqual(self.request("/metrics/")[0], 404)
        status, headers, _ = self.request("/metrics", method="POST")
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"))
        # HTTP/1.0 without Host, as HAProxy's option httpchk (GET) and relayd's check http (HEAD)
        # send it.
        self.assertEqual(self.request("", raw=b"GET /health HTTP/1.0\r\n\r\n")[::2], (200, b"ok\n"))
        status, headers, body = self.request("", raw=b"HEAD /health/x HTTP/1.0\r\n\r\n")
        self.assertEqual((status, headers.get("content-length"), body), (200, "3", b""))
        self.assertEqual(self.request("/health/x?verbose=1")[0], 200)

    def test_hostile_clients(self):
        app = self.start_app("app.door")
        d = self.start_metrics_daemon(
            [{"name": "x", "protocol": "tcp", "listen": listen_text("127.0.0.1", self.reserve_port()),
              "door": app.door}])
        baseline = harness.fd_count(d.pid)

        # A head past 8 KiB: 431, then the connection ends.
        status, headers, body = self.request(
            "", raw=b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        self.assertEqual(status, 431)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(self.request("", raw=b"GET /health HTTP/1.1\r\n\r\n")[0], 400)

        # A client that sends nothing holds no one up and is closed after 5 s.
        silent = socket.create_connection(("127.0.0.1", self.mport), timeout=10)
        self._sockets.append(silent)
        partial = socket.create_connection(("127.0.0.1", self.mport), timeout=10)
        self._sockets.append(partial)
        partial.sendall(b"GET /metrics HTTP/1.1\r\nHost: loc")
        opened = time.monotonic()
        started = time.monotonic()
        self.assertEqual(value(self.scrape(), "portunusd_draining"), 0)
        self.assertLess(time.monotonic() - started, 1.0)
        waited = self.wait_closed(silent, timeout=8.0)
        self.wait_closed(partial, timeout=1.0)
        elapsed = time.monotonic() - opened
        self.assertGreater(elapsed, 4.5)
        self.assertLess(elapsed, 6.5, f"closed after {waited:.2f} s of waiting")

        # Every descriptor those clients cost is given back.
        self.wait_for(lambda: harness.fd_count(d.pid) <= baseline, what=f"fd count back to {baseline}")


if __name__ == "__main__":
    harness.main()
