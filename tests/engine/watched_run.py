"""A child process run to its end unless it hangs, judged by the CPU time its process tree
uses rather than by the wall clock.

A fixed wall-clock timeout fails a slow but healthy child on a loaded machine (the Spark CLI
test's 600 s, with three Spark sessions started one after the other, ran out at load ~20) and
a generous one only delays the report of a real hang. The CPU time of a tree is what load
does not stretch: a child that stops using the CPU (a deadlock, a wait on a socket nobody
answers) is stopped after ``idle`` seconds of wall time in which its tree gained less than
``least`` CPU-seconds; one that spins is stopped past ``budget`` CPU-seconds. Either way the
test fails saying which, with the child's output, and the child's process group is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import psutil


class Hung(AssertionError):
    """The child stopped using the CPU, or used more of it than any healthy run would."""


def _tree_cpu(root: psutil.Process) -> float:
    """CPU-seconds of ``root`` and every process under it, reaped children included (a
    JVM's Python workers come and go; their time stays in their parent's counters)."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:  # gone between the listing and the reading
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def run_watched(command: list[str], *, budget: float, env: dict | None = None, idle: float = 240.0,
                least: float = 1.0, every: float = 1.0) -> subprocess.CompletedProcess:
    """``command`` run to its end, its output captured as text; :class:`Hung` if its tree
    gained less than ``least`` CPU-s over ``idle`` s of wall time, or used over ``budget`` CPU-s."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env, start_new_session=True)
        root = psutil.Process(child.pid)
        most, since = 0.0, time.monotonic()  # the tree's CPU as counted at its highest, and when it last grew by `least`
        reason = None
        while child.poll() is None:
            # the sum can dip while a dead process waits to be reaped: progress is over its highest
            cpu = _tree_cpu(root)
            if cpu >= most + least:
                most, since = cpu, time.monotonic()
            if cpu > budget:
                reason = f"used {cpu:.0f} CPU-s, past its budget of {budget:.0f}"
            elif time.monotonic() - since > idle:
                reason = f"gained under {least} CPU-s in {idle:.0f} s of wall time (at {cpu:.1f} CPU-s)"
            if reason is not None:
                os.killpg(child.pid, signal.SIGKILL)  # its own session: the JVM and its workers with it
                child.wait()
                break
            time.sleep(every)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(command, child.returncode, out.read(), err.read())
    if reason is not None:
        raise Hung(f"{command[:2]} {reason}; load {os.getloadavg()[0]:.1f}\n"
                   f"stdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-3000:]}")
    return done
