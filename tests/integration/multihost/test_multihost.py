#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# portunusd behind a real balancer: three hosts (network namespaces, each with portunusd and
# http_test_app), HAProxy checking each host's /health/web and sending PROXY v2, and a client
# under continuous load while one host is drained, or killed and brought back.
#
# usage: test_multihost.py --portunusd PATH --test-app PATH
# Exit 77 (skipped) without root, ip netns or haproxy.

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lab as labmod  # noqa: E402
from harness import _wrapped  # noqa: E402

PROGRAMS = {}
HOSTS = 3
# The balancer's check: every INTER, FALL failures take a host out and RISE passes put it back.
INTER = 0.2
FALL = RISE = 2
# The whole file must stay under 90 s; the alarm turns a hang into a failure with cleanup.
TIME_LIMIT = 85
SANITIZED = os.environ.get("PORTUNUS_SANITIZED", "0") == "1"


class Load:
    """load_client.py running in the client namespace until stop()."""

    def __init__(self, lab, duration, connections=8):
        argv = ["ip", "netns", "exec", lab.ns("cli"), sys.executable, os.path.join(HERE, "load_client.py"),
                labmod.FRONT_ADDR, str(labmod.FRONT_PORT), "--duration", str(duration),
                "--connections", str(connections), "--max-requests", "400000"]
        self.popen = subprocess.Popen(_wrapped(argv, None), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self.result = None

    def stop(self):
        if self.result is not None:
            return self.result
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            out, err = self.popen.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            out, err = self.popen.communicate()
        if self.popen.returncode != 0 or not out.strip():
            raise AssertionError(f"load client failed ({self.popen.returncode}): {err.decode()[-2000:]}")
        self.result = json.loads(out)
        return self.result

    def finish(self, timeout):
        """Waits for the client to end on its own (its --duration), then returns its figures."""
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        return self.stop()

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.communicate()


def _alarm(signum, frame):
    raise TimeoutError(f"the multihost test passed its {TIME_LIMIT} s limit")


class Multihost(unittest.TestCase):
    lab = None
    figures = []

    @classmethod
    def setUpClass(cls):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(TIME_LIMIT)
        cls.lab = labmod.Lab(PROGRAMS, hosts=HOSTS)
        cls.lab.__enter__()
        try:
            for i in range(1, HOSTS + 1):
                cls.lab.start_app(i)
                cls.lab.start_daemon(i)
            cls.lab.start_haproxy(labmod.haproxy_config(cls.lab, os.path.join(HERE, "haproxy.cfg.in"), HOSTS,
                                                        inter=f"{int(INTER * 1000)}ms"))
            cls.wait_states_of(cls.lab, {f"h{i}": "UP" for i in range(1, HOSTS + 1)}, 5.0)
        except BaseException:
            cls.lab.close()
            raise

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            for i, d in cls.lab.daemons.items():
                if d.alive():
                    d.send_signal(signal.SIGTERM)
                    status = d.wait(6.0)
                    if status != 0:
                        problems.append(f"portunusd on h{i} exited with {status} on SIGTERM:\n{d.tail()}")
            for name, p in [(f"portunusd on h{i}", d) for i, d in cls.lab.daemons.items()] + \
                    [(f"http_test_app on h{i}", a) for i, a in cls.lab.apps.items()]:
                if "Sanitizer" in p.log() or "runtime error:" in p.log():
                    problems.append(f"{name}: sanitizer report:\n{p.log()[-4000:]}")
        finally:
            cls.lab.close()
            signal.alarm(0)
        print("\n".join(["multihost figures:"] + [f"  {line}" for line in cls.figures]), flush=True)
        if problems:
            raise AssertionError("\n".join(problems))

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def wait_states_of(lab, wanted, timeout):
        """Waits until HAProxy reports each server in `wanted` with that status; returns the time."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = labmod.server_states(lab.stats_socket())
            except OSError as e:  # HAProxy has not made its socket yet
                states = {"stats socket": str(e)}
            now = time.monotonic()
            if all(states.get(k, "").startswith(v) for k, v in wanted.items()):
                return now
            if lab.haproxy is not None and not lab.haproxy.alive():
                raise AssertionError(f"haproxy exited:\n{lab.haproxy.tail()}")
            if now >= deadline:
                raise AssertionError(f"HAProxy servers {states}, wanted {wanted} within {timeout} s")
            time.sleep(0.005)

    def wait_states(self, wanted, timeout):
        return self.wait_states_of(self.lab, wanted, timeout)

    def all_up(self):
        for i in range(1, HOSTS + 1):
            if i not in self.lab.apps or not self.lab.apps[i].alive():
                self.lab.start_app(i)
            if i not in self.lab.daemons or not self.lab.daemons[i].alive():
                self.lab.start_daemon(i)
        self.wait_states({f"h{i}": "UP" for i in range(1, HOSTS + 1)}, 5.0)

    def load(self, duration):
        load = Load(self.lab, duration)
        self.addCleanup(load.kill)
        return load

    def first_answer_after(self, result, host, t):
        """When the client first got an answer from `host` at or after `t` (bin precision)."""
        bins = [b for b in result["host_bins"].get(host, []) if b * result["bin"] >= t - result["bin"]]
        return bins[0] * result["bin"] if bins else None

    def check_forwarded_for(self, result):
        self.assertEqual(result["xff"], {labmod.CLIENT_ADDR: result["ok"]},
                         "every request's X-Forwarded-For at the application is the client's address")

    def report(self, name, result, extra=""):
        rate = result["ok"] / max(result["ended"] - result["started"], 1e-9)
        line = (f"{name}: {result['total']} requests, {result['ok']} ok, {result['failed']} failed "
                f"({rate:.0f}/s); by host {dict(sorted(result['by_host'].items()))}" + (f"; {extra}" if extra else ""))
        self.figures.append(line)
        print(line, flush=True)

    # ---- scenarios ---------------------------------------------------------------------------

    def test_a_sigterm_drains_without_a_failed_request(self):
        self.all_up()
        load = self.load(20)
        time.sleep(1.5)
        d = self.lab.daemons[1]
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        # The daemon's exit and HAProxy's verdict, whichever comes first, each timed on its own.
        t_down = t_exit = None
        deadline = t0 + 6.0
        while (t_down is None or t_exit is None) and time.monotonic() < deadline:
            if t_exit is None and not d.alive():
                t_exit = time.monotonic()
            if t_down is None and labmod.server_states(self.lab.stats_socket()).get("h1", "").startswith("DOWN"):
                t_down = time.monotonic()
            time.sleep(0.005)
        self.assertIsNotNone(t_down, "HAProxy took h1 out")
        self.assertIsNotNone(t_exit, "portunusd on h1 exited")
        self.assertEqual(d.wait(1.0), 0, d.tail())
        time.sleep(0.5)
        t1 = time.monotonic()
        self.lab.start_daemon(1)
        t_started = time.monotonic()
        t_up = self.wait_states({"h1": "UP"}, 3.0)
        time.sleep(1.0)
        result = load.stop()
        back = self.first_answer_after(result, "h1", t1)
        self.report("a) SIGTERM h1", result,
                    f"h1 DOWN at HAProxy {1000 * (t_down - t0):.0f} ms after SIGTERM, daemon exited after "
                    f"{1000 * (t_exit - t0):.0f} ms; restarted (ready in {1000 * (t_started - t1):.0f} ms): UP "
                    f"{1000 * (t_up - t_started):.0f} ms later, first answer from h1 "
                    f"{1000 * (back - t_started) if back else float('nan'):.0f} ms later")
        self.assertEqual(result["failed"], 0, result["failures"][:5])
        self.assertGreater(result["ok"], 500)
        self.assertEqual(set(result["by_host"]), {f"h{i}" for i in range(1, HOSTS + 1)})
        self.assertIsNotNone(back, "h1 answered again after its restart")
        self.assertLess(t_down - t0, 2.0)
        self.check_forwarded_for(result)

    def test_a2_with_stop_grace_the_balancer_never_meets_a_refusal(self):
        # stop_grace longer than the check's verdict (FALL checks INTER apart, plus one interval):
        # HAProxy takes h3 out while it still serves, so no connection to it is ever refused
        # or retried elsewhere, whatever the balancer's retry settings.
        grace = (FALL + 2) * INTER + 0.4
        self.all_up()
        self.lab.daemons[3].send_signal(signal.SIGTERM)
        self.assertEqual(self.lab.daemons[3].wait(10), 0, self.lab.daemons[3].tail())
        self.lab.start_daemon(3, stop_grace=f"{int(grace * 1000)}ms")
        self.wait_states({"h3": "UP"}, 3.0)
        load = self.load(20)
        time.sleep(1.5)
        before = labmod.server_stats(self.lab.stats_socket())["h3"]
        d = self.lab.daemons[3]
        t0 = time.monotonic()
        d.send_signal(signal.SIGTERM)
        t_down = self.wait_states({"h3": "DOWN"}, 3.0)
        self.assertTrue(d.alive(), "the daemon still serves while the balancer takes it out")
        self.assertEqual(d.wait(5.0), 0, d.tail())
        t_exit = time.monotonic()
        after = labmod.server_stats(self.lab.stats_socket())["h3"]
        self.lab.start_daemon(3)
        self.wait_states({"h3": "UP"}, 3.0)
        time.sleep(0.5)
        result = load.stop()
        counts = {k: int(after[k] or 0) - int(before[k] or 0) for k in ("econ", "wretr", "wredis")}
        self.report("a2) SIGTERM h3 with stop_grace", result,
                    f"stop_grace {1000 * grace:.0f} ms: h3 DOWN at HAProxy {1000 * (t_down - t0):.0f} ms after "
                    f"SIGTERM, daemon exited after {1000 * (t_exit - t0):.0f} ms; h3 connection errors, "
                    f"retries, redispatches meanwhile: {counts}")
        self.assertLess(t_down - t0, grace)
        self.assertEqual(counts, {"econ": 0, "wretr": 0, "wredis": 0})
        self.assertEqual(result["failed"], 0, result["failures"][:5])
        self.assertGreater(result["ok"], 500)
        self.check_forwarded_for(result)

    def test_b_sigkill_app_then_daemon(self):
        self.all_up()
        load = self.load(20)
        time.sleep(1.5)
        t0 = time.monotonic()
        self.lab.apps[2].kill()
        time.sleep(0.3)
        self.lab.daemons[2].kill()
        t_down = self.wait_states({"h2": "DOWN"}, 3.0)
        time.sleep(1.0)
        t1 = time.monotonic()
        self.lab.start_app(2)
        self.lab.start_daemon(2)
        t_started = time.monotonic()
        t_up = self.wait_states({"h2": "UP"}, 3.0)
        time.sleep(1.0)
        result = load.stop()
        back = self.first_answer_after(result, "h2", t1)
        self.report("b) SIGKILL h2 app, then daemon", result,
                    f"h2 DOWN at HAProxy {1000 * (t_down - t0):.0f} ms after the app's SIGKILL; "
                    f"restarted (app and daemon ready in {1000 * (t_started - t1):.0f} ms): UP "
                    f"{1000 * (t_up - t_started):.0f} ms later, first answer from h2 "
                    f"{1000 * (back - t_started) if back else float('nan'):.0f} ms later")
        if result["failures"]:
            print("b) failures (client time relative to the app's SIGKILL, what it got):", flush=True)
            for t, why in result["failures"][:10]:
                print(f"   {1000 * (t - t0):+.0f} ms {why}", flush=True)
        self.assertGreater(result["ok"], 500)
        self.assertGreaterEqual(result["ok"] / result["total"], 0.999, result["failures"][:5])
        # Taken out within the check's reach: FALL failed checks INTER apart, plus one interval
        # for where the first check fell and slack for a loaded machine.
        self.assertLess(t_down - t0, (FALL + 1) * INTER + 1.0)
        self.assertLess(t_up - t_started, (RISE + 1) * INTER + 1.0)
        self.assertIsNotNone(back, "h2 answered again after its restart")
        self.check_forwarded_for(result)

    def test_c_forwarded_for_is_the_client(self):
        self.all_up()
        load = self.load(2)
        result = load.finish(15)
        self.report("c) X-Forwarded-For", result, f"X-Forwarded-For seen {result['xff']}, "
                    f"Forwarded seen {result['forwarded']}")
        self.assertGreater(result["ok"], 100)
        self.assertEqual(result["failed"], 0, result["failures"][:5])
        self.check_forwarded_for(result)
        self.assertEqual(sum(result["forwarded"].values()), result["ok"])
        for value in result["forwarded"]:
            self.assertTrue(value.startswith(f"for={labmod.CLIENT_ADDR};"), value)
        # The access log of each host names the client, not the balancer.
        for i in range(1, HOSTS + 1):
            with open(self.lab.path(f"access-h{i}.log")) as f:
                lines = [line for line in f if 'path="/echo"' in line]
            self.assertTrue(lines, f"h{i} logged no request")
            self.assertTrue(all(labmod.CLIENT_ADDR in line for line in lines), lines[:3])


def main():
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--portunusd", required=True)
    parser.add_argument("--test-app", required=True)
    args, rest = parser.parse_known_args()
    PROGRAMS.update(portunusd=args.portunusd, test_app=args.test_app)
    why = labmod.missing_requirements()
    if why:
        print(f"test_multihost: skipped: {why}")
        sys.exit(77)
    prog = unittest.main(module="__main__", argv=[sys.argv[0], *rest], exit=False, verbosity=2)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
