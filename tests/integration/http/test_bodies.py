#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Bodies both ways: chunked uploads, 100-continue, a 10 MiB response, unframed responses.
import hashlib
import os
import re

import http_harness
import harness  # noqa: E402  (http_harness puts its folder on the path)
from http_harness import HttpTest, app_request, big_body, http_forward, request_bytes


class Bodies(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door", "--log", self.path("app.calls"))
        self.port = self.reserve_port()
        self.daemon = self.start_http([http_forward(self.port, self.app.door, max_body=4 << 20)])
        self.url = f"http://127.0.0.1:{self.port}"

    def test_chunked_upload_arrives_dechunked_with_content_length(self):
        s, reader = self.open(self.port)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: dropped\r\n\r\n")
        r = reader.response()
        line, fields, body = app_request(r.body)
        self.assertEqual(line, "POST /echo HTTP/1.1")
        self.assertEqual(body, b"hello, world")
        self.assertEqual([v for n, v in fields if n == "Content-Length"], ["12"])
        names = [n.lower() for n, _ in fields]
        self.assertNotIn("transfer-encoding", names)
        self.assertNotIn("x-trailer", names)
        # An empty chunked body still tells the application its length.
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        _, fields, body = app_request(reader.response().body)
        self.assertEqual(([v for n, v in fields if n == "Content-Length"], body), (["0"], b""))

        # curl streams a file of unknown size as chunks of its own choosing.
        upload = os.urandom(300_000)
        with open(self.path("upload.bin"), "wb") as f:
            f.write(upload)
        code, out, err = self.curl("-H", "Transfer-Encoding: chunked", "--data-binary", "@" + self.path("upload.bin"),
                                   self.url + "/echo")
        self.assertEqual(code, 0, err)
        _, fields, body = app_request(out)
        self.assertEqual([v for n, v in fields if n == "Content-Length"], [str(len(upload))])
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(upload).hexdigest())

    def test_expect_100_continue_gets_the_interim_response_first(self):
        body = os.urandom(2048)
        s, reader = self.open(self.port)
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n")
        interim = reader.response()
        self.assertEqual(interim.raw, b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertEqual(self.call_lines(self.path("app.calls")), 0)
        s.sendall(body)
        final = reader.response()
        self.assertEqual(final.status, 200)
        _, fields, received = app_request(final.body)
        self.assertEqual(received, body)
        self.assertNotIn("expect", [n.lower() for n, _ in fields])

        # A body the daemon would refuse gets the refusal instead of the invitation.
        s, reader = self.open(self.port)
        s.sendall(b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 9999999\r\nExpect: 100-continue\r\n\r\n")
        r = reader.response()
        self.assertEqual(r.status, 413)
        self.assertTrue(reader.closed())

        with open(self.path("put.bin"), "wb") as f:
            f.write(body)
        code, out, err = self.curl("-v", "-H", "Expect: 100-continue", "--data-binary", "@" + self.path("put.bin"),
                                   self.url + "/echo")
        self.assertEqual(code, 0, err)
        self.assertRegex(err, r"< HTTP/1\.1 100 Continue\r?\n")
        self.assertRegex(err, r"< HTTP/1\.1 200 OK\r?\n")
        self.assertEqual(app_request(out)[2], body)

    def test_ten_mib_response_arrives_intact(self):
        n = 10 << 20
        target = self.path("big.out")
        code, out, err = self.curl("-o", target, "-w", "%{http_code} %{size_download}", f"{self.url}/big/{n}")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, f"200 {n}".encode())
        with open(target, "rb") as f:
            received = hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(received, hashlib.sha256(big_body(n)).hexdigest())
        m = self.daemon.wait_access_log(rf'method=GET path="/big/{n}" status=200 in=\d+ out=(\d+) ')
        # The status line and header fields come on top of the body.
        self.assertGreater(int(m.group(1)), n)
        self.assertLess(int(m.group(1)), n + 200)

    def test_unframed_response_is_delivered_then_the_connection_closes(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/unframed") + request_bytes("GET", "/echo/after"))
        r = reader.response()
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (200, None, b"unframed body\n"))
        self.assertTrue(reader.closed())
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)
        code, out, err = self.curl(self.url + "/unframed")
        self.assertEqual((code, out), (0, b"unframed body\n"), err)

    def test_chunked_response_is_relayed_and_the_connection_kept(self):
        s, reader = self.open(self.port)
        chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n chunk\r\n0\r\n\r\n"
        s.sendall(request_bytes("POST", "/raw", body=chunked) + request_bytes("GET", "/status/200"))
        r = reader.response()
        self.assertEqual(r.raw, chunked)
        self.assertEqual(r.body, b"hello chunk")
        self.assertEqual(reader.response().body, b"status 200\n")
        code, out, err = self.curl("--data-binary", "@-", self.url + "/raw", input=chunked)
        self.assertEqual((code, out), (0, b"hello chunk"), err)

    def test_post_body_with_content_length(self):
        code, out, err = self.curl("--data-binary", "a=1&b=2", self.url + "/echo?q=1")
        self.assertEqual(code, 0, err)
        line, fields, body = app_request(out)
        self.assertEqual(line, "POST /echo?q=1 HTTP/1.1")
        self.assertEqual(body, b"a=1&b=2")
        self.assertEqual([v for n, v in fields if n == "Content-Length"], ["7"])
        self.assertTrue(re.match(r"curl/", dict(fields)["User-Agent"]))


