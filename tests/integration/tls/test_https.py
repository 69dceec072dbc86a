#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# https forwards with hello_web behind them: curl verifies the chain and negotiates http/1.1 by
# ALPN; one TLS connection carries many kept-alive requests, and pipelined ones sent in a single
# write come back whole and in order.
import re

import tls_harness
from http_harness import request_bytes
from tls_harness import TlsTest, https_forward

HELLO = re.compile(rb"^Hello from a door! You are visitor (\d+)\.\n$")


class Https(TlsTest):
    def setUp(self):
        super().setUp()
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.port = self.reserve_port()
        self.daemon = self.start_tls([https_forward(self.port, self.web.door, cert=self.cert, key=self.key)])

    def test_curl_get_verifies_the_chain_and_negotiates_http11(self):
        code, out, err = self.curl("-v", "--cacert", self.pki.root, "-w", "\n%{http_code} %{http_version}",
                                   f"https://localhost:{self.port}/hello",
                                   "--resolve", f"localhost:{self.port}:127.0.0.1")
        self.assertEqual(code, 0, err)
        body, _, tail = out.rpartition(b"\n")
        self.assertEqual(tail, b"200 1.1", out)
        self.assertRegex(body + b"\n", HELLO)
        self.assertIn("ALPN: server accepted http/1.1", err)
        self.assertRegex(err, r"SSL connection using TLSv1\.3")
        self.assertIn("SSL certificate verify ok", err)
        self.assert_access_lines(self.daemon, r'forward=web client=127\.0\.0\.1:\d+ method=GET path="/hello" '
                                              r'status=200 ', 1)

    def test_curl_without_the_root_refuses_the_certificate(self):
        # Control for the test above: the chain verifies only because the test root is trusted.
        code, _, err = self.curl(f"https://127.0.0.1:{self.port}/")
        self.assertEqual(code, 60, err)  # CURLE_PEER_FAILED_VERIFICATION

    def test_alpn_selects_http11_and_declines_h2_only_clients(self):
        s = self.tls_connect(self.port, ctx=self.client_context(alpn=("h2", "http/1.1")))
        self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        s.close()
        # A client offering only h2 gets no ALPN answer, and the handshake still completes.
        s = self.tls_connect(self.port, ctx=self.client_context(alpn=("h2",)))
        self.assertIsNone(s.selected_alpn_protocol())
        s.close()

    def test_many_keep_alive_requests_on_one_connection(self):
        s, reader = self.tls_open(self.port)
        visitors = []
        for i in range(100):
            s.sendall(request_bytes("GET", f"/k/{i}", [("Connection", "keep-alive")]))
            r = reader.response()
            self.assertEqual(r.status, 200, r)
            m = HELLO.match(r.body)
            self.assertIsNotNone(m, r)
            visitors.append(int(m.group(1)))
        # hello_web counts its callers: each request was a call of its own, in order.
        self.assertEqual(visitors, list(range(visitors[0], visitors[0] + 100)))
        s.sendall(request_bytes("GET", "/last", [("Connection", "close")]))
        self.assertEqual(reader.response().status, 200)
        self.assertTrue(reader.closed())
        self.assert_access_lines(self.daemon, r'forward=web client=127\.0\.0\.1:\d+ method=GET path="/k/\d+" '
                                              r'status=200 ', 100)

    def test_pipelined_requests_in_one_write(self):
        s, reader = self.tls_open(self.port)
        n = 50
        # One sendall of the whole batch: it arrives as one or a few TLS records, so the daemon
        # holds many requests in what a single TLS read returned.
        s.sendall(b"".join(request_bytes("GET", f"/p/{i}", [("Connection", "keep-alive")]) for i in range(n))
                  + request_bytes("GET", "/p/last", [("Connection", "close")]))
        visitors = []
        for _ in range(n + 1):
            r = reader.response()
            self.assertEqual(r.status, 200, r)
            visitors.append(int(HELLO.match(r.body).group(1)))
        self.assertEqual(visitors, list(range(visitors[0], visitors[0] + n + 1)))
        self.assertTrue(reader.closed())
        lines = self.assert_access_lines(self.daemon, r'path="/p/[^"]+" status=200 ', n + 1)
        self.assertEqual([re.search(r'path="([^"]+)"', line).group(1) for line in lines],
                         [f"/p/{i}" for i in range(n)] + ["/p/last"])
        self.assertTrue(self.daemon.alive())


if __name__ == "__main__":
    tls_harness.main()
