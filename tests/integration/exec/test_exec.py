#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# exec forwards end to end: shell scripts behind the real portunusd, real clients on 127.0.0.1,
# and /proc to see the children (how many, which user, no zombie) and the daemon's descriptors.
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, fd_count, program  # noqa: E402

# Replies with what came on its first line, its client address and its uid; says so on stderr too.
ANSWER = """#!/bin/sh
read line
echo "hello $line from $TCPREMOTEIP:$TCPREMOTEPORT to $TCPLOCALPORT uid=$(id -u)"
"""


def proc_stat(pid):
    """(state, ppid) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def children_of(pid):
    """{child pid: state} of every child of `pid`."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st and st[1] == pid:
                out[int(name)] = st[0]
    return out


class ExecTest(DaemonTest):
    def script(self, name, text):
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        return path

    def start_exec(self, command, daemon=None, **keys):
        port = self.reserve_port()
        forward = {"name": "sh", "protocol": "exec", "listen": f"127.0.0.1:{port}", "command": command}
        forward.update(keys)
        d = self.start_daemon([forward], daemon=daemon)
        return d, port

    def ask(self, port, line=b"x", timeout=10.0):
        """One request on a new connection: sends a line, returns everything until the close."""
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(line + b"\n")
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    # Closed with the line unread (a program that could not start): a reset.
                    return data
                if not chunk:
                    return data
                data += chunk

    def wait_no_children(self, d, timeout=5.0):
        """Every child of the daemon has been reaped (none left, zombie or not)."""
        deadline = time.monotonic() + timeout
        while True:
            left = children_of(d.pid)
            if not left:
                return
            if time.monotonic() >= deadline:
                self.fail(f"children of the daemon still there after {timeout} s: {left}")
            time.sleep(0.02)

    def count_access(self, d, pattern):
        return len(re.findall(pattern, d.access_log(), re.MULTILINE))

    def wait_access_count(self, d, pattern, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.count_access(d, pattern) < n:
            if time.monotonic() >= deadline:
                self.fail(f"{self.count_access(d, pattern)} access lines /{pattern}/, expected {n}")
            time.sleep(0.02)

    # ---- tests -----------------------------------------------------------------------------

    def test_sequential_and_concurrent_clients_no_zombie_no_leak(self):
        d, port = self.start_exec([self.script("answer.sh", ANSWER)])
        first = self.ask(port, b"first")
        self.assertRegex(first, rb"^hello first from 127\.0\.0\.1:\d+ to " + str(port).encode() + rb" uid=\d+\n$")
        self.wait_no_children(d)
        before = fd_count(d.pid)

        for i in range(1000):
            self.assertEqual(self.ask(port, b"s%d" % i)[:len(b"hello s%d " % i)], b"hello s%d " % i)

        replies = [None] * 64
        start = threading.Barrier(64, timeout=10)

        def client(i):
            start.wait()
            replies[i] = self.ask(port, b"c%d" % i)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for i, r in enumerate(replies):
            self.assertIsNotNone(r, f"client {i} got no reply")
            self.assertTrue(r.startswith(b"hello c%d " % i), r)

        self.wait_access_count(d, r'^.*exec forward=sh client=127\.0\.0\.1:\d+ in=0 out=0 result="exit 0"', 1065)
        self.wait_no_children(d)
        self.assertEqual(fd_count(d.pid), before, "descriptors of the daemon before and after 1064 clients")
        self.assertTrue(d.alive())

    def test_a_hanging_child_is_killed_at_call_timeout_and_others_are_served(self):
        hang = self.script("hang.sh", "#!/bin/sh\nread line\n"
                                      "if [ \"$line\" = hang ]; then echo $$ > " + self.path("hang.pid") +
                                      "; sleep 60; fi\necho \"ok $line\"\n")
        d, port = self.start_exec([hang], call_timeout="1500ms")
        stuck = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sockets.append(stuck)
        stuck.sendall(b"hang\n")
        started = time.monotonic()
        deadline = started + 5
        while not os.path.exists(self.path("hang.pid")):
            self.assertLess(time.monotonic(), deadline, "the hanging child never started")
            time.sleep(0.01)
        with open(self.path("hang.pid")) as f:
            hung = int(f.read())
        # Meanwhile, others are served at once.
        for i in range(20):
            self.assertEqual(self.ask(port, b"o%d" % i), b"ok o%d\n" % i)
        self.assertLess(time.monotonic() - started, 1.4, "other clients were held up")
        waited = self.wait_closed(stuck, timeout=5)
        self.assertGreater(time.monotonic() - started, 1.3)
        self.assertLess(waited, 5)
        d.wait_access_log(r'exec forward=sh client=\S+ in=0 out=0 result="call timeout: killed"')
        # The script and the sleep it started (its process group) are gone, reaped.
        self.wait_no_children(d)
        deadline = time.monotonic() + 5
        while any(proc_stat(int(p)) and os.getpgid(int(p)) == hung for p in os.listdir("/proc") if p.isdigit()
                  and proc_stat(int(p))):
            self.assertLess(time.monotonic(), deadline, "a process of the killed group is still there")
            time.sleep(0.02)
        self.assertEqual(self.ask(port, b"after"), b"ok after\n")

    def test_no_child_outlives_the_daemon(self):
        hang = self.script("hang.sh", "#!/bin/sh\necho $$ > " + self.path("hang.pid") + "\nexec sleep 60\n")
        # The drain ends after drain_timeout with the program still running.
        d2, port = self.start_exec([hang], daemon={"drain_timeout": "500ms"}, call_timeout="60s")
        stuck = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sockets.append(stuck)
        deadline = time.monotonic() + 5
        while not os.path.exists(self.path("hang.pid")) or os.path.getsize(self.path("hang.pid")) == 0:
            self.assertLess(time.monotonic(), deadline, "the program never started")
            time.sleep(0.01)
        with open(self.path("hang.pid")) as f:
            child = int(f.read())
        d2.send_signal(signal.SIGTERM)
        self.assertEqual(d2.wait(15), 0)
        deadline = time.monotonic() + 5
        while proc_stat(child) and proc_stat(child)[0] != "Z":
            self.assertLess(time.monotonic(), deadline, "the program outlived the daemon")
            time.sleep(0.02)
        self.wait_closed(stuck, timeout=5)

    @unittest.skipUnless(os.geteuid() == 0, "switching to nobody needs root")
    def test_runs_as_the_configured_user(self):
        d, port = self.start_exec([self.script("answer.sh", ANSWER)], user="nobody")
        nobody = int(subprocess.run(["id", "-u", "nobody"], capture_output=True, text=True, check=True).stdout)
        reply = self.ask(port, b"who")
        self.assertTrue(reply.endswith(b" uid=%d\n" % nobody), reply)
        # The daemon itself keeps its own account.
        self.assertEqual(os.stat(f"/proc/{d.pid}").st_uid, 0)

    def test_max_concurrency_caps_children_and_the_queue_then_refuses(self):
        wait = self.script("wait.sh", "#!/bin/sh\nread line\necho \"done $line\"\n")
        d, port = self.start_exec([wait], max_concurrency=2, queue=1)
        held = []
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self._sockets.append(s)
            held.append(s)
        deadline = time.monotonic() + 5
        while len(children_of(d.pid)) < 2:
            self.assertLess(time.monotonic(), deadline, "two children did not start")
            time.sleep(0.01)
        queued = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sockets.append(queued)
        queued.sendall(b"q\n")
        time.sleep(0.3)
        self.assertEqual(len(children_of(d.pid)), 2, "a third child started past max_concurrency")
        refused = socket.create_connection(("127.0.0.1", port), timeout=10)
        self._sockets.append(refused)
        self.wait_closed(refused, timeout=5)
        d.wait_access_log(r'exec forward=sh client=\S+ in=0 out=0 result="queue full"')
        self.assertRegex(d.log(), r"forward sh: queue full \(2 programs running, 1 queued\)")
        self.assertEqual(len(children_of(d.pid)), 2)
        # One child ends: the queued connection gets its turn.
        held[0].sendall(b"a\n")
        self.assertEqual(self.recv_exact(held[0], 7), b"done a\n")
        self.assertEqual(self.recv_exact(queued, 7), b"done q\n")
        held[1].sendall(b"b\n")
        self.assertEqual(self.recv_exact(held[1], 7), b"done b\n")
        self.wait_no_children(d)

    def test_stderr_lines_reach_the_log_bounded(self):
        noisy = self.script("noisy.sh", "#!/bin/sh\nread line\n"
                                        "echo \"oops from child $line\" >&2\n"
                                        "if [ \"$line\" = long ]; then head -c 5000 /dev/zero | tr '\\0' a >&2; "
                                        "echo >&2; fi\n"
                                        "if [ \"$line\" = flood ]; then i=0; while [ $i -lt 500 ]; do "
                                        "echo \"flood $i\" >&2; i=$((i+1)); done; fi\n"
                                        "echo ok\n")
        d, port = self.start_exec([noisy])
        self.assertEqual(self.ask(port, b"one"), b"ok\n")
        d.wait_log(r"forward sh: stderr: oops from child one$")
        self.assertEqual(self.ask(port, b"long"), b"ok\n")
        m = d.wait_log(r"forward sh: stderr: (a+) \[cut\]")
        self.assertEqual(len(m.group(1)), 1024)
        time.sleep(1.1)  # a new second of the rate limit
        self.assertEqual(self.ask(port, b"flood"), b"ok\n")
        d.wait_log(r"forward sh: \d+ stderr line\(s\) not logged \(more than 100 a second\)", timeout=10)
        self.assertLessEqual(len(re.findall(r"stderr: flood \d+", d.log())), 100)

    def test_a_program_deleted_after_start_closes_the_client_and_the_daemon_serves_on(self):
        path = self.script("gone.sh", ANSWER)
        d, port = self.start_exec([path])
        self.assertTrue(self.ask(port, b"before").startswith(b"hello before"))
        os.rename(path, path + ".away")
        self.assertEqual(self.ask(port, b"lost"), b"")
        d.wait_log(r"forward sh: cannot start " + re.escape(path) + r": exec: No such file or directory")
        d.wait_access_log(r'exec forward=sh client=\S+ in=0 out=0 result="cannot start: exec: No such file or '
                          r'directory"')
        os.rename(path + ".away", path)
        self.assertTrue(self.ask(port, b"again").startswith(b"hello again"))
        self.wait_no_children(d)

    def test_reload_picks_up_a_changed_command(self):
        a = self.script("a.sh", "#!/bin/sh\nread line\necho A\n")
        b = self.script("b.sh", "#!/bin/sh\nread line\necho B \"$1\"\n")
        d, port = self.start_exec([a])
        self.assertEqual(self.ask(port), b"A\n")
        forward = dict(d.forwards[0], command=[b, "arg"])
        self.reload(d, [forward])
        self.assertEqual(self.ask(port), b"B arg\n")

    def test_check_reports_bad_exec_forwards(self):
        notes = self.path("notes")
        with open(notes, "w") as f:
            f.write("x")
        config = self.write_config(harness.toml_config(
            {"control_door": "off"},
            [{"protocol": "exec", "listen": "127.0.0.1:1", "command": [notes]},
             {"protocol": "exec", "listen": "127.0.0.1:2", "command": ["/no/such/program"],
              "user": "portunusd-test-no-such-user"},
             {"protocol": "exec", "listen": "127.0.0.1:3", "command": ["relative"]},
             {"protocol": "exec", "listen": "127.0.0.1:4"}]), "bad.toml")
        r = subprocess.run([program("portunusd"), "-n", "-f", config], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 96, r.stderr)
        self.assertIn(f"{config}:7:12: command[0]: \"{notes}\" is not executable (mode 0644)", r.stderr)
        self.assertIn(f"{config}:12:12: command[0]: \"/no/such/program\" does not exist", r.stderr)
        self.assertIn(f"{config}:13:8: user: no user \"portunusd-test-no-such-user\" on this machine", r.stderr)
        self.assertIn(f"{config}:18:12: command[0]: \"relative\" is not an absolute path", r.stderr)
        self.assertIn(f"{config}:20:1: [[forward]] is missing the required key \"command\"", r.stderr)


if __name__ == "__main__":
    harness.main()
