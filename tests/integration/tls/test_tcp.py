#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# tls forwards (tcp behind TLS) with echo behind them: what goes in comes out, byte for byte,
# for small exchanges on one connection and for a request larger than one TLS record.
import os
import random
import subprocess
import time

import tls_harness
from tls_harness import TlsTest, bio_exchange, tls_forward


class TlsEcho(TlsTest):
    def setUp(self):
        super().setUp()
        self.echo = self.start_app("echo.door", program_name="echo")
        self.port = self.reserve_port()
        self.daemon = self.start_tls([tls_forward(self.port, self.echo.door, cert=self.cert, key=self.key)])

    def test_exchanges_on_one_connection_come_back_unchanged(self):
        s = self.tls_connect(self.port)
        self.assertEqual(s.version(), "TLSv1.3")
        sent = 0
        for i in range(20):
            payload = f"exchange {i} ".encode() * (i + 1)
            s.sendall(payload)
            self.assertEqual(self.recv_exact(s, len(payload)), payload)
            sent += len(payload)
        s.close()
        self.assert_access_lines(self.daemon, rf"forward=secure client=127\.0\.0\.1:\d+ calls=20 in={sent} "
                                              rf"out={sent} ", 1)

    def test_request_larger_than_a_tls_record_comes_back_intact(self):
        # 60 KiB: under max_request (64 KiB), over the 16 KiB a TLS record can carry.
        payload = random.Random(7).randbytes(60 * 1024)
        self.assertEqual(self.tls_echo(self.port, payload, timeout=10.0), payload)
        self.assert_access_lines(self.daemon, rf"forward=secure .* in={len(payload)} out={len(payload)} ", 1)

    def test_close_notify_in_its_own_write_gets_the_reply_then_the_end(self):
        # TLS 1.3 close_notify ends the client's direction only, as a TCP half-close does on a
        # tcp forward: the reply to what came before it is still sent, then the connection ends.
        payload = b"last words, then close_notify"
        got, ended = bio_exchange(self, self.port, payload, close_notify="alone")
        self.assertEqual(got, payload)
        self.assertTrue(ended, "connection still open 3 s after the client's close_notify")
        self.assert_access_lines(self.daemon, rf"forward=secure .* in={len(payload)} out={len(payload)} ", 1)

    # OpenSSL takes such a close_notify off the socket together with the data before it, so no
    # readiness edge follows: the end must be said by the read after the data's.
    def test_close_notify_with_the_request_gets_the_reply_then_the_end(self):
        payload = b"last words and close_notify in one write"
        got, ended = bio_exchange(self, self.port, payload, close_notify=True)
        self.assertEqual(got, payload)
        self.assertTrue(ended, "connection still open 3 s after the client's close_notify")

    def test_tcp_half_close_after_a_request_still_gets_its_reply(self):
        # The end of the stream without close_notify, as many clients do it.
        payload = b"last words before FIN"
        got, ended = bio_exchange(self, self.port, payload, shut_wr=True)
        self.assertEqual(got, payload)
        self.assertTrue(ended, "connection still open 3 s after the client's FIN")
        self.assert_access_lines(self.daemon, rf"forward=secure .* in={len(payload)} out={len(payload)} ", 1)

    def test_tls12_client_is_served_by_default(self):
        import ssl
        s = self.tls_connect(self.port, ctx=self.client_context(alpn=None, maximum=ssl.TLSVersion.TLSv1_2))
        self.assertEqual(s.version(), "TLSv1.2")
        self.assertIsNone(s.selected_alpn_protocol())
        payload = os.urandom(3000)
        s.sendall(payload)
        self.assertEqual(self.recv_exact(s, len(payload)), payload)

    def test_renegotiation_request_closes_only_that_connection(self):
        # Renegotiation is off (SSL_OP_NO_RENEGOTIATION): a TLS 1.2 client asking for it (s_client's
        # "R" command) loses its connection after what it sent before was answered.
        p = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-servername", "localhost",
                              "-CAfile", self.pki.root, "-tls1_2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        try:
            for line in (b"before\n", b"R\n"):
                p.stdin.write(line)
                p.stdin.flush()
                time.sleep(0.3)
            out, _ = p.communicate(timeout=5)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertIn(b"RENEGOTIATING", out)
        self.assertIn(b"\nbefore\n", out)
        self.assert_access_lines(self.daemon, r'forward=secure .*calls=1 in=7 out=7 result="read error: TLS: ', 1)
        self.assertEqual(self.tls_echo(self.port, b"others go on"), b"others go on")

    def test_s_client_completes_the_handshake_and_verifies(self):
        code, out = self.s_client(self.port, "-brief")
        self.assertEqual(code, 0, out)
        self.assertIn("Verification: OK", out)
        self.assertIn("Protocol version: TLSv1.3", out)


if __name__ == "__main__":
    tls_harness.main()
