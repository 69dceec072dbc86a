#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Every limit under pressure: queue overflow, max_connections, idle and silent clients, timeouts.
import os
import socket
import threading
import time

import harness
from harness import DaemonTest, cpu_ticks, fd_count, listen_text, status_field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tcp(name, port, door, **extra):
    return {"name": name, "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": door, **extra}


class QueueOverflow(DaemonTest):
    def burst(self, port, n, request):
        """n clients send `request` at once; returns (replies, seconds until each refusal)."""
        clients = [self.connect(port) for _ in range(n)]
        sent = time.monotonic()
        for s in clients:
            s.sendall(request)
        outcomes = [None] * n

        def wait(i, s):
            s.settimeout(5.0)
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            outcomes[i] = (data, time.monotonic() - sent)

        threads = [threading.Thread(target=wait, args=(i, s)) for i, s in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        replies = [data for data, _ in outcomes if data]
        refused = [elapsed for data, elapsed in outcomes if not data]
        return replies, refused

    def test_overflow_closes_promptly_and_warns_once_per_second(self):
        app = self.start_app("slow.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("narrow", port, app.door, max_concurrency=1, queue=1)])
        replies, refused = self.burst(port, 5, b"sleep:500:served")
        # One call runs, one waits in the queue, three are turned away before the first call
        # could even have finished.
        self.assertEqual(replies, [b"served", b"served"])
        self.assertEqual(len(refused), 3)
        self.assertLess(max(refused), 0.4, refused)
        d.wait_log(r"warning: forward narrow: queue full \(1 calls in flight, 1 queued\), closing 127\.0\.0\.1:\d+ "
                   r"\(0 more since last warning\)")
        self.assertEqual(d.count(r"queue full"), 1, d.tail())
        self.assertEqual(d.access_log().count('result="queue full"'), 3)

        # A second burst more than a second later: one more warning, which counts the two
        # refusals the first one did not log.
        time.sleep(1.1)
        replies, refused = self.burst(port, 5, b"sleep:500:served")
        self.assertEqual((len(replies), len(refused)), (2, 3))
        d.wait_log(r"queue full .*\(2 more since last warning\)")
        self.assertEqual(d.count(r"queue full"), 2, d.tail())


class MaxConnections(DaemonTest):
    def idle_pair(self, port):
        """Two connections the daemon has certainly accepted (each got a reply), left idle."""
        pair = [self.connect(port), self.connect(port)]
        for s in pair:
            self.exchange(s, b"accepted", b"accepted")
        return pair

    def assert_not_served(self, s, seconds):
        s.settimeout(seconds)
        with self.assertRaises(socket.timeout):
            s.recv(100)

    def test_third_connection_waits_for_a_free_slot(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("limited", port, app.door, read_timeout="30s", idle_timeout="30s")],
                              {"max_connections": 2})
        first, second = self.idle_pair(port)
        # The kernel completes the handshake (the listen backlog); the daemon does not accept.
        third = self.connect(port)
        third.sendall(b"third")
        before = cpu_ticks(d.pid)
        self.assert_not_served(third, 1.0)
        used = cpu_ticks(d.pid) - before
        # A paused listener costs nothing; a spinning accept loop would burn a whole second.
        self.assertLess(used, CLOCK_TICKS // 10, f"{used} ticks of CPU in one idle second")
        first.close()
        self.assertEqual(self.recv_exact(third, 5, timeout=1.0), b"third")
        self.exchange(second, b"still", b"still")

    def test_reload_raising_the_limit_resumes_accepting(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        forwards = [tcp("limited", port, app.door, read_timeout="30s", idle_timeout="30s")]
        d = self.start_daemon(forwards, {"max_connections": 1})
        first = self.connect(port)
        self.exchange(first, b"accepted", b"accepted")
        waiting = self.connect(port)
        waiting.sendall(b"waiting")
        self.assert_not_served(waiting, 0.5)
        self.reload(d, forwards, {"max_connections": 5})
        self.assertEqual(self.recv_exact(waiting, 7, timeout=1.0), b"waiting")
        self.exchange(first, b"still", b"still")

    def test_limit_holds_across_forwards(self):
        # max_connections counts every tcp connection of the daemon, whichever forward took it.
        app = self.start_app("echo.door")
        pa, pb = self.reserve_port(), self.reserve_port()
        self.start_daemon([tcp("a", pa, app.door, idle_timeout="30s"), tcp("b", pb, app.door, read_timeout="30s")],
                          {"max_connections": 2})
        first, _ = self.idle_pair(pa)
        other = self.connect(pb)
        other.sendall(b"other")
        self.assert_not_served(other, 0.8)
        first.close()
        self.assertEqual(self.recv_exact(other, 5, timeout=1.0), b"other")


class SlowClients(DaemonTest):
    def test_thousand_idle_connections_do_not_slow_others(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("busy", port, app.door, read_timeout="60s")], {"max_connections": 5000})
        self.round_trip(port, b"warm up")
        d.wait_closed_sessions("busy", 2)  # the readiness probe and the warm-up
        baseline = fd_count(d.pid)
        idle = [self.connect(port) for _ in range(1000)]
        deadline = time.monotonic() + 15
        while fd_count(d.pid) < baseline + len(idle):
            self.assertLess(time.monotonic(), deadline, f"daemon holds {fd_count(d.pid) - baseline} connections")
            time.sleep(0.05)
        for attempt in range(3):
            started = time.monotonic()
            self.round_trip(port, b"normal client %d" % attempt)
            self.assertLess(time.monotonic() - started, 0.2)
        # They are all still open and served too.
        self.exchange(idle[0], b"first", b"first")
        self.exchange(idle[-1], b"last", b"last")

    def test_idle_connections_do_not_cost_max_request_each(self):
        # max_request bounds one read; a connection that has sent nothing must not hold that
        # much memory already, or a few idle clients exhaust the daemon's memory (1 MiB here;
        # the configuration allows up to 64 MiB).
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("roomy", port, app.door, read_timeout="60s", max_request=1 << 20)],
                              {"max_connections": 5000})
        self.round_trip(port, b"warm up")
        d.wait_closed_sessions("roomy", 2)  # the readiness probe and the warm-up
        before = int(status_field(d.pid, "VmRSS")[0])
        baseline = fd_count(d.pid)
        idle = [self.connect(port) for _ in range(200)]
        deadline = time.monotonic() + 10
        while fd_count(d.pid) < baseline + len(idle):
            self.assertLess(time.monotonic(), deadline, "the daemon did not accept every connection")
            time.sleep(0.05)
        per_connection = (int(status_field(d.pid, "VmRSS")[0]) - before) / len(idle)
        self.assertLess(per_connection, 64, f"{per_connection:.0f} KiB of memory per idle connection")

    def test_read_timeout_closes_a_silent_connection(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("rt", port, app.door, read_timeout="500ms", idle_timeout="5s")])
        s = self.connect(port)
        waited = self.wait_closed(s, timeout=3.0)
        self.assertGreater(waited, 0.45)
        self.assertLess(waited, 1.0)
        s.close()
        d.wait_access_log(r'tcp forward=rt client=\S+ calls=0 in=0 out=0 result="read timeout"')

    def test_idle_timeout_closes_a_quiet_connection(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("it", port, app.door, read_timeout="5s", idle_timeout="700ms")])
        # A client that keeps talking is never idle, however long it stays: 1.4 s here, twice
        # the idle timeout.
        s = self.connect(port)
        for i in range(5):
            if i:
                time.sleep(0.35)
            self.exchange(s, b"%d" % i, b"%d" % i)
        quiet_since = time.monotonic()
        self.wait_closed(s, timeout=3.0)
        waited = time.monotonic() - quiet_since
        self.assertGreater(waited, 0.65)
        self.assertLess(waited, 1.2)
        d.wait_access_log(r'tcp forward=it client=\S+ calls=5 in=5 out=5 result="idle timeout"')

    def test_client_that_stops_reading_is_dropped_after_read_timeout(self):
        # read_timeout also bounds how long a reply may wait without the client taking any of it.
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("stuck", port, app.door, read_timeout="500ms", idle_timeout="30s")])
        s = self.connect(port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setblocking(False)
        chunk = b"x" * 65536
        stalled_since = None
        while stalled_since is None or time.monotonic() - stalled_since < 0.2:
            try:
                s.send(chunk)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break
        d.wait_access_log(r'tcp forward=stuck client=\S+ calls=\d+ in=\d+ out=\d+ result="write timeout"', timeout=3.0)
        self.round_trip(port, b"others are fine")


class DescriptorExhaustion(DaemonTest):
    def test_out_of_descriptors_pauses_accepting_then_recovers(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("tight", port, app.door, read_timeout="30s")], {"max_connections": 5000},
                              nofile=40)
        self.round_trip(port, b"warm up")  # the door connection is open before the table fills
        idle = [self.connect(port) for _ in range(60)]
        d.wait_log(rf"warning: accept on 127\.0\.0\.1:{port}: Too many open files; pausing 100 ms")
        before = cpu_ticks(d.pid)
        time.sleep(1.0)
        used = cpu_ticks(d.pid) - before
        self.assertLess(used, CLOCK_TICKS // 10, f"{used} ticks of CPU in one second out of descriptors")
        for s in idle:
            s.close()
        self.round_trip(port, b"recovered", timeout=3.0)
        self.assertTrue(d.alive())


class CallTimeout(DaemonTest):
    def test_slow_call_is_abandoned(self):
        app = self.start_app("slow.door")
        port = self.reserve_port(udp=True)
        d = self.start_daemon([tcp("slow", port, app.door, call_timeout="300ms"),
                               {"name": "slow-udp", "protocol": "udp", "listen": listen_text("127.0.0.1", port),
                                "door": app.door, "call_timeout": "300ms"}])
        s = self.connect(port)
        s.sendall(b"sleep:2000:too slow")
        waited = self.wait_closed(s, timeout=3.0)
        self.assertGreater(waited, 0.25)
        self.assertLess(waited, 1.0)
        d.wait_log(r"warning: forward slow: door .*: the door call timed out")
        # The daemon serves on while the application is still busy with the abandoned call.
        started = time.monotonic()
        self.round_trip(port, b"quick")
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertIsNone(self.udp_request(port, b"sleep:2000:too slow", timeout=1.0))
        self.assertEqual(self.udp_request(port, b"quick udp"), b"quick udp")
        self.assertTrue(d.alive())

    def test_slow_call_on_an_event_loop_connection_is_abandoned(self):
        app = self.start_app("slow.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp("slow", port, app.door, call_timeout="300ms")], daemon={"log_level": "debug"})
        s = self.connect(port)
        # The first call opens the door on the caller pool; the next ones run on the loop.
        for i in range(3):
            self.exchange(s, f"warm {i}".encode(), f"warm {i}".encode())
        d.wait_log(r"an event loop (took|batches its calls on) a door connection of its own")
        s.sendall(b"sleep:2000:too slow")
        waited = self.wait_closed(s, timeout=3.0)
        self.assertGreater(waited, 0.25)
        self.assertLess(waited, 1.0)
        d.wait_log(r"warning: forward slow: door .*: the door call timed out")
        # The abandoned connection is gone with its late reply; later calls get their own answers.
        s = self.connect(port)
        for i in range(5):
            self.exchange(s, f"after {i}".encode(), f"after {i}".encode())
        time.sleep(2.0)  # the application finishes the abandoned call meanwhile
        self.exchange(s, b"late reply?", b"late reply?")
        self.assertTrue(d.alive())


if __name__ == "__main__":
    harness.main()
