"""The Spark CLI test's watchdog (tests/engine/watched_run.py): a slow child runs to its end
however long the wall clock says, a child that stops using the CPU or spins past its budget
is stopped, its whole process group with it, and the failure says which."""

from __future__ import annotations

import sys
import time

import psutil
import pytest
from watched_run import Hung, run_watched

SPIN = "import time\nend = time.process_time() + {0}\nwhile time.process_time() < end: pass\nprint('done')"


def test_a_child_that_keeps_working_runs_past_the_idle_window():
    # 4 CPU-s of work (4 s of wall time at least) against an idle window of 1 s: judged by the
    # CPU it gains (0.02 CPU-s a second: a 2% share of a core), not by the clock
    started = time.monotonic()
    done = run_watched([sys.executable, "-c", SPIN.format(4)], idle=1.0, least=0.02, budget=60, every=0.1)
    assert done.returncode == 0 and done.stdout.strip() == "done"
    assert time.monotonic() - started > 4


def test_a_child_that_stops_using_the_cpu_is_stopped_with_its_group():
    started = time.monotonic()
    # the child's own child sleeps too: a hang anywhere in the group, killed with it
    script = ("import subprocess, sys, time\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
              "print(p.pid, flush=True)\ntime.sleep(120)")
    with pytest.raises(Hung, match="gained under 0.5 CPU-s in 2 s") as hung:
        run_watched([sys.executable, "-c", script], idle=2.0, least=0.5, budget=60, every=0.1)
    assert time.monotonic() - started < 60
    grandchild = int(str(hung.value).split("stdout: ")[1].split()[0])
    # SIGKILL is delivered, not awaited: the group's other processes may still be seen running
    # for a moment after the child is reaped (a clean clone's CI caught one 'running')
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_child_that_spins_past_its_budget_is_stopped():
    with pytest.raises(Hung, match="past its budget of 1"):
        run_watched([sys.executable, "-c", SPIN.format(600)], idle=60, least=0.1, budget=1.0, every=0.1)