class LargeBodies(HttpTest):
    """An upload is held once by the daemon: its peak memory follows the bodies in flight."""

    MIB = 1 << 20

    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door")
        self.port = self.reserve_port()
        self.daemon = self.start_http([http_forward(self.port, self.app.door, max_body=64 * self.MIB)])
        self.url = f"http://127.0.0.1:{self.port}"
        code, _, err = self.curl("--data-binary", "warm-up", self.url + "/sum")
        self.assertEqual(code, 0, err)
        self.idle_kib = int(harness.status_field(self.daemon.pid, "VmRSS")[0])

    def upload(self, name, size):
        body = os.urandom(size)
        with open(self.path(name), "wb") as f:
            f.write(body)
        return body

    def post(self, name):
        return self.curl("--data-binary", "@" + self.path(name), self.url + "/sum", timeout=60)

    def growth_kib(self):
        return int(harness.status_field(self.daemon.pid, "VmHWM")[0]) - self.idle_kib

    def test_a_large_upload_costs_its_size_once(self):
        body = self.upload("big.bin", 48 * self.MIB)
        code, out, err = self.post("big.bin")
        self.assertEqual(code, 0, err)
        self.assertEqual(out, b"length=%d sum=%d\n" % (len(body), sum(body)))
        growth = self.growth_kib()
        limit = 1.1 * len(body) / 1024 + 6 * 1024
        if not harness.SANITIZED:
            self.assertLessEqual(growth, limit, f"daemon peak grew {growth} KiB for a {len(body) >> 10} KiB body")

    def test_concurrent_uploads_cost_the_bodies_in_flight(self):
        bodies = [self.upload(f"b{i}.bin", 16 * self.MIB) for i in range(4)]
        results = [None] * 4

        def post(_stop, i):
            results[i] = self.post(f"b{i}.bin")

        threads = [self.background(post, i) for i in range(4)]
        for t in threads:
            t.join(70)
        for body, (code, out, err) in zip(bodies, results):
            self.assertEqual(code, 0, err)
            self.assertEqual(out, b"length=%d sum=%d\n" % (len(body), sum(body)))
        growth = self.growth_kib()
        limit = 1.1 * sum(len(b) for b in bodies) / 1024 + 6 * 1024
        if not harness.SANITIZED:
            self.assertLessEqual(growth, limit, f"daemon peak grew {growth} KiB for 4 bodies of 16 MiB")


if __name__ == "__main__":
    http_harness.main()
