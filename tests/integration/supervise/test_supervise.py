# SPDX-License-Identifier: MPL-2.0
# [[app]]: the daemon starts applications itself, on demand or always, as another user, restarts
# them after crashes with a growing delay, stops them when idle and replaces them under load
# without a failed request.

import os
import re
import shutil
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))

import harness  # noqa: E402
from harness import DaemonTest, program  # noqa: E402


def pids_serving(door):
    """Pids of processes whose command line names `door` (the test app takes it as argv[1])."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] == door.encode():
            found.append(int(entry))
    return found


class Supervise(DaemonTest):
    def app(self, name="app", **settings):
        door = self.path(f"{name}.door")
        a = {"name": name, "door": door, "command": [program("test_app"), door, "--tag", name]}
        a.update(settings)
        return a

    def forward(self, app, name="f"):
        port = self.reserve_port()
        return {"name": name, "protocol": "tcp", "listen": f"127.0.0.1:{port}", "door": app["door"]}, port

    def ask(self, port, request=b"who", timeout=5.0):
        with self.connect(port, timeout=timeout) as s:
            s.sendall(request)
            s.settimeout(timeout)
            return s.recv(65536)

    def wait_for(self, what, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        self.fail(f"not within {timeout} s: {what}")

    def test_on_demand_starts_on_the_first_call_and_stops_when_idle(self):
        app = self.app(start="on_demand", idle_stop="2s")
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        time.sleep(0.3)
        self.assertEqual(pids_serving(app["door"]), [], "an on-demand app must not run before its first call")
        start = time.monotonic()
        self.assertEqual(self.ask(port), b"app")
        cold = (time.monotonic() - start) * 1000
        print(f"cold start: first request answered in {cold:.1f} ms")
        self.assertEqual(len(pids_serving(app["door"])), 1)
        # Calls keep it alive; then, after idle_stop without one, it is gone.
        for _ in range(3):
            self.assertEqual(self.ask(port), b"app")
            time.sleep(0.5)
        self.wait_for("the idle app stops", lambda: pids_serving(app["door"]) == [], timeout=6)
        d.wait_log(r"app app: no call for 2 s; stopping pid")
        self.assertEqual(self.ask(port), b"app")
        self.assertEqual(len(pids_serving(app["door"])), 1)

    def test_always_starts_with_the_daemon_and_restarts_after_a_crash(self):
        app = self.app()
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        d.wait_log(r"app app: pid \d+ serves")
        first = pids_serving(app["door"])
        self.assertEqual(len(first), 1)
        self.assertEqual(self.ask(port), b"app")
        os.kill(first[0], signal.SIGKILL)
        d.wait_log(r"app app: pid \d+ exited unasked \(signal 9")
        self.wait_for("a new process serves", lambda: d.count(r"app app: pid \d+ serves") >= 2)
        second = pids_serving(app["door"])
        self.assertEqual(len(second), 1)
        self.assertNotEqual(second, first)
        self.assertEqual(self.ask(port), b"app")

    def test_output_goes_to_the_daemon_log_with_name_and_pid(self):
        script = self.path("talk.sh")
        with open(script, "w") as f:
            f.write(f"#!/bin/sh\necho hello from stdout\necho hello from stderr >&2\nexec {program('test_app')} \"$1\"\n")
        os.chmod(script, 0o755)
        app = self.app(command=[script, self.path("app.door")])
        fwd, _ = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        d.wait_log(r"app app\[\d+\]: hello from stdout")
        d.wait_log(r"app app\[\d+\]: hello from stderr")

    def test_an_app_inherits_no_descriptor_and_no_blocked_or_ignored_signal(self):
        # A shell reads the signal state it was started with (Python would ignore SIGPIPE and
        # SIGXFSZ itself), then Python lists the descriptors it got, then the app takes over.
        inspect = self.path("inspect.py")
        with open(inspect, "w") as f:
            f.write(f"""import os, sys
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
print("fds", fds, "sid", os.getsid(0) == os.getpid(), flush=True)
os.execv({program("test_app")!r}, [{program("test_app")!r}, sys.argv[1], "--tag", "app"])
""")
        script = self.path("inspect.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "echo signals $(grep -E '^Sig(Blk|Ign)' /proc/$$/status | tr -s ' \\t\\n' ' ')\n"
                    f"exec {sys.executable} {inspect} \"$1\"\n")
        os.chmod(script, 0o755)
        app = self.app(command=[script, self.path("app.door")])
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        d.wait_log(r"app app\[\d+\]: fds ")
        signals = re.search(r"signals SigBlk: (\w+) SigIgn: (\w+)", d.log())
        self.assertIsNotNone(signals, d.tail())
        self.assertEqual(int(signals.group(1), 16), 0, "blocked signals")
        self.assertEqual(int(signals.group(2), 16), 0, "ignored signals")
        found = re.search(r"fds \[(.*?)\] sid (\w+)", d.log())
        fds = [int(x) for x in found.group(1).split(",")]
        # 0, 1 and 2, and the one listdir itself holds: nothing of the daemon's.
        self.assertEqual(fds[:3], [0, 1, 2])
        self.assertLessEqual(len(fds), 4, f"inherited descriptors: {fds}")
        self.assertEqual(found.group(2), "True", "the app leads a session of its own")
        self.wait_for("the app answers", lambda: self._answers(port))

    def test_crash_loop_backs_off_and_a_reload_fixes_it(self):
        broken = self.app(command=["/bin/false"], restart_delay="100ms", restart_max_delay="800ms")
        fwd, port = self.forward(broken)
        d = self.start_daemon([fwd], apps=[broken])
        # 100, 200, 400, 800, 800 ms: the delay doubles up to the maximum and never gives up.
        d.wait_log(r"restarting in 800 ms", count=2, timeout=10)
        delays = re.findall(r"exited unasked \(exit 1\) after \d+ ms; restarting in (\d+) ms", d.log())
        self.assertEqual([int(x) for x in delays[:5]], [100, 200, 400, 800, 800])
        fixed = self.app(restart_delay="100ms", restart_max_delay="800ms")
        self.reload(d, [fwd], apps=[fixed])
        self.wait_for("the fixed app answers", lambda: self._answers(port), timeout=8)
        self.assertTrue(d.alive())

    def _answers(self, port):
        try:
            return self.ask(port, timeout=1) == b"app"
        except OSError:
            return False

    def test_runs_as_its_user_in_its_directory_with_its_environment(self):
        if os.geteuid() != 0:
            self.skipTest("switching users needs root")
        import pwd
        nobody = pwd.getpwnam("nobody")
        work = self.path("work")
        os.mkdir(work)
        # The app makes its door itself, so its directory must be one it may write in.
        doors = self.path("nobody-doors")
        os.mkdir(doors, 0o755)
        os.chown(doors, nobody.pw_uid, nobody.pw_gid)
        door = os.path.join(doors, "app.door")
        app = self.app(user="nobody", working_directory=work, environment={"PORTUNUS_TEST_ENV": "42"},
                       door=door, command=[program("test_app"), door, "--tag", "app"])
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app], daemon={"allow_insecure_door_dir": True})
        try:
            self.wait_for("the app answers", lambda: self._answers(port))
        except AssertionError:
            self.fail(f"the app does not answer; log:\n{d.tail()}")
        reply = self.ask(port, b"whoami").decode()
        self.assertIn(f"uid={nobody.pw_uid} gid={nobody.pw_gid}", reply)
        self.assertIn(f"cwd={work}", reply)
        self.assertIn("env=42", reply)

    def test_a_daemon_that_drops_root_keeps_only_the_right_to_switch_users(self):
        if os.geteuid() != 0:
            self.skipTest("dropping root needs root")
        import pwd
        nobody = pwd.getpwnam("nobody")
        doors = self.path("nobody-doors")
        os.mkdir(doors, 0o755)
        os.chown(doors, nobody.pw_uid, nobody.pw_gid)
        door = os.path.join(doors, "app.door")
        app = self.app(user="nobody", door=door, command=[program("test_app"), door])
        fwd, _ = self.forward(app)
        d = self.start_daemon([fwd], apps=[app], daemon={"user": "daemon", "allow_insecure_door_dir": True})
        d.wait_log(r"app app: pid \d+ serves")
        child = pids_serving(door)
        self.assertEqual(len(child), 1)
        self.assertEqual(harness.status_field(child[0], "Uid")[0], str(nobody.pw_uid))
        # The app starts with no capability at all.
        self.assertEqual(int(harness.status_field(child[0], "CapEff")[0], 16), 0)
        self.assertEqual(int(harness.status_field(child[0], "CapPrm")[0], 16), 0)
        # The daemon, now user daemon, holds CAP_KILL (5), CAP_SETGID (6) and CAP_SETUID (7) and
        # nothing else.
        daemon = pwd.getpwnam("daemon")
        self.assertEqual(harness.status_field(d.pid, "Uid")[0], str(daemon.pw_uid))
        self.assertEqual(int(harness.status_field(d.pid, "CapEff")[0], 16), (1 << 5) | (1 << 6) | (1 << 7))
        self.assertEqual(int(harness.status_field(d.pid, "CapPrm")[0], 16), (1 << 5) | (1 << 6) | (1 << 7))
        # Which it needs to stop the app when it stops itself.
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(10), 0)
        self.wait_for("the app is gone", lambda: pids_serving(door) == [], timeout=5)

    def test_a_daemon_whose_apps_are_its_own_user_keeps_no_capability(self):
        if os.geteuid() != 0:
            self.skipTest("dropping root needs root")
        app = self.app()
        fwd, _ = self.forward(app)
        d = self.start_daemon([fwd], apps=[app], daemon={"user": "nobody", "allow_insecure_door_dir": True})
        d.wait_log(r"app app: (pid \d+ serves|pid \d+ exited)")
        self.assertEqual(int(harness.status_field(d.pid, "CapEff")[0], 16), 0)
        self.assertEqual(int(harness.status_field(d.pid, "CapPrm")[0], 16), 0)

    def test_recycling_by_max_calls_under_load_fails_no_request(self):
        app = self.app(max_calls=200)
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("the app answers", lambda: self._answers(port))
        failures, done = self._load(port, seconds=6)
        self.assertGreaterEqual(d.count(r"replacing pid \d+ \(max_calls reached\)"), 1, d.tail())
        self.assertEqual(failures, [], f"{len(failures)} of {done} requests failed")
        print(f"recycling: {done} requests, {d.count('replacing pid')} replacement(s), no failure")

    def test_recycling_by_max_memory_replaces_a_process_that_grew(self):
        # Under the sanitizers a process starts far larger (shadow memory): the bound is set
        # well above that, and the growth past it.
        limit, grow = (64, 80) if not harness.SANITIZED else (1024, 1100)
        app = self.app(max_memory=f"{limit}M")
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("the app answers", lambda: self._answers(port))
        first = pids_serving(app["door"])
        self.assertEqual(self.ask(port, f"grow:{grow}".encode()), b"grown")
        d.wait_log(r"replacing pid \d+ \(max_memory exceeded\)", timeout=5)
        self.wait_for("the grown process exits", lambda: first[0] not in pids_serving(app["door"]))
        self.assertEqual(self.ask(port), b"app")
        self.assertEqual(len(pids_serving(app["door"])), 1)

    def test_a_changed_executable_is_replaced_under_load(self):
        binary = self.path("app-v1")
        shutil.copy(program("test_app"), binary)
        app = self.app(command=[binary, self.path("app.door"), "--tag", "app"], upgrade_on_change=True)
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("the app answers", lambda: self._answers(port))
        first = pids_serving(app["door"])

        def upgrade():
            time.sleep(1.5)
            # As a package manager does: a new file renamed over the old one.
            shutil.copy(program("test_app"), binary + ".new")
            os.rename(binary + ".new", binary)

        t = threading.Thread(target=upgrade)
        t.start()
        failures, done = self._load(port, seconds=5)
        t.join()
        d.wait_log(r"replacing pid \d+ \(executable changed\)")
        self.wait_for("the old process exits", lambda: first[0] not in pids_serving(app["door"]))
        self.assertEqual(failures, [], f"{len(failures)} of {done} requests failed")

    def test_portunus_restart_replaces_an_app_under_load_without_a_failure(self):
        app = self.app()
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("the app answers", lambda: self._answers(port))
        first = pids_serving(app["door"])
        control = ["--control", self.path("control.door")]
        result = {}

        def restart():
            time.sleep(1.0)
            import subprocess
            result["out"] = subprocess.run([program("portunus"), "restart", "app", *control], capture_output=True,
                                           text=True, timeout=20)

        t = threading.Thread(target=restart)
        t.start()
        failures, done = self._load(port, seconds=4)
        t.join()
        self.assertEqual(result["out"].returncode, 0, result["out"].stderr)
        self.assertEqual(result["out"].stdout, "restarting app\n")
        d.wait_log(r"replacing pid \d+ \(portunus restart\)")
        self.wait_for("the old process exits", lambda: first[0] not in pids_serving(app["door"]))
        self.assertEqual(len(pids_serving(app["door"])), 1)
        self.assertEqual(failures, [], f"{len(failures)} of {done} requests failed")
        import subprocess
        unknown = subprocess.run([program("portunus"), "restart", "nope", *control], capture_output=True, text=True,
                                 timeout=20)
        self.assertEqual(unknown.returncode, 1)
        self.assertIn('no [[app]] named "nope"', unknown.stderr)

    def test_stop_stops_every_app(self):
        app = self.app()
        fwd, _ = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        d.wait_log(r"app app: pid \d+ serves")
        pid = pids_serving(app["door"])[0]
        d.send_signal(signal.SIGTERM)
        self.assertEqual(d.wait(10), 0)
        self.wait_for("the app is gone", lambda: not os.path.exists(f"/proc/{pid}"), timeout=5)

    def test_instances_share_the_load_by_calls_in_flight(self):
        # One call holds an instance for 3 s; the calls made meanwhile go to the other two.
        door = self.path("app.door")
        app = {"name": "app", "door": door, "instances": 3,
               "command": [program("test_app"), door, "--tag", "app", "--prefix", ""]}
        fwd, port = self.forward(app)
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("three instances serve", lambda: d.count(r"app app#\d: pid \d+ serves") == 3)
        slow = threading.Thread(target=lambda: self.ask(port, b"sleep:3000:slow", timeout=10))
        slow.start()
        time.sleep(0.2)
        start = time.monotonic()
        for i in range(20):
            self.assertEqual(self.ask(port, f"quick{i}".encode()), f"quick{i}".encode())
        elapsed = time.monotonic() - start
        slow.join()
        self.assertLess(elapsed, 2.5, "quick calls waited behind the slow one")
        pids = set()
        for _ in range(3):
            pids.update(pids_serving(f"{door}.{_ + 1}"))
        self.assertEqual(len(pids), 3)

    def test_a_cohort_that_keeps_crashing_keeps_serving(self):
        # Four instances that each abort at a random moment within 4 s of starting (2 s on
        # average): about half of them die every second. Under continuous GET load, almost every
        # request succeeds.
        door = self.path("app.door")
        # Under the sanitizers a process takes far longer to start: it lives twice as long there,
        # or the whole cohort would be starting at once more often than the load can bear.
        life = "4000" if not harness.SANITIZED else "6000"
        # Restarts come at most 50 ms after a crash (the operator's choice for such an app), so
        # that even on a loaded machine the four are almost never all down at one moment.
        app = {"name": "app", "door": door, "instances": 4, "restart_delay": "50ms", "restart_max_delay": "50ms",
               "command": [program("test_app"), door, "--http-body", "ok", "--die-within-ms", life]}
        port = self.reserve_port()
        fwd = {"name": "web", "protocol": "http", "listen": f"127.0.0.1:{port}", "door": door}
        d = self.start_daemon([fwd], apps=[app])
        self.wait_for("instances serve", lambda: d.count(r"app app#\d: pid \d+ serves") >= 4)
        seconds = 30 if not harness.SANITIZED else 15
        ok = failed = 0
        statuses = {}
        stop = time.monotonic() + seconds
        import http.client
        while time.monotonic() < stop:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                for _ in range(20):
                    c.request("GET", "/")
                    r = c.getresponse()
                    body = r.read()
                    if r.status == 200 and body == b"ok":
                        ok += 1
                    else:
                        failed += 1
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                    if r.getheader("Connection", "").lower() == "close":
                        break
            except (OSError, http.client.HTTPException) as e:
                failed += 1
                statuses[type(e).__name__] = statuses.get(type(e).__name__, 0) + 1
            finally:
                c.close()
        crashes = d.count(r"exited unasked")
        print(f"cohort: {ok} ok, {failed} failed ({statuses}) in {seconds} s; {crashes} crashes")
        self.assertGreater(crashes, seconds // 2, "the instances did not crash as often as planned")
        self.assertGreaterEqual(ok / (ok + failed), 0.999, f"failures: {statuses}")
        self.assertTrue(d.alive())

    def _load(self, port, seconds):
        """Requests one after another on new connections from 4 threads; returns the failures."""
        failures = []
        count = [0]
        lock = threading.Lock()
        stop = time.monotonic() + seconds

        def worker(i):
            n = 0
            while time.monotonic() < stop:
                n += 1
                msg = f"r{i}-{n}".encode()
                try:
                    got = self.ask(port, msg, timeout=5)
                    ok = got == msg
                except OSError as e:
                    ok, got = False, repr(e)
                with lock:
                    count[0] += 1
                    if not ok:
                        failures.append(got)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return failures, count[0]


if __name__ == "__main__":
    harness.main()
