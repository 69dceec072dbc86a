#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# The access log: one line per connection, datagram or http request, with the same fields for
# every protocol, and never a request body.
import http.client
import os
import re
import socket
import time

import harness
from harness import DaemonTest, listen_text


class AccessLog(DaemonTest):
    def test_lines_carry_the_numbers_but_not_the_bodies(self):
        app = self.start_app("echo.door")
        port = self.reserve_port(udp=True)
        missing = self.reserve_port()
        listen = listen_text("127.0.0.1", port)
        # -d: even trace-level logging must not write what clients send.
        d = self.start_daemon([
            {"name": "acc-tcp", "protocol": "tcp", "listen": listen, "door": app.door},
            {"name": "acc-udp", "protocol": "udp", "listen": listen, "door": app.door},
            {"name": "acc-missing", "protocol": "tcp", "listen": listen_text("127.0.0.1", missing),
             "door": self.path("missing.door")},
        ], args=["-d"])
        secret = b"SECRET-" + os.urandom(12).hex().encode()

        s = self.connect(port)
        client = s.getsockname()[1]
        self.exchange(s, secret, secret)
        self.exchange(s, b"sleep:300:" + secret, secret)
        s.close()
        n = len(secret)
        m = d.wait_access_log(rf"^\S+ access tcp forward=acc-tcp client=127\.0\.0\.1:{client} calls=2 "
                              rf'in={2 * n + 10} out={2 * n} result="client closed" duration_ms=(\d+\.\d{{3}})$')
        self.assertGreaterEqual(float(m.group(1)), 300)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(2)
            u.sendto(secret, ("127.0.0.1", port))
            self.assertEqual(u.recv(100), secret)
            uport = u.getsockname()[1]
        d.wait_access_log(rf"^\S+ access udp forward=acc-udp client=127\.0\.0\.1:{uport} in={n} out={n} "
                          r'result="ok" duration_ms=\d+\.\d{3}$')

        s = self.connect(missing)
        client = s.getsockname()[1]
        s.sendall(secret)
        self.wait_closed(s)
        d.wait_access_log(rf"^\S+ access tcp forward=acc-missing client=127\.0\.0\.1:{client} calls=1 in={n} out=0 "
                          r'result="door error: no such door" duration_ms=\d+\.\d{3}$')

        for name, text in (("access log", d.access_log()), ("daemon log", d.log())):
            self.assertNotIn(secret.decode(), text, f"request body in the {name}")
            self.assertNotIn(secret[7:].decode(), text, f"part of a request body in the {name}")
        # The daemon's own log is not the access log: no access lines there.
        self.assertNotIn(" access ", d.log())

    def test_every_protocol_logs_the_same_fields(self):
        echo = self.start_app("echo.door")
        slow = self.start_app("slow.door", "--sleep-ms", "2000")
        web = self.start_app("hello.door", program_name="hello_web")
        port = self.reserve_port(udp=True)
        hport = self.reserve_port()
        listen = listen_text("127.0.0.1", port)
        d = self.start_daemon([
            {"name": "same-tcp", "protocol": "tcp", "listen": listen, "door": echo.door},
            {"name": "same-udp", "protocol": "udp", "listen": listen, "door": echo.door},
            {"name": "same-http", "protocol": "http", "listen": listen_text("127.0.0.1", hport), "call_timeout": "300ms",
             "map": [{"prefix": "/slow", "door": slow.door}, {"prefix": "/missing", "door": self.path("missing.door")},
                     {"prefix": "/", "door": web.door}]},
        ])
        s = self.connect(port)
        tcp_client = s.getsockname()[1]
        self.exchange(s, b"hello", b"hello")
        s.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(2)
            u.sendto(b"datagram", ("127.0.0.1", port))
            self.assertEqual(u.recv(100), b"datagram")
            udp_client = u.getsockname()[1]
        h = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
        h.connect()
        http_client = h.sock.getsockname()[1]
        statuses = {}
        for target in ("/", "/missing", "/slow"):
            h.request("GET", target)
            r = h.getresponse()
            statuses[target] = (r.status, len(r.read()))
        h.close()
        # hello_web answers, a door nobody serves is 503, a call past call_timeout is 504.
        self.assertEqual([st for st, _ in statuses.values()], [200, 503, 504])

        line = (r"^\S+ access (?P<proto>tcp|udp|http) forward=same-(?P=proto) client=127\.0\.0\.1:(?P<port>\d+) "
                r'(?P<own>.*?)in=(?P<in>\d+) out=(?P<out>\d+) result="(?P<result>[^"]*)" duration_ms=\d+\.\d{3}$')
        d.wait_access_log(r'http forward=same-http .* status=504 ')
        d.wait_access_log(r'tcp forward=same-tcp .* result="client closed"')
        d.wait_access_log(r'udp forward=same-udp ')
        lines = {}
        for text in d.access_log().splitlines():
            if " forward=same-" not in text:
                continue
            m = re.match(line, text)
            self.assertIsNotNone(m, f"access line not in the common format: {text}")
            self.assertEqual(re.findall(r" (\w+)=", text)[-4:], ["in", "out", "result", "duration_ms"], text)
            lines.setdefault(m.group("proto"), []).append(m)
        tcp = [m for m in lines["tcp"] if int(m.group("port")) == tcp_client]
        self.assertEqual(len(tcp), 1)
        self.assertEqual((tcp[0].group("own"), tcp[0].group("in"), tcp[0].group("out")), ("calls=1 ", "5", "5"))
        (udp,) = lines["udp"]
        self.assertEqual((int(udp.group("port")), udp.group("own"), udp.group("in"), udp.group("out")),
                         (udp_client, "", "8", "8"))
        http_lines = lines["http"]
        self.assertEqual(len(http_lines), 3)
        for m, target in zip(http_lines, statuses):
            status, body = statuses[target]
            self.assertEqual(int(m.group("port")), http_client)
            self.assertRegex(m.group("own"), rf'^method=GET path="{target}" status={status} $')
            self.assertGreater(int(m.group("in")), 0)
            # The daemon's own 503 and 504 count their bytes as the door's answers do.
            self.assertGreater(int(m.group("out")), body)

    def test_sighup_reopens_the_access_log(self):
        # What logrotate does: move the file away, then SIGHUP; new lines go to a new file.
        app = self.start_app("echo.door")
        port = self.reserve_port()
        forwards = [{"name": "rotated", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        d = self.start_daemon(forwards)
        self.round_trip(port, b"before")
        d.wait_access_log(r"calls=1 in=6 out=6")
        os.rename(d.access_log_path, d.access_log_path + ".1")
        self.reload(d, forwards)
        self.round_trip(port, b"after!")
        d.wait_access_log(r"calls=1 in=6 out=6")
        with open(d.access_log_path + ".1") as f:
            self.assertEqual(f.read().count("forward=rotated"), 2)  # the readiness probe, "before"
        self.assertEqual(d.access_log().count("forward=rotated"), 1)

    def test_an_access_log_that_is_not_a_regular_file_is_refused(self):
        # A FIFO with no reader would block the daemon when it opens the log, and every loop
        # whenever the pipe is full: refused at start-up and on reload, never waited for.
        app = self.start_app("echo.door")
        port = self.reserve_port()
        fifo = self.path("access.fifo")
        os.mkfifo(fifo)
        forwards = [{"name": "fifo", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        d = self.start_daemon(forwards, daemon={"access_log": fifo}, wait=False, name="refused")
        status = d.wait(5)
        self.assertEqual(status, 96, d.tail())
        self.assertIn(f"{fifo}: not a regular file", d.log())

        # Reload onto the FIFO: refused, the daemon keeps answering and keeps its old log.
        d = self.start_daemon(forwards)
        self.round_trip(port, b"before")
        self.reload(d, forwards, daemon={"access_log": fifo})
        self.assertRegex(d.log(), r"cannot open log: .*access\.fifo: not a regular file")
        started = time.monotonic()
        self.round_trip(port, b"after!")
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertTrue(d.alive())


if __name__ == "__main__":
    harness.main()
