#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Pipelining at volume: a client that sends far ahead of its answers costs the daemon a bounded
# buffer per connection, and the same time per request however long the pipeline is.
import os
import socket
import threading
import time

import http_harness
from http_harness import HttpTest, app_request, harness, http_forward, request_bytes

# A tiny request whose answer from http_test_app always has the same length.
TINY = request_bytes("GET", "/p", host="a")
BATCH = TINY * 2000


class Pipeline:
    """One connection: a thread sends BATCHes until `limit` bytes or `until`, another reads the
    answers and counts their bytes."""

    def __init__(self, test, port, limit, until):
        self.sock = test.connect(port, timeout=5.0)
        # Room for every answer that arrives between two reads, each in a small segment.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.settimeout(0.2)  # both threads look at `stop` this often
        self.limit = limit
        self.until = until
        self.sent = 0
        self.received = 0
        self.errors = []
        self.stop = threading.Event()
        self.arrivals = []  # (time, bytes received so far), one per recv
        self.threads = [threading.Thread(target=self._send), threading.Thread(target=self._read)]
        for t in self.threads:
            t.start()

    def _send(self):
        try:
            view = memoryview(BATCH)
            off = 0
            while self.sent < self.limit and time.monotonic() < self.until and not self.stop.is_set():
                try:
                    n = self.sock.send(view[off:off + self.limit - self.sent])
                except socket.timeout:
                    continue
                self.sent += n
                off = (off + n) % len(BATCH)
        except OSError as e:
            self.errors.append(repr(e))

    def _read(self):
        # One buffer for every read: allocating a large one per recv would make the client,
        # not the daemon, what the test measures.
        buf = bytearray(1 << 20)
        try:
            while not self.stop.is_set():
                try:
                    n = self.sock.recv_into(buf)
                except socket.timeout:
                    continue
                if not n:
                    self.errors.append("the daemon closed the connection")
                    return
                self.received += n
                self.arrivals.append((time.monotonic(), self.received))
                # Reading as each answer arrives would cost a wake-up per answer, which on a
                # small machine slows the daemon and the application more than anything
                # measured here; the answers pile up in the socket meanwhile.
                time.sleep(0.005)
        except OSError as e:
            if not self.stop.is_set():
                self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)
        self.sock.close()


