#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# PROXY protocol on tcp and http forwards: the client a v1 or v2 header names reaches the access
# log and X-Forwarded-For; untrusted sources and bad, truncated or slow headers are closed (and
# logged) without holding up anyone else; curl --haproxy-protocol and a real HAProxy work.
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import unittest

for room in ("daemon", "http"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", room))

import http_harness  # noqa: E402
from harness import Process, have_ipv6_loopback  # noqa: E402
from http_harness import HttpTest, Reader, app_request, http_forward, request_bytes  # noqa: E402

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(src, dst, sport, dport):
    proto = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def v2(src=None, dst=None, sport=0, dport=0, tlvs=b"", local=False):
    """A v2 header: PROXY over INET or INET6 for `src`, or LOCAL."""
    if local:
        return SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", len(tlvs)) + tlvs
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    block = socket.inet_pton(family, src) + socket.inet_pton(family, dst) + struct.pack("!HH", sport, dport)
    fam = 0x21 if family == socket.AF_INET6 else 0x11
    return SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(block) + len(tlvs)) + block + tlvs


def fields_of(body):
    _, fields, _ = app_request(body)
    return dict(fields)


class ProxyHttp(HttpTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("app.door")
        self.port = self.reserve_port()
        self.daemon = self.start_http([
            http_forward(self.port, self.app.door, name="web", proxy_protocol=True,
                         proxy_protocol_from=["127.0.0.1/32", "::1"], header_timeout="1s"),
        ])

    def through(self, header, pieces=1):
        """GET /echo behind `header`, in `pieces` sends; returns the fields the application saw."""
        s, reader = self.open(self.port)
        data = header + request_bytes("GET", "/echo")
        if pieces == 1:
            s.sendall(data)
        else:
            # The header alone first, then the request: bytes behind the header need not share its read.
            step = max(1, len(header) // (pieces - 1))
            for i in range(0, len(header), step):
                s.sendall(header[i:i + step])
                time.sleep(0.02)
            s.sendall(data[len(header):])
        r = reader.response()
        self.assertEqual(r.status, 200, r)
        return fields_of(r.body)

    def test_v1_and_v2_name_the_client(self):
        cases = [
            (v1("203.0.113.7", "192.0.2.1", 40001, 80), "203.0.113.7", "203.0.113.7", "203.0.113.7:40001"),
            (v1("2001:db8::7", "2001:db8::1", 40002, 80), "2001:db8::7", '"[2001:db8::7]"', r"\[2001:db8::7\]:40002"),
            (v2("198.51.100.9", "192.0.2.1", 40003, 80, tlvs=b"\x01\x00\x02h2\x04\x00\x03abc"), "198.51.100.9",
             "198.51.100.9", "198.51.100.9:40003"),
            (v2("2001:db8::9", "2001:db8::1", 40004, 443), "2001:db8::9", '"[2001:db8::9]"', r"\[2001:db8::9\]:40004"),
        ]
        for header, xff, forwarded_for, client in cases:
            for pieces in (1, 3):
                with self.subTest(header=header, pieces=pieces):
                    f = self.through(header, pieces)
                    self.assertEqual(f["X-Forwarded-For"], xff)
                    self.assertTrue(f["Forwarded"].startswith(f"for={forwarded_for};proto=http;by="), f)
            self.assert_access_lines(self.daemon, rf'client={client} method=GET path="/echo" status=200', 2)

    def test_local_and_unknown_keep_the_real_peer(self):
        for header in (v2(local=True), v2(local=True, tlvs=b"\x04\x00\x00"), b"PROXY UNKNOWN\r\n",
                       b"PROXY UNKNOWN ::1 ::2 1 2\r\n"):
            with self.subTest(header=header):
                self.assertEqual(self.through(header)["X-Forwarded-For"], "127.0.0.1")
        self.assert_access_lines(self.daemon, r'client=127\.0\.0\.1:\d+ method=GET path="/echo" status=200', 4)

    def test_a_client_cannot_forge_the_forwarded_fields(self):
        s, reader = self.open(self.port)
        s.sendall(v1("203.0.113.8", "192.0.2.1", 5, 80) +
                  request_bytes("GET", "/echo", headers=[("X-Forwarded-For", "10.9.9.9"), ("Forwarded", "for=x")]))
        f = fields_of(reader.response().body)
        self.assertEqual(f["X-Forwarded-For"], "203.0.113.8")
        self.assertTrue(f["Forwarded"].startswith("for=203.0.113.8;"))

    def test_keep_alive_requests_keep_the_client(self):
        s, reader = self.open(self.port)
        s.sendall(v2("192.0.2.55", "192.0.2.1", 1234, 80) + request_bytes("GET", "/echo") +
                  request_bytes("GET", "/echo"))  # pipelined behind the header, in one send
        for _ in range(2):
            self.assertEqual(fields_of(reader.response().body)["X-Forwarded-For"], "192.0.2.55")
        s.sendall(request_bytes("GET", "/echo"))
        self.assertEqual(fields_of(reader.response().body)["X-Forwarded-For"], "192.0.2.55")
        self.assert_access_lines(self.daemon, r"client=192\.0\.2\.55:1234 .*status=200", 3)

    def test_curl_haproxy_protocol(self):
        code, out, err = self.curl("--haproxy-protocol", f"http://127.0.0.1:{self.port}/echo")
        self.assertEqual(code, 0, err)
        # curl's header carries its own address: what the daemon reports must be that, port included.
        self.assertEqual(fields_of(out)["X-Forwarded-For"], "127.0.0.1")
        self.assert_access_lines(self.daemon, r'client=127\.0\.0\.1:\d+ method=GET path="/echo" status=200', 1)
        code, out, err = self.curl(f"http://127.0.0.1:{self.port}/echo")
        self.assertNotEqual(code, 0, "a request without the header must not be served")
        self.assertEqual(out, b"")
        self.daemon_line(r"PROXY header refused: not a PROXY protocol header")

    def daemon_line(self, reason, n=1):
        return self.assert_access_lines(self.daemon, re.escape(f'result="{reason}"'), n)

    def assert_closed_silently(self, s, within):
        started = time.monotonic()
        s.settimeout(within)
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"", "nothing may be answered before a valid header")
        return time.monotonic() - started

    def test_malformed_and_truncated_headers_are_closed(self):
        bad = [
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "not a PROXY protocol header"),
            (b"PROXY TCP4 300.0.0.1 192.0.2.1 1 2\r\nGET / HTTP/1.1\r\n\r\n", "bad IPv4 address"),
            (b"PROXY TCP4 " + b"1" * 120, "no CRLF within 107 bytes"),
            (SIGNATURE + b"\x21\x11\xff\xff", "header longer than 4096 bytes"),
            (SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12), "unknown command"),
        ]
        for data, why in bad:
            with self.subTest(why=why):
                s = self.connect(self.port)
                s.sendall(data)
                self.assertLess(self.assert_closed_silently(s, 3.0), 0.8, "refused at once, not at the timeout")
                self.assert_access_lines(self.daemon, re.escape(why), 1)
        # Truncated: the client gives up mid-header.
        for partial in (v1("203.0.113.7", "192.0.2.1", 1, 2)[:20], v2("203.0.113.7", "192.0.2.1", 1, 2)[:20]):
            s = socket.create_connection(("127.0.0.1", self.port))
            s.sendall(partial)
            time.sleep(0.1)
            s.close()
        self.assert_access_lines(self.daemon, r"^.*http forward=web client=127\.0\.0\.1:\d+ method=- path=\"\" "
                                              r"status=400 in=20 out=0 result=\"client closed before", 2)

    def test_slow_header_times_out_without_holding_up_others(self):
        slow = []
        for header in (v1("203.0.113.7", "192.0.2.1", 1, 2), v2("203.0.113.7", "192.0.2.1", 1, 2), b""):
            s = self.connect(self.port)
            if header:
                s.sendall(header[:-3])
            slow.append(s)
        started = time.monotonic()
        # Served meanwhile, promptly.
        for _ in range(5):
            t = time.monotonic()
            self.assertEqual(self.through(v1("192.0.2.77", "192.0.2.1", 9, 80))["X-Forwarded-For"], "192.0.2.77")
            self.assertLess(time.monotonic() - t, 0.5)
        for s in slow:
            s.settimeout(4.0)
            self.assertEqual(s.recv(100), b"")
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.7)
        self.assertLess(elapsed, 3.0, "header_timeout is 1s")
        self.daemon_line("PROXY header timeout", 3)


