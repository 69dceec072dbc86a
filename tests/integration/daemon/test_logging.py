#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# The access log: one line per connection or datagram with its numbers, and never a request body.
import os
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
                              rf'in={2 * n + 10} out={2 * n} result="client closed" duration_ms=(\d+)$')
        self.assertGreaterEqual(int(m.group(1)), 300)

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.settimeout(2)
            u.sendto(secret, ("127.0.0.1", port))
            self.assertEqual(u.recv(100), secret)
            uport = u.getsockname()[1]
        d.wait_access_log(rf"^\S+ access udp forward=acc-udp client=127\.0\.0\.1:{uport} in={n} out={n} "
                          r'result="ok" duration_ms=\d+$')

        s = self.connect(missing)
        client = s.getsockname()[1]
        s.sendall(secret)
        self.wait_closed(s)
        d.wait_access_log(rf"^\S+ access tcp forward=acc-missing client=127\.0\.0\.1:{client} calls=1 in={n} out=0 "
                          r'result="door error: no such door" duration_ms=\d+$')

        for name, text in (("access log", d.access_log()), ("daemon log", d.log())):
            self.assertNotIn(secret.decode(), text, f"request body in the {name}")
            self.assertNotIn(secret[7:].decode(), text, f"part of a request body in the {name}")
        # The daemon's own log is not the access log: no access lines there.
        self.assertNotIn(" access ", d.log())

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
        self.assertEqual(status, 95, d.tail())
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
