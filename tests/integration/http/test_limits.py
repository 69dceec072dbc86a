#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# The request limits: 431 for header bytes and count, 413, 414, 408 for slow headers and bodies,
# and the write timeout for a client that stops reading its response.
import socket
import time

import http_harness
from http_harness import HttpTest, http_forward, request_bytes

HEADER_BYTES = 1024  # the smallest max_header_bytes allowed; the request line limit follows it
MAX_HEADERS = 10
MAX_BODY = 1000


class Limits(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door", "--log", self.path("app.calls"))
        self.port = self.reserve_port()
        self.daemon = self.start_http([http_forward(
            self.port, self.app.door, max_header_bytes=HEADER_BYTES, max_headers=MAX_HEADERS, max_body=MAX_BODY,
            header_timeout="1s", read_timeout="1s")])

    def refused(self, raw, status, reason):
        """Sends `raw`; expects the daemon's own `status` and the connection closed after it."""
        r, reader = self.send(self.port, raw)
        self.assertEqual((r.status, r.reason), (status, reason), r)
        self.assertEqual(r.body, f"{status} {reason}\n".encode())
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(reader.closed())
        return r

    def accepted(self, raw):
        r, _ = self.send(self.port, raw)
        self.assertEqual(r.status, 200, r)
        return r

    def assert_no_calls(self):
        self.assertEqual(self.call_lines(self.path("app.calls")), 0)

    def test_header_bytes_over_the_limit_is_431(self):
        # Host, the one field and the blank line: exactly the limit, then one byte more.
        fill = HEADER_BYTES - len("Host: localhost\r\n") - len("X-Fill: \r\n") - 2
        self.refused(request_bytes("GET", "/echo", [("X-Fill", "a" * (fill + 1))]), 431,
                     "Request Header Fields Too Large")
        self.assert_no_calls()
        self.accepted(request_bytes("GET", "/echo", [("X-Fill", "a" * fill)]))

    def test_too_many_headers_is_431(self):
        # Host counts as one.
        fields = [(f"X-F{i}", "v") for i in range(MAX_HEADERS - 1)]
        self.accepted(request_bytes("GET", "/echo", fields))
        self.refused(request_bytes("GET", "/echo", fields + [("X-One-More", "v")]), 431,
                     "Request Header Fields Too Large")
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)

    def test_body_over_max_body_is_413_before_it_is_sent(self):
        self.accepted(request_bytes("POST", "/echo", body=b"b" * MAX_BODY))
        # The refusal comes on the Content-Length alone: nothing of the body is sent.
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1001\r\n\r\n", 413,
                     "Content Too Large")
        # A chunked body is refused at the chunk that takes it over.
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3e8\r\n" + b"c" * 1000 + b"\r\n1\r\n", 413, "Content Too Large")
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)

    def test_request_line_over_the_limit_is_414(self):
        # "GET " + target + " HTTP/1.1" of exactly the limit is still served.
        target = "/echo/" + "t" * (HEADER_BYTES - len("GET  HTTP/1.1") - len("/echo/"))
        self.accepted(request_bytes("GET", target))
        self.refused(request_bytes("GET", target + "t"), 414, "URI Too Long")
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)

    def test_slow_headers_get_408_within_header_timeout(self):
        s, reader = self.open(self.port)
        started = time.monotonic()
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n")
        # A byte now and then keeps no read waiting long; the whole section is what is timed.
        for _ in range(5):
            time.sleep(0.3)
            try:
                s.sendall(b"X: y\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        r = reader.response()
        elapsed = time.monotonic() - started
        self.assertEqual((r.status, r.header("Connection")), (408, "close"))
        self.assertTrue(reader.closed())
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 1.6)
        self.assert_no_calls()
        self.daemon.wait_access_log(r'status=408 out=0 note="header timeout"')

    def test_silent_connection_closes_at_header_timeout(self):
        s, reader = self.open(self.port)
        started = time.monotonic()
        self.assertTrue(reader.closed(timeout=3))
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 1.6)

    def test_stalled_body_gets_408_after_read_timeout(self):
        s, reader = self.open(self.port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly part")
        started = time.monotonic()
        r = reader.response()
        self.assertEqual(r.status, 408)
        self.assertTrue(reader.closed())
        self.assertLess(time.monotonic() - started, 1.6)
        self.assert_no_calls()

    def test_client_that_stops_reading_is_cut_off_by_the_write_timeout(self):
        # 10 MiB is far more than the socket buffers on both sides hold, so the daemon's write
        # stalls; read_timeout (1 s here) bounds how long it waits for the client to read.
        s, _ = self.open(self.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(request_bytes("GET", f"/big/{10 << 20}"))
        started = time.monotonic()
        # Meanwhile other clients are served at once: the stalled write holds nothing of theirs.
        for i in range(5):
            r, _ = self.send(self.port, request_bytes("GET", f"/echo/other{i}"))
            self.assertEqual(r.status, 200, r)
        self.daemon.wait_access_log(r'path="/big/10485760" status=200', timeout=5.0)
        # The daemon gives up and resets the connection, which discards what its socket still
        # held: reading now ends in a reset (or EOF) long before 10 MiB, and soon.
        received = 0
        ended = False
        s.settimeout(0.5)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(1 << 16)
            except ConnectionResetError:
                ended = True
                break
            except socket.timeout:
                continue
            if not chunk:
                ended = True
                break
            received += len(chunk)
        self.assertTrue(ended, f"the connection was still open after {received} bytes")
        self.assertLess(received, 10 << 20)
        self.assertLess(time.monotonic() - started, 4.0)

if __name__ == "__main__":
    http_harness.main()
