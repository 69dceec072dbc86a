#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Door failures as HTTP statuses: 503 + Retry-After, 502 for crashes and bad responses, 504.
import signal
import threading
import time

import http_harness
from http_harness import HttpTest, http_forward, request_bytes


class LoadClients:
    """`count` kept-alive clients in threads, sending /sleep requests until `done(n, statuses)`
    says stop; each client's statuses and any exception are kept for the test to check."""

    def __init__(self, test, port, count, done):
        self.statuses = [[] for _ in range(count)]
        self.errors = []
        self.started = threading.Barrier(count + 1)
        self.threads = [threading.Thread(target=self._client, args=(test, port, n, done)) for n in range(count)]
        for t in self.threads:
            t.start()
        self.started.wait(timeout=10)

    def _client(self, test, port, n, done):
        try:
            s, reader = test.open(port, timeout=5.0)
            self.started.wait(timeout=10)
            for i in range(5000):
                s.sendall(request_bytes("GET", f"/sleep/{1 + i % 3}"))
                self.statuses[n].append(reader.response().status)
                if done(self.statuses[n]):
                    break
            s.close()
        except Exception as e:  # reported by finish()
            self.errors.append((n, repr(e)))

    def finish(self, test, d):
        for t in self.threads:
            t.join(timeout=30)
        test.assertFalse(any(t.is_alive() for t in self.threads), "a client is still waiting")
        test.assertEqual(self.errors, [], d.tail())
        return self.statuses


