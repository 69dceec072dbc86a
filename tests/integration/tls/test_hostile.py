#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Clients that never finish a handshake, send the wrong protocol or garbage, or reset in the
# middle of a response: each is closed by its deadline or at once, logged and counted, while a
# well-behaved https client on the same forward keeps being served promptly, and the daemon
# stays up and serving.
import random
import re
import socket
import statistics
import struct
import time

import tls_harness
from harness import SANITIZED
from http_harness import request_bytes
from tls_harness import TlsTest, client_hello, https_forward

HANDSHAKE_TIMEOUT = 1.0
# How far past handshake_timeout a silent client may still be open (timer wheel, busy machine).
LATE = 1.0 if SANITIZED else 0.7
# The most a healthy request (new TLS connection, GET, response) may take during an attack:
# far below the handshake_timeout that a loop stuck on a hostile client would make it wait.
HEALTHY_LIMIT = 0.9 if SANITIZED else 0.6


class Hostile(TlsTest):
    def setUp(self):
        super().setUp()
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.port = self.reserve_port()
        self.daemon = self.start_tls([https_forward(self.port, self.web.door, cert=self.cert, key=self.key,
                                                    handshake_timeout=f"{int(HANDSHAKE_TIMEOUT * 1000)}ms")],
                                     daemon=self.metrics_settings())
        self.healthy = []
        self.healthy_errors = []
        self.background(self._well_behaved)

    def _well_behaved(self, stop):
        """A new TLS connection and one GET every 50 ms until the test ends, timing each."""
        ctx = self.client_context()
        for _ in range(2000):
            if stop.is_set():
                return
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                        s.sendall(request_bytes("GET", "/healthy", [("Connection", "close")]))
                        data = b""
                        while True:
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                if not data.startswith(b"HTTP/1.1 200 "):
                    self.healthy_errors.append(f"bad response {data[:80]!r}")
                self.healthy.append(time.monotonic() - started)
            except Exception as e:  # noqa: BLE001 (reported by assert_isolated)
                self.healthy_errors.append(repr(e))
            stop.wait(0.05)

    def isolated_since(self, mark):
        """Asserts the well-behaved client was served throughout, from healthy[mark] on."""
        deadline = time.monotonic() + 3
        while len(self.healthy) < mark + 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        served = self.healthy[mark:]
        self.assertEqual(self.healthy_errors, [])
        self.assertGreaterEqual(len(served), 5, "the well-behaved client was hardly served")
        self.assertLess(max(served), HEALTHY_LIMIT,
                        f"well-behaved requests took up to {max(served):.3f} s "
                        f"(median {statistics.median(served):.3f} s)")
        self.assertTrue(self.daemon.alive())

    def raw(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self._sockets.append(s)
        return s

    def closed_after(self, s, started, limit):
        """Reads (ignoring what arrives, such as an alert) until the peer closes; returns the
        seconds since `started`. Fails if still open `limit` seconds after it."""
        while True:
            s.settimeout(max(0.01, started + limit - time.monotonic()))
            try:
                if not s.recv(65536):
                    break
            except ConnectionResetError:
                break
            except socket.timeout:
                self.fail(f"connection still open {limit} s after it started")
        return time.monotonic() - started

    def test_silent_client_closed_at_handshake_timeout(self):
        mark = len(self.healthy)
        started = time.monotonic()
        s = self.raw()
        took = self.closed_after(s, started, HANDSHAKE_TIMEOUT + LATE + 1)
        self.assertGreater(took, HANDSHAKE_TIMEOUT - 0.1)
        self.assertLess(took, HANDSHAKE_TIMEOUT + LATE)
        self.assert_access_lines(self.daemon, r'forward=web client=127\.0\.0\.1:\d+ .*in=0 out=0 '
                                              r'result="TLS handshake timeout"', 1)
        self.wait_handshake_failures("web", 1)
        self.isolated_since(mark)

    def test_client_closing_before_its_first_byte_is_a_probe(self):
        # A connection that ends before sending a byte (a port probe, a balancer's TCP check) is
        # no failed handshake: no access line and no count, as on plain forwards. One that ends
        # inside its ClientHello is a failure, logged and counted.
        for _ in range(3):
            self.raw().close()
        s = self.raw()
        s.sendall(client_hello()[:20])
        s.close()
        self.assert_access_lines(self.daemon, r'forward=web client=127\.0\.0\.1:\d+ .*in=0 out=0 '
                                              r'result="TLS handshake failed: the client closed the connection"', 1)
        self.wait_handshake_failures("web", 1)
        self.assertNotIn("before the TLS handshake", self.daemon.access_log())

    def test_trickled_client_hello_closed_at_the_same_deadline(self):
        hello = client_hello()
        self.assertGreater(len(hello), 100)
        mark = len(self.healthy)
        started = time.monotonic()
        s = self.raw()
        sent = 0
        # One byte every 20 ms: the hello would take seconds; bytes must not extend the deadline.
        try:
            for b in hello:
                if time.monotonic() - started > HANDSHAKE_TIMEOUT + LATE + 1:
                    break
                s.sendall(bytes([b]))
                sent += 1
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            pass
        took = self.closed_after(s, started, HANDSHAKE_TIMEOUT + LATE + 1)
        self.assertLess(sent, len(hello), "the whole hello went out before the deadline")
        self.assertGreater(took, HANDSHAKE_TIMEOUT - 0.1)
        self.assertLess(took, HANDSHAKE_TIMEOUT + LATE)
        self.assert_access_lines(self.daemon, r'forward=web .*result="TLS handshake timeout"', 1)
        self.wait_handshake_failures("web", 1)
        self.isolated_since(mark)

    def test_plain_http_to_https_port_answered_400_and_closed_at_once(self):
        mark = len(self.healthy)
        started = time.monotonic()
        s = self.raw()
        s.sendall(request_bytes("GET", "/plain", [("Connection", "keep-alive")]))
        took = self.closed_after(s, started, HANDSHAKE_TIMEOUT)
        self.assertLess(took, HANDSHAKE_TIMEOUT / 2, "closed by the deadline, not by the failed handshake")
        # What a browser shows for http:// on an https port: a 400 in the clear that says so.
        code, out, err = self.curl("-s", "-i", f"http://127.0.0.1:{self.port}/typed-http")
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out)
        self.assertIn(b"Connection: close\r\n", out)
        self.assertTrue(out.endswith(b"this port speaks HTTPS; use an https URL\n"), out)
        self.assert_access_lines(self.daemon, r'forward=web client=127\.0\.0\.1:\d+ .*status=400 in=0 out=[1-9]\d* '
                                              r'result="TLS handshake failed: http request"', 2)
        self.wait_handshake_failures("web", 2)
        self.isolated_since(mark)

    def test_garbage_closed_with_a_handshake_failure(self):
        mark = len(self.healthy)
        rng = random.Random(2026)
        for i in range(5):
            # A first byte that is no TLS record type, then noise.
            s = self.raw()
            s.sendall(bytes([0x42 + i]) + rng.randbytes(1023))
            self.closed_after(s, time.monotonic(), HANDSHAKE_TIMEOUT / 2)
        # A well-framed record header of type handshake, with noise where a ClientHello belongs.
        s = self.raw()
        s.sendall(b"\x16\x03\x01" + struct.pack("!H", 512) + rng.randbytes(512))
        self.closed_after(s, time.monotonic(), HANDSHAKE_TIMEOUT / 2)
        self.assert_access_lines(self.daemon, r'forward=web .*result="TLS handshake failed: [^"]+"', 6)
        self.wait_handshake_failures("web", 6)
        self.isolated_since(mark)

    def test_client_resetting_mid_response(self):
        mark = len(self.healthy)
        for _ in range(5):
            s, reader = self.tls_open(self.port)
            # Enough pipelined requests that their responses are still being written when the
            # client resets.
            s.sendall(b"".join(request_bytes("GET", f"/r/{i}", [("Connection", "keep-alive")]) for i in range(400)))
            self.assertEqual(reader.response().status, 200)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # with unread data and linger 0: an RST
        time.sleep(0.3)
        # Each connection's exchanges stopped at the reset, well short of the 400 it sent, and
        # nothing more is logged for them afterwards: the sessions ended.
        def logged():
            return [line for line in self.daemon.access_log().splitlines() if 'path="/r/' in line]
        lines = logged()
        clients = {re.search(r"client=(\S+)", line).group(1) for line in lines}
        self.assertEqual(len(clients), 5, "\n".join(lines[-10:]))
        self.assertLess(len(lines), 5 * 400)
        time.sleep(0.3)
        self.assertEqual(len(logged()), len(lines))
        # Every one of them ended (nothing left open) and none counts as a handshake failure.
        self.assertEqual(self.handshake_failures("web"), 0)
        self.isolated_since(mark)
        r, _ = self.tls_get(self.port, "/after")
        self.assertEqual(r.status, 200)

    def test_many_half_open_handshakes_do_not_stop_others(self):
        hello = client_hello()
        mark = len(self.healthy)
        n = 200
        held = []
        started = time.monotonic()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self._sockets.append(s)
            # Half a ClientHello: OpenSSL waits for the rest of the record.
            s.sendall(hello[:len(hello) // 2])
            held.append(s)
        opened = time.monotonic() - started
        self.assertLess(opened, HANDSHAKE_TIMEOUT, "opening the connections took too long for the test")
        # While all of them wait, others are served promptly.
        for i in range(5):
            t0 = time.monotonic()
            r, _ = self.tls_get(self.port, f"/during/{i}")
            self.assertEqual(r.status, 200)
            self.assertLess(time.monotonic() - t0, HEALTHY_LIMIT)
        for s in held:
            self.closed_after(s, started, HANDSHAKE_TIMEOUT + LATE + 2)
        self.assertLess(time.monotonic() - started, HANDSHAKE_TIMEOUT + LATE + 2)
        self.assert_access_lines(self.daemon, r'forward=web .*result="TLS handshake timeout"', n, timeout=5)
        self.wait_handshake_failures("web", n)
        self.isolated_since(mark)

    def tearDown(self):
        # Whatever the test did, the daemon is alive and serves a new client afterwards.
        if self.daemon.alive():
            r, _ = self.tls_get(self.port, "/final")
            self.assertEqual(r.status, 200)
        self.assertTrue(self.daemon.alive(), self.daemon.tail())


if __name__ == "__main__":
    tls_harness.main()
