"""A set of policies loaded together: discovery on disk, and the checks across files.

Several versions of one policy may be loaded side by side as long as their periods of force
do not overlap: then for any date exactly one version (or none) is the law, which is what the
evaluators pick. Facts of the same name in different files must mean the same thing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ._catalogue import Catalogue, is_catalogue, read_folder_catalogues
from ._errors import PolicyError, PolicySetError
from ._kinds import RecordKind
from ._loader import read_policy
from ._schema import Fact, Policy
from ._yaml import load_yaml_file

POLICY_SUFFIXES = (".yaml", ".yml")


@attrs.frozen
class PolicySet:
    policies: tuple[Policy, ...]

    def __attrs_post_init__(self) -> None:
        _check_consistent(self.policies)

    def __iter__(self) -> Iterator[Policy]:
        return iter(self.policies)

    def __len__(self) -> int:
        return len(self.policies)

    def __getitem__(self, key: str) -> Policy:
        """A policy by ``id@version``, or by ``id`` when only one version is loaded."""
        matches = [p for p in self.policies if key in (p.key, p.id)]
        if len(matches) != 1:
            known = ", ".join(p.key for p in self.policies)
            raise KeyError(f"{key!r} names {len(matches)} loaded policies (loaded: {known})")
        return matches[0]

    def for_domain(self, domain: str) -> PolicySet:
        return PolicySet(tuple(p for p in self.policies if p.domain == domain))

    @property
    def kinds(self) -> dict[str, RecordKind]:
        """The declared kinds of record the loaded policies judge, with their ancestors."""
        merged: dict[str, RecordKind] = {}
        for policy in self.policies:
            merged.update(policy.kinds)
        return merged

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.domain for p in self.policies))

    def in_force(self, when: dt.date) -> tuple[Policy, ...]:
        return tuple(p for p in self.policies if p.in_force(when))

    @property
    def facts(self) -> dict[str, Fact]:
        merged: dict[str, Fact] = {}
        for policy in self.policies:
            for name, fact in policy.facts.items():
                merged.setdefault(name, fact)
        return merged

    def required_facts(self) -> dict[str, list[str]]:
        """Each record field the set needs, with the policies that need it."""
        needed: dict[str, list[str]] = {}
        for policy in self.policies:
            for name in policy.required_facts:
                needed.setdefault(name, []).append(policy.key)
        return needed

    @property
    def fingerprint(self) -> str:
        """Changes whenever any file's content changes: stored with every run."""
        digest = hashlib.sha256()
        for policy in sorted(self.policies, key=lambda p: p.key):
            digest.update(f"{policy.key}:{policy.content_hash}\n".encode())
        return digest.hexdigest()


def _kind_of(fact: Fact) -> str:
    """What must agree between files: the type, an enum's values and aliases, the format."""
    text = str(fact.type)
    if fact.type.choices is not None:
        text += " [" + ", ".join(fact.type.choices) + "]"
    if fact.value_aliases:  # they decide which registry rows are accepted, and as what
        text += " aliases [" + ", ".join(f"{alias}={value}" for alias, value in fact.value_aliases) + "]"
    if fact.format:
        text += f" (format {fact.format})"
    return text


def _agreed(fact: Fact) -> tuple:
    return fact.type, fact.format, frozenset(fact.value_aliases)


def _check_consistent(policies: Iterable[Policy]) -> None:
    facts: dict[str, tuple[Fact, Policy]] = {}
    keys: dict[str, Policy] = {}
    for policy in policies:
        if policy.key in keys:
            raise PolicySetError(
                f"policy {policy.key} is loaded twice (also from {keys[policy.key].path})", policy.span
            )
        keys[policy.key] = policy
        for name, fact in policy.facts.items():
            if name in facts:
                first, owner = facts[name]
                if _agreed(first) != _agreed(fact):
                    raise PolicySetError(
                        f"fact {name!r} is {_kind_of(fact)} here but {_kind_of(first)} in {owner.key} ({owner.path})",
                        fact.span,
                    )
            else:
                facts[name] = (fact, policy)
    by_id: dict[str, list[Policy]] = {}
    for policy in keys.values():
        by_id.setdefault(policy.id, []).append(policy)
    for versions in by_id.values():
        versions.sort(key=lambda p: p.effective)
        for earlier, later in zip(versions, versions[1:], strict=False):
            if earlier.expires is None or earlier.expires > later.effective:
                raise PolicySetError(
                    f"{earlier.key} and {later.key} are both in force on {later.effective}: "
                    f"give {earlier.key} 'expires: {later.effective}'",
                    later.span,
                )


