#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# A PROXY protocol header before the TLS handshake: the client it names reaches the access log
# (and X-Forwarded-For on https), whether the ClientHello follows in a later write or in the
# same one as the header.
import ssl

import tls_harness
from http_harness import app_request, request_bytes
from tls_harness import TlsTest, bio_exchange, https_forward, tls_forward


def v1(src, sport, dst="127.0.0.1", dport=443):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()


class ProxyThenTls(TlsTest):
    def setUp(self):
        super().setUp()
        self.echo = self.start_app("echo.door", program_name="echo")
        self.app = self.start_app("app.door")
        self.tport = self.reserve_port()
        self.hport = self.reserve_port()
        proxy = {"proxy_protocol": True, "proxy_protocol_from": ["127.0.0.1/32"]}
        self.daemon = self.start_tls([
            tls_forward(self.tport, self.echo.door, name="relay", cert=self.cert, key=self.key, **proxy),
            https_forward(self.hport, self.app.door, name="web", cert=self.cert, key=self.key, **proxy),
        ])

    def test_tls_forward_logs_the_client_from_the_header(self):
        s = self.tls_connect(self.tport, before=v1("192.0.2.7", 4242))
        s.sendall(b"behind a proxy")
        self.assertEqual(self.recv_exact(s, 14), b"behind a proxy")
        s.close()
        self.assert_access_lines(self.daemon, r"forward=relay client=192\.0\.2\.7:4242 calls=1 in=14 out=14 ", 1)

    def test_https_forward_passes_the_client_on(self):
        s, reader = self.tls_open(self.hport, before=v1("198.51.100.9", 5151))
        s.sendall(request_bytes("GET", "/echo", [("Connection", "close")]))
        r = reader.response()
        self.assertEqual(r.status, 200, r)
        _, fields, _ = app_request(r.body)
        self.assertEqual(dict(fields).get("X-Forwarded-For"), "198.51.100.9", fields)
        # The scheme the client spoke to the daemon, which the application cannot see itself.
        self.assertEqual(dict(fields).get("X-Forwarded-Proto"), "https", fields)
        self.assertRegex(dict(fields).get("Forwarded", ""), r'^for=198\.51\.100\.9;proto=https;by="', fields)
        self.assert_access_lines(self.daemon, r'forward=web client=198\.51\.100\.9:5151 method=GET path="/echo" '
                                              r'status=200 ', 1)

    def test_header_and_client_hello_in_one_write(self):
        # The daemon reads the header and the ClientHello behind it at once; what follows the
        # header must reach the handshake before anything read from the socket later.
        plain, _ = bio_exchange(self, self.hport, request_bytes("GET", "/echo", [("Connection", "close")]),
                             prefix=v1("203.0.113.40", 6060))
        self.assertTrue(plain.startswith(b"HTTP/1.1 200 "), plain[:200])
        self.assert_access_lines(self.daemon, r'forward=web client=203\.0\.113\.40:6060 method=GET path="/echo" '
                                              r'status=200 ', 1)

    def test_header_and_part_of_the_client_hello_in_one_write(self):
        # The handshake starts on the bytes read behind the header, runs out of them in the middle
        # of a record, and must go on with what the socket brings next.
        for split in (1, 5, 40):
            plain, ended = bio_exchange(self, self.hport, request_bytes("GET", "/echo", [("Connection", "close")]),
                                        prefix=v1("203.0.113.41", 7000 + split), split=split)
            self.assertTrue(plain.startswith(b"HTTP/1.1 200 "), f"split {split}: {plain[:200]!r}")
            self.assertTrue(ended)
            self.assert_access_lines(self.daemon, rf'forward=web client=203\.0\.113\.41:{7000 + split} method=GET '
                                                  r'path="/echo" status=200 ', 1)

    def test_tls_without_the_header_is_refused(self):
        # The forward expects the header first: a ClientHello in its place is no PROXY header.
        with self.assertRaises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            self.tls_connect(self.tport)
        self.assert_access_lines(self.daemon, r'forward=relay client=127\.0\.0\.1:\d+ .*result="PROXY header refused', 1)


if __name__ == "__main__":
    tls_harness.main()
