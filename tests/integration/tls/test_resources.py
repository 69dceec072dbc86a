#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# What TLS connections cost the daemon: no descriptor is left behind by hundreds of them, good
# or failed, and an idle connection past its handshake holds little memory.
import os
import socket
import time

import tls_harness
from harness import SANITIZED, fd_count, status_field
from http_harness import request_bytes
from tls_harness import TlsTest, https_forward, tls_forward

CONNECTIONS = 500
# Generous: OpenSSL's per-connection state with released buffers is a few KiB, the session
# around it about as much again.
PER_CONNECTION_LIMIT = 64 * 1024


def descriptors(pid):
    """{fd: what it refers to} of a process."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            pass
    return out


def socket_kind(target):
    """'unix', 'tcp' or '?' for a "socket:[inode]" link, from /proc/net."""
    inode = target[len("socket:["):-1] if target.startswith("socket:[") else None
    for kind, table, column in (("unix", "/proc/net/unix", 6), ("tcp", "/proc/net/tcp", 9), ("tcp6", "/proc/net/tcp6", 9)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) > column and fields[column] == inode:
                    return f"{kind} {' '.join(fields[1:4]) if kind != 'unix' else ' '.join(fields[4:])}"
    return "?"


def rss_bytes(pid):
    value, unit = status_field(pid, "VmRSS")
    assert unit == "kB", unit
    return int(value) * 1024


class Resources(TlsTest):
    def setUp(self):
        super().setUp()
        self.echo = self.start_app("echo.door", program_name="echo")
        self.web = self.start_app("hello.door", program_name="hello_web")
        self.tport = self.reserve_port()
        self.hport = self.reserve_port()
        self.daemon = self.start_tls([
            tls_forward(self.tport, self.echo.door, name="relay", cert=self.cert, key=self.key, idle_timeout="50s"),
            https_forward(self.hport, self.web.door, name="web", cert=self.cert, key=self.key),
        ], daemon={"access_log": self.path("access.log"), "max_connections": 4000})

    def client_descriptors(self):
        """The daemon's descriptors other than its door links (unix sockets): the links to an
        application grow with the calls in flight and are kept, which is no leak; a client's
        TCP socket or a file left open is."""
        return {fd: t for fd, t in descriptors(self.daemon.pid).items() if not socket_kind(t).startswith("unix")}

    def settled(self, want, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            now = self.client_descriptors()
            if len(now) <= len(want) or time.monotonic() >= deadline:
                return now
            time.sleep(0.05)

    def test_no_descriptor_leak_over_many_connections(self):
        # Warm up both forwards on both event loops: their door links are opened on first use
        # and kept, and must not be taken for a leak.
        for i in range(8):
            r, _ = self.tls_get(self.hport, "/warm")
            self.assertEqual(r.status, 200)
            self.assertEqual(self.tls_echo(self.tport, b"warm %d" % i), b"warm %d" % i)
        self.wait_access_lines(16)
        before_all = fd_count(self.daemon.pid)
        before = self.client_descriptors()
        ctx = self.client_context()
        started = time.monotonic()
        done = 0
        for i in range(CONNECTIONS):
            self.assertLess(time.monotonic() - started, 40, f"only {done} connections in 40 s")
            kind = i % 5
            with socket.create_connection(("127.0.0.1", self.tport if kind < 2 else self.hport), timeout=5) as raw:
                if kind == 4:
                    # A failed handshake must give its descriptor back as well.
                    raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    answer = b""
                    try:
                        while chunk := raw.recv(4096):
                            answer += chunk
                    except ConnectionResetError:
                        pass
                    # The 400 an https port answers plain HTTP with, then the end.
                    self.assertTrue(answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer)
                    done += 1
                    continue
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    if kind < 2:
                        s.sendall(b"ping %d" % i)
                        self.assertEqual(self.recv_exact(s, len(b"ping %d" % i)), b"ping %d" % i)
                    else:
                        s.sendall(request_bytes("GET", f"/fd/{i}", [("Connection", "close")]))
                        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200 "))
            done += 1
        self.wait_access_lines(16 + CONNECTIONS)
        after = self.settled(before)
        print(f"daemon descriptors other than door links: {len(before)} before, {len(after)} after "
              f"{CONNECTIONS} TLS connections in {time.monotonic() - started:.1f} s (all: {before_all} before, "
              f"{fd_count(self.daemon.pid)} after)")
        self.assertEqual(after, before, "descriptors left behind by closed TLS connections: "
                         f"{[(fd, t, socket_kind(t)) for fd, t in sorted(set(after.items()) - set(before.items()))]}")

    def wait_access_lines(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while len(self.daemon.access_log().splitlines()) < n:
            if time.monotonic() >= deadline:
                self.fail(f"{len(self.daemon.access_log().splitlines())} access lines, wanted {n}")
            time.sleep(0.05)

    def test_memory_per_idle_tls_connection_is_bounded(self):
        ctx = self.client_context(alpn=None)

        def open_idle(count):
            opened = []
            for i in range(count):
                s = self.tls_connect(self.tport, ctx=ctx)
                # One exchange: the server's side of the handshake is certainly over.
                s.sendall(b"%d" % i)
                self.assertEqual(self.recv_exact(s, len(b"%d" % i)), b"%d" % i)
                opened.append(s)
            return opened

        # Warm up: the allocator's arenas, OpenSSL's tables and the loop's buffers exist.
        for s in open_idle(50):
            s.close()
        time.sleep(0.3)
        before = rss_bytes(self.daemon.pid)
        idle = open_idle(CONNECTIONS)
        time.sleep(0.3)
        after = rss_bytes(self.daemon.pid)
        per = (after - before) / CONNECTIONS
        print(f"daemon VmRSS {before // 1024} KiB -> {after // 1024} KiB with {CONNECTIONS} idle TLS "
              f"connections: {per / 1024:.1f} KiB per connection{' (sanitized build: not asserted)' if SANITIZED else ''}")
        if not SANITIZED:
            self.assertLess(per, PER_CONNECTION_LIMIT)
        # They are all still served.
        for i in (0, CONNECTIONS // 2, CONNECTIONS - 1):
            idle[i].sendall(b"still here")
            self.assertEqual(self.recv_exact(idle[i], 10), b"still here")
        for s in idle:
            s.close()


if __name__ == "__main__":
    tls_harness.main()
