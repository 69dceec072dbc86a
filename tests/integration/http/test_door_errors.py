#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Door failures as HTTP statuses: 503 + Retry-After, 502 for crashes and bad responses, 504.
import threading
import time

import http_harness
from http_harness import HttpTest, http_forward, request_bytes


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
        d.wait_access_log(r'method=GET path="/crash" status=502 out=0 ')

    def test_crash_under_concurrent_load_answers_every_request(self):
        # Many calls in flight on the event loop's batch link when the application dies: each
        # client gets 502 (its call was lost) or 503 (nobody serves the door), none hangs, and
        # once the application is back every client is served again.
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door)], daemon={"log_level": "debug"})
        clients = 16
        statuses = [[] for _ in range(clients)]
        errors = []
        crashed = threading.Event()
        started = threading.Barrier(clients + 1)

        def client(n):
            try:
                s, reader = self.open(port, timeout=5.0)
                started.wait(timeout=10)
                # Until well after the crash: every request gets some answer.
                for i in range(400):
                    s.sendall(request_bytes("GET", f"/sleep/{1 + i % 3}"))
                    r = reader.response()
                    statuses[n].append(r.status)
                    if r.status != 200 and crashed.is_set() and len(statuses[n]) > 5:
                        break
                s.close()
            except Exception as e:
                errors.append((n, repr(e)))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        started.wait(timeout=10)
        d.wait_log(r"an event loop batches its calls on a door connection of its own")
        time.sleep(0.3)
        app.kill()
        crashed.set()
        for t in threads:
            t.join(timeout=30)
        self.assertFalse(any(t.is_alive() for t in threads), "a client is still waiting")
        self.assertEqual(errors, [], d.tail())
        seen = {status for st in statuses for status in st}
        self.assertLessEqual(seen, {200, 502, 503}, statuses)
        self.assertIn(502, seen, statuses)  # calls were lost with the link, not only refused
        d.wait_log(r"the batch connection of an event loop failed")
        self.assertTrue(all(st and st[-1] in (502, 503) for st in statuses), statuses)
        self.assertTrue(d.alive())
        self.start_app("app.door")
        for n in range(clients):
            r, _ = self.get(port, f"/echo/again/{n}")
            self.assertEqual((r.status, r.header("X-App")), (200, "http_test_app"))

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
        d.wait_access_log(r'method=GET path="/echo" status=503 out=0 note="queue full"')
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
            d.wait_access_log(rf'path="{target}" status=502 out=0 note="{problem}"')
        # None of them broke the connection's framing.
        s.sendall(request_bytes("GET", "/status/200"))
        self.assertEqual(reader.response().body, b"status 200\n")


if __name__ == "__main__":
    http_harness.main()