class ProxyTrust(HttpTest):
    def test_untrusted_source_is_closed_at_once(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_http([http_forward(port, app.door, name="web", proxy_protocol=True,
                                          proxy_protocol_from=["10.0.0.0/8", "::1"])])
        s = self.connect(port)
        s.sendall(v1("203.0.113.7", "192.0.2.1", 1, 2) + request_bytes("GET", "/echo"))
        s.settimeout(3)
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        self.assert_access_lines(d, r'client=127\.0\.0\.1:\d+ .*result="PROXY header refused: source not in '
                                    r'proxy_protocol_from"', 2)  # the harness's probe, then this client

    @unittest.skipUnless(have_ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6_balancer(self):
        app = self.start_app("app.door")
        port = self.reserve_port("::1")
        d = self.start_http([http_forward(port, app.door, name="web", listen=f"[::1]:{port}", proxy_protocol=True,
                                          proxy_protocol_from=["::1/128"])])
        s = socket.create_connection(("::1", port), timeout=3)
        self._sockets.append(s)
        s.sendall(v2("203.0.113.70", "192.0.2.1", 7, 80) + request_bytes("GET", "/echo"))
        self.assertEqual(fields_of(Reader(self, s).response().body)["X-Forwarded-For"], "203.0.113.70")
        self.assert_access_lines(d, r"client=203\.0\.113\.70:7 ", 1)

    def test_reload_turns_it_on_and_off(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        plain = [http_forward(port, app.door, name="web")]
        proxied = [http_forward(port, app.door, name="web", proxy_protocol=True, proxy_protocol_from=["127.0.0.1"])]
        d = self.start_http(plain)
        r, _ = self.get(port, "/echo")
        self.assertEqual(fields_of(r.body)["X-Forwarded-For"], "127.0.0.1")
        self.reload(d, proxied)
        r, _ = self.send(port, v1("192.0.2.5", "192.0.2.1", 5, 80) + request_bytes("GET", "/echo"))
        self.assertEqual(fields_of(r.body)["X-Forwarded-For"], "192.0.2.5")
        self.reload(d, plain)
        r, _ = self.get(port, "/echo")
        self.assertEqual(fields_of(r.body)["X-Forwarded-For"], "127.0.0.1")


class ProxyTcp(HttpTest):
    def setUp(self):
        super().setUp()
        self.echo = self.start_app("echo.door", program_name="echo")
        self.port = self.reserve_port()
        self.daemon = self.start_daemon([{
            "name": "relay", "protocol": "tcp", "listen": f"127.0.0.1:{self.port}", "door": self.echo.door,
            "proxy_protocol": True, "proxy_protocol_from": ["127.0.0.0/8"], "header_timeout": "1s",
            "max_request": 4,
        }])

    def test_bytes_behind_the_header_are_the_stream(self):
        for header in (v1("203.0.113.9", "192.0.2.1", 4321, 7), v2("2001:db8::5", "2001:db8::1", 4322, 7)):
            s = self.connect(self.port)
            # Header and data in one send: max_request = 4 splits the data into three calls.
            s.sendall(header + b"hello world")
            self.assertEqual(self.recv_exact(s, 11), b"hello world")
            s.sendall(b"more")
            self.assertEqual(self.recv_exact(s, 4), b"more")
            s.close()
        self.assert_access_lines(self.daemon, r"tcp forward=relay client=203\.0\.113\.9:4321 calls=4 in=15 out=15", 1)
        self.assert_access_lines(self.daemon, r"tcp forward=relay client=\[2001:db8::5\]:4322 calls=4 ", 1)

    def test_slow_or_bad_header(self):
        s = self.connect(self.port)
        s.sendall(b"PROXY TCP4 1.2")
        s.settimeout(3)
        started = time.monotonic()
        self.assertEqual(s.recv(10), b"")
        self.assertLess(time.monotonic() - started, 2.0)
        self.assert_access_lines(self.daemon, r'tcp forward=relay client=127\.0\.0\.1:\d+ calls=0 in=14 out=0 '
                                              r'result="PROXY header timeout"', 1)
        s = self.connect(self.port)
        s.sendall(b"hello")
        self.assertEqual(s.recv(10), b"")
        self.assert_access_lines(self.daemon, r'result="PROXY header refused: not a PROXY protocol header"', 1)


@unittest.skipUnless(shutil.which("haproxy"), "haproxy is not installed (tests/install-deps.sh)")
class BehindHaproxy(HttpTest):
    def test_requests_through_haproxy_send_proxy_v2(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        front = self.reserve_port()
        d = self.start_http([http_forward(port, app.door, name="web", proxy_protocol=True,
                                          proxy_protocol_from=["127.0.0.1"])])
        cfg = self.path("haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_config(front, port))
        ha = Process(["haproxy", "-db", "-f", cfg], self.path("haproxy.log"), "haproxy")
        self._processes.append(ha)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", front), timeout=1).close()
                break
            except OSError:
                if not ha.alive() or time.monotonic() > deadline:
                    self.fail("haproxy did not start:\n" + ha.tail())
                time.sleep(0.05)
        # The client comes from 127.0.0.2: only the PROXY header can tell the daemon so, since
        # its own peer is HAProxy on 127.0.0.1.
        url = f"http://127.0.0.1:{front}/echo"
        for _ in range(2):
            code, out, err = self.curl("--interface", "127.0.0.2", "-w", "\n%{local_port}", url)
            self.assertEqual(code, 0, err)
            body, _, local_port = out.rpartition(b"\n")
            self.assertEqual(fields_of(body)["X-Forwarded-For"], "127.0.0.2")
        lines = self.assert_access_lines(d, r'client=127\.0\.0\.2:\d+ method=GET path="/echo" status=200', 2)
        self.assertIn(f"client=127.0.0.2:{int(local_port)} ", lines[-1])


def haproxy_config(front, back):
    return f"""global
    maxconn 256

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend fe
    bind 127.0.0.1:{front}
    default_backend be

backend be
    server portunusd 127.0.0.1:{back} send-proxy-v2
"""


if __name__ == "__main__":
    http_harness.main()
