#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# One application that does not answer must not hold up the forwards of the others: requests
# to it end by their call_timeout (504 or a close) while every other forward keeps its latency.
import os
import random
import signal
import socket
import statistics
import threading
import time

import http_harness
from http_harness import HttpTest, http_forward
from harness import SANITIZED, listen_text

CALL_TIMEOUT = 2.0
# The least a healthy request is allowed during a fault, whatever the baseline: above the hiccups
# of a loaded 2-CPU machine (more under the sanitizers), well below the call_timeout that a
# frozen loop would make every request wait.
LATENCY_FLOOR = 1.5 if SANITIZED else 1.0
# How late past call_timeout a request to a stuck application may still end.
DEADLINE_MARGIN = 1.5
# A client's own limit, past every deadline the daemon should keep, so a hang is reported
# with how long it lasted rather than as a test timeout.
CLIENT_TIMEOUT = CALL_TIMEOUT + DEADLINE_MARGIN + 2.5


def http_get(port, target, timeout=CLIENT_TIMEOUT):
    """One GET on a new connection. Returns (outcome, seconds): outcome is the status code,
    "close" (closed or reset without a response), "timeout" or "error: ..."."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(max(0.01, started + timeout - time.monotonic()))
            s.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                s.settimeout(max(0.01, started + timeout - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        return "timeout", time.monotonic() - started
    except OSError as e:
        return f"error: {e!r}", time.monotonic() - started
    elapsed = time.monotonic() - started
    if not data:
        return "close", elapsed
    if not data.startswith(b"HTTP/1.1 ") or len(data) < 12:
        return f"error: bad response {data[:60]!r}", elapsed
    return int(data[9:12]), elapsed


def tcp_echo(port, payload, timeout=CLIENT_TIMEOUT):
    """One exchange with the echo application on a new connection: (outcome, seconds), the
    outcome "ok" when the payload came back whole."""
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(payload)
            data = b""
            while len(data) < len(payload):
                s.settimeout(max(0.01, started + timeout - time.monotonic()))
                chunk = s.recv(len(payload) - len(data))
                if not chunk:
                    return f"closed after {len(data)} bytes", time.monotonic() - started
                data += chunk
    except socket.timeout:
        return "timeout", time.monotonic() - started
    except OSError as e:
        return f"error: {e!r}", time.monotonic() - started
    return ("ok" if data == payload else f"wrong reply {data[:40]!r}"), time.monotonic() - started


class Isolation(HttpTest):
    # None: the daemon's own default (half the CPUs, 1 to 4).
    threads = None

    def daemon_defaults(self):
        settings = super().daemon_defaults()
        if self.threads is None:
            settings.pop("threads", None)
        else:
            settings["threads"] = self.threads
        return settings

    def stop_app(self, app):
        os.kill(app.pid, signal.SIGSTOP)

    def continue_app(self, app):
        if app.alive():
            os.kill(app.pid, signal.SIGCONT)

    def keep_running(self, *apps):
        """Cleanup continues every app before the harness stops them, whatever happened."""
        def cont():
            for app in apps:
                try:
                    self.continue_app(app)
                except ProcessLookupError:
                    pass
        self.addCleanup(cont)

    def start_forwards(self, a_door):
        """A (http, to `a_door`), B (http, to http_test_app) and E (tcp, to echo), each with
        call_timeout = CALL_TIMEOUT. Returns the daemon."""
        self.b = self.start_app("b.door", "--tag", "B")
        self.e = self.start_app("e.door", program_name="echo")
        self.keep_running(self.b, self.e)
        self.port_a, self.port_b, self.port_e = (self.reserve_port() for _ in range(3))
        timeout = f"{int(CALL_TIMEOUT * 1000)}ms"
        return self.start_http([
            http_forward(self.port_a, a_door, name="a", call_timeout=timeout),
            http_forward(self.port_b, self.b.door, name="b", call_timeout=timeout),
            {"name": "e", "protocol": "tcp", "listen": listen_text("127.0.0.1", self.port_e), "door": self.e.door,
             "call_timeout": timeout},
        ])

    def healthy_baseline(self):
        """Median latency of B and E over a few requests (every event loop opens its door
        connections here too); returns the bound each of them must keep during a fault."""
        samples = []
        for i in range(16):
            outcome, elapsed = http_get(self.port_b, f"/warm/{i}", timeout=5)
            self.assertEqual(outcome, 200, f"B before the fault: {outcome} after {elapsed:.2f} s")
            samples.append(elapsed)
            outcome, elapsed = tcp_echo(self.port_e, b"warm %d" % i, timeout=5)
            self.assertEqual(outcome, "ok", f"E before the fault: {outcome} after {elapsed:.2f} s")
            samples.append(elapsed)
        return max(LATENCY_FLOOR, 5 * statistics.median(samples))

    def requests_to_stuck(self, port, n=2):
        """n GETs to `port` at once on threads of their own; returns the list they fill with
        (outcome, seconds) and the threads."""
        results = []
        lock = threading.Lock()

        def one(i):
            r = http_get(port, f"/stuck/{i}")
            with lock:
                results.append(r)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        for t in threads:
            t.start()
        return results, threads

    def check_isolation(self, d, bound, resume):
        """While two requests to A are pending, B and E keep their latency; A's requests end by
        their deadline. `resume` makes A answer again; A must then serve 200."""
        stuck, threads = self.requests_to_stuck(self.port_a)
        # Let both requests reach the daemon and the door open begin.
        time.sleep(0.3)
        healthy = []
        window_end = time.monotonic() + CALL_TIMEOUT + 1.0
        for i in range(40):
            if time.monotonic() >= window_end:
                break
            healthy.append(("B",) + http_get(self.port_b, f"/during/{i}", timeout=bound + 2))
            healthy.append(("E",) + tcp_echo(self.port_e, b"during %d" % i, timeout=bound + 2))
        for t in threads:
            t.join(CLIENT_TIMEOUT + 1)

        slow = [(name, outcome, round(elapsed, 2)) for name, outcome, elapsed in healthy
                if outcome not in (200, "ok") or elapsed > bound]
        late = [(outcome, round(elapsed, 2)) for outcome, elapsed in stuck
                if outcome not in (504, "close") or elapsed > CALL_TIMEOUT + DEADLINE_MARGIN]
        report = (f"healthy forwards (bound {bound:.2f} s): {len(healthy)} request(s), failed or slow: {slow}; "
                  f"requests to the stuck application: {[(o, round(e, 2)) for o, e in stuck]} "
                  f"({2 - len(stuck)} still pending after {CLIENT_TIMEOUT} s); daemon log:\n{d.tail(15)}")
        self.assertEqual(len(stuck), 2, report)
        self.assertEqual(slow, [], report)
        self.assertEqual(late, [], report)

        resume()
        deadline = time.monotonic() + 5.0
        while True:
            outcome, elapsed = http_get(self.port_a, "/after", timeout=5)
            if outcome == 200:
                break
            if time.monotonic() >= deadline:
                self.fail(f"A still not answering 200 after it was resumed: {outcome} after {elapsed:.2f} s; "
                          f"daemon log:\n{d.tail(15)}")
            time.sleep(0.1)
        # And B never noticed.
        self.assertEqual(http_get(self.port_b, "/end")[0], 200)
        self.assertEqual(tcp_echo(self.port_e, b"end")[0], "ok")

    def test_stopped_application(self):
        a = self.start_app("a.door", "--tag", "A", own_session=True)
        self.keep_running(a)
        d = self.start_forwards(a.door)
        bound = self.healthy_baseline()
        # Stopped before any request reached A: the daemon opens a door on first use, so its
        # first connection to A waits for a greeting that does not come.
        self.stop_app(a)
        self.check_isolation(d, bound, lambda: self.continue_app(a))

    def test_mute_listener(self):
        # A listening socket at A's door path that never accepts, so never greets.
        door = self.path("a.door")
        mute = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.addCleanup(mute.close)
        mute.bind(door)
        mute.listen(16)
        d = self.start_forwards(door)
        bound = self.healthy_baseline()

        def resume():
            # The real application replaces the mute socket; the daemon's next open reaches it.
            mute.close()
            os.unlink(door)
            self.keep_running(self.start_app("a.door", "--tag", "A", own_session=True))

        self.check_isolation(d, bound, resume)


class IsolationFourLoops(Isolation):
    threads = 4


class Chaos(HttpTest):
    DURATION = 30.0
    APPS = 3

    def test_one_application_stopped_at_a_time(self):
        rng = random.Random(os.environ.get("PORTUNUSD_CHAOS_SEED") or time.time_ns())
        apps = [self.start_app(f"app{i}.door", "--tag", f"app{i}", own_session=True) for i in range(self.APPS)]
        # Every stopped application is continued before the harness stops it, whatever failed.
        stopped = {}
        stopped_lock = threading.Lock()

        def continue_all():
            for app in apps:
                try:
                    os.kill(app.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        self.addCleanup(continue_all)

        ports = [self.reserve_port() for _ in apps]
        timeout = f"{int(CALL_TIMEOUT * 1000)}ms"
        d = self.start_http([http_forward(port, app.door, name=f"app{i}", call_timeout=timeout)
                             for i, (port, app) in enumerate(zip(ports, apps))], daemon={"threads": 2})

        # The first application stopped has had no request yet, so the daemon has not opened
        # its door; the others are warmed up and give the latency bound.
        first = rng.randrange(self.APPS)
        samples = []
        for i in range(12):
            for k, port in enumerate(ports):
                if k == first:
                    continue
                outcome, elapsed = http_get(port, f"/warm/{i}", timeout=5)
                self.assertEqual(outcome, 200, f"app{k} before the chaos: {outcome} after {elapsed:.2f} s")
                samples.append(elapsed)
        bound = max(LATENCY_FLOOR, 5 * statistics.median(samples))

        # (app, stopped at, continued at), by monotonic time.
        stops = []
        results = []
        results_lock = threading.Lock()
        chaos_over = threading.Event()

        def chaos():
            k = first
            end = time.monotonic() + self.DURATION
            for _ in range(200):
                if time.monotonic() >= end or self._stop.is_set():
                    break
                with stopped_lock:
                    os.kill(apps[k].pid, signal.SIGSTOP)
                    stopped[k] = time.monotonic()
                self._stop.wait(rng.uniform(0.2, 3.0))
                with stopped_lock:
                    os.kill(apps[k].pid, signal.SIGCONT)
                    stops.append((k, stopped.pop(k), time.monotonic()))
                self._stop.wait(rng.uniform(0.1, 1.0))
                k = rng.randrange(self.APPS)
            chaos_over.set()

        def client(stop, k, c):
            for i in range(100000):
                if stop.is_set() or chaos_over.is_set():
                    return
                started = time.monotonic()
                outcome, elapsed = http_get(ports[k], f"/chaos/{c}/{i}")
                with results_lock:
                    results.append((k, started, started + elapsed, outcome, elapsed))
                stop.wait(0.02)

        chaos_thread = threading.Thread(target=chaos, daemon=True)
        chaos_thread.start()
        # The first stop must be in place before any client reaches that application.
        deadline = time.monotonic() + 2
        while first not in stopped and time.monotonic() < deadline:
            time.sleep(0.005)
        for k in range(self.APPS):
            for c in range(2):
                self.background(client, k, c)
        chaos_thread.join(self.DURATION + 5)
        self.assertTrue(chaos_over.is_set(), "the chaos thread did not finish")
        for t in self._threads:
            t.join(CLIENT_TIMEOUT + 2)
        with stopped_lock:
            self.assertEqual(stopped, {})

        # A request was exposed to a stop of its application if their times overlap; after
        # SIGCONT the application is given a second to catch up with what queued meanwhile.
        grace = 1.0

        def exposed(k, begin, end):
            return any(app == k and s < end and begin < c + grace for app, s, c in stops)

        healthy_bad, stuck_bad = [], []
        exposed_count = 0
        for k, begin, end, outcome, elapsed in results:
            if exposed(k, begin, end):
                exposed_count += 1
                if outcome not in (200, 503, 504, "close") or elapsed > CALL_TIMEOUT + DEADLINE_MARGIN:
                    stuck_bad.append((f"app{k}", outcome, round(elapsed, 2)))
            elif outcome != 200 or elapsed > bound:
                healthy_bad.append((f"app{k}", outcome, round(elapsed, 2)))
        report = (f"{len(results)} request(s), {exposed_count} to a stopped application, {len(stops)} stop(s); "
                  f"bound {bound:.2f} s for the others; failed or slow while their application ran "
                  f"(first 20 of {len(healthy_bad)}): {healthy_bad[:20]}; past the deadline while it was "
                  f"stopped (first 20 of {len(stuck_bad)}): {stuck_bad[:20]}; daemon log:\n{d.tail(15)}\n"
                  + "".join(f"app{k}: {'running' if app.alive() else f'exited with status {app.popen.returncode}'}; log:\n{app.tail(10)}\n"
                            for k, app in enumerate(apps)))
        self.assertGreater(len(stops), 3, report)
        self.assertGreater(len(results) - exposed_count, 50, report)
        self.assertEqual(healthy_bad, [], report)
        self.assertEqual(stuck_bad, [], report)
        for k, port in enumerate(ports):
            self.assertEqual(http_get(port, "/end")[0], 200, f"app{k} after the chaos")


if __name__ == "__main__":
    http_harness.main()
