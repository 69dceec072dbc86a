#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
# src/apps/run-demo.sh on programs already built: --check answers on every forward, and
# however the demo ends (--check, SIGINT, SIGTERM) it stops every process it started and
# leaves no /tmp/portunusd-demo behind.
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

DEMO_DIR = "/tmp/portunusd-demo"
DEMO_PORTS = (7007, 8080, 8081, 8088)


def port_busy(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def processes_using(path):
    """Pids whose command line names `path` (the demo's apps and daemon do)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if path.encode() in cmdline and b"demo_test.py" not in cmdline:
            found.append((int(pid), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check_left_nothing(how):
    # The apps and the daemon have exited before the script does, but give the kernel a moment
    # to reap what was killed.
    deadline = time.monotonic() + 5
    while processes_using(DEMO_DIR) and time.monotonic() < deadline:
        time.sleep(0.1)
    if processes_using(DEMO_DIR):
        fail(f"after {how}, still running: {processes_using(DEMO_DIR)}")
    if os.path.exists(DEMO_DIR):
        fail(f"after {how}, {DEMO_DIR} is still there: {os.listdir(DEMO_DIR)}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    args = parser.parse_args()
    script = os.path.join(args.source_dir, "src", "apps", "run-demo.sh")
    demo = [script, "--build-dir", args.build_dir]

    # A directory left by an older demo that was killed outright is the demo's to reuse and
    # remove; a running demo is not this test's to disturb.
    if processes_using(DEMO_DIR) or any(port_busy(p) for p in DEMO_PORTS):
        print(f"skipped: a demo seems to be running (a process names {DEMO_DIR} or a port of {DEMO_PORTS} "
              "is taken)")
        sys.exit(77)

    out = subprocess.run(demo + ["--check"], capture_output=True, text=True, timeout=120)
    if out.returncode != 0 or "every forward answered" not in out.stdout:
        fail(f"run-demo.sh --check exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    check_left_nothing("--check")

    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        log = open(os.path.join("/tmp", f"portunus-demo-test-{os.getpid()}.log"), "w+")
        try:
            p = subprocess.Popen(demo, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True)
            deadline = time.monotonic() + 60
            while True:
                log.seek(0)
                if "Ctrl-C stops everything" in log.read():
                    break
                if p.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    os.killpg(p.pid, signal.SIGKILL) if p.poll() is None else None
                    fail(f"the demo did not start (status {p.poll()}):\n{log.read()}")
                time.sleep(0.1)
            if not os.path.isdir(DEMO_DIR):
                fail(f"the demo runs without {DEMO_DIR}")
            # Only the script gets the signal, as from kill(1); Ctrl-C would reach its children too.
            p.send_signal(sig)
            try:
                got = p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                fail(f"the demo did not stop within 30 s of {sig.name}")
            if got != status:
                log.seek(0)
                fail(f"the demo exited {got} on {sig.name}, expected {status}:\n{log.read()}")
            check_left_nothing(sig.name)
        finally:
            log.close()
            os.unlink(log.name)
    print("run-demo: OK")


if __name__ == "__main__":
    main()
