#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Certificates at load and reload: a renewed certificate written over the same paths is served
# to new connections after SIGHUP while an open TLS connection goes on; a reload with a key that
# does not match is refused and the old certificate stays; startup with a missing certificate,
# a file that is no certificate or a key that does not match fails and names what is wrong.
import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess

import tls_harness
from http_harness import request_bytes
from tls_harness import CLIENT_TIMEOUT, TlsTest, https_forward


# What a key that does not belong to the certificate is refused with, naming the key: OpenSSL's
# reason when it refuses the pair at once, the daemon's own sentence when only the check after
# finds it.
MISMATCH = r"private_key: key values mismatch|private_key does not match the certificate"


class Reload(TlsTest):
    def setUp(self):
        super().setUp()
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.port = self.reserve_port()
        self.forwards = [https_forward(self.port, self.web.door, cert=self.cert, key=self.key)]
        self.daemon = self.start_tls(self.forwards)

    def presented(self):
        """SHA-256 of the certificate a new connection is shown, after a GET on it succeeded."""
        s, reader = self.tls_open(self.port)
        fingerprint = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()
        s.sendall(request_bytes("GET", "/which", [("Connection", "close")]))
        self.assertEqual(reader.response().status, 200)
        s.close()
        return fingerprint

    def serial_by_s_client(self):
        p = subprocess.run(f"openssl s_client -connect 127.0.0.1:{self.port} -servername localhost "
                           f"-CAfile {self.pki.root} -verify_return_error </dev/null 2>/dev/null "
                           "| openssl x509 -noout -serial", shell=True, capture_output=True, timeout=CLIENT_TIMEOUT)
        m = re.search(r"serial=([0-9A-F]+)", p.stdout.decode())
        self.assertIsNotNone(m, p.stdout.decode() + p.stderr.decode())
        return int(m.group(1), 16)

    def sighup(self):
        done = self.daemon.count(r"reload: \d+ forward\(s\) added") + self.daemon.count(r"reload: configuration has")
        self.daemon.send_signal(signal.SIGHUP)
        self.daemon.wait_log(r"reload: (\d+ forward\(s\) added|configuration has)", count=done + 1)

    def test_renewed_certificate_served_after_reload_and_open_connection_goes_on(self):
        self.assertEqual(self.presented(), self.pki.fingerprint("first"))
        self.assertEqual(self.serial_by_s_client(), self.pki.FIRST_SERIAL)
        kept, reader = self.tls_open(self.port)
        kept_cert = hashlib.sha256(kept.getpeercert(binary_form=True)).hexdigest()
        kept.sendall(request_bytes("GET", "/before", [("Connection", "keep-alive")]))
        self.assertEqual(reader.response().status, 200)

        self.pki.install("second", self.cert, self.key)
        self.sighup()
        # The configuration text did not change, the files did: the forward counts as changed.
        self.daemon.wait_log(r"reload: 0 forward\(s\) added, 1 changed, 0 removed")
        self.assertEqual(self.presented(), self.pki.fingerprint("second"))
        self.assertEqual(self.serial_by_s_client(), self.pki.SECOND_SERIAL)

        # The connection made before the reload is still served, under the certificate it got.
        for i in range(3):
            kept.sendall(request_bytes("GET", f"/after/{i}", [("Connection", "keep-alive")]))
            self.assertEqual(reader.response().status, 200)
        self.assertEqual(kept_cert, self.pki.fingerprint("first"))
        self.assert_access_lines(self.daemon, r'path="/after/\d" status=200 ', 3)
        self.assertNotRegex(self.daemon.log(), r"\b(error|critical):")

    def test_handshakes_in_progress_across_a_reload_complete(self):
        # Each of these connections has sent half its ClientHello when the certificate changes:
        # the handshake goes on with the context it started with, and the connection is served.
        n = 20
        pending = []
        for _ in range(n):
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self._sockets.append(raw)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = self.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
            with self.assertRaises(ssl.SSLWantReadError):
                tls.do_handshake()
            hello = outgoing.read()
            raw.sendall(hello[:len(hello) // 2])
            pending.append((raw, tls, incoming, outgoing, hello[len(hello) // 2:]))
        self.pki.install("second", self.cert, self.key)
        self.sighup()
        self.daemon.wait_log(r"reload: 0 forward\(s\) added, 1 changed, 0 removed")
        presented = []
        for raw, tls, incoming, outgoing, rest in pending:
            raw.sendall(rest)
            for _ in range(10):
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())
                    data = raw.recv(65536)
                    self.assertTrue(data, "closed during the handshake")
                    incoming.write(data)
            presented.append(hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())
            tls.write(request_bytes("GET", "/across", [("Connection", "close")]))
            raw.sendall(outgoing.read())
            plain = b""
            while b"\r\n\r\n" not in plain:
                data = raw.recv(65536)
                self.assertTrue(data, f"closed before a response: {plain!r}")
                incoming.write(data)
                try:
                    plain += tls.read(65536)
                except ssl.SSLWantReadError:
                    pass
            self.assertTrue(plain.startswith(b"HTTP/1.1 200 "), plain[:100])
        self.assertEqual(set(presented), {self.pki.fingerprint("first")})
        self.assertEqual(self.presented(), self.pki.fingerprint("second"))

    def test_reload_with_a_mismatched_key_keeps_the_old_certificate(self):
        self.pki.install("second", self.cert, self.key, key_name="wrong")
        self.sighup()
        self.daemon.wait_log(MISMATCH)
        self.daemon.wait_log(r"reload: configuration has \d+ error\(s\); still running the previous one")
        self.assertEqual(self.presented(), self.pki.fingerprint("first"))
        # Put right, the next reload takes the new pair.
        self.pki.install("second", self.cert, self.key)
        self.sighup()
        self.daemon.wait_log(r"reload: 0 forward\(s\) added, 1 changed, 0 removed")
        self.assertEqual(self.presented(), self.pki.fingerprint("second"))

    def test_reload_with_a_vanished_certificate_keeps_serving(self):
        os.unlink(self.cert)
        self.sighup()
        self.daemon.wait_log(rf"certificate: cannot read {self.cert}")
        self.daemon.wait_log(r"reload: configuration has \d+ error\(s\)")
        self.assertEqual(self.presented(), self.pki.fingerprint("first"))


class Startup(TlsTest):
    def start_failing(self, forward):
        d = self.start_daemon([forward], wait=False)
        status = d.wait(10)
        self.assertIsNotNone(status, "portunusd kept running with a bad certificate or key")
        self.assertNotEqual(status, 0, d.tail())
        return d.log()

    def setUp(self):
        super().setUp()
        self.port = self.reserve_port()
        self.door = self.path("hello.door")

    def test_missing_certificate_file_fails_naming_it(self):
        missing = self.path("missing.pem")
        log = self.start_failing(https_forward(self.port, self.door, cert=missing, key=self.key))
        self.assertIn(f"certificate: cannot read {missing}", log)

    def test_file_that_is_not_a_certificate_fails(self):
        with open(self.path("junk.pem"), "w") as f:
            f.write("this is not PEM\n")
        log = self.start_failing(https_forward(self.port, self.door, cert=self.path("junk.pem"), key=self.key))
        self.assertRegex(log, r"certificate: no PEM certificate found")

    def test_unreadable_key_file_fails_naming_it(self):
        # A directory where the key should be: unreadable as a file even for root.
        os.mkdir(self.path("key.dir"))
        log = self.start_failing(https_forward(self.port, self.door, cert=self.cert, key=self.path("key.dir")))
        self.assertIn(f"private_key: cannot read {self.path('key.dir')}", log)

    def test_mismatched_key_fails(self):
        log = self.start_failing(https_forward(self.port, self.door, cert=self.cert,
                                               key=self.pki.path("wrong.key")))
        self.assertRegex(log, MISMATCH)

    def test_tls_keys_refused_on_a_plain_forward(self):
        log = self.start_failing({"name": "plain", "protocol": "http", "listen": f"127.0.0.1:{self.port}",
                                  "door": self.door, "certificate": self.cert})
        self.assertIn("certificate applies only to TLS forwards", log)

    def test_missing_key_setting_fails(self):
        f = https_forward(self.port, self.door, cert=self.cert, key=self.key)
        del f["private_key"]
        log = self.start_failing(f)
        self.assertIn('missing the required key "private_key"', log)


class Expiry(TlsTest):
    """A certificate near its end is served with a warning at every load, and its notAfter is a
    metric an alert can watch; a renewal and a reload move both."""

    def setUp(self):
        super().setUp()
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.port = self.reserve_port()
        self.pki.install("soon", self.cert, self.key)
        self.daemon = self.start_tls([https_forward(self.port, self.web.door, name="web", cert=self.cert,
                                                    key=self.key)], daemon=self.metrics_settings())

    def test_expiring_certificate_warned_and_exported_until_renewed(self):
        warning = (r"warning: \S+portunusd\.toml:\d+:\d+: certificate: \S+server\.pem expires on "
                   r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, in [23] day\(s\)")
        self.assertRegex(self.daemon.log(), warning)
        self.assertEqual(self.certificate_expiry("web"), self.pki.not_after("soon"))
        s, reader = self.tls_open(self.port)  # served all the same: clients decide
        s.sendall(request_bytes("GET", "/", [("Connection", "close")]))
        self.assertEqual(reader.response().status, 200)
        s.close()

        self.pki.install("first", self.cert, self.key)
        self.daemon.send_signal(signal.SIGHUP)
        self.daemon.wait_log(r"reload: \d+ forward\(s\) added")
        self.assertEqual(self.certificate_expiry("web"), self.pki.not_after("first"))
        self.assertEqual(len(re.findall(warning, self.daemon.log())), 1, self.daemon.tail())


if __name__ == "__main__":
    tls_harness.main()
