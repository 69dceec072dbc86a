#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Round trips through the real daemon: tcp and udp, IPv4 and IPv6, several forwards, once = true.
import os
import socket
import subprocess
import threading
import unittest

import harness
from harness import DaemonTest, listen_text


def tcp(listen, door, **extra):
    return {"protocol": "tcp", "listen": listen, "door": door, **extra}


def udp(listen, door, **extra):
    return {"protocol": "udp", "listen": listen, "door": door, **extra}


class TcpRelay(DaemonTest):
    def setUp(self):
        super().setUp()
        self.app = self.start_app("echo.door", "--log", self.path("calls.log"))
        self.port = self.reserve_port()
        self.daemon = self.start_daemon([tcp(listen_text("127.0.0.1", self.port), self.app.door)])

    def test_chunks_on_one_connection_come_back_in_order(self):
        s = self.connect(self.port)
        for i in range(5):
            self.exchange(s, f"chunk {i}\n".encode(), f"chunk {i}\n".encode())
        # Sent without waiting: however the chunks coalesce into reads, one call per read and
        # replies in request order give back exactly the stream that was sent.
        stream = b"".join(f"pipelined {i};".encode() for i in range(200))
        s.sendall(stream)
        self.assertEqual(self.recv_exact(s, len(stream)), stream)

    def test_half_close_gets_every_reply_then_eof(self):
        s = self.connect(self.port)
        s.sendall(b"last words")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(self.recv_exact(s, len(b"last words")), b"last words")
        self.wait_closed(s)

    def test_empty_reply_sends_nothing_and_keeps_the_connection(self):
        s = self.connect(self.port)
        s.sendall(b"empty")
        self.wait_calls(self.path("calls.log"), 1)
        s.settimeout(0.3)
        with self.assertRaises(socket.timeout):
            s.recv(100)
        self.exchange(s, b"after empty", b"after empty")

    def test_socat_client(self):
        out = subprocess.run(["socat", "-t", "2", "-", f"TCP:127.0.0.1:{self.port}"], input=b"hello, socat\n",
                             capture_output=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, b"hello, socat\n")


