#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# The request limits: 431 for header bytes and count, 413, 414, 408 for slow headers and bodies,
# and the write timeout for a client that stops reading its response, not for one that reads it
# slowly.
import select
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
        self.daemon.wait_access_log(r'status=408 in=[1-9]\d* out=[1-9]\d* result="header timeout"')

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


class SlowReaders(HttpTest):
    """read_timeout bounds a pause in taking a response, not the whole transfer."""

    RATE = 4 << 20  # bytes per second the steady reader takes
    SIZE = 12 << 20  # three seconds of it, three times read_timeout

    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door")
        self.http = self.reserve_port()
        self.tcp = self.reserve_port()
        # A tcp forward to the same application: the request is relayed as one call, and the
        # whole http response comes back as one large reply.
        self.daemon = self.start_http([
            http_forward(self.http, self.app.door, read_timeout="1s"),
            {"name": "raw", "protocol": "tcp", "listen": http_harness.listen_text("127.0.0.1", self.tcp),
             "door": self.app.door, "read_timeout": "1s"}])

    def read_steadily(self, port, size, seconds=None):
        """Asks for /big/size and reads the response at RATE, for `seconds` if given. Returns
        (the bytes read, the socket, whether the connection ended while reading)."""
        s = self.connect(port)
        # Small client buffers, so that the daemon's writes wait on this reader all along.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        s.sendall(request_bytes("GET", f"/big/{size}"))
        # The application builds the whole body before the first byte leaves (slowly under the
        # sanitizers): the steady pace starts with that byte.
        def receive():
            """The next bytes, or None once the connection ended or went quiet."""
            try:
                return s.recv(32768) or None
            except (ConnectionResetError, socket.timeout):
                return None

        s.settimeout(20.0)
        data = bytearray()
        first = receive()
        if first is None:
            return data, s, True
        data += first
        s.settimeout(2.0)
        started = time.monotonic()
        stop_at = started + (seconds if seconds is not None else 20.0)
        while time.monotonic() < stop_at:
            pause = started + len(data) / self.RATE - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            chunk = receive()
            if chunk is None:
                return data, s, True
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0 and len(data) >= head_end + 4 + size:
                break
        return data, s, False

    def assert_whole_response(self, data, size):
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head[:200])
        self.assertIn(b"Content-Length: %d\r\n" % size, head)
        self.assertEqual(len(body), size)
        self.assertTrue(body == http_harness.big_body(size), "the body differs from what the application sent")

    def test_steady_reader_gets_a_response_that_takes_longer_than_read_timeout(self):
        for protocol, port in (("http", self.http), ("tcp", self.tcp)):
            with self.subTest(protocol):
                started = time.monotonic()
                data, _, ended = self.read_steadily(port, self.SIZE)
                elapsed = time.monotonic() - started
                self.assertFalse(ended, f"cut off after {len(data)} bytes, {elapsed:.1f} s")
                self.assertGreater(elapsed, 2.0)  # it really took longer than read_timeout
                self.assert_whole_response(data, self.SIZE)

    def test_reader_that_stops_midway_is_reset_read_timeout_later(self):
        for protocol, port in (("http", self.http), ("tcp", self.tcp)):
            with self.subTest(protocol):
                data, s, ended = self.read_steadily(port, 16 << 20, seconds=1.5)
                self.assertFalse(ended, f"cut off after {len(data)} bytes while reading")
                stopped = time.monotonic()
                # Without reading, which would count as progress: the reset shows as a hang-up
                # on the socket.
                p = select.poll()
                p.register(s, 0)
                while time.monotonic() - stopped < 4.0 and not p.poll(50):
                    pass
                waited = time.monotonic() - stopped
                # The daemon's last write may come a little before the client's last read: it
                # writes again only once a good part of its socket's buffer has drained.
                self.assertGreater(waited, 0.5)
                self.assertLess(waited, 2.5, f"still open {waited:.1f} s after the client stopped")


if __name__ == "__main__":
    http_harness.main()
