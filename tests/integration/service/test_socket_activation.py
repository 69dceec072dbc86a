#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Socket activation with systemd-socket-activate (which needs no systemd running): tcp and udp
# forwards served on passed sockets by real clients, a passed socket no forward wants reported
# and closed, a privileged port served by a daemon that never was root, and LISTEN_* meant for
# another process left alone.
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import Daemon, DaemonTest, listen_text, toml_config  # noqa: E402

ACTIVATE = shutil.which("systemd-socket-activate")
NOBODY = 65534
O_CLOEXEC = 0o2000000


def free_port(udp=False):
    """A port free now on 127.0.0.1 (systemd-socket-activate binds it itself, so it cannot stay
    reserved; the window is short and on loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fd_flags(pid, fd):
    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    return None


class Activation(DaemonTest):
    def launch(self, wrapper, forwards, daemon=None, prefix=()):
        """Writes the configuration, runs portunusd under `wrapper` (the argv before it, ending in
        "--" where the wrapper wants one) and returns the Daemon; not waited for."""
        settings = self.daemon_defaults()
        settings.update(daemon or {})
        config = self.write_config(toml_config(settings, forwards))
        access = settings.get("access_log")
        d = Daemon([*wrapper, *prefix, harness.program("portunusd"), "-f", config], self.path("portunusd.log"), config,
                   access if access and access.startswith("/") else None, forwards)
        self._processes.append(d)
        return d

    def wait_listening(self, d, count):
        d.wait_log(r"Listening on .* as \d+\.", count=count)

    def client(self, port, data):
        """socat as the client: one request, the reply."""
        out = subprocess.run(["socat", "-t", "3", "-T", "5", "-", f"TCP:127.0.0.1:{port}"], input=data,
                             capture_output=True, timeout=15)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout


@unittest.skipUnless(ACTIVATE, "systemd-socket-activate is missing (Debian package systemd)")
class PassedSockets(Activation):
    def test_tcp_and_udp_forwards_on_passed_sockets(self):
        app = self.start_app("echo.door")
        tcp_port, extra_port, udp_port = free_port(), free_port(), free_port(udp=True)
        own_port = self.reserve_port()
        forwards = [
            {"name": "passed-tcp", "protocol": "tcp", "listen": listen_text("127.0.0.1", tcp_port), "door": app.door},
            {"name": "passed-udp", "protocol": "udp", "listen": listen_text("127.0.0.1", udp_port), "door": app.door},
            {"name": "own", "protocol": "tcp", "listen": listen_text("127.0.0.1", own_port), "door": app.door},
        ]
        # The outer one passes two stream sockets on to the inner one, which adds a datagram
        # socket and execs the daemon: LISTEN_PID is the daemon's, fds 3, 4 and 5.
        wrapper = [ACTIVATE, "-l", f"127.0.0.1:{tcp_port}", "-l", f"127.0.0.1:{extra_port}", "--",
                   ACTIVATE, "-d", "-l", f"127.0.0.1:{udp_port}", "--"]
        d = self.launch(wrapper, forwards)
        self.wait_listening(d, 2)
        # The first client starts the daemon (the activator execs it on activity) and waits in
        # the backlog of the passed socket meanwhile.
        self.assertEqual(self.client(tcp_port, b"first, through the passed socket\n"),
                         b"first, through the passed socket\n")
        self.wait_ready(d)
        log = d.log()
        self.assertRegex(log, rf"tcp 127\.0\.0\.1:{tcp_port}: using the passed socket fd \d")
        self.assertRegex(log, rf"udp 127\.0\.0\.1:{udp_port}: using the passed socket fd \d")
        self.assertRegex(log, rf"passed socket fd \d.*, tcp 127\.0\.0\.1:{extra_port}, fits no \[\[forward\]\]")
        self.assertEqual(self.udp_request(udp_port, b"datagram"), b"datagram")
        out = subprocess.run(["nc", "-u", "-w", "2", "127.0.0.1", str(udp_port)], input=b"nc datagram",
                             capture_output=True, timeout=15)
        self.assertEqual(out.stdout, b"nc datagram")
        self.round_trip(own_port, b"a forward with no passed socket binds its own")
        self.assert_refused(extra_port)
        # Only the daemon's own sockets, the passed ones used, are open: the unused one is closed.
        # The two used (fds 3 and 5: the outer activator's first, the inner one's own) are the
        # daemon's now, close-on-exec like every descriptor it owns.
        for n in (3, 5):
            self.assertTrue(os.readlink(f"/proc/{d.pid}/fd/{n}").startswith("socket:"))
            self.assertTrue(fd_flags(d.pid, n) & O_CLOEXEC, f"passed fd {n} is not close-on-exec")
        # A reload keeps the passed sockets of forwards that stay (no rebind, no gap).
        forwards[2]["max_concurrency"] = 8
        self.reload(d, forwards)
        self.assertEqual(self.client(tcp_port, b"after reload\n"), b"after reload\n")
        self.assertEqual(self.udp_request(udp_port, b"after reload"), b"after reload")
        self.assertNotIn("cannot bind", d.log())

    def test_a_passed_descriptor_that_is_no_socket_is_reported_and_closed(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        forwards = [{"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        # exec keeps the pid, so $$ is the daemon's pid: these variables are meant for it.
        wrapper = ["bash", "-c", 'exec 3</dev/null; LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=stray exec "$@"', "bash"]
        d = self.launch(wrapper, forwards)
        self.wait_ready(d)
        d.wait_log(r"passed socket fd 3 \(stray\), not a socket, fits no")
        self.assertFalse(os.path.exists(f"/proc/{d.pid}/fd/3") and
                         os.readlink(f"/proc/{d.pid}/fd/3") == "/dev/null")
        self.round_trip(port, b"served")

    def test_an_ipv6_only_socket_for_a_star_forward_is_used_with_a_warning(self):
        app = self.start_app("echo.door")
        port = free_port()
        forwards = [{"name": "star", "protocol": "tcp", "listen": f"*:{port}", "door": app.door}]
        # A socket unit with BindIPv6Only=ipv6-only: [::]:PORT that takes no IPv4 client. exec
        # keeps the pid, so the variables are the daemon's.
        wrapper = [sys.executable, "-c", (
            "import os, socket, sys\n"
            "s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)\n"
            "s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('::', {port})); s.listen(16)\n"
            "fd = s.detach()\n"
            "if fd != 3: os.dup2(fd, 3); os.close(fd)\n"
            "os.set_inheritable(3, True)\n"
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
            "os.execv(sys.argv[1], sys.argv[1:])\n")]
        d = self.launch(wrapper, forwards)
        self.wait_ready(d)
        d.wait_log(rf"forward star: passed socket fd 3, tcp \[::\]:{port} \(IPv6 only\) takes IPv6 clients only")
        self.round_trip(port, b"over IPv6", host="::1")
        self.assert_refused(port)  # 127.0.0.1: nothing listens for IPv4

    def test_a_passed_number_that_is_not_open_never_takes_the_daemons_own_files(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        forwards = [{"name": "plain", "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        # LISTEN_FDS=1 names fd 3, which is closed at exec: the first file the daemon opens (its
        # access log) gets number 3, and must not be adopted as a passed socket and closed.
        wrapper = ["bash", "-c", 'exec 3<&-; LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"', "bash"]
        d = self.launch(wrapper, forwards)
        self.wait_ready(d)
        d.wait_log(r"passed descriptor 3 is not open")
        self.round_trip(port, b"logged")
        d.wait_access_log(r"tcp forward=plain client=127\.0\.0\.1:\d+ ")
        self.assertNotIn("LOG ERROR", d.log())

    def test_listen_pid_of_another_process_leaves_the_descriptors_alone(self):
        app = self.start_app("echo.door")
        port = self.reserve_port()
        forwards = [{"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        wrapper = ["bash", "-c", 'exec 3</dev/null; LISTEN_PID=1 LISTEN_FDS=1 exec "$@"', "bash"]
        d = self.launch(wrapper, forwards)
        self.wait_ready(d)
        d.wait_log(r"ignoring LISTEN_FDS=1: LISTEN_PID=1 is not this process")
        # Not taken: still open, and not made CLOEXEC either.
        self.assertEqual(os.readlink(f"/proc/{d.pid}/fd/3"), "/dev/null")
        self.assertFalse(fd_flags(d.pid, 3) & O_CLOEXEC)
        self.round_trip(port, b"served")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to show a privileged port served by a daemon that is not")
    def test_privileged_port_without_root(self):
        app = self.start_app("echo.door")
        port = None
        for candidate in range(700, 1000):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", candidate))
                except OSError:
                    continue
            port = candidate
            break
        if port is None:
            self.skipTest("no free port below 1024 on 127.0.0.1")
        forwards = [{"protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": app.door}]
        # The activator binds as root; the daemon is nobody from its first instruction on.
        wrapper = [ACTIVATE, "-l", f"127.0.0.1:{port}", "--", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                   "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
        d = self.launch(wrapper, forwards, daemon={"access_log": "off", "control_door": "off"})
        self.wait_listening(d, 1)
        self.assertEqual(self.client(port, b"privileged\n"), b"privileged\n")
        self.wait_ready(d)
        self.assertEqual(harness.status_field(d.pid, "Uid")[0], str(NOBODY))
        self.assertEqual(harness.status_field(d.pid, "CapEff")[0], "0000000000000000")


if __name__ == "__main__":
    harness.main()
