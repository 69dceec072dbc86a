#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Large bodies through an https forward: a response of megabytes to curl and to a client that
# reads slowly (the daemon's TLS writes stop and resume many times), a large request body, and
# a request that arrives in the same write as the client's last handshake message.
import hashlib
import socket
import time

import tls_harness
from http_harness import app_request, big_body, request_bytes
from tls_harness import TlsTest, bio_exchange, https_forward


class Bodies(TlsTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door")
        self.port = self.reserve_port()
        self.daemon = self.start_tls([https_forward(self.port, self.app.door, cert=self.cert, key=self.key,
                                                    max_body=4 * 1024 * 1024)])

    def test_large_response_to_curl(self):
        n = 6 * 1024 * 1024 + 123
        code, out, err = self.curl("--cacert", self.pki.root, "--resolve", f"localhost:{self.port}:127.0.0.1",
                                   f"https://localhost:{self.port}/big/{n}")
        self.assertEqual(code, 0, err)
        self.assertEqual(len(out), n)
        self.assertEqual(hashlib.sha256(out).hexdigest(), hashlib.sha256(big_body(n)).hexdigest())

    def test_large_response_to_a_slow_reader(self):
        n = 2 * 1024 * 1024
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive window: the daemon's socket fills and its TLS writes must wait and resume.
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", self.port))
        s = self.client_context().wrap_socket(raw, server_hostname="localhost")
        self._sockets.append(s)
        s.sendall(request_bytes("GET", f"/big/{n}", [("Connection", "close")]))
        data = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
            if len(data) < 256 * 1024:
                time.sleep(0.002)  # slow at first, while the daemon has most left to write
        head, _, body = data.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head[:200])
        self.assertEqual(len(body), n)
        self.assertEqual(body, big_body(n))
        self.assert_access_lines(self.daemon, rf'path="/big/{n}" status=200 ', 1)

    def test_large_request_body(self):
        body = bytes(range(256)) * (3 * 1024 * 1024 // 256)
        s, reader = self.tls_open(self.port, timeout=20)
        s.sendall(request_bytes("POST", "/sum", [("Connection", "keep-alive")], body))
        r = reader.response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, f"length={len(body)} sum={sum(body)}\n".encode())
        # The same connection carries the next request.
        s.sendall(request_bytes("GET", "/echo", [("Connection", "close")]))
        self.assertEqual(reader.response().status, 200)

    def test_request_in_the_same_write_as_the_finished_message(self):
        # No readiness edge follows for bytes OpenSSL already read with the handshake: the
        # daemon must take the request from them, or the client would wait for ever.
        started = time.monotonic()
        plain, _ = bio_exchange(self, self.port, request_bytes("GET", "/echo", [("Connection", "close")]))
        self.assertTrue(plain.startswith(b"HTTP/1.1 200 "), plain[:200])
        line, _, _ = app_request(plain.partition(b"\r\n\r\n")[2])
        self.assertEqual(line, "GET /echo HTTP/1.1")
        self.assertLess(time.monotonic() - started, 2)


if __name__ == "__main__":
    tls_harness.main()
