# SPDX-License-Identifier: MPL-2.0
# The tls suite's additions to the http harness: throwaway certificates made with the openssl
# command at test time, tls and https forwards, TLS clients over raw sockets (Python's ssl),
# openssl s_client, and the handshake-failure metric.

import atexit
import hashlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

for room in ("daemon", "http"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", room))

import http_harness  # noqa: E402
from harness import listen_text  # noqa: E402
from http_harness import HttpTest, Reader, request_bytes  # noqa: E402

# Every external client gets this long at most; the suite must never hang on one.
CLIENT_TIMEOUT = 20

# The directory of the certificates this process made (see Certificates).
_made = None

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_CA_EXTENSIONS = """\
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def _openssl(*args, cwd):
    p = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, timeout=CLIENT_TIMEOUT)
    if p.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{p.stderr.decode('utf-8', 'replace')}")
    return p.stdout


class Certificates:
    """A throwaway PKI in `directory`: a root CA, an intermediate CA, server certificates for
    localhost and 127.0.0.1 (the first and the renewed one, valid for 30 days, and one that
    expires in 3, each with its own key and serial) and a key that matches none. A certificate file holds the server's certificate and then
    the intermediate, as an operator writes it; clients trust the root alone, so a handshake
    that verifies proves the chain was sent too."""

    FIRST_SERIAL = 0x1001
    SECOND_SERIAL = 0x2002
    SOON_SERIAL = 0x3003

    def __init__(self, directory):
        # One set per process, copied into each test's directory: making it costs a third of a
        # second, and every test wants the same kind of material.
        global _made
        if _made is None:
            _made = tempfile.mkdtemp(prefix="pd-pki-", dir="/tmp")
            atexit.register(shutil.rmtree, _made, True)
            self._make(_made)
        self.dir = directory
        for name in os.listdir(_made):
            shutil.copy(os.path.join(_made, name), self.path(name))
        self.root = self.path("root.pem")

    def _make(self, directory):
        self.dir = directory
        with open(self.path("leaf.ext"), "w") as f:
            f.write(_LEAF_EXTENSIONS)
        with open(self.path("ca.ext"), "w") as f:
            f.write(_CA_EXTENSIONS)
        self._key("root.key")
        _openssl("req", "-x509", "-new", "-key", "root.key", "-out", "root.pem", "-days", "30", "-subj",
                 "/CN=portunusd test root", "-config", "/dev/null", "-addext",
                 "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 cwd=self.dir)
        self._signed("intermediate", "/CN=portunusd test intermediate", "root", "ca.ext", 0x10)
        self._signed("first", "/CN=localhost", "intermediate", "leaf.ext", self.FIRST_SERIAL)
        self._signed("second", "/CN=localhost", "intermediate", "leaf.ext", self.SECOND_SERIAL)
        # Inside the daemon's 14-day expiry warning.
        self._signed("soon", "/CN=localhost", "intermediate", "leaf.ext", self.SOON_SERIAL, days=3)
        self._key("wrong.key")
        for name in ("first", "second", "soon"):
            with open(self.path(f"{name}-chain.pem"), "wb") as out:
                for part in (f"{name}.pem", "intermediate.pem"):
                    with open(self.path(part), "rb") as f:
                        out.write(f.read())

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        # P-256: made in a millisecond, where an RSA key would cost the suite seconds.
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=self.dir)

    def _signed(self, name, subject, issuer, extensions, serial, days=30):
        self._key(f"{name}.key")
        _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-config", "/dev/null", "-out",
                 f"{name}.csr", cwd=self.dir)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem", "-CAkey", f"{issuer}.key",
                 "-set_serial", str(serial), "-days", str(days), "-extfile", extensions, "-out", f"{name}.pem",
                 cwd=self.dir)

    def not_after(self, name):
        """When certificate `name` expires, in seconds since the epoch."""
        out = _openssl("x509", "-noout", "-enddate", "-in", f"{name}.pem", cwd=self.dir)
        return int(ssl.cert_time_to_seconds(out.decode().strip().split("=", 1)[1]))

    def fingerprint(self, name):
        """SHA-256 of the DER form of certificate `name` (first, second...)."""
        with open(self.path(f"{name}.pem")) as f:
            return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()

    def install(self, name, cert_path, key_path, key_name=None):
        """Writes certificate chain `name` and its key (or key `key_name`) over the two paths the
        daemon reads, each by a rename, as a renewal tool does."""
        for source, target in ((f"{name}-chain.pem", cert_path), (f"{key_name or name}.key", key_path)):
            with open(self.path(source), "rb") as f:
                data = f.read()
            with open(target + ".new", "wb") as f:
                f.write(data)
            os.rename(target + ".new", target)


def tls_forward(port, door, name="secure", protocol="tls", cert=None, key=None, **extra):
    f = {"name": name, "protocol": protocol, "listen": listen_text("127.0.0.1", port), "door": door,
         "certificate": cert, "private_key": key}
    f.update(extra)
    return f


def https_forward(port, door, name="web", **extra):
    return tls_forward(port, door, name=name, protocol="https", **extra)


class TlsTest(HttpTest):
    """HttpTest plus certificates, TLS forwards and TLS clients."""

    def setUp(self):
        super().setUp()
        os.mkdir(self.path("pki"))
        self.pki = Certificates(self.path("pki"))
        # What the daemon reads: copies, so a test may replace them without touching the PKI.
        self.cert = self.path("server.pem")
        self.key = self.path("server.key")
        self.pki.install("first", self.cert, self.key)

    def start_tls(self, forwards, daemon=None, wait=True, **kw):
        """Starts the daemon; with `wait`, until it logged that it is ready.

        Its listeners are bound and listening by then. TLS forwards are not probed with a
        connection as tcp ones are: a connection closed before its handshake is a handshake
        failure, which would show in the access log and the metric every test reads."""
        return self.start_daemon(forwards, daemon=daemon, wait=wait, **kw)

    def client_context(self, alpn=("http/1.1",), maximum=None, minimum=None):
        ctx = ssl.create_default_context(cafile=self.pki.root)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        if maximum:
            ctx.maximum_version = maximum
        if minimum:
            ctx.minimum_version = minimum
        return ctx

    def tls_connect(self, port, timeout=5.0, ctx=None, before=b""):
        """A verified TLS connection to 127.0.0.1:port (name localhost); `before` is sent in
        clear first (a PROXY header)."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            if before:
                raw.sendall(before)
            s = (ctx or self.client_context()).wrap_socket(raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise
        self._sockets.append(s)
        return s

    def tls_open(self, port, timeout=5.0, **kw):
        s = self.tls_connect(port, timeout=timeout, **kw)
        return s, Reader(self, s, timeout)

    def tls_get(self, port, target="/", headers=(("Connection", "close"),), timeout=5.0):
        """One GET on a new TLS connection; returns (response, socket)."""
        s, reader = self.tls_open(port, timeout)
        s.sendall(request_bytes("GET", target, headers))
        return reader.response(), s

    def tls_echo(self, port, payload, timeout=5.0, **kw):
        """Sends `payload` on a new TLS connection to an echo forward; returns what came back
        once as many bytes arrived (or the connection ended)."""
        s = self.tls_connect(port, timeout=timeout, **kw)
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < len(payload) and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(len(payload) - len(data))
            if not chunk:
                break
            data += chunk
        s.close()
        return data

    def s_client(self, port, *args, input=b""):
        """openssl s_client against the port, trusting the test root; returns (status, output)."""
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
                            "-CAfile", self.pki.root, "-verify_return_error", *args],
                           input=input, capture_output=True, timeout=CLIENT_TIMEOUT)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def metrics_settings(self):
        self.mport = self.reserve_port()
        return {"metrics_listen": listen_text("127.0.0.1", self.mport)}

    def forward_sample(self, family, forward):
        """The value of metric `family` for `forward`, from /metrics."""
        code, out, err = self.curl(f"http://127.0.0.1:{self.mport}/metrics")
        self.assertEqual(code, 0, err)
        m = re.search(rf'^{family}\{{[^}}]*forward="{re.escape(forward)}"[^}}]*\}} (\d+)$', out.decode(), re.MULTILINE)
        self.assertIsNotNone(m, f"no {family} sample for {forward}:\n{out.decode()[:3000]}")
        return int(m.group(1))

    def handshake_failures(self, forward):
        return self.forward_sample("portunusd_forward_tls_handshake_failures_total", forward)

    def certificate_expiry(self, forward):
        return self.forward_sample("portunusd_forward_tls_certificate_expiry_timestamp_seconds", forward)

    def wait_handshake_failures(self, forward, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            got = self.handshake_failures(forward)
            if got >= n or time.monotonic() >= deadline:
                self.assertEqual(got, n, f"handshake failures of {forward}")
                return got
            time.sleep(0.05)


def bio_exchange(test, port, request, prefix=b"", timeout=3.0, close_notify=False, shut_wr=False, split=None):
    """A TLS exchange driven by hand over a raw socket, to choose how its bytes are grouped into
    writes: `prefix` (a PROXY header) goes out in the same write as the ClientHello (or, with
    `split`, as its first `split` bytes, the rest following a moment later), and the
    client's Finished in the same write as `request`. Then, if asked, the client ends its side:
    `close_notify` in the same write as the request ("alone": in a write of its own, once the
    request had time to be read), `shut_wr` a TCP half-close. Returns
    (everything decrypted, whether the server closed the connection within `timeout`)."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    test._sockets.append(raw)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = test.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    deadline = time.monotonic() + timeout
    pending = prefix
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        pending += outgoing.read()
        if pending and split:
            cut = len(prefix) + split
            raw.sendall(pending[:cut])
            time.sleep(0.1)
            pending, split = pending[cut:], None
        if pending:
            raw.sendall(pending)
            pending = b""
        test.assertLess(time.monotonic(), deadline, "handshake did not finish")
        data = raw.recv(65536)
        test.assertTrue(data, "closed during the handshake")
        incoming.write(data)
    tls.write(request)
    if close_notify == "alone":
        raw.sendall(pending + outgoing.read())
        pending = b""
        time.sleep(0.2)
    if close_notify:
        try:
            tls.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent; the server's close_notify comes after its reply
    raw.sendall(pending + outgoing.read())
    if shut_wr:
        raw.shutdown(socket.SHUT_WR)
    plain = b""
    while True:
        raw.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = raw.recv(65536)
        except ConnectionResetError:
            data = b""
        except socket.timeout:
            return plain, False
        if not data:
            return plain, True
        incoming.write(data)
        try:
            while True:
                chunk = tls.read(65536)
                if not chunk:
                    break
                plain += chunk
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass


def client_hello(server_hostname="localhost"):
    """The bytes of a real TLS ClientHello, made by Python's ssl without any socket."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


main = http_harness.main
