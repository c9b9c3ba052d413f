"""The content fingerprint begun early (engine/_sources.hash_ahead): the same fingerprint as
hashing when asked, used once, and never for a file that changed since its hashing began."""

from __future__ import annotations

import hashlib
import os

from ecorules.engine import _sources
from ecorules.engine._sources import fingerprint, hash_ahead


def _expected(path, root) -> str:
    """The fingerprint as the reading's definition has it: sha256 of name, table and content."""
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashlib.sha256(f"{path.name}\0\0{content}\n".encode()).hexdigest()


def test_a_digest_begun_early_gives_the_same_fingerprint_and_is_used_once(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_bytes(b"uscc,district\n" + b"91410100MA9XXXXX1X,\xe9\x83\x91\xe4\xb8\x9c\n" * 50_000)
    hash_ahead(path)
    assert path.resolve() in _sources._AHEAD.pending
    assert fingerprint([(path, None)], path) == _expected(path, path)
    assert path.resolve() not in _sources._AHEAD.pending  # taken: the next run hashes again


def test_a_file_changed_after_its_hashing_began_is_hashed_again(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_bytes(b"uscc\n91410100MA9XXXXX1X\n")
    hash_ahead(path)
    _sources._AHEAD.pending[path.resolve()][1].wait()  # its digest is of the old content
    with open(path, "ab") as handle:
        handle.write(b"91410100MA9YYYYY2Y\n")
    os.utime(path, ns=(1, 1))  # another size and time: not the file that was hashed
    assert fingerprint([(path, None)], path) == _expected(path, path)


def test_digests_not_used_are_forgotten_and_folders_and_urls_are_left_to_the_run(tmp_path):
    path = tmp_path / "registry.csv"
    path.write_bytes(b"uscc\n91410100MA9XXXXX1X\n")
    forget = hash_ahead(path, tmp_path, "postgresql:///db?table=registry", None, tmp_path / "absent.csv")
    assert [key for key in _sources._AHEAD.pending if key.parent == tmp_path.resolve()] == [path.resolve()]
    forget()
    assert path.resolve() not in _sources._AHEAD.pending
    assert fingerprint([(path, None)], path) == _expected(path, path)
