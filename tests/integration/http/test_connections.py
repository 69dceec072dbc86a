#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Connection handling: keep-alive, HTTP/1.0, pipelining, hop-by-hop fields, idle_timeout, max_requests.
import re
import socket
import time

import http_harness
from http_harness import HttpTest, app_request, http_forward, request_bytes


def connects(curl_out):
    """[(status, new connections)] from curl -w '[%{http_code} %{num_connects}]' per URL."""
    return [(int(a), int(b)) for a, b in re.findall(rb"\[(\d{3}) (\d+)\]", curl_out)]


class KeepAlive(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door", "--log", self.path("app.calls"))
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.port = self.reserve_port()
        self.hello = self.reserve_port()
        self.daemon = self.start_http([
            http_forward(self.port, self.app.door, name="app", idle_timeout="500ms"),
            http_forward(self.hello, self.web.door, name="hello"),
        ])

    def test_three_requests_share_one_connection(self):
        s, reader = self.open(self.port)
        for i in range(3):
            s.sendall(request_bytes("GET", f"/echo/{i}"))
            r = reader.response()
            self.assertEqual(r.status, 200)
            line, fields, _ = app_request(r.body)
            self.assertEqual(line, f"GET /echo/{i} HTTP/1.1")
            self.assertIn(("Connection", "keep-alive"), fields)
            self.assertEqual(r.header("Connection"), "keep-alive")
        self.assertEqual(self.call_lines(self.path("app.calls")), 3)

    def test_curl_reuses_the_connection(self):
        for port, path in ((self.port, "/status/200"), (self.hello, "/")):
            url = f"http://127.0.0.1:{port}{path}"
            code, out, err = self.curl("-w", "[%{http_code} %{num_connects}]", url, url, url)
            self.assertEqual(code, 0, err)
            self.assertEqual(connects(out), [(200, 1), (200, 0), (200, 0)], out)

    def test_http10_closes_by_default(self):
        r, reader = self.send(self.port, b"GET /echo HTTP/1.0\r\n\r\n")
        self.assertEqual(r.status, 200)
        line, fields, _ = app_request(r.body)
        self.assertEqual(line, "GET /echo HTTP/1.0")
        self.assertEqual([v for n, v in fields if n == "Connection"], ["close"])
        self.assertTrue(reader.closed())
        url = f"http://127.0.0.1:{self.hello}/"
        code, out, err = self.curl("--http1.0", "-w", "[%{http_code} %{num_connects}]", url, url)
        self.assertEqual(code, 0, err)
        self.assertEqual(connects(out), [(200, 1), (200, 1)], out)

    def test_http10_keeps_alive_when_asked(self):
        s, reader = self.open(self.port)
        for i in range(2):
            s.sendall(f"GET /echo/{i} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            r = reader.response()
            self.assertEqual(r.status, 200)
            _, fields, _ = app_request(r.body)
            self.assertEqual([v for n, v in fields if n == "Connection"], ["keep-alive"])
        self.assertFalse(reader.closed(timeout=0.2))
        url = f"http://127.0.0.1:{self.hello}/"
        code, out, err = self.curl("--http1.0", "-H", "Connection: keep-alive", "-w",
                                   "[%{http_code} %{num_connects}]", url, url)
        self.assertEqual(code, 0, err)
        self.assertEqual(connects(out), [(200, 1), (200, 0)], out)

    def test_connection_close_closes_after_the_response(self):
        r, reader = self.get(self.port, "/echo", headers=[("Connection", "close")])
        self.assertEqual(r.status, 200)
        _, fields, _ = app_request(r.body)
        self.assertEqual([v for n, v in fields if n == "Connection"], ["close"])
        self.assertTrue(reader.closed())

    def test_application_connection_close_is_honoured(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/close") + request_bytes("GET", "/echo/never"))
        r = reader.response()
        self.assertEqual((r.status, r.body, r.header("Connection")), (200, b"closing\n", "close"))
        self.assertTrue(reader.closed())
        self.assertEqual(self.call_lines(self.path("app.calls")), 1)

    def test_pipelined_requests_are_answered_in_order(self):
        s, reader = self.open(self.port)
        # The slow one first: a daemon answering whatever finishes first would reorder.
        s.sendall(request_bytes("GET", "/sleep/300") + request_bytes("POST", "/echo/2", body=b"second") +
                  request_bytes("GET", "/status/201"))
        first = reader.response()
        second = reader.response()
        third = reader.response()
        self.assertEqual((first.status, first.body), (200, b"slept\n"))
        line, _, body = app_request(second.body)
        self.assertEqual((second.status, line, body), (200, "POST /echo/2 HTTP/1.1", b"second"))
        self.assertEqual((third.status, third.body), (201, b"status 201\n"))
        with open(self.path("app.calls")) as f:
            self.assertEqual(f.read(), "call GET /sleep/300\ncall POST /echo/2\ncall GET /status/201\n")
        self.assertFalse(reader.closed(timeout=0.2))

    def test_half_closed_client_gets_its_response_then_eof(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/sleep/200") + request_bytes("GET", "/status/202"))
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(reader.response().body, b"slept\n")
        self.assertEqual(reader.response().status, 202)
        self.assertTrue(reader.closed())

    def test_client_reset_during_the_call_still_leaves_its_line(self):
        s, _ = self.open(self.port)
        s.sendall(request_bytes("GET", "/sleep/500"))
        self.wait_calls(self.path("app.calls"), 1)
        # A reset, not a FIN: the daemon's read fails while the door call runs.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        self.daemon.wait_access_log(r'method=GET path="/sleep/500" status=499 in=\d+ out=0 '
                                    r'result="client closed during the call"')
        # And the connection's next life is unaffected.
        code, out, err = self.curl(f"http://127.0.0.1:{self.port}/echo/after")
        self.assertEqual(code, 0, err)

    def test_hop_by_hop_fields_are_dropped(self):
        r, _ = self.get(self.port, "/echo", headers=[
            ("Connection", "keep-alive, X-Secret-Hop"), ("X-Secret-Hop", "1"), ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"), ("Trailer", "X-T"), ("Upgrade", "websocket"), ("Proxy-Authorization", "Basic eA=="),
            ("X-Kept", "yes")])
        line, fields, body = app_request(r.body)
        self.assertEqual(line, "GET /echo HTTP/1.1")
        self.assertEqual([n for n, _ in fields],
                         ["Host", "X-Kept", "Connection", "Forwarded", "X-Forwarded-For", "X-Forwarded-Proto"])
        self.assertEqual(fields[2], ("Connection", "keep-alive"))
        self.assertEqual(body, b"")

    def test_idle_keep_alive_closes_after_idle_timeout(self):
        s, reader = self.open(self.port)
        s.sendall(request_bytes("GET", "/status/200"))
        self.assertEqual(reader.response().status, 200)
        started = time.monotonic()
        self.assertTrue(reader.closed(timeout=3))
        waited = time.monotonic() - started
        self.assertGreater(waited, 0.35)
        self.assertLess(waited, 1.5)


class MaxRequests(HttpTest):
    def test_connection_closes_after_max_requests(self):
        app = self.start_app("app.door", "--log", self.path("app.calls"))
        port = self.reserve_port()
        self.start_http([http_forward(port, app.door, max_requests=3)])
        s, reader = self.open(port)
        # Four at once: three are answered, the third tells the application it is the last,
        # and the fourth never reaches it.
        s.sendall(b"".join(request_bytes("GET", f"/echo/{i}") for i in range(4)))
        for i in range(3):
            r = reader.response()
            _, fields, _ = app_request(r.body)
            expected = "close" if i == 2 else "keep-alive"
            self.assertEqual([v for n, v in fields if n == "Connection"], [expected])
            self.assertEqual(r.header("Connection"), expected)
        self.assertTrue(reader.closed())
        self.assertEqual(self.call_lines(self.path("app.calls")), 3)

        url = f"http://127.0.0.1:{port}/status/200"
        code, out, err = self.curl("-w", "[%{http_code} %{num_connects}]", *[url] * 5)
        self.assertEqual(code, 0, err)
        self.assertEqual(connects(out), [(200, 1), (200, 0), (200, 0), (200, 1), (200, 0)], out)


if __name__ == "__main__":
    http_harness.main()
