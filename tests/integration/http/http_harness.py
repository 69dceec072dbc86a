# SPDX-License-Identifier: MPL-2.0
# The http suite's additions to the daemon harness: http forwards, a byte-exact HTTP/1.1
# response reader for raw sockets, and curl and wrk runners with bounded waits.

import argparse
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, listen_text, split_listen  # noqa: E402

# Every external client gets this long at most; the suite must never hang on one.
CLIENT_TIMEOUT = 20


def http_forward(port, door=None, maps=None, name="web", **extra):
    f = {"name": name, "protocol": "http", "listen": listen_text("127.0.0.1", port)}
    if door is not None:
        f["door"] = door
    f.update(extra)
    if maps:
        f["map"] = list(maps)
    return f


def route(prefix, door, method=None):
    m = {} if method is None else {"method": method}
    m.update(prefix=prefix, door=door)
    return m


def big_body(n):
    """The body http_test_app sends for /big/N."""
    return b"".join(b"%015d\n" % offset for offset in range(0, n + 16, 16))[:n]


class Response:
    def __init__(self, status, reason, version, headers, body, raw):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # [(name, value)] in order, names as sent
        self.body = body
        self.raw = raw

    def header(self, name):
        values = self.all(name)
        return values[0] if values else None

    def all(self, name):
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def __repr__(self):
        return f"<Response {self.status} {self.headers} body={self.body[:200]!r}>"


class Reader:
    """Reads HTTP/1.1 responses off one socket, keeping what arrives past each one."""

    def __init__(self, test, sock, timeout=5.0):
        self.test = test
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.test.fail(f"no complete response within {self.timeout} s; have {self.buf[:300]!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            self.test.fail(f"no complete response within {self.timeout} s; have {self.buf[:300]!r}")
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk
        return bool(chunk)

    def _until(self, marker, deadline):
        while marker not in self.buf:
            if not self._fill(deadline):
                self.test.fail(f"connection closed before {marker!r}; have {self.buf[:300]!r}")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                self.test.fail(f"connection closed after {len(self.buf)} of {n} body bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head=False):
        """The next response; `head`: it answers a HEAD request, so it has no body."""
        deadline = time.monotonic() + self.timeout
        raw_head = self._until(b"\r\n\r\n", deadline)
        lines = raw_head[:-4].split(b"\r\n")
        m = re.fullmatch(rb"(HTTP/1\.[01]) (\d{3}) ?(.*)", lines[0])
        self.test.assertIsNotNone(m, f"bad status line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers.append((name.decode(), value.strip().decode("latin-1")))
        status = int(m.group(2))
        r = Response(status, m.group(3).decode(), m.group(1).decode(), headers, b"", raw_head)
        length = r.header("Content-Length")
        if head or status < 200 or status in (204, 304):
            pass
        elif r.header("Transfer-Encoding"):
            body = b""
            while True:
                size_line = self._until(b"\r\n", deadline)
                r.raw += size_line
                size = int(size_line.split(b";")[0], 16)
                data = self._exact(size + 2, deadline)
                r.raw += data
                body += data[:-2]
                if size == 0:
                    break
            r.body = body
        elif length is not None:
            r.body = self._exact(int(length), deadline)
            r.raw += r.body
        else:
            # Unframed: the body runs to the end of the connection.
            while self._fill(deadline):
                pass
            r.body, self.buf = self.buf, b""
            r.raw += r.body
        return r

    def closed(self, timeout=3.0):
        """True when the peer closes within `timeout` with nothing more sent; fails on data."""
        if self.buf:
            self.test.fail(f"unexpected bytes after the response: {self.buf[:200]!r}")
        if self.eof:
            return True
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        self.test.assertEqual(data, b"", "expected the connection to close without more bytes")
        return True


class HttpTest(DaemonTest):
    """DaemonTest plus http forwards and clients."""

    def start_http(self, forwards, daemon=None, **kw):
        d = self.start_daemon(forwards, daemon=daemon, **kw)
        # The harness probes tcp forwards only: an http forward is served over TCP too, and a
        # connection closed without a byte leaves no access line behind.
        deadline = time.monotonic() + harness.READY_TIMEOUT
        for f in forwards:
            if f.get("protocol") != "http":
                continue
            host, port = split_listen(f["listen"])
            while True:
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        self.fail(f"http {f['listen']} refuses connections:\n{d.tail()}")
                    time.sleep(0.01)
        return d

    def open(self, port, timeout=5.0):
        """A connection and the reader of its responses."""
        s = self.connect(port, timeout=timeout)
        return s, Reader(self, s, timeout)

    def send(self, port, raw, head=False, timeout=5.0):
        """One raw request on a new connection; returns (response, reader)."""
        s, reader = self.open(port, timeout)
        s.sendall(raw)
        return reader.response(head=head), reader

    def get(self, port, target, method="GET", headers=(), body=b"", version="HTTP/1.1", timeout=5.0):
        """A well-formed request on a new connection; returns (response, reader)."""
        return self.send(port, request_bytes(method, target, headers, body, version),
                         head=method == "HEAD", timeout=timeout)

    def curl(self, *args, timeout=CLIENT_TIMEOUT, input=None):
        """Runs curl; returns (exit status, stdout, stderr). -sS: no progress, but errors."""
        p = subprocess.run(["curl", "-sS", "--max-time", str(timeout - 2), *args], capture_output=True,
                           timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def assert_access_lines(self, d, pattern, n, timeout=5.0):
        """Waits until exactly `n` access lines match `pattern`, and that no more appear."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in d.access_log().splitlines() if re.search(pattern, line)]
            if len(lines) >= n or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        self.assertEqual(len(lines), n, "access log:\n" + d.access_log())
        return lines


def request_bytes(method, target, headers=(), body=b"", version="HTTP/1.1", host="localhost"):
    """A request with Host (unless given), the headers in order and Content-Length for a body."""
    head = f"{method} {target} {version}\r\n"
    names = {n.lower() for n, _ in headers}
    if "host" not in names and host is not None:
        head += f"Host: {host}\r\n"
    for n, v in headers:
        head += f"{n}: {v}\r\n"
    if body and "content-length" not in names and "transfer-encoding" not in names:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def app_request(body):
    """Splits what /echo returned into (request line, [(name, value)], body) as the app saw it."""
    head, _, rest = body.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = []
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        fields.append((name, value))
    return lines[0], fields, rest


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--file-opener", required=True)
    args, rest = parser.parse_known_args()
    harness.PROGRAMS["file_opener"] = args.file_opener
    sys.argv = [sys.argv[0], *rest]
    harness.main()
