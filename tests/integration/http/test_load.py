#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# A short keep-alive load with wrk against hello_web, and the access log's one line per request.
import re
import subprocess

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
            self.assertRegex(line, rf'^\S+ access http forward=logged client=127\.0\.0\.1 method={method} '
                                   rf'path="{re.escape(path)}" status={status} out=\d+ note="[^"]*" '
                                   r'duration_ms=\d+\.\d{3}$')
        self.assertRegex(lines[-1], r' status=400 out=0 note="malformed Content-Length" ')
        self.assertNotIn("SECRET-QUERY", d.access_log())


if __name__ == "__main__":
    http_harness.main()