class _Documents:
    """The YAML of each file, parsed once per load: finding the catalogues looks at every
    file, and reading the policies looks at them again."""

    def __init__(self):
        self.parsed: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        """The document, or None if the file does not parse (reading it again raises why)."""
        if path not in self.parsed:
            try:
                self.parsed[path] = load_yaml_file(path)
            except PolicyError:
                self.parsed[path] = None
        return self.parsed[path]

    def is_catalogue(self, path: Path) -> bool:
        """Whether ``path`` is a fact catalogue. A file that does not even parse is not one: it
        is then read as a policy, so that its error is reported along with those of the other
        files."""
        return is_catalogue(self.get(path))


def shipped_policies_path() -> Path:
    return Path(str(resources.files("ecorules.policies")))


def policy_files(paths: Iterable[str | Path]) -> list[tuple[Path, Catalogue]]:
    """Every policy file under ``paths`` with the catalogue facts that apply to it."""
    return _policy_files(paths, _Documents())


def _policy_files(paths: Iterable[str | Path], documents: _Documents) -> list[tuple[Path, Catalogue]]:
    found: list[tuple[Path, Catalogue]] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(_walk(path, Catalogue(), documents))
        elif path.exists():
            shared = _folder_catalogue(path.parent, Catalogue(), documents)
            if not documents.is_catalogue(path):
                found.append((path, shared))
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


def _folder_catalogue(folder: Path, inherited: Catalogue, documents: _Documents) -> Catalogue:
    files = [
        (candidate, documents.get(candidate)) for candidate in sorted(folder.iterdir())
        if candidate.suffix in POLICY_SUFFIXES and documents.is_catalogue(candidate)
    ]
    return read_folder_catalogues(files, inherited) if files else inherited


def _walk(folder: Path, inherited: Catalogue, documents: _Documents) -> list[tuple[Path, Catalogue]]:
    shared = _folder_catalogue(folder, inherited, documents)
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith((".", "_")):
            found.extend(_walk(entry, shared, documents))
        elif entry.suffix in POLICY_SUFFIXES and not documents.is_catalogue(entry):
            found.append((entry, shared))
    return found


def load_policies(paths: str | Path | Iterable[str | Path] | None = None) -> PolicySet:
    """Load every policy under ``paths`` (files or folders); the shipped set by default.

    Raises the first :class:`PolicyError`; use :func:`check_policies` to collect all of them.
    """
    if paths is None:
        paths = [shipped_policies_path()]
    elif isinstance(paths, str | Path):
        paths = [paths]
    documents = _Documents()
    return PolicySet(tuple(
        read_policy(path, shared, documents.get(path)) for path, shared in _policy_files(paths, documents)
    ))


def check_policies(paths: Iterable[str | Path]) -> tuple[PolicySet | None, list[PolicyError]]:
    """Load what can be loaded and collect every error, one per broken file at least."""
    errors: list[PolicyError] = []
    policies = []
    documents = _Documents()
    try:
        files = _policy_files(paths, documents)
    except PolicyError as error:
        return None, [error]
    for path, shared in files:
        try:
            policies.append(read_policy(path, shared, documents.get(path)))
        except PolicyError as error:
            errors.append(error)
    if errors:
        return None, errors
    try:
        return PolicySet(tuple(policies)), []
    except PolicyError as error:
        return None, [error]
