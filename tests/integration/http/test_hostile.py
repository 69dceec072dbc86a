#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Hostile requests: smuggling shapes are refused before the application sees a byte, and the
# forwarding fields cannot be forged.
import socket
import unittest

import http_harness
from http_harness import HttpTest, Reader, app_request, harness, http_forward, request_bytes


class Hostile(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door", "--log", self.path("app.calls"))
        self.port = self.reserve_port()
        self.daemon = self.start_http([http_forward(self.port, self.app.door)])

    def refused(self, raw, status=400, reason="Bad Request", note=None):
        r, reader = self.send(self.port, raw)
        self.assertEqual((r.status, r.reason, r.body), (status, reason, f"{status} {reason}\n".encode()))
        self.assertEqual(r.header("Connection"), "close")
        self.assertTrue(reader.closed())
        if note:
            self.daemon.wait_access_log(rf'status={status} in=[1-9]\d* out=[1-9]\d* result="{note}"')
        return r

    def calls(self):
        return self.call_lines(self.path("app.calls"))

    def test_content_length_with_transfer_encoding_is_400_and_reaches_nothing(self):
        smuggled = request_bytes("GET", "/echo/smuggled")
        body = b"0\r\n\r\n" + smuggled
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" % len(body) + body,
                     note="both Content-Length and Transfer-Encoding")
        # TE first, CL second: the same.
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.assertEqual(self.calls(), 0)

    def test_other_framing_tricks_are_refused(self):
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                     note="conflicting Content-Length values")
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n")
        self.refused(b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", note="more than one Host field")
        self.refused(b"GET /echo HTTP/1.1\r\n\r\n", note="HTTP/1.1 request without Host")
        self.refused(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                     501, "Not Implemented")
        self.assertEqual(self.calls(), 0)

    def test_obs_fold_is_400(self):
        self.refused(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX-Long: first\r\n  folded\r\n\r\n",
                     note="obsolete line folding in header section")
        self.assertEqual(self.calls(), 0)

    def test_bare_lf_is_400(self):
        self.refused(b"GET /echo HTTP/1.1\nHost: localhost\n\n", note=r"line not ended by CRLF \(bare CR or LF\)")
        self.refused(b"GET /echo HTTP/1.1\r\nHost: localhost\nX: y\r\n\r\n")
        self.refused(b"GET /echo HTTP/1.1\r\nHost: localhost\r\nX: a\rb\r\n\r\n")
        self.assertEqual(self.calls(), 0)

    def test_client_sent_forwarding_fields_are_replaced(self):
        r, _ = self.get(self.port, "/echo", headers=[
            ("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=6.6.6.6;proto=https"),
            ("x-forwarded-proto", "https"), ("X-Real", "kept")])
        self.assertEqual(r.status, 200)
        _, fields, _ = app_request(r.body)
        forwarding = [(n, v) for n, v in fields if n.lower() in ("forwarded", "x-forwarded-for", "x-forwarded-proto")]
        self.assertEqual(forwarding, [
            ("Forwarded", f'for=127.0.0.1;proto=http;by="127.0.0.1:{self.port}"'),
            ("X-Forwarded-For", "127.0.0.1"),
            ("X-Forwarded-Proto", "http"),
        ])
        self.assertIn(("X-Real", "kept"), fields)
        self.assertNotIn("6.6.6.6", r.body.decode("latin-1"))


    @unittest.skipUnless(harness.have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_client_is_quoted_in_forwarded(self):
        port = self.reserve_port("::1")
        self.start_http([{"name": "v6", "protocol": "http", "listen": f"[::1]:{port}", "door": self.app.door}])
        s = socket.create_connection(("::1", port), timeout=5)
        self._sockets.append(s)
        s.sendall(request_bytes("GET", "/echo", [("X-Forwarded-For", "::2")]))
        r = Reader(self, s).response()
        _, fields, _ = app_request(r.body)
        # RFC 7239: an IPv6 node is bracketed and, with its colons, quoted.
        self.assertEqual([(n, v) for n, v in fields if n.startswith(("Forwarded", "X-Forwarded"))], [
            ("Forwarded", f'for="[::1]";proto=http;by="[::1]:{port}"'),
            ("X-Forwarded-For", "::1"),
            ("X-Forwarded-Proto", "http"),
        ])


if __name__ == "__main__":
    http_harness.main()
