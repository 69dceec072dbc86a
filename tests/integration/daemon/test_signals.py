#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# Which thread takes the daemon's signals: only the main one, so no door call is ever cut short
# by one (door_call is not restartable), and a signal before the handlers exist only waits.
import os
import signal
import socket
import threading
import time

import harness
from harness import DaemonTest, listen_text

HANDLED = {signal.SIGHUP: "SIGHUP", signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM",
           signal.SIGCHLD: "SIGCHLD"}


def blocked_signals(pid, tid):
    """The set of signal numbers the thread blocks (SigBlk in /proc)."""
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                mask = int(line.split()[1], 16)
                return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    raise AssertionError(f"no SigBlk for task {tid}")


def tcp_forward(listen, door, **extra):
    return {"protocol": "tcp", "listen": listen, "door": door, **extra}


class SignalTests(DaemonTest):
    def test_only_the_main_thread_takes_the_handled_signals(self):
        self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp_forward(listen_text("127.0.0.1", port), self.path("app.door"))],
                              daemon={"threads": 3})
        # Slow calls from many clients at once: loop connections and caller-pool threads
        # (the door's first opening runs on the pool) all exist while the masks are read.
        errors = []

        def client(i):
            try:
                self.round_trip(port, b"sleep:300:%d" % i, b"%d" % i, timeout=5)
            except Exception as e:  # reported below
                errors.append(repr(e))

        clients = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for t in clients:
            t.start()
        time.sleep(0.15)
        tasks = sorted(int(t) for t in os.listdir(f"/proc/{d.pid}/task"))
        masks = {tid: blocked_signals(d.pid, tid) for tid in tasks}
        for t in clients:
            t.join(10)
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(tasks), 4, "expected the loops and pool threads to exist")
        main = masks.pop(d.pid)
        self.assertFalse(main & set(HANDLED), "the main thread must take the handled signals")
        for tid, blocked in masks.items():
            missing = [name for s, name in HANDLED.items() if s not in blocked]
            self.assertEqual(missing, [], f"thread {tid} of {len(tasks)} could take {missing}")

    def test_a_sighup_storm_fails_no_call_in_flight(self):
        self.start_app("app.door")
        port = self.reserve_port()
        d = self.start_daemon([tcp_forward(listen_text("127.0.0.1", port), self.path("app.door"))])
        stop = threading.Event()
        done = []
        failures = []

        def client(i):
            n = 0
            while not stop.is_set() and n < 200:
                n += 1
                request = b"sleep:20:c%d-%d" % (i, n)
                try:
                    self.round_trip(port, request, request[len("sleep:20:"):], timeout=5)
                    done.append(1)
                except Exception as e:  # every failure is reported
                    failures.append(f"client {i} call {n}: {e!r}")

        clients = [threading.Thread(target=client, args=(i,)) for i in range(16)]
        for t in clients:
            t.start()
        sent = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            os.kill(d.pid, signal.SIGHUP)
            sent += 1
            time.sleep(0.002)
        stop.set()
        for t in clients:
            t.join(15)
        self.assertTrue(d.alive(), d.tail())
        self.assertEqual(failures[:5], [], f"{len(failures)} of {len(done) + len(failures)} calls failed")
        self.assertGreater(len(done), 100)
        # The daemon took the signals (some coalesce while one is pending) and reloaded each time.
        self.assertGreater(d.count(r"SIGHUP: reloading"), 10, f"{sent} SIGHUPs sent")

    def test_a_signal_before_the_handlers_exist_waits_for_them(self):
        port = self.reserve_port()
        self.start_app("app.door")
        forwards = [tcp_forward(listen_text("127.0.0.1", port), self.path("app.door"))]
        early = 0
        for attempt in range(10):
            with self.subTest(attempt=attempt):
                d = self.start_daemon(forwards, wait=False, name=f"early{attempt}")
                # Aim for the moment main() has blocked the handled signals and the daemon does
                # not take them yet (it is still starting): without the block, SIGHUP's default
                # action would end the process there. Start-up can be quicker than this loop,
                # so an attempt may miss it; it must hit at least once.
                deadline = time.monotonic() + 5
                hit = False
                while time.monotonic() < deadline and d.alive():
                    try:
                        if signal.SIGHUP in blocked_signals(d.pid, d.pid):
                            hit = "portunusd ready" not in d.log()
                            break
                    except (FileNotFoundError, ProcessLookupError):
                        pass
                os.kill(d.pid, signal.SIGHUP)
                early += hit
                self.wait_ready(d)
                self.round_trip(port, b"still here")
                d.wait_log(r"SIGHUP: reloading")
                d.send_signal(signal.SIGTERM)
                self.assertEqual(d.wait(10), 0, d.tail())
        self.assertGreater(early, 0, "no SIGHUP landed during start-up in 10 attempts")


if __name__ == "__main__":
    harness.main()
