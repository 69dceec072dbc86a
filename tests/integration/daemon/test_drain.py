#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# SIGTERM: calls in flight get their replies, new clients are refused, exit 0 by drain_timeout.
import signal
import socket
import time

import harness
from harness import DaemonTest, listen_text


class Drain(DaemonTest):
    def start(self, drain_timeout, daemon=None, **forward):
        self.calls = self.path("calls.log")
        self.app = self.start_app("slow.door", "--log", self.calls)
        self.port = self.reserve_port()
        return self.start_daemon(
            [{"name": "slow", "protocol": "tcp", "listen": listen_text("127.0.0.1", self.port),
              "door": self.app.door, **forward}],
            {"drain_timeout": drain_timeout, **(daemon or {})})

    def test_calls_in_flight_finish(self):
        d = self.start("5s")
        idle = self.connect(self.port)
        self.exchange(idle, b"hello", b"hello")
        busy = [self.connect(self.port) for _ in range(3)]
        for i, s in enumerate(busy):
            s.sendall(b"sleep:1000:reply %d" % i)
        self.wait_calls(self.calls, 4)

        sent = time.monotonic()
        d.send_signal(signal.SIGTERM)
        d.wait_log(r"SIGTERM: stopping")
        self.assert_refused(self.port)
        # An idle connection has nothing to wait for: it is closed at once.
        self.assertLess(self.wait_closed(idle, timeout=1.0), 0.5)
        for i, s in enumerate(busy):
            self.assertEqual(self.recv_exact(s, len(b"reply %d" % i)), b"reply %d" % i)
            self.wait_closed(s, timeout=1.0)
        status = d.wait(5.0)
        elapsed = time.monotonic() - sent
        self.assertEqual(status, 0, d.tail())
        # The calls took a second; the daemon left as soon as they were answered, well before
        # its five-second drain_timeout.
        self.assertGreater(elapsed, 0.8)
        self.assertLess(elapsed, 3.0)
        self.assertIn("all calls finished; exiting", d.log())

    def test_deadline_passes_with_a_call_still_running(self):
        d = self.start("300ms")
        s = self.connect(self.port)
        s.sendall(b"sleep:2000:too late")
        self.wait_calls(self.calls, 1)
        sent = time.monotonic()
        d.send_signal(signal.SIGTERM)
        status = d.wait(3.0)
        elapsed = time.monotonic() - sent
        self.assertEqual(status, 0, d.tail())
        self.assertGreater(elapsed, 0.25)
        self.assertLess(elapsed, 1.5)
        # The client gets no reply: its connection ends with the daemon.
        self.wait_closed(s, timeout=1.0)
        log = d.log()
        self.assertIn("drain timeout: 1 call(s) and 1 connection(s) still open; stopping anyway", log)
        self.assertIn("abandoning 1 door call(s) still in flight", log)

    def test_second_signal_exits_at_once(self):
        d = self.start("10s")
        s = self.connect(self.port)
        s.sendall(b"sleep:2000:x")
        self.wait_calls(self.calls, 1)
        d.send_signal(signal.SIGTERM)
        d.wait_log(r"SIGTERM: stopping")
        sent = time.monotonic()
        d.send_signal(signal.SIGINT)
        self.assertEqual(d.wait(2.0), 0, d.tail())
        self.assertLess(time.monotonic() - sent, 1.0)
        self.assertIn("second stop signal: exiting without waiting", d.log())

    def test_sighup_while_draining_does_not_cut_the_drain_short(self):
        # logrotate and configuration tools send SIGHUP whenever they like; during a drain it
        # must not count as the operator's second "stop now".
        d = self.start("5s")
        s = self.connect(self.port)
        s.sendall(b"sleep:1000:worth waiting for")
        self.wait_calls(self.calls, 1)
        d.send_signal(signal.SIGTERM)
        d.wait_log(r"SIGTERM: stopping")
        d.send_signal(signal.SIGHUP)
        self.assertEqual(self.recv_exact(s, len(b"worth waiting for")), b"worth waiting for")
        self.assertEqual(d.wait(3.0), 0, d.tail())
        self.assertIn("all calls finished; exiting", d.log())

    def test_udp_call_in_flight_gets_its_reply(self):
        self.calls = self.path("calls.log")
        app = self.start_app("slow.door", "--log", self.calls)
        port = self.reserve_port(udp=True)
        d = self.start_daemon([{"name": "slow-udp", "protocol": "udp", "listen": listen_text("127.0.0.1", port),
                                "door": app.door}], {"drain_timeout": "5s"})
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(3.0)
            u.sendto(b"sleep:1000:datagram reply", ("127.0.0.1", port))
            self.wait_calls(self.calls, 1)
            d.send_signal(signal.SIGTERM)
            d.wait_log(r"SIGTERM: stopping")
            # The daemon waits for this call before it exits; the reply is what it waits for.
            try:
                reply = u.recv(100)
            except socket.timeout:
                reply = None
            self.assertEqual(reply, b"datagram reply")
        self.assertEqual(d.wait(3.0), 0, d.tail())

    def test_deadline_with_a_client_that_stops_reading(self):
        # A client that sends but never reads leaves the daemon with a reply it cannot write;
        # at max_connections the listener is parked waiting for a free slot. drain_timeout must
        # still end the daemon cleanly.
        d = self.start("300ms", {"max_connections": 1}, read_timeout="30s")
        s = self.connect(self.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        chunk = b"x" * 65536
        stalled_since = None
        sent = 0
        # Send until the daemon stops reading because its own writes to us are stuck.
        while stalled_since is None or time.monotonic() - stalled_since < 0.3:
            try:
                sent += s.send(chunk)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                time.sleep(0.01)
            self.assertLess(sent, 256 << 20, "the daemon kept reading without being read from")
        started = time.monotonic()
        d.send_signal(signal.SIGTERM)
        status = d.wait(3.0)
        self.assertEqual(status, 0, d.tail())
        self.assertLess(time.monotonic() - started, 1.5)
        self.assertIn("drain timeout: 0 call(s) and 1 connection(s) still open; stopping anyway", d.log())


if __name__ == "__main__":
    harness.main()
