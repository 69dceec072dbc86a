#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""What the benchmark scripts share: errors, signal handling, process groups, free ports, /proc
readings and machine facts."""

import argparse
import datetime
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path



class Failure(Exception):
    """A set-up or validity problem that makes the numbers meaningless."""


class Stop(Exception):
    """A signal or the overall deadline: clean up and leave."""


def on_signal(signum, _frame):
    raise Stop(f"signal {signal.Signals(signum).name}")


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def free_ports(count):
    """Ports the kernel hands out as free right now (held together so that they differ)."""
    holders, ports = [], []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            holders.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in holders:
            s.close()
    return ports


def wait_for_socket_file(path, proc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure(f"{path}: the door application exited with status {proc.returncode}")
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise Failure(f"{path}: no door after {timeout} s")


def proc_status(pid):
    """VmRSS in kB and the thread count, from /proc/PID/status."""
    rss = threads = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, threads


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def tool_version(argv, pattern):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(0) if m else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