class Pipelining(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door")
        self.port = self.reserve_port()
        self.roomy = self.reserve_port()
        self.daemon = self.start_http([
            http_forward(self.port, self.app.door, max_requests=1000000),
            http_forward(self.roomy, self.app.door, name="roomy", max_header_bytes=600_000)],
            daemon={"access_log": "off"})
        r, _ = self.send(self.port, TINY)
        self.assertEqual(r.status, 200, r)
        self.answer = len(r.raw)

    def rss_kib(self):
        return int(harness.status_field(self.daemon.pid, "VmRSS")[0])

    def pin_apart(self):
        """The daemon and the application on one CPU, this client on another. A door call per
        request is a ping-pong between the two; across CPUs its wake-ups cost from a few to a
        hundred microseconds depending on where the scheduler puts them, which is noise in a
        rate taken over a second or two."""
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            return
        ours = set(cpus[1:])
        for pid in (self.daemon.pid, self.app.pid):
            for tid in os.listdir(f"/proc/{pid}/task"):
                try:
                    os.sched_setaffinity(int(tid), {cpus[0]})
                except ProcessLookupError:
                    pass
        mine = os.sched_getaffinity(0)
        os.sched_setaffinity(0, ours)
        self.addCleanup(os.sched_setaffinity, 0, mine)

    def short_pipeline_rate(self, n):
        """Answers per second to n requests sent at once on a new connection."""
        started = time.monotonic()
        c = Pipeline(self, self.port, n * len(TINY), started + 10.0)
        expected = n * self.answer
        deadline = started + 10.0
        while c.received < expected and not c.errors and time.monotonic() < deadline:
            time.sleep(0.001)
        elapsed = (c.arrivals[-1][0] if c.arrivals else time.monotonic()) - started
        c.finish()
        self.assertEqual((c.received, c.errors), (expected, []))
        return n / elapsed

    def test_many_pipelining_clients_keep_memory_bounded(self):
        # Ten clients each send 16 MB of requests as fast as the daemon takes them, reading
        # their answers all along: what the daemon buffers must stay bounded by the request
        # limits, whatever the clients send ahead.
        for _ in range(3):
            self.short_pipeline_rate(2000)  # the loops' buffers and door connections exist
        idle = self.rss_kib()
        until = time.monotonic() + 4.0
        clients = [Pipeline(self, self.port, 16 << 20, until) for _ in range(10)]
        peak = idle
        while time.monotonic() < until + 0.5:
            peak = max(peak, self.rss_kib())
            time.sleep(0.05)
        answers = sum(c.received for c in clients) // self.answer
        sent = sum(c.sent for c in clients)
        for c in clients:
            c.finish()
        errors = [e for c in clients for e in c.errors]
        self.assertEqual(errors, [])
        growth = peak - idle
        print(f"\n  idle {idle} KiB, peak {peak} KiB (+{growth} KiB); {sent >> 20} MiB sent, {answers} answers")
        self.assertGreater(answers, 1000)
        if not harness.SANITIZED:
            self.assertLess(growth, 10 << 10, f"RSS grew by {growth} KiB")
        self.assertTrue(self.daemon.alive())

    def test_a_long_pipeline_costs_the_same_per_request(self):
        # The rate of answers on a connection with megabytes of requests queued behind the
        # current one must match that of a short pipeline: no work per request grows with
        # what is buffered. The bound is generous, for a loaded machine.
        self.pin_apart()
        short = sorted(self.short_pipeline_rate(5000) for _ in range(3))[1]
        started = time.monotonic()
        c = Pipeline(self, self.port, 64 << 20, started + 3.5)
        time.sleep(3.5)
        c.finish()
        self.assertEqual(c.errors, [])
        # The steady state: from one second in, once the pipeline is long.
        window = [(t, n) for t, n in c.arrivals if started + 1.0 <= t <= started + 3.5]
        self.assertGreater(len(window), 2)
        (t0, n0), (t1, n1) = window[0], window[-1]
        long = (n1 - n0) / self.answer / (t1 - t0)
        print(f"\n  short pipeline {short:.0f}/s, long pipeline {long:.0f}/s ({c.sent >> 20} MiB sent)")
        self.assertGreater(long, short / 2)

    def test_pipeline_longer_than_the_read_ahead_with_half_close(self):
        # More requests than the daemon reads ahead, then the client's FIN: every request is
        # answered, in order, and then the connection closes.
        s, reader = self.open(self.port, timeout=10.0)
        n = 3000
        data = b"".join(request_bytes("GET", f"/echo/{i}") for i in range(n))
        self.assertGreater(len(data), 1 << 16)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        for i in range(n):
            r = reader.response()
            line, _, _ = app_request(r.body)
            self.assertEqual((r.status, line), (200, f"GET /echo/{i} HTTP/1.1"))
        self.assertTrue(reader.closed())

    def test_pipelined_bodies_larger_than_a_read(self):
        # Bodies are read whole while nothing is answered, however far apart their requests.
        s, reader = self.open(self.port, timeout=10.0)
        bodies = [bytes([65 + i]) * (100_000 + i) for i in range(20)]
        sender = threading.Thread(target=s.sendall, args=(b"".join(
            request_bytes("POST", f"/echo/{i}", body=b) for i, b in enumerate(bodies)),))
        sender.start()
        for i, b in enumerate(bodies):
            r = reader.response()
            line, _, body = app_request(r.body)
            self.assertEqual((r.status, line, len(body)), (200, f"POST /echo/{i} HTTP/1.1", len(b)))
            self.assertEqual(body, b)
        sender.join(10)
        self.assertFalse(reader.closed(timeout=0.2))

    def test_large_header_section_behind_a_slow_request(self):
        # The next request may be bigger than a read; it is read whole once it is its turn.
        s, reader = self.open(self.roomy)
        big = request_bytes("GET", "/echo/big", headers=[("X-Fill", "f" * 500_000)])
        s.sendall(request_bytes("GET", "/sleep/200") + big + request_bytes("GET", "/status/201"))
        self.assertEqual(reader.response().body, b"slept\n")
        r = reader.response()
        line, fields, _ = app_request(r.body)
        self.assertEqual((r.status, line), (200, "GET /echo/big HTTP/1.1"))
        self.assertIn(("X-Fill", "f" * 500_000), fields)
        self.assertEqual(reader.response().status, 201)


if __name__ == "__main__":
    http_harness.main()
