#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# `portunus status|reload|stop` against a real daemon with real applications: counts exact after
# a load, the JSON shape, reload refused and applied, a stop that drains, callers of another
# uid refused, and every way of not reaching the daemon put into words.
import inspect
import json
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
from harness import DaemonTest, listen_text  # noqa: E402

# Every portunus run gets this long at most; the suite must never hang on one.
CLI_TIMEOUT = 30
NOBODY = 65534

# ---- the documented shape of `portunus status --json` (portunus(1), STATUS JSON) -------------

COUNTS = ["connections", "connections_open", "requests", "bytes_in", "bytes_out", "timeouts", "door_gone",
          "interrupted", "queue_full", "too_large", "other_errors", "status_400", "status_502", "status_503",
          "status_504", "tls_handshake_failures"]
DOOR_COUNTS = ["in_flight", "peak_in_flight", "queued", "calls", "errors", "reopens", "queue_full"]
NUMBER = (int, float)


def check_shape(test, doc):
    """Fails unless `doc` has every documented key, with its documented type."""

    def need(obj, key, types, where):
        test.assertIn(key, obj, f"{where}: no {key!r}")
        value = obj[key]
        # bool is an int in Python; only a key documented as boolean may hold one.
        ok = isinstance(value, types) and (types is bool or not isinstance(value, bool))
        test.assertTrue(ok, f"{where}.{key} = {value!r}, expected {types}")
        return value

    test.assertEqual(need(doc, "protocol_version", int, "status"), 1)
    need(doc, "version", str, "status")
    test.assertGreater(need(doc, "pid", int, "status"), 0)
    for key in ("uptime_seconds", "start_time_unix", "config_loaded_unix"):
        test.assertGreaterEqual(need(doc, key, NUMBER, "status"), 0)
    need(doc, "config_file", str, "status")
    need(doc, "draining", bool, "status")
    for i, f in enumerate(need(doc, "forwards", list, "status")):
        where = f"forwards[{i}]"
        test.assertIsInstance(f, dict, where)
        need(f, "name", str, where)
        test.assertIn(need(f, "protocol", str, where), ("tcp", "udp", "http"))
        need(f, "listen", str, where)
        counts = need(f, "counts", dict, where)
        for key in COUNTS:
            test.assertGreaterEqual(need(counts, key, int, where + ".counts"), 0)
        h = need(counts, "call_duration", dict, where + ".counts")
        bounds = need(h, "bounds", list, where + ".call_duration")
        buckets = need(h, "buckets", list, where + ".call_duration")
        test.assertTrue(all(isinstance(b, NUMBER) for b in bounds) and bounds == sorted(bounds), bounds)
        test.assertEqual(len(buckets), len(bounds) + 1)
        test.assertTrue(all(isinstance(b, int) and b >= 0 for b in buckets), buckets)
        test.assertEqual(sum(buckets), need(h, "count", int, where + ".call_duration"))
        need(h, "sum_seconds", NUMBER, where + ".call_duration")
        for k, d in enumerate(need(f, "doors", list, where)):
            dwhere = f"{where}.doors[{k}]"
            need(d, "path", str, dwhere)
            test.assertIn(need(d, "state", str, dwhere), ("open", "unopened", "missing", "failing"))
            test.assertGreaterEqual(need(d, "server_pid", int, dwhere), 0)
            for key in DOOR_COUNTS:
                test.assertGreaterEqual(need(d, key, int, dwhere), 0)
    for i, a in enumerate(need(doc, "apps", list, "status")):
        where = f"apps[{i}]"
        for key in ("name", "door", "last_exit"):
            need(a, key, str, where)
        test.assertIn(need(a, "state", str, where),
                      ("stopped", "starting", "serving", "backing_off", "stopping", "idle"))
        for key in ("pid", "starts", "restarts"):
            test.assertGreaterEqual(need(a, key, int, where), 0)