class DoorErrors(HttpTest):
    def assert_local(self, r, status, reason):
        """`r` is the daemon's own answer with `status`."""
        self.assertEqual((r.status, r.reason, r.body), (status, reason, f"{status} {reason}\n".encode()), r)
        self.assertIsNone(r.header("X-App"))

    def test_missing_door_is_503_with_retry_after_until_the_application_starts(self):
        port = self.reserve_port()
        door = self.path("later.door")
        d = self.start_http([http_forward(port, door)])
        s, reader = self.open(port)
        s.sendall(request_bytes("GET", "/echo"))
        r = reader.response()
        self.assert_local(r, 503, "Service Unavailable")
        self.assertEqual(r.all("Retry-After"), ["1"])
        d.wait_log(r"warning: forward web: door .*later\.door: ")
        # The connection survives, and the next request finds the application once it is there.
        self.start_app("later.door")
        s.sendall(request_bytes("GET", "/status/200"))
        r = reader.response()
        self.assertEqual((r.status, r.header("X-App")), (200, "http_test_app"))

    def test_crash_mid_call_is_502_and_then_503(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door)])
        s, reader = self.open(port)
        s.sendall(request_bytes("GET", "/crash"))
        self.assert_local(reader.response(), 502, "Bad Gateway")
        self.assertIsNotNone(app.wait(5), "the application should have died")
        # Nobody serves the door any more: that is the application being down, not a bad gateway.
        s.sendall(request_bytes("GET", "/echo"))
        r = reader.response()
        self.assert_local(r, 503, "Service Unavailable")
        self.assertEqual(r.all("Retry-After"), ["1"])
        d.wait_access_log(r'method=GET path="/crash" status=502 in=[1-9]\d* out=[1-9]\d* ')

    def test_crash_under_concurrent_load_answers_every_request(self):
        # Many calls in flight on the event loop's batch link when the application dies: each
        # client gets 502 (its call was lost) or 503 (nobody serves the door), none hangs, and
        # once the application is back every client is served again.
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door)], daemon={"log_level": "debug"})
        crashed = threading.Event()
        load = LoadClients(self, port, 16, lambda st: crashed.is_set() and st[-1] != 200 and len(st) > 5)
        d.wait_log(r"an event loop batches its calls on a door connection of its own")
        time.sleep(0.3)
        app.kill()
        crashed.set()
        statuses = load.finish(self, d)
        seen = {status for st in statuses for status in st}
        self.assertLessEqual(seen, {200, 502, 503}, statuses)
        self.assertIn(502, seen, statuses)  # calls were lost with the link, not only refused
        d.wait_log(r"the batch connection of an event loop failed")
        self.assertTrue(all(st and st[-1] in (502, 503) for st in statuses), statuses)
        self.assertTrue(d.alive())
        self.start_app("app.door")
        for n in range(16):
            r, _ = self.get(port, f"/echo/again/{n}")
            self.assertEqual((r.status, r.header("X-App")), (200, "http_test_app"))

    def test_upgrade_under_concurrent_load_answers_every_request_200(self):
        # A new instance takes the path over, then the old one is revoked (SIGTERM) while 16
        # clients keep calls in flight on the batch link: calls the old one had not run are
        # answered EBADF and retried on the new one, the ones it was running finish, so no
        # client sees anything but 200.
        old = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, old.door)], daemon={"log_level": "debug"})
        stop = threading.Event()
        load = LoadClients(self, port, 16, lambda st: stop.is_set())
        d.wait_log(r"an event loop batches its calls on a door connection of its own")
        time.sleep(0.3)
        self.start_app("app.door", name="http_test_app:new")
        time.sleep(0.3)
        old.send_signal(signal.SIGTERM)
        self.assertEqual(old.wait(5.0), 0)
        time.sleep(0.5)
        stop.set()
        statuses = load.finish(self, d)
        bad = [(n, st) for n, sts in enumerate(statuses) for st in sts if st != 200]
        self.assertEqual(bad, [], d.tail())
        self.assertTrue(all(len(sts) > 10 for sts in statuses), [len(sts) for sts in statuses])
        self.assertTrue(d.alive())

    def test_call_past_call_timeout_is_504(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        self.start_http([http_forward(port, app.door, call_timeout="500ms")])
        s, reader = self.open(port)
        started = time.monotonic()
        s.sendall(request_bytes("GET", "/sleep/3000"))
        self.assert_local(reader.response(), 504, "Gateway Timeout")
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.45)
        self.assertLess(elapsed, 1.5)
        s.sendall(request_bytes("GET", "/status/200"))
        self.assertEqual(reader.response().status, 200)

    def test_call_timeout_on_an_event_loop_connection_is_504(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door, call_timeout="500ms")], daemon={"log_level": "debug"})
        s, reader = self.open(port)
        # The first call opens the door on the caller pool; the next ones run on the loop.
        for _ in range(3):
            s.sendall(request_bytes("GET", "/status/200"))
            self.assertEqual(reader.response().status, 200)
        d.wait_log(r"an event loop (took|batches its calls on) a door connection of its own")
        started = time.monotonic()
        s.sendall(request_bytes("GET", "/sleep/2000"))
        self.assert_local(reader.response(), 504, "Gateway Timeout")
        self.assertGreater(time.monotonic() - started, 0.45)
        self.assertLess(time.monotonic() - started, 1.5)
        # The late reply of the abandoned call must never reach a later request.
        for _ in range(3):
            s.sendall(request_bytes("GET", "/status/201"))
            self.assertEqual(reader.response().body, b"status 201\n")
        time.sleep(2.0)
        s.sendall(request_bytes("GET", "/status/202"))
        self.assertEqual(reader.response().body, b"status 202\n")

    def test_queue_full_is_503_with_retry_after(self):
        app = self.start_app("app.door", "--log", self.path("app.calls"))
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door, max_concurrency=1, queue=0)])
        busy, busy_reader = self.open(port)
        busy.sendall(request_bytes("GET", "/sleep/1000"))
        self.wait_calls(self.path("app.calls"), 1)
        s, reader = self.open(port)
        started = time.monotonic()
        s.sendall(request_bytes("GET", "/echo"))
        r = reader.response()
        self.assertLess(time.monotonic() - started, 0.5)
        self.assert_local(r, 503, "Service Unavailable")
        self.assertEqual(r.all("Retry-After"), ["1"])
        self.assertEqual(busy_reader.response().body, b"slept\n")
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)
        d.wait_log(r"warning: forward web: door .*app\.door queue full, answering 503")
        d.wait_access_log(r'method=GET path="/echo" status=503 in=[1-9]\d* out=[1-9]\d* result="queue full"')
        # The refused connection was kept open; with the door free again it is served.
        s.sendall(request_bytes("GET", "/status/200"))
        self.assertEqual(reader.response().status, 200)

    def test_invalid_responses_are_502(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door)])
        s, reader = self.open(port)
        for target, problem in (("/bad", "bad status line"), ("/empty", "empty reply"),
                                ("/mismatch", "Content-Length does not match the body")):
            s.sendall(request_bytes("GET", target))
            self.assert_local(reader.response(), 502, "Bad Gateway")
            d.wait_log(rf"warning: forward web: door .*app\.door sent an invalid response: {problem}")
            d.wait_access_log(rf'path="{target}" status=502 in=[1-9]\d* out=[1-9]\d* result="{problem}"')
        # None of them broke the connection's framing.
        s.sendall(request_bytes("GET", "/status/200"))
        self.assertEqual(reader.response().body, b"status 200\n")


if __name__ == "__main__":
    http_harness.main()
