#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Privilege drop: bind a port below 1024 as root, then serve as `nobody` with no way back.
import os
import pwd
import socket
import unittest

import harness
from harness import DaemonTest, listen_text, status_field


@unittest.skipUnless(os.geteuid() == 0, "needs root: the daemon can only switch to another user when started as root")
class PrivilegeDrop(DaemonTest):
    def privileged_port(self):
        """A free tcp port below 1024, held like reserve_port() holds its ports."""
        for port in range(1000, 600, -1):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            self._reserved.append(s)
            return port
        self.skipTest("no free port below 1024")

    def test_binds_as_root_then_runs_as_nobody(self):
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody' on this system")
        app = self.start_app("echo.door", program_name="echo")
        port = self.privileged_port()
        forwards = [{"name": "low", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        # The access log stays off: reopening a root-owned log file on reload is a separate matter.
        d = self.start_daemon(forwards, {"user": "nobody", "access_log": "off"})
        self.assertEqual(status_field(d.pid, "Uid"), [str(nobody.pw_uid)] * 4)
        self.assertEqual(status_field(d.pid, "Gid"), [str(nobody.pw_gid)] * 4)
        self.assertNotIn("0", status_field(d.pid, "Groups"))
        self.assertEqual(int(status_field(d.pid, "CapEff")[0], 16), 0)
        # Every thread, not only the main one, runs as nobody.
        for task in os.listdir(f"/proc/{d.pid}/task"):
            with open(f"/proc/{d.pid}/task/{task}/status") as f:
                uid_line = next(line for line in f if line.startswith("Uid:"))
            self.assertEqual(uid_line.split()[1:], [str(nobody.pw_uid)] * 4, f"thread {task}")
        self.round_trip(port, b"served by nobody")

        # As nobody, a reload cannot bind another low port; it says so and keeps serving.
        other = self.privileged_port()
        m = self.reload(d, forwards + [{"name": "lower", "protocol": "tcp",
                                        "listen": listen_text("127.0.0.1", other), "door": app.door}],
                        {"user": "nobody", "access_log": "off"})
        self.assertEqual(m.group(0), "reload: 0 forward(s) added, 0 changed, 0 removed")
        self.assertRegex(d.log(), rf"error: reload: cannot bind tcp 127\.0\.0\.1:{other} \(forward lower\): "
                                  r"Permission denied")
        self.round_trip(port, b"still served")


if __name__ == "__main__":
    harness.main()