class ControlTest(DaemonTest):
    def daemon_defaults(self):
        settings = super().daemon_defaults()
        # A directory the daemon has to make: the door's own is created if missing.
        settings["control_door"] = self.path("run/control.door")
        return settings

    @property
    def door(self):
        return self.path("run/control.door")

    def portunus(self, *args, door=None, uid=None, stdin=None, timeout=CLI_TIMEOUT, env=None):
        """Runs portunus (as `uid` if given); returns (exit status, stdout, stderr)."""
        argv = [harness.program("portunus"), *args]
        if door is not False:
            argv += ["--control", door or self.door]
        if uid is not None:
            argv = ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups", *argv]
        p = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=env)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def status(self):
        rc, out, err = self.portunus("status", "--json")
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, out)
        doc = json.loads(out)
        check_shape(self, doc)
        return doc

    def forward(self, doc, name):
        for f in doc["forwards"]:
            if f["name"] == name:
                return f
        self.fail(f"no forward {name} in {[f['name'] for f in doc['forwards']]}")

    def wait_idle(self, names, timeout=5.0):
        """The status once no connection of these forwards is open and no call is in flight."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.status()
            busy = [f["name"] for f in doc["forwards"] if f["name"] in names and
                    (f["counts"]["connections_open"] or any(d["in_flight"] or d["queued"] for d in f["doors"]))]
            if not busy:
                return doc
            if time.monotonic() >= deadline:
                self.fail(f"still busy after {timeout} s: {busy}")
            time.sleep(0.02)

    def tcp(self, name, port, door, **extra):
        return {"name": name, "protocol": "tcp", "listen": listen_text("127.0.0.1", port), "door": door, **extra}


class Status(ControlTest):
    def test_counts_are_exact_after_a_scripted_load(self):
        app = self.start_app("echo.door", "--prefix", "re:")
        web = self.start_app("web.door", program_name="hello_web")
        tport, hport = self.reserve_port(), self.reserve_port()
        uport = self.reserve_port(udp=True)
        d = self.start_daemon([self.tcp("echo-tcp", tport, app.door),
                               {"name": "echo-udp", "protocol": "udp", "listen": listen_text("127.0.0.1", uport),
                                "door": app.door},
                               {"name": "web", "protocol": "http", "listen": listen_text("127.0.0.1", hport),
                                "door": web.door}])
        before = self.wait_idle({"echo-tcp", "web"})

        # tcp: 3 connections of 4 exchanges each; every exchange is one call.
        tcp_in = tcp_out = 0
        for c in range(3):
            s = self.connect(tport)
            for i in range(4):
                data = b"c%d-x%d-" % (c, i) + b"y" * (10 * i)
                self.exchange(s, data, b"re:" + data)
                tcp_in += len(data)
                tcp_out += len(data) + 3
            s.close()
        # udp: 5 datagrams.
        udp_in = udp_out = 0
        for i in range(5):
            data = b"datagram %d" % i
            self.assertEqual(self.udp_request(uport, data), b"re:" + data)
            udp_in += len(data)
            udp_out += len(data) + 3
        # http: 2 requests, each on a connection of its own.
        http_in = http_out = 0
        for i in range(2):
            request = b"GET /%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % i
            with socket.create_connection(("127.0.0.1", hport), timeout=3) as s:
                s.sendall(request)
                s.settimeout(3)
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply)
            http_in += len(request)
            http_out += len(reply)

        after = self.wait_idle({"echo-tcp", "web"})
        self.assertEqual(after["pid"], d.pid)
        self.assertFalse(after["draining"])
        self.assertEqual(after["config_file"], d.config_path)
        self.assertEqual([f["name"] for f in after["forwards"]], ["echo-tcp", "echo-udp", "web"])

        def delta(name, key):
            return self.forward(after, name)["counts"][key] - self.forward(before, name)["counts"][key]

        def door_delta(name, key):
            return self.forward(after, name)["doors"][0][key] - self.forward(before, name)["doors"][0][key]

        expected = {
            "echo-tcp": {"connections": 3, "requests": 12, "bytes_in": tcp_in, "bytes_out": tcp_out},
            "echo-udp": {"connections": 0, "requests": 5, "bytes_in": udp_in, "bytes_out": udp_out},
            "web": {"connections": 2, "requests": 2, "bytes_in": http_in, "bytes_out": http_out},
        }
        for name, counts in expected.items():
            f = self.forward(after, name)
            self.assertEqual({k: delta(name, k) for k in counts}, counts, name)
            self.assertEqual(f["counts"]["connections_open"], 0, name)
            self.assertEqual(sum(f["counts"][k] for k in COUNTS[5:]), 0, f"{name} failed: {f['counts']}")
            self.assertEqual(door_delta(name, "calls"), counts["requests"], name)
            self.assertEqual(f["counts"]["call_duration"]["count"], f["doors"][0]["calls"], name)
            self.assertEqual(len(f["doors"]), 1)
            door = f["doors"][0]
            self.assertEqual((door["state"], door["errors"], door["in_flight"]), ("open", 0, 0), name)
            self.assertGreaterEqual(door["peak_in_flight"], 1)
        self.assertEqual(self.forward(after, "echo-tcp")["doors"][0]["server_pid"], app.pid)
        self.assertEqual(self.forward(after, "echo-udp")["doors"][0]["server_pid"], app.pid)
        self.assertEqual(self.forward(after, "web")["doors"][0]["server_pid"], web.pid)
        # The forwards share one application: its door is one door, seen from two gates.
        self.assertEqual(self.forward(after, "echo-tcp")["doors"][0]["path"], app.door)

        # The same numbers in the table, one row per forward and its door under it.
        rc, text, err = self.portunus("status")
        self.assertEqual(rc, 0, err)
        lines = text.splitlines()
        self.assertRegex(lines[0], rf"^portunusd \S+  pid {d.pid}  up \d\d:\d\d:\d\d  serving$")
        self.assertRegex(lines[1], rf"^config {re.escape(d.config_path)}  loaded \d{{4}}-\d\d-\d\d "
                                   r"\d\d:\d\d:\d\d UTC \(\d+s ago\)$")
        self.assertEqual(lines[2], "")
        self.assertEqual(lines[3].split(), ["forward", "proto", "listen", "conns", "open/total", "requests", "in",
                                            "flight/peak", "queued", "errors", "bytes", "in/out"])
        rows = {line.split()[0]: line for line in lines[4:] if not line.startswith(" ")}
        for name, proto, port in (("echo-tcp", "tcp", tport), ("echo-udp", "udp", uport), ("web", "http", hport)):
            f = self.forward(after, name)
            c = f["counts"]
            conns = "-" if proto == "udp" else f"0/{c['connections']}"
            peak = f["doors"][0]["peak_in_flight"]
            self.assertEqual(rows[name].split(), [name, proto, f"127.0.0.1:{port}", conns, str(c["requests"]),
                                                  f"0/{peak}", "0", "0", f"{c['bytes_in']}/{c['bytes_out']}"])
            # Columns line up: every row's fields start where the header's do.
            self.assertEqual(rows[name].index(f"127.0.0.1:{port}"), lines[3].index("listen"))
        doors = [line.split() for line in lines if line.startswith("  door  ")]
        self.assertIn(["door", app.door, "open", "pid", str(app.pid), "calls",
                       str(self.forward(after, "echo-tcp")["doors"][0]["calls"]), "errors", "0", "reopens", "0"], doors)
        self.assertIn(["door", web.door, "open", "pid", str(web.pid), "calls",
                       str(self.forward(after, "web")["doors"][0]["calls"]), "errors", "0", "reopens", "0"], doors)
        self.assertNotIn("failures:", text)

    def test_failures_by_kind_and_doors_not_opened_yet(self):
        app = self.start_app("app.door")
        port, quiet = self.reserve_port(), self.reserve_port()
        self.start_daemon([self.tcp("flaky", port, app.door, call_timeout="300ms"),
                           self.tcp("quiet", quiet, self.path("never.door"))])
        s = self.connect(port)
        s.sendall(b"sleep:1000:late")
        self.wait_closed(s, timeout=3.0)
        doc = self.wait_idle({"flaky"})
        flaky = self.forward(doc, "flaky")
        self.assertEqual(flaky["counts"]["timeouts"], 1)
        self.assertEqual(flaky["doors"][0]["errors"], 1)
        # Nothing called it, and nothing is there: either is true of it.
        quiet_state = self.forward(doc, "quiet")["doors"][0]["state"]
        self.assertIn(quiet_state, ("unopened", "missing"))
        rc, text, err = self.portunus("status")
        self.assertEqual(rc, 0, err)
        self.assertIn("\n  failures: timeouts 1\n", text)
        self.assertRegex(text, rf"\n  door  {re.escape(self.path('never.door'))} +{quiet_state} +pid - +calls 0 ")

    def test_json_output_has_the_documented_shape(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        self.start_daemon([self.tcp("one", port, app.door)])
        self.round_trip(port, b"x")
        doc = self.status()
        # Nothing undocumented either: a new field needs its line in portunus(1) first.
        self.assertEqual(set(doc), {"protocol_version", "version", "pid", "uptime_seconds", "start_time_unix",
                                    "config_file", "config_loaded_unix", "draining", "forwards", "apps"})
        f = doc["forwards"][0]
        self.assertEqual(set(f), {"name", "protocol", "listen", "counts", "doors"})
        self.assertEqual(set(f["counts"]), set(COUNTS) | {"call_duration"})
        self.assertEqual(set(f["counts"]["call_duration"]), {"bounds", "buckets", "count", "sum_seconds"})
        self.assertEqual(set(f["doors"][0]), {"path", "state", "server_pid", *DOOR_COUNTS})

    def test_supervised_apps_have_rows_of_their_own(self):
        door = self.path("sup.door")
        port = self.reserve_port()
        self.start_daemon([self.tcp("f", port, door)],
                          apps=[{"name": "sup", "door": door, "command": [harness.program("test_app"), door]}])
        deadline = time.monotonic() + 5
        while (app := self.status()["apps"][0])["state"] != "serving":
            if time.monotonic() >= deadline:
                self.fail(f"the app is not serving within 5 s: {app}")
            time.sleep(0.02)
        self.round_trip(port, b"through the app")
        self.assertEqual({k: app[k] for k in ("name", "door", "starts", "restarts", "last_exit")},
                         {"name": "sup", "door": door, "starts": 1, "restarts": 0, "last_exit": ""})
        self.assertGreater(app["pid"], 0)
        rc, text, err = self.portunus("status")
        self.assertEqual(rc, 0, err)
        lines = text.splitlines()
        self.assertEqual(lines[-2].split(), ["app", "state", "pid", "starts", "restarts", "last", "exit", "door"])
        self.assertEqual(lines[-1].split(), ["sup", "serving", str(app["pid"]), "1", "0", "-", door])
        self.assertEqual(lines[-3], "")

    def test_calls_leave_no_descriptor_or_thread_behind(self):
        app = self.start_app("app.door")
        d = self.start_daemon([self.tcp("one", self.reserve_port(), app.door)])
        for _ in range(5):
            self.status()

        def settled_fd_count():
            # The last caller's connection closes a moment after the CLI exits (below): count
            # once the figure has held still for 200 ms, within 3 s.
            last, since, deadline = harness.fd_count(d.pid), time.monotonic(), time.monotonic() + 3
            while time.monotonic() - since < 0.2 and time.monotonic() < deadline:
                time.sleep(0.02)
                now = harness.fd_count(d.pid)
                if now != last:
                    last, since = now, time.monotonic()
            return last

        fds, threads = settled_fd_count(), harness.thread_count(d.pid)
        for _ in range(40):
            self.portunus("status")
            self.portunus("call", self.door, door=False, stdin=b"portunus-control/9 status\n")
        # The last caller's connection is closed by the daemon once its door thread sees the
        # end of it, a moment after the CLI exits: wait that moment, boundedly.
        deadline = time.monotonic() + 3
        while harness.fd_count(d.pid) != fds and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(harness.fd_count(d.pid), fds)
        # The door's pool is capped; a caller at a time needs one thread, however many calls.
        self.assertLessEqual(harness.thread_count(d.pid), threads + 1)


class Reload(ControlTest):
    def test_a_file_with_errors_is_refused_with_every_error_and_the_old_one_serves(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_daemon([self.tcp("keep", port, app.door)])
        self.write_config(harness.toml_config(self.daemon_defaults(), [
            self.tcp("keep", port, app.door, max_concurrency=0),
            {"name": "bad", "protocol": "tcp", "listen": "127.0.0.1", "door": app.door, "colour": "red"},
        ]), os.path.basename(d.config_path))
        rc, out, err = self.portunus("reload")
        self.assertEqual(rc, 96, out + err)
        self.assertEqual(out, "")
        errors = [line for line in err.splitlines() if line.startswith(d.config_path + ":")]
        self.assertEqual(len(errors), 3, err)
        for e in errors:
            self.assertRegex(e, rf"^{re.escape(d.config_path)}:\d+:\d+: ")
        self.assertIn("max_concurrency", err)
        self.assertIn("colour", err)
        self.assertIn("no port", err)
        self.assertIn("portunus: reload refused: 3 error(s); the running configuration is kept", err)
        self.round_trip(port, b"still served")
        self.assertEqual([f["name"] for f in self.status()["forwards"]], ["keep"])

    def test_a_good_file_reports_what_it_added_changed_and_removed(self):
        app = self.start_app("app.door")
        ports = [self.reserve_port() for _ in range(4)]
        d = self.start_daemon([self.tcp("same", ports[0], app.door), self.tcp("grows", ports[1], app.door),
                               self.tcp("goes", ports[2], app.door)])
        loaded = self.status()["config_loaded_unix"]
        time.sleep(0.05)
        self.write_config(harness.toml_config(self.daemon_defaults(), [
            self.tcp("same", ports[0], app.door), self.tcp("grows", ports[1], app.door, max_concurrency=7),
            self.tcp("comes", ports[3], app.door)]), os.path.basename(d.config_path))
        rc, out, err = self.portunus("reload")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "added: comes\nchanged: grows\nremoved: goes\n")
        self.round_trip(ports[3], b"new forward")
        self.assert_refused(ports[2])
        doc = self.status()
        self.assertEqual([f["name"] for f in doc["forwards"]], ["same", "grows", "comes"])
        self.assertGreater(doc["config_loaded_unix"], loaded)

        rc, out, err = self.portunus("reload")
        self.assertEqual((rc, out), (0, "added: (none)\nchanged: (none)\nremoved: (none)\n"), err)


class Stop(ControlTest):
    def test_stop_drains_a_call_in_flight_and_returns_once_the_daemon_exited(self):
        calls = self.path("calls.log")
        app = self.start_app("slow.door", "--log", calls)
        port = self.reserve_port()
        d = self.start_daemon([self.tcp("slow", port, app.door)])
        s = self.connect(port)
        s.sendall(b"sleep:1500:finished")
        self.wait_calls(calls, 1)

        started = time.monotonic()
        cli = subprocess.Popen([harness.program("portunus"), "stop", "--timeout", "10s", "--control", self.door],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        d.wait_log(r"stopping; waiting up to 10000 ms")
        # While it drains the daemon still answers, and says so.
        doc = self.status()
        self.assertTrue(doc["draining"])
        self.assertEqual(self.forward(doc, "slow")["doors"][0]["in_flight"], 1)
        rc, text, _ = self.portunus("status")
        self.assertRegex(text.splitlines()[0], r"  draining$")
        self.assertEqual(self.recv_exact(s, len(b"finished")), b"finished")

        out, err = cli.communicate(timeout=CLI_TIMEOUT)
        elapsed = time.monotonic() - started
        # The daemon has exited (not yet reaped: it is this runner's child) when portunus returns.
        self.assertIsNotNone(d.popen.poll(), "portunus returned while the daemon was still running")
        self.assertEqual(cli.returncode, 0, err)
        self.assertEqual(out.decode(), f"stopping pid {d.pid}\npid {d.pid} exited\n")
        self.assertEqual(d.popen.returncode, 0, d.tail())
        self.assertGreater(elapsed, 1.0)
        self.assertLess(elapsed, 8.0)
        self.assertIn("control door: stop asked by uid 0", d.log())
        self.assertFalse(os.path.exists(self.door), "the control door outlived the daemon")

    def test_timeout_cuts_the_drain_short(self):
        calls = self.path("calls.log")
        app = self.start_app("slow.door", "--log", calls)
        port = self.reserve_port()
        d = self.start_daemon([self.tcp("slow", port, app.door)], {"drain_timeout": "30s"})
        s = self.connect(port)
        s.sendall(b"sleep:5000:never")
        self.wait_calls(calls, 1)
        started = time.monotonic()
        rc, out, err = self.portunus("stop", "--timeout", "300ms")
        elapsed = time.monotonic() - started
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, f"stopping pid {d.pid}\npid {d.pid} exited\n")
        self.assertLess(elapsed, 3.0)
        self.assertEqual(d.wait(1.0), 0, d.tail())
        self.assertIn("waiting up to 300 ms", d.log())


@unittest.skipUnless(os.geteuid() == 0, "needs root: only root can run portunus as another user")
class Credentials(ControlTest):
    def setUp(self):
        super().setUp()
        if not shutil.which("setpriv"):
            self.skipTest("setpriv (util-linux) is needed to run portunus as another user")

    def test_a_caller_of_another_uid_is_refused_by_the_file_and_by_the_daemon(self):
        app = self.start_app("app.door")
        d = self.start_daemon([self.tcp("one", self.reserve_port(), app.door)])
        self.assertEqual(os.stat(self.door).st_mode & 0o7777, 0o600)
        self.assertEqual(os.stat(os.path.dirname(self.door)).st_mode & 0o7777, 0o755)
        refusal = f"control door {self.door} refused: permission denied: only root and uid 0 may use this control door"

        # The file's mode stops the caller before the daemon hears of it.
        rc, out, err = self.portunus("status", uid=NOBODY)
        self.assertEqual((rc, out), (1, ""), err)
        self.assertEqual(err, f"portunus: {refusal}\n")
        self.assertEqual(d.count(r"control door: refused"), 0)

        # With the file opened to all, the daemon's own check refuses, and logs who it was.
        os.chmod(self.door, 0o666)
        for command in ("status", "reload", "stop"):
            rc, out, err = self.portunus(command, uid=NOBODY)
            self.assertEqual((rc, out, err), (1, "", f"portunus: {refusal}\n"), command)
        d.wait_log(rf"control door: refused uid {NOBODY} \(pid \d+\): only root and uid 0 may use it", count=3)
        self.assertTrue(d.alive())
        self.assertEqual(self.portunus("status")[0], 0)

    def test_the_daemons_own_user_may_steer_it(self):
        app = self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_daemon([self.tcp("one", port, app.door)], {"user": "nobody", "group": "nogroup",
                                                                   "access_log": "off"})
        st = os.stat(self.door)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777), (NOBODY, NOBODY, 0o600))
        rc, out, err = self.portunus("status", "--json", uid=NOBODY)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["pid"], d.pid)
        # Root too, though the daemon no longer runs as root.
        self.assertEqual(self.status()["pid"], d.pid)
        rc, out, err = self.portunus("status", uid=1)
        self.assertEqual(rc, 1)
        self.assertIn(f"only root and uid {NOBODY} may use this control door", err)
        rc, out, err = self.portunus("stop", uid=NOBODY)
        self.assertEqual(rc, 0, err)
        self.assertEqual(d.wait(1.0), 0, d.tail())


class Reaching(ControlTest):
    def test_a_request_of_another_version_gets_a_clear_error(self):
        app = self.start_app("app.door")
        self.start_daemon([self.tcp("one", self.reserve_port(), app.door)])
        cases = [
            (b"portunus-control/2 status\n",
             "portunus-control/1 error unsupported protocol version \"2\"; this daemon speaks portunus-control/1\n"),
            (b"GET / HTTP/1.1\r\n\r\n",
             "portunus-control/1 error not a control request: it must start with portunus-control/1\n"),
            (b"portunus-control/1 stop now\n",
             "portunus-control/1 error stop: drain timeout \"now\" is not a number of milliseconds from 0 to "
             "86400000\n"),
            (b"portunus-control/1 " + b"x" * 5000 + b"\n",
             "portunus-control/1 error request of 5020 bytes; at most 4096 are read\n"),
        ]
        for request, reply in cases:
            rc, out, err = self.portunus("call", self.door, door=False, stdin=request)
            self.assertEqual((rc, out), (0, reply), err)

    def test_a_reply_of_another_version_or_not_a_reply_is_named(self):
        # Stand-ins for a daemon: one that speaks version 2, one that only echoes.
        v2 = self.start_app("v2.door", "--prefix", "portunus-control/2 ok\n")
        echo = self.start_app("echo.door")
        rc, out, err = self.portunus("status", door=v2.door)
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, f"portunus: control door {v2.door} answered in protocol portunus-control/2, but this "
                              "portunus speaks portunus-control/1: use the portunus that came with the running "
                              "portunusd (it said: ok)\n")
        rc, out, err = self.portunus("reload", door=echo.door)
        self.assertEqual(rc, 1)
        self.assertEqual(err, f"portunus: {echo.door} is not a portunusd control door: the control reply has an "
                              "unknown status \"reload\"\n")

    def test_missing_stale_not_a_door_and_usage(self):
        rc, out, err = self.portunus("status")
        self.assertEqual(rc, 1)
        self.assertEqual(err, f"portunus: no control door at {self.door}: the path is missing (is portunusd "
                              "running, with control_door set to it?)\n")
        env = dict(os.environ, PORTUNUS_CONTROL_DOOR=self.path("env.door"))
        rc, out, err = self.portunus("status", door=False, env=env)
        self.assertIn(f"no control door at {self.path('env.door')}:", err)

        plain = self.path("plain")
        open(plain, "w").close()
        rc, out, err = self.portunus("stop", door=plain)
        self.assertEqual((rc, err), (1, f"portunus: {plain} is not a door but a regular file; is control_door "
                                        "set to this path?\n"))

        app = self.start_app("app.door")
        d = self.start_daemon([self.tcp("one", self.reserve_port(), app.door)])
        d.check_exit = False
        d.kill()  # no chance to remove its door
        rc, out, err = self.portunus("status")
        self.assertEqual((rc, err), (1, f"portunus: nothing serves the control door {self.door}: it is stale "
                                        "(portunusd is not running)\n"))

        for args in (["status", "--timeout", "1s"], ["reload", "--json"], ["stop", "--timeout", "soon"],
                     ["stop", "--control"], ["status", "extra"]):
            rc, out, err = self.portunus(*args, door=False)
            self.assertEqual(rc, 64, args)
            self.assertTrue(err.startswith("portunus: "), err)


def main():
    # The harness learns --portunus in time; until it does, take it off the command line here.
    if '"--portunus"' not in inspect.getsource(harness.main) and "--portunus" in sys.argv:
        i = sys.argv.index("--portunus")
        harness.PROGRAMS["portunus"] = os.path.abspath(sys.argv[i + 1])
        del sys.argv[i:i + 2]
    harness.main()


if __name__ == "__main__":
    main()
