#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# A short keep-alive load with wrk against hello_web, and the access log's one line per request.
import re
import subprocess
import threading

import http_harness
from http_harness import HttpTest, http_forward, request_bytes, route


class Load(HttpTest):
    def test_wrk_keep_alive_load_has_no_errors(self):
        web = self.start_app("hello.door", program_name="hello_web")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, web.door)], daemon={"access_log": "off"})
        p = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", "2s", "--timeout", "2s",
                            f"http://127.0.0.1:{port}/"], capture_output=True, timeout=30)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, out + p.stderr.decode())
        # wrk prints these two lines only when there is something to count.
        self.assertNotIn("Non-2xx or 3xx responses", out)
        self.assertNotIn("Socket errors", out)
        m = re.search(r"^\s*(\d+) requests in ", out, re.MULTILINE)
        self.assertIsNotNone(m, out)
        self.assertGreater(int(m.group(1)), 100, out)
        self.assertTrue(d.alive())
        self.assertNotRegex(d.log(), r"\b(warning|error|critical):", d.tail())


class Concurrency(HttpTest):
    def test_concurrent_clients_each_get_their_own_answer(self):
        # 32 kept-alive clients at once: the event loop sends their calls to the door several
        # per message and matches the answers by tag; a mix-up would hand one client another's.
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door)], daemon={"log_level": "debug", "access_log": "off"})
        clients, rounds = 32, 40
        wrong, errors = [], []
        start = threading.Barrier(clients)

        def client(n):
            try:
                s, reader = self.open(port, timeout=10.0)
                start.wait(timeout=10)
                for i in range(rounds):
                    # Each client sends two pipelined requests at a time, so calls pile up.
                    s.sendall(request_bytes("GET", f"/echo/{n}/{2 * i}") +
                              request_bytes("GET", f"/echo/{n}/{2 * i + 1}"))
                    for k in (2 * i, 2 * i + 1):
                        r = reader.response()
                        line = r.body.split(b"\r\n", 1)[0]
                        if r.status != 200 or line != f"GET /echo/{n}/{k} HTTP/1.1".encode():
                            wrong.append((n, k, r.status, line))
                s.close()
            except Exception as e:  # reported below, with the daemon's log
                errors.append((n, repr(e)))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        self.assertFalse(any(t.is_alive() for t in threads), "clients still running")
        self.assertEqual(errors, [], d.tail())
        self.assertEqual(wrong, [])
        d.wait_log(r"an event loop batches its calls on a door connection of its own")
        self.assertTrue(d.alive())
        self.assertNotRegex(d.log(), r"\b(warning|error|critical):", d.tail())


class AccessLog(HttpTest):
    def test_one_line_per_request_with_method_path_and_status(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, name="logged", maps=[
            route("/get", app.door, "GET"), route("/post", app.door, ["POST", "PUT"])])])
        s, reader = self.open(port)
        sent = [("GET", "/get/echo?token=SECRET-QUERY", 200), ("POST", "/post/status/201", 201),
                ("HEAD", "/get/big/10", 200), ("GET", "/nowhere", 404), ("DELETE", "/get/x", 405),
                ("PUT", "/post/bad", 502)]
        for method, target, status in sent:
            s.sendall(request_bytes(method, target, body=b"body" if method in ("POST", "PUT") else b""))
            self.assertEqual(reader.response(head=method == "HEAD").status, status, target)
        # An error that ends the connection is logged once as well.
        s.sendall(b"GET /get/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: x\r\n\r\n")
        self.assertEqual(reader.response().status, 400)
        self.assertTrue(reader.closed())

        lines = self.assert_access_lines(d, r" http forward=logged ", len(sent) + 1)
        for line, (method, target, status) in zip(lines, sent):
            path = target.split("?")[0]
            self.assertRegex(line, rf'^\S+ access http forward=logged client=127\.0\.0\.1:\d+ method={method} '
                                   rf'path="{re.escape(path)}" status={status} in=[1-9]\d* out=[1-9]\d* '
                                   r'result="[^"]*" duration_ms=\d+\.\d{3}$')
        # The daemon's own answer counts its bytes like the door's.
        self.assertRegex(lines[-1], r' status=400 in=[1-9]\d* out=[1-9]\d* result="malformed Content-Length" ')
        self.assertNotIn("SECRET-QUERY", d.access_log())


if __name__ == "__main__":
    http_harness.main()