class Relay(DaemonTest):
    def test_udp_round_trip(self):
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port(udp=True)
        self.start_daemon([udp(listen_text("127.0.0.1", port), app.door)])
        for i in range(5):
            self.assertEqual(self.udp_request(port, f"datagram {i}".encode()), f"datagram {i}".encode())
        out = subprocess.run(["socat", "-t", "1", "-", f"UDP:127.0.0.1:{port}"], input=b"via socat",
                             capture_output=True, timeout=10)
        self.assertEqual(out.stdout, b"via socat")

    def test_udp_empty_reply_sends_no_datagram(self):
        app = self.start_app("app.door")
        port = self.reserve_port(udp=True)
        self.start_daemon([udp(listen_text("127.0.0.1", port), app.door)])
        self.assertIsNone(self.udp_request(port, b"empty", timeout=0.5))
        self.assertEqual(self.udp_request(port, b"still here"), b"still here")

    @unittest.skipUnless(harness.have_ipv6_loopback(), "no IPv6 loopback address")
    def test_ipv6_loopback(self):
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port("::1", udp=True)
        self.start_daemon([tcp(listen_text("::1", port), app.door), udp(listen_text("::1", port), app.door)])
        self.round_trip(port, b"over ipv6 tcp", host="::1")
        self.assertEqual(self.udp_request(port, b"over ipv6 udp", host="::1"), b"over ipv6 udp")
        # [::1] is IPv6 only: nothing listens on 127.0.0.1 at that port.
        self.assert_refused(port, "127.0.0.1")
        out = subprocess.run(["socat", "-t", "2", "-", f"TCP6:[::1]:{port}"], input=b"socat6",
                             capture_output=True, timeout=10)
        self.assertEqual(out.stdout, b"socat6")

    def test_several_forwards_at_once(self):
        a = self.start_app("a.door", "--prefix", "A:")
        b = self.start_app("b.door", "--prefix", "B:")
        shared = self.reserve_port(udp=True)
        pa = self.reserve_port()
        pb = self.reserve_port()
        self.start_daemon([
            tcp(listen_text("127.0.0.1", shared), a.door, name="shared-tcp"),
            udp(listen_text("127.0.0.1", shared), a.door, name="shared-udp"),
            tcp(listen_text("127.0.0.1", pa), a.door, name="to-a"),
            tcp(listen_text("127.0.0.1", pb), b.door, name="to-b"),
        ])
        sa = self.connect(pa)
        sb = self.connect(pb)
        for i in range(10):
            self.exchange(sa, b"x%d" % i, b"A:x%d" % i)
            self.exchange(sb, b"y%d" % i, b"B:y%d" % i)
        self.round_trip(shared, b"tcp on the shared port", b"A:tcp on the shared port")
        self.assertEqual(self.udp_request(shared, b"udp on the shared port"), b"A:udp on the shared port")

    @unittest.skipUnless(harness.have_ipv6_loopback(), "no IPv6 loopback address")
    def test_wildcard_listens_on_ipv4_and_ipv6(self):
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port(udp=True)
        self.start_daemon([tcp(f"*:{port}", app.door), udp(f"*:{port}", app.door)])
        for host in ("127.0.0.1", "::1"):
            self.round_trip(port, b"to " + host.encode(), host=host)
            self.assertEqual(self.udp_request(port, b"udp to " + host.encode(), host=host), b"udp to " + host.encode())

    def test_large_payloads(self):
        # Big enough that the door passes them out of line rather than in the message itself.
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port(udp=True)
        self.start_daemon([tcp(listen_text("127.0.0.1", port), app.door, max_request=4 << 20),
                           udp(listen_text("127.0.0.1", port), app.door)])
        payload = os.urandom(3 << 20)
        s = self.connect(port)
        sender = threading.Thread(target=s.sendall, args=(payload,))
        sender.start()
        received = self.recv_exact(s, len(payload), timeout=10.0)
        sender.join(10)
        self.assertTrue(received == payload, "the 3 MiB stream came back altered")
        datagram = os.urandom(65507)
        self.assertEqual(self.udp_request(port, datagram), datagram)

    def test_many_concurrent_clients(self):
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port()
        self.start_daemon([tcp(listen_text("127.0.0.1", port), app.door)])
        failures = []
        lock = threading.Lock()

        def client(n):
            try:
                for i in range(20):
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                        request = b"client %d request %d" % (n, i)
                        s.sendall(request)
                        data = b""
                        while len(data) < len(request):
                            chunk = s.recv(100)
                            if not chunk:
                                break
                            data += chunk
                        if data != request:
                            raise AssertionError(f"{data!r} != {request!r}")
            except Exception as e:
                with lock:
                    failures.append(f"client {n}: {e!r}")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(failures, [])

    def test_large_request_is_split_at_max_request(self):
        log = self.path("calls.log")
        app = self.start_app("echo.door", "--log", log)
        port = self.reserve_port()
        self.start_daemon([tcp(listen_text("127.0.0.1", port), app.door, max_request=1024)])
        payload = bytes(range(256)) * 40  # 10240 bytes: at least ten reads of at most 1024
        s = self.connect(port)
        s.sendall(payload)
        self.assertEqual(self.recv_exact(s, len(payload)), payload)
        with open(log) as f:
            sizes = [int(line.split()[1]) for line in f]
        self.assertEqual(sum(sizes), len(payload))
        self.assertGreaterEqual(len(sizes), 10)
        self.assertLessEqual(max(sizes), 1024)


class Once(DaemonTest):
    def test_once_closes_after_one_reply(self):
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port()
        self.start_daemon([tcp(listen_text("127.0.0.1", port), app.door, once=True)])
        s = self.connect(port)
        self.exchange(s, b"only one", b"only one")
        self.wait_closed(s, timeout=1.0)

    def test_once_with_curl_and_hello_web(self):
        app = self.start_app("hello.door", program_name="hello_web")
        port = self.reserve_port()
        self.start_daemon([tcp(listen_text("127.0.0.1", port), app.door, once=True)])
        for visitor in (1, 2):
            out = subprocess.run(["curl", "-sS", "-m", "5", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/"],
                                 capture_output=True, timeout=10)
            self.assertEqual(out.returncode, 0, out.stderr)
            body, _, code = out.stdout.decode().rpartition("\n")
            self.assertEqual(code, "200")
            self.assertEqual(body, f"Hello from a door! You are visitor {visitor}.\n")


if __name__ == "__main__":
    harness.main()
