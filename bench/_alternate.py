"""Builds or variants run alternately, each run a child process of its own (bench/*.py --build).

A build is NAME=a folder put first on the children's PYTHONPATH holding an ``ecorules`` copy
with its compiled extensions (empty: the installed tree). Each round turns the order by one,
so that no run always comes first on a machine warming up or cooling down; the load average
is taken as each run starts, since on a shared machine it decides more than the change does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser, folder: str) -> None:
    """The flags every such bench takes: --rounds, --dir (default: ``folder`` in the temporary
    directory), --build (repeatable) and the children's hidden --child."""
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / folder)
    parser.add_argument("--build", action="append", default=[], help="NAME=PYTHONPATH of a build")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)


def builds(specs: Sequence[str], default: str = "this") -> list[tuple[str, str]]:
    """``--build`` values as (name, PYTHONPATH); none given: the installed tree alone."""
    return [tuple(spec.split("=", 1)) for spec in specs] or [(default, "")]


def alternated(runs: Sequence[tuple[str, str, Callable[[int], list[str]]]],
               rounds: int) -> Iterator[tuple[int, str, dict, float]]:
    """For ``runs`` of (label, PYTHONPATH, the child's arguments after the interpreter as a
    function of the round), each round in a turned order: (round, label, the child's last stdout line as JSON, the 1-minute
    load when it started). A child that fails stops the bench with its stderr's tail."""
    for round_ in range(rounds):
        turn = round_ % len(runs)
        for label, path, arguments in [*runs[turn:], *runs[:turn]]:
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = path
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, *arguments(round_)], capture_output=True, text=True, env=env)
            if done.returncode:
                raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
            yield round_, label, json.loads(done.stdout.strip().splitlines()[-1]), load
