#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Privilege drop: bind a port below 1024 as root, then serve as `nobody` with no way back.
import os
import pwd
import socket
import subprocess
import time
import unittest

import harness
from harness import DaemonTest, listen_text, program, status_field, toml_config


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

    def test_a_daemon_started_as_its_account_accepts_that_account_and_no_other(self):
        # As a service manager runs it (SMF's method_credential, systemd's User=): already the
        # account the file names is fine; another one is an operator's error, exit 96, said why.
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody' on this system")
        app = self.start_app("echo.door", program_name="echo")
        port = self.reserve_port()
        forwards = [{"name": "f", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        base = {"log_level": "info", "access_log": "off", "control_door": "off"}
        os.chmod(self.tmp, 0o755)

        def run(user, name):
            config = self.write_config(toml_config({**base, "user": user}, forwards), name)
            os.chmod(config, 0o644)
            return subprocess.Popen([program("portunusd"), "-f", config], user=nobody.pw_uid,
                                    group=nobody.pw_gid, extra_groups=[], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)

        wrong = run("root", "wrong.toml")
        out, _ = wrong.communicate(timeout=10)
        self.assertEqual(wrong.returncode, 96, out)
        self.assertRegex(out, rf"cannot drop privileges: the daemon runs as uid {nobody.pw_uid} gid "
                              rf"{nobody.pw_gid}, not root, so it cannot become user 'root' \(uid 0 gid 0\): "
                              r"name the account it runs as in \[daemon\] user/group, or start it as root")

        same = run("nobody", "same.toml")
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    self.round_trip(port, b"served by the account it started as")
                    break
                except OSError:
                    self.assertIsNone(same.poll(), same.stdout.read() if same.poll() is not None else "")
                    self.assertLess(time.monotonic(), deadline, "never served")
                    time.sleep(0.05)
        finally:
            same.terminate()
            out, _ = same.communicate(timeout=10)
        self.assertEqual(same.returncode, 0, out)

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
