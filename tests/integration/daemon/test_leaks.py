#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# After thousands of connections, well-behaved or not, the daemon holds no more descriptors or
# threads than before.
import os
import socket
import struct
import time

import harness
from harness import DaemonTest, fd_count, listen_text, thread_count


class NoLeaks(DaemonTest):
    def client(self, port, kind, i):
        request = b"request %d" % i
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            if kind == 0:  # polite: ask, read, close
                self.exchange(s, request, request)
            elif kind == 1:  # connect and leave without a word
                pass
            elif kind == 2:  # ask, then reset the connection without reading the reply
                s.sendall(request)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:  # ask, half-close, read the reply and the daemon's close
                s.sendall(request)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(self.recv_exact(s, len(request)), request)
                self.wait_closed(s)

    @staticmethod
    def descriptors(pid):
        """What each open descriptor of `pid` refers to, for the failure message."""
        out = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                pass
        return dict(sorted(out.items()))

    def load(self, d, port, n, first):
        for i in range(first, first + n):
            self.client(port, i % 4, i)
        d.wait_closed_sessions("leaky", first + n)

    def test_descriptors_and_threads_return_to_baseline(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        # One call at a time keeps the door connection pool at exactly one connection, so the
        # descriptor count below can be exact.
        d = self.start_daemon([{"name": "leaky", "protocol": "tcp", "listen": listen_text("127.0.0.1", port),
                                "door": app.door, "max_concurrency": 1}],
                              {"threads": 2})
        self.load(d, port, 200, 1)  # 1: the readiness probe's connection
        fds, threads = fd_count(d.pid), thread_count(d.pid)
        self.load(d, port, 2000, 201)
        deadline = time.monotonic() + 5
        while fd_count(d.pid) != fds and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(fd_count(d.pid), fds, self.descriptors(d.pid))
        # The caller pool grows at its high-water mark and does not shrink within this test (its
        # threads leave after 30 s idle); a thread that is slow
        # to become idle again (preempted right after a call) can raise that mark by one or two.
        # A leak is different: a thread per connection, or per kind of misbehaviour, would add
        # hundreds here.
        self.assertLessEqual(thread_count(d.pid), threads + 2, f"{threads} threads after the warm-up")


    def test_a_burst_of_first_requests_needs_no_caller_threads(self):
        # Event loops open their door connections without blocking, so a burst of concurrent
        # requests on a fresh daemon does not make the caller pool grow to the size of the burst.
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([{"name": "burst", "protocol": "tcp", "listen": listen_text("127.0.0.1", port),
                                "door": app.door}], {"threads": 2, "log_level": "debug"})
        self.round_trip(port, b"opens the door")  # the first call opens it on the caller pool
        before = thread_count(d.pid)
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(32)]
        try:
            for i, s in enumerate(clients):
                s.sendall(b"burst %d" % i)
            for i, s in enumerate(clients):
                self.assertEqual(self.recv_exact(s, len(b"burst %d" % i)), b"burst %d" % i)
        finally:
            for s in clients:
                s.close()
        self.assertLessEqual(thread_count(d.pid), before + 2, f"{before} threads before the burst")
        d.wait_log(r"an event loop opened a door connection of its own")


if __name__ == "__main__":
    harness.main()
