"""The files of a registry: one file, ``file:table`` (an SQLite table or an Excel sheet), or a
folder of them, subfolders included.

A folder is what a bureau's staff copy things into: besides the exports it holds the
operating system's files (Thumbs.db, .DS_Store, desktop.ini), Excel's lock files (~$名录.xlsx,
while the workbook is open) and notes (README.txt). Those are skipped with a logged notice. A
file of another format is skipped too, but as a warning that reaches the run's summary: it
may be data the run does not read, and nothing is skipped silently.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import attrs

from ._types import SourceError

log = logging.getLogger("ecorules.sources")

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
SQLITE_SUFFIXES = (".sqlite", ".sqlite3", ".db")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
SUPPORTED = CSV_SUFFIXES + PARQUET_SUFFIXES + SQLITE_SUFFIXES + EXCEL_SUFFIXES
# file:NAME names a table or a sheet inside these
NAMED_INSIDE = SQLITE_SUFFIXES + EXCEL_SUFFIXES

SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", ".ds_store", "icon\r"})
NOTE_PREFIXES = ("readme", "说明", "license")  # README.txt, 说明.txt: words for people, not rows


@attrs.frozen
class Skipped:
    """A file or folder of a registry folder that is not read, and why."""

    path: Path
    why: str
    warn: bool  # True: it may be data (the run's summary says so); False: a notice in the log


@attrs.frozen
class Listing:
    files: tuple[tuple[Path, str | None], ...]  # (file, table or sheet), in reading order
    skipped: tuple[Skipped, ...] = ()


def _why_skipped(name: str) -> tuple[str, bool] | None:
    lower = name.casefold()
    if lower in SYSTEM_FILES:
        return "a file of the operating system", False
    if name.startswith("~$"):
        return "an Office lock file (the workbook is open somewhere)", False
    if name.startswith("."):
        return "a hidden file", False
    if lower.startswith(NOTE_PREFIXES):
        return "a note for people (README, 说明, LICENSE)", False
    if not lower.endswith(SUPPORTED):
        return f"not a registry format (read are {', '.join(SUPPORTED)})", True
    return None


def _walk(folder: Path, recurse: bool) -> tuple[list[Path], list[Skipped]]:
    files: list[Path] = []
    skipped: list[Skipped] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.is_symlink() and entry.is_dir():
            skipped.append(Skipped(entry, "a link to a folder (not followed)", True))
        elif entry.is_dir():
            if entry.name.startswith(".") or entry.name == "__MACOSX":
                skipped.append(Skipped(entry, "a hidden folder", False))
            elif not recurse:
                skipped.append(Skipped(entry, "a subfolder (--no-recurse)", True))
            else:
                more, more_skipped = _walk(entry, recurse)
                files += more
                skipped += more_skipped
        elif entry.is_file():
            why = _why_skipped(entry.name)
            if why is None:
                files.append(entry)
            else:
                skipped.append(Skipped(entry, *why))
        else:
            skipped.append(Skipped(entry, "not a regular file", True))
    return files, skipped


def list_registry(path: str | os.PathLike, table: str | None = None, *, recurse: bool = True) -> Listing:
    """The files of the registry at ``path``; ``table`` is the SQLite table or Excel sheet of each."""
    text = os.fspath(path)
    if not os.path.exists(text) and ":" in text:
        base, _, name = text.rpartition(":")
        if Path(base).suffix.lower() in NAMED_INSIDE and os.path.exists(base):
            return Listing(((Path(base), name),))
    path = Path(text)
    if path.is_dir():
        files, skipped = _walk(path, recurse)
        for item in skipped:
            (log.warning if item.warn else log.info)("%s: skipped, %s", item.path, item.why)
        if not files:
            seen = f" (skipped: {', '.join(s.path.name for s in skipped[:5])})" if skipped else ""
            raise SourceError(f"{path}: the folder holds no {', '.join(SUPPORTED)} file{seen}")
        return Listing(tuple((p, table) for p in files), tuple(skipped))
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    return Listing(((path, table),))


__all__ = [
    "CSV_SUFFIXES", "EXCEL_SUFFIXES", "PARQUET_SUFFIXES", "SQLITE_SUFFIXES", "SUPPORTED", "Listing",
    "Skipped", "list_registry",
]
