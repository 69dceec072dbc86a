#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# pass forwards end to end: the real portunusd hands client sockets to file_opener and
# line_echo; curl, wrk and raw sockets check HTTP over the passed connection, that no byte of
# it crosses the daemon, that crashes and dead doors close only their own clients, that no
# descriptor leaks, and that pass_hold makes max_concurrency count open connections.
import argparse
import email.utils
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, fd_count  # noqa: E402

BIG = 10 * 1024 * 1024
ACCESS = r'^.* access pass forward={name} client=127\.0\.0\.1:\d+ in={inb} out=0 result="{result}" duration_ms=[\d.]+$'


def pass_forward(port, door, name="files", **extra):
    f = {"name": name, "protocol": "pass", "listen": f"127.0.0.1:{port}", "door": door}
    f.update(extra)
    return f


def io_counters(pid):
    with open(f"/proc/{pid}/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f)}


def http_get(sock, target, headers=(), method="GET"):
    head = f"{method} {target} HTTP/1.1\r\nHost: x\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
    sock.sendall(head.encode())


_pending = {}  # bytes read past a response, by socket


def read_response(test, sock, head_only=False, timeout=5.0):
    """(status, headers dict lower-case, body) of one response on a kept-alive connection."""
    sock.settimeout(timeout)
    data = _pending.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        test.assertTrue(chunk, f"closed before a response head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        n, _, v = line.partition(": ")
        headers[n.lower()] = v
    length = 0 if head_only or status == 304 else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(1 << 20)
        test.assertTrue(chunk, f"closed after {len(rest)} of {length} body bytes")
        rest += chunk
    _pending[sock] = rest[length:]
    return status, headers, rest[:length]


class PassTest(DaemonTest):
    def setUp(self):
        super().setUp()
        self.www = self.path("www")
        os.makedirs(os.path.join(self.www, "sub"))
        self.small = b"plain text\n"
        with open(os.path.join(self.www, "a.txt"), "wb") as f:
            f.write(self.small)
        with open(os.path.join(self.www, "sub", "index.html"), "wb") as f:
            f.write(b"<p>sub</p>\n")
        self.big = os.urandom(BIG)
        with open(os.path.join(self.www, "big.bin"), "wb") as f:
            f.write(self.big)
        with open(self.path("secret.txt"), "wb") as f:
            f.write(b"secret\n")
        os.chmod(os.path.join(self.www, "sub"), 0o755)
        self.mtime = 1_700_000_000
        os.utime(os.path.join(self.www, "a.txt"), (self.mtime, self.mtime))

    def files_app(self, door="files.door"):
        return self.start_app(door, self.www, program_name="file_opener")

    def echo_app(self, door="echo.door"):
        return self.start_app(door, program_name="line_echo")

    def wait_accepting(self, port):
        deadline = time.monotonic() + harness.READY_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() >= deadline:
                    self.fail(f"port {port} refuses connections")
                time.sleep(0.01)

    def start_pass(self, forwards, **kw):
        d = self.start_daemon(forwards, **kw)
        for f in forwards:
            self.wait_accepting(int(f["listen"].rpartition(":")[2]))
        return d

    def curl(self, *args, timeout=20):
        p = subprocess.run(["curl", "-sS", "--max-time", str(timeout - 2), *args], capture_output=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")

    def greeting(self, s, timeout=3.0):
        s.settimeout(timeout)
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(1)
            self.assertTrue(chunk, f"closed before the greeting: {line!r}")
            line += chunk
        return line

    # ---- HTTP over a passed connection -----------------------------------------------------

    def test_curl_get_range_304_head_and_refusals(self):
        app = self.files_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door)])
        url = f"http://127.0.0.1:{port}"
        code, out, err = self.curl(url + "/a.txt")
        self.assertEqual((code, out), (0, self.small), err)
        code, out, err = self.curl("-w", "\n%{http_code}", url + "/big.bin")
        self.assertEqual(code, 0, err)
        self.assertEqual(out[:-4], self.big)
        self.assertEqual(out[-3:], b"200")
        # One curl, two requests: the second reuses the connection the app holds.
        code, out, err = self.curl("-v", url + "/a.txt", url + "/sub/")
        self.assertEqual(out, self.small + b"<p>sub</p>\n", err)
        self.assertIn("Re-using existing connection", err)
        code, out, _ = self.curl("-r", "2-6", "-D", "-", url + "/a.txt")
        self.assertIn(b"HTTP/1.1 206 Partial Content", out)
        self.assertIn(b"Content-Range: bytes 2-6/11", out)
        self.assertTrue(out.endswith(b"ain t"), out)
        code, out, _ = self.curl("-r", "-1000", "-w", "%{http_code}", "-o", self.path("tail"), url + "/big.bin")
        self.assertEqual(out, b"206")
        with open(self.path("tail"), "rb") as f:
            self.assertEqual(f.read(), self.big[-1000:])
        code, out, _ = self.curl("-r", "20-30", "-w", "%{http_code}", "-o", "/dev/null", url + "/a.txt")
        self.assertEqual(out, b"416")
        since = email.utils.formatdate(self.mtime, usegmt=True)
        code, out, _ = self.curl("-H", f"If-Modified-Since: {since}", "-w", "%{http_code}", url + "/a.txt")
        self.assertEqual(out, b"304")
        code, out, _ = self.curl("-I", url + "/a.txt")
        self.assertIn(b"Content-Length: 11\r\n", out)
        self.assertTrue(out.endswith(b"\r\n\r\n"), out)
        for target, status in (("/missing", b"404"), ("/../secret.txt", b"403"), ("/%2e%2e/secret.txt", b"403"),
                               ("/sub/../../secret.txt", b"403"), ("/sub", b"301")):
            code, out, _ = self.curl("--path-as-is", "-w", "%{http_code}", "-o", self.path("body"), url + target)
            self.assertEqual(out, status, target)
            with open(self.path("body"), "rb") as f:
                self.assertNotIn(b"secret", f.read(), target)
        code, out, _ = self.curl("-X", "POST", "-w", "%{http_code}", "-o", "/dev/null", url + "/a.txt")
        self.assertEqual(out, b"405")
        # Every connection was passed and nothing else: one line each, in=0 out=0.
        time.sleep(0.2)
        lines = d.access_log().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, ACCESS.format(name="files", inb=0, result="passed"))

    def test_keep_alive_on_one_socket(self):
        app = self.files_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door)])
        time.sleep(0.2)
        lines_before = len(d.access_log().splitlines())
        s = self.connect(port)
        for _ in range(20):
            http_get(s, "/a.txt")
            self.assertEqual(read_response(self, s)[2], self.small)
        http_get(s, "/a.txt", method="HEAD")
        status, headers, body = read_response(self, s, head_only=True)
        self.assertEqual((status, headers["content-length"], body), (200, "11", b""))
        http_get(s, "/big.bin", headers=[("Range", "bytes=100-199")])
        status, headers, body = read_response(self, s)
        self.assertEqual((status, body), (206, self.big[100:200]))
        time.sleep(0.2)
        self.assertEqual(len(d.access_log().splitlines()), lines_before + 1)

    def test_wrk_through_pass(self):
        if not shutil.which("wrk"):
            self.skipTest("wrk not installed")
        app = self.files_app()
        port = self.reserve_port()
        self.start_pass([pass_forward(port, app.door)])
        p = subprocess.run(["wrk", "-t1", "-c8", "-d1s", f"http://127.0.0.1:{port}/a.txt"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        requests = int(re.search(r"(\d+) requests in", p.stdout).group(1))
        self.assertGreater(requests, 100, p.stdout)
        self.assertNotIn("Non-2xx", p.stdout)
        self.assertNotIn("Socket errors", p.stdout)

    def test_no_byte_of_a_big_response_crosses_the_daemon(self):
        app = self.files_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door)])
        self.curl(f"http://127.0.0.1:{port}/a.txt")
        before = io_counters(d.pid)
        app_before = io_counters(app.pid)
        for _ in range(3):
            code, out, err = self.curl(f"http://127.0.0.1:{port}/big.bin")
            self.assertEqual((code, len(out)), (0, BIG), err)
        after = io_counters(d.pid)
        app_after = io_counters(app.pid)
        moved = {k: after[k] - before[k] for k in ("rchar", "wchar")}
        # The daemon's own reads and writes (door messages, its log) stay far below one copy.
        self.assertLess(moved["rchar"], BIG // 10, moved)
        self.assertLess(moved["wchar"], BIG // 10, moved)
        # sendfile counts in the application's, which shows the counters see such traffic at all.
        self.assertGreaterEqual(app_after["wchar"] - app_before["wchar"], 3 * BIG)

    # ---- failures ----------------------------------------------------------------------------

    def test_app_killed_mid_response_closes_only_its_clients(self):
        a = self.files_app("a.door")
        b = self.files_app("b.door")
        pa, pb = self.reserve_port(), self.reserve_port()
        d = self.start_pass([pass_forward(pa, a.door, name="a"), pass_forward(pb, b.door, name="b")])
        clients = []
        for port in (pa, pb):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            self._sockets.append(s)
            http_get(s, "/big.bin")
            s.settimeout(5)
            clients.append([s, s.recv(4096)])
        self.assertTrue(all(c[1] for c in clients))
        a.kill()  # SIGKILL, with most of the response still unsent
        s, got = clients[0]
        total = len(got)
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            total += len(chunk)
        self.assertLess(total, BIG)
        s, got = clients[1]
        _, _, rest = got.partition(b"\r\n\r\n")
        total = len(rest)
        while total < BIG:
            chunk = s.recv(1 << 20)
            self.assertTrue(chunk, f"b's client cut at {total}")
            total += len(chunk)
        self.assertEqual(total, BIG)
        self.assertTrue(d.alive())
        self.assertEqual(self.curl(f"http://127.0.0.1:{pb}/a.txt")[1], self.small)
        # The dead door: its clients are closed without a byte, and logged.
        c = self.connect(pa)
        self.wait_closed(c)
        d.wait_access_log(r'pass forward=a client=\S+ in=0 out=0 result="door error: ')
        self.files_app("a.door")
        self.assertEqual(self.curl(f"http://127.0.0.1:{pa}/a.txt")[1], self.small)

    def test_dead_or_missing_door_closes_the_client_then_serves_once_back(self):
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, self.path("echo.door"), name="echo")])
        s = self.connect(port)
        self.wait_closed(s)
        d.wait_access_log(r'pass forward=echo client=\S+ in=0 out=0 result="door error: ')
        app = self.echo_app()
        s = self.connect(port)
        self.assertEqual(self.greeting(s).split()[0], b"hello")
        s.close()
        app.stop()  # the door is revoked: the next call fails, then the application returns
        s = self.connect(port)
        self.wait_closed(s)
        self.echo_app()
        s = self.connect(port)
        self.assertTrue(self.greeting(s).startswith(b"hello 127.0.0.1:"))
        self.assertTrue(d.alive())

    def test_a_door_that_does_not_take_sockets_refuses_and_the_client_is_closed(self):
        # echo answers every call with its bytes instead of taking the socket.
        app = self.start_app("relay.door", program_name="echo")
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="wrong")])
        s = self.connect(port)
        self.wait_closed(s)
        d.wait_access_log(r'pass forward=wrong client=\S+ in=0 out=0 result="refused: PTPS')

    def test_hold_app_killed_mid_connection(self):
        app = self.echo_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="echo", pass_hold=True)])
        s = self.connect(port)
        self.greeting(s)
        app.kill()
        self.wait_closed(s)
        d.wait_access_log(r'pass forward=echo client=\S+ in=0 out=0 result="door error: ')

    def test_hold_call_timeout_ends_the_connection(self):
        app = self.echo_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="echo", pass_hold=True, call_timeout="1s")])
        s = self.connect(port)
        self.greeting(s)
        s.sendall(b"ping\n")
        self.assertEqual(self.greeting(s), b"ping\n")
        waited = self.wait_closed(s, timeout=4)
        self.assertLess(waited, 3)
        d.wait_access_log(r'pass forward=echo .*result="door error: .*timed out')
        self.assertTrue(app.alive())

    # ---- concurrency ----------------------------------------------------------------------

    def test_pass_hold_limits_open_connections(self):
        app = self.echo_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="echo", pass_hold=True, max_concurrency=2,
                                          queue=4)])
        first, second = self.connect(port), self.connect(port)
        self.greeting(first)
        self.greeting(second)
        third = self.connect(port)
        third.settimeout(0.5)
        with self.assertRaises(socket.timeout):
            third.recv(1)
        first.close()
        self.greeting(third)
        third.sendall(b"still here\n")
        self.assertEqual(self.greeting(third), b"still here\n")
        # Past the queue: one of five more is closed at once (whichever the daemon accepted
        # last), and counted; the other four wait.
        more = [self.connect(port) for _ in range(5)]
        closed = []
        deadline = time.monotonic() + 3
        while not closed and time.monotonic() < deadline:
            for c in more:
                c.settimeout(0.05)
                try:
                    if c.recv(1) == b"":
                        closed.append(c)
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed.append(c)
        self.assertEqual(len(closed), 1)
        d.wait_access_log(r'pass forward=echo .*result="queue full"')
        for c in more:
            c.close()

    def test_without_hold_concurrency_counts_hand_offs(self):
        app = self.echo_app()
        port = self.reserve_port()
        self.start_pass([pass_forward(port, app.door, name="echo", max_concurrency=1, queue=4)])
        # Each call ends at the hand-off, so one slot serves any number of open connections (the
        # queue only covers a call that the daemon has not yet seen end when the next arrives).
        clients = []
        for _ in range(5):
            clients.append(self.connect(port))
            self.greeting(clients[-1])
        for i, c in enumerate(clients):
            c.sendall(b"line %d\n" % i)
            self.assertEqual(self.greeting(c), b"line %d\n" % i)

    def test_streaming_echo_stays_open(self):
        app = self.echo_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="echo")])
        s = self.connect(port)
        self.assertRegex(self.greeting(s).decode(), r"^hello 127\.0\.0\.1:\d+ on echo\n$")
        for i in range(5):
            time.sleep(0.2)
            s.sendall(b"tick %d\n" % i)
            self.assertEqual(self.greeting(s), b"tick %d\n" % i)
        s.sendall(b"last")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(self.recv_exact(s, 4), b"last")
        self.wait_closed(s)
        d.wait_access_log(ACCESS.format(name="echo", inb=0, result="passed"))

    def test_proxy_header_and_early_bytes_reach_the_app(self):
        app = self.echo_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door, name="echo", proxy_protocol=True,
                                          proxy_protocol_from=["127.0.0.1/32"])])
        s = self.connect(port)
        header = b"PROXY TCP4 192.0.2.7 127.0.0.1 5555 80\r\n"
        s.sendall(header + b"early line\n")
        self.assertEqual(self.greeting(s), b"hello 192.0.2.7:5555 on echo\n")
        self.assertEqual(self.greeting(s), b"early line\n")
        s.close()
        d.wait_access_log(r'pass forward=echo client=192\.0\.2\.7:5555 in=%d out=0 result="passed"'
                          % (len(header) + len(b"early line\n")))

    # ---- descriptors -----------------------------------------------------------------------

    def test_no_descriptor_leaks_over_2000_connections(self):
        app = self.files_app()
        port = self.reserve_port()
        d = self.start_pass([pass_forward(port, app.door)])
        self.curl(f"http://127.0.0.1:{port}/a.txt")
        # The readiness probe's connection and curl's: both passed.
        deadline = time.monotonic() + 5
        while d.access_log().count('result="passed"') < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        daemon_before, app_before = fd_count(d.pid), fd_count(app.pid)
        passed_before = d.access_log().count('result="passed"')
        self.assertEqual(passed_before, 2)
        request = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for i in range(2000):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.assertTrue(data.endswith(self.small), f"connection {i}: {data!r}")
        deadline = time.monotonic() + 5
        while (fd_count(d.pid), fd_count(app.pid)) != (daemon_before, app_before) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(fd_count(d.pid), daemon_before)
        self.assertEqual(fd_count(app.pid), app_before)
        # A line is written when the hand-off call returns, which can be after the client has
        # read its whole answer from the application: wait for the last one, within bounds.
        deadline = time.monotonic() + 5
        while d.access_log().count('result="passed"') < passed_before + 2000 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(d.access_log().count('result="passed"'), passed_before + 2000)


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--file-opener", required=True)
    parser.add_argument("--line-echo", required=True)
    args, rest = parser.parse_known_args()
    harness.PROGRAMS["file_opener"] = args.file_opener
    harness.PROGRAMS["line_echo"] = args.line_echo
    sys.argv = [sys.argv[0], *rest]
    harness.main()


if __name__ == "__main__":
    main()
