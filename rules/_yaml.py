"""Safe YAML reading that remembers where every key and value came from.

PyYAML's ``SafeLoader`` is the base: no tags that build Python objects. On top of it:
- duplicate keys are errors (PyYAML silently keeps the last one, which hides edits);
- floats are read as :class:`~decimal.Decimal` from their text, so money never passes
  through binary floating point;
- limits on file size, nesting depth, alias uses and node count stop hostile or runaway
  files (a "billion laughs" document expands aliases exponentially);
- mappings and sequences come back as :class:`Mapping`/:class:`Sequence` subclasses that
  carry the :class:`Span` of themselves and of each key and item, so every later error can
  point at ``file:line:col``.

libyaml's parser (PyYAML's ``CParser``), when PyYAML was built with it, reads the events about
seven times faster; composing, the limits and construction stay the Python code below on both
paths. Whenever the C path fails, for whatever reason, or meets a construct that libyaml is
known to read otherwise, the pure-Python loader reads the text again: every result and every
error is exactly the one the pure-Python loader gives (a refused file is parsed twice).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from ._errors import PolicySyntaxError, Span
from ._yaml_indent import misaligned

MAX_FILE_BYTES = 1_000_000
MAX_DEPTH = 40
MAX_ALIASES = 100
MAX_NODES = 200_000


class Located(dict):
    """A YAML mapping; ``span`` is its own, ``key_spans``/``value_spans`` per key."""

    span: Span
    key_spans: dict
    value_spans: dict


class LocatedList(list):
    """A YAML sequence; ``span`` is its own, ``item_spans`` per item."""

    span: Span
    item_spans: list


def _span(node: yaml.Node, filename: str, lines: list[str]) -> Span:
    start, end = node.start_mark, node.end_mark
    source = lines[start.line] if start.line < len(lines) else None
    return Span(filename, start.line + 1, start.column + 1, end.line + 1, end.column + 1, source)


class _Located(SafeConstructor):
    """Limits and located construction, over whichever parser the concrete loader has."""

    def _start(self, stream: str, filename: str) -> None:
        self.filename = filename
        self.lines = stream.splitlines()
        self.aliases = 0
        self.nodes = 0
        self.depth = 0

    def error(self, message: str, node: yaml.Node) -> PolicySyntaxError:
        return PolicySyntaxError(message, _span(node, self.filename, self.lines))

    # -- limits, enforced while composing, before anything is constructed --------------
    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()
                raise PolicySyntaxError(
                    f"more than {MAX_ALIASES} alias uses (*name); expand them by hand",
                    _mark_span(event.start_mark, self.filename, self.lines),
                )
        self.nodes += 1
        if self.nodes > MAX_NODES:
            event = self.peek_event()
            raise PolicySyntaxError(
                f"more than {MAX_NODES} YAML nodes: a policy should be far smaller",
                _mark_span(event.start_mark, self.filename, self.lines),
            )
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                event = self.peek_event()
                raise PolicySyntaxError(
                    f"nesting deeper than {MAX_DEPTH} levels",
                    _mark_span(event.start_mark, self.filename, self.lines),
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    # -- construction with spans ------------------------------------------------------------
    def construct_located_mapping(self, node: yaml.MappingNode):
        mapping = Located()
        mapping.span = _span(node, self.filename, self.lines)
        mapping.key_spans, mapping.value_spans = {}, {}
        yield mapping
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | bool):
                raise self.error("a mapping key must be a plain word", key_node)
            if key in mapping:
                first = mapping.key_spans[key]
                raise self.error(f"duplicate key {key!r} (first at line {first.line})", key_node)
            mapping[key] = self.construct_object(value_node, deep=True)
            mapping.key_spans[key] = _span(key_node, self.filename, self.lines)
            mapping.value_spans[key] = _span(value_node, self.filename, self.lines)

    def construct_located_sequence(self, node: yaml.SequenceNode):
        sequence = LocatedList()
        sequence.span = _span(node, self.filename, self.lines)
        sequence.item_spans = [_span(item, self.filename, self.lines) for item in node.value]
        yield sequence
        sequence.extend(self.construct_object(item, deep=True) for item in node.value)

    def construct_date(self, node: yaml.ScalarNode):
        try:
            return SafeConstructor.construct_yaml_timestamp(self, node)
        except ValueError as error:  # 2012-13-45 matches the pattern but is no date
            raise self.error(f"{self.construct_scalar(node)!r} is not a valid date ({error})", node) from None

    def construct_decimal(self, node: yaml.ScalarNode):
        text = self.construct_scalar(node).replace("_", "")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.error(f"{text!r} is not a finite decimal number", node) from None
        if not value.is_finite():
            raise self.error(f"{text!r} is not a finite decimal number", node)
        return value


def _mark_span(mark, filename: str, lines: list[str]) -> Span:
    source = lines[mark.line] if mark.line < len(lines) else None
    return Span(filename, mark.line + 1, mark.column + 1, source_line=source)


_Located.add_constructor("tag:yaml.org,2002:map", _Located.construct_located_mapping)
_Located.add_constructor("tag:yaml.org,2002:seq", _Located.construct_located_sequence)
_Located.add_constructor("tag:yaml.org,2002:float", _Located.construct_decimal)
_Located.add_constructor("tag:yaml.org,2002:timestamp", _Located.construct_date)


class _Loader(_Located, yaml.SafeLoader):
    """Pure-Python PyYAML: the reference, whose errors are the ones users see."""

    def __init__(self, stream: str, filename: str):
        yaml.SafeLoader.__init__(self, stream)
        self._start(stream, filename)


class _Unsure(Exception):
    """libyaml may read this text otherwise than the reference: let the reference read it."""


# Where libyaml and PyYAML's pure-Python scanner are known to part: libyaml takes tabs as
# blanks, skips a BOM anywhere, counts other line breaks, ends the last node elsewhere when
# the final newline is missing; the rest is checked per node by _CLoader.
_C_UNSURE_CHARACTERS = ("\t", "\ufeff", "\x85", "\u2028", "\u2029")


def _c_may_read(text: str) -> bool:
    return text.endswith("\n") and not any(c in text for c in _C_UNSURE_CHARACTERS)


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    _CLoader = None
else:

    class _CLoader(_Located, Composer, CParser, Resolver):
        """libyaml's events, composed in Python: CParser's own composer would bypass the limits
        of ``compose_node`` (hence Composer before CParser in the bases)."""

        def __init__(self, stream: str, filename: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start(stream, filename)

        def compose_node(self, parent, index):
            event = self.peek_event()
            if getattr(event, "tag", None) is not None:
                raise _Unsure  # libyaml ends a tag at a flow indicator, PyYAML does not
            if isinstance(event, yaml.ScalarEvent):
                in_flow = parent is not None and parent.flow_style
                # In flow collections libyaml lets '?' and ':' into plain scalars (YAML 1.2)
                # and places an empty value one token later.
                if in_flow and event.style in ("", None) and (not event.value or "?" in event.value or ":" in event.value):
                    raise _Unsure
                if event.style in ("|", ">") and "#" in self._rest_of_line(event.start_mark):
                    raise _Unsure  # "|#": a comment to libyaml, an error to PyYAML
            return super().compose_node(parent, index)

        def _rest_of_line(self, mark) -> str:
            return self.lines[mark.line][mark.column:] if mark.line < len(self.lines) else ""


def load_yaml_text(text: str, filename: str = "<string>"):
    """Parse one YAML document with the limits above; errors name ``file:line:col``."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise PolicySyntaxError(f"file is larger than {MAX_FILE_BYTES} bytes", Span(filename, 1, 1))
    if _CLoader is not None and _c_may_read(text):
        try:
            return _load(_CLoader, text, filename)
        except Exception:  # noqa: BLE001 - whatever the C path refuses or doubts, the reference decides
            pass
    return _load(_Loader, text, filename)


def _load(loader_class: type[_Located], text: str, filename: str):
    try:
        loader = loader_class(text, filename)  # the reader refuses control characters here
    except yaml.reader.ReaderError as error:
        before = text[: error.position]
        line, column = before.count("\n") + 1, error.position - (before.rfind("\n") + 1) + 1
        source = text.splitlines()[line - 1] if line <= len(text.splitlines()) else None
        raise PolicySyntaxError(
            f"YAML: character U+{error.character:04X} is not allowed (a control character); remove it",
            Span(filename, line, column, source_line=source),
        ) from None
    try:
        if not loader.check_node():
            raise PolicySyntaxError("the file is empty", Span(filename, 1, 1))
        document = loader.construct_document(loader.get_node())
        if loader.check_node():
            raise PolicySyntaxError(
                "more than one YAML document (---) in one file",
                _mark_span(loader.peek_event().start_mark, filename, loader.lines),
            )
        return document
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context
        slip = misaligned(loader.lines, mark.line) if mark and any(p in problem for p in _INDENTATION) else None
        if slip is not None:
            span = Span(filename, mark.line + 1, slip.column, source_line=loader.lines[mark.line])
            raise PolicySyntaxError(f"YAML: {slip.message} ({problem})", span) from None
        span = _mark_span(mark, filename, loader.lines) if mark else Span(filename, 1, 1)
        raise PolicySyntaxError(f"YAML: {_plain_words(problem)}", span) from None
    except yaml.YAMLError as error:
        raise PolicySyntaxError(f"YAML: {error}", Span(filename, 1, 1)) from None
    finally:
        loader.dispose()


# PyYAML's messages as legal staff can act on them; the original follows in brackets.
_PLAIN = (
    ("found character '\\t' that cannot start any token", "a tab: indent with spaces, not tabs"),
    ("mapping values are not allowed here", "a ':' where a value was expected: indent the key under its parent, "
     "or quote a value that contains ': '"),
    ("could not find expected ':'", "a key without ':', or a line indented differently from the keys beside it"),
    ("did not find expected key", "a line indented differently from the keys beside it"),
    ("did not find expected '-' indicator", "a list item indented differently from the items beside it"),
    ("found undefined alias", "an alias (*name) with no anchor (&name) before it"),
    ("found unexpected end of stream", "the file ends inside a quoted text or a bracket: close it"),
)


# PyYAML's words for a line indented otherwise than the block it falls in: the line is
# compared with the blocks above it (_yaml_indent.py), PyYAML's words kept in brackets.
_INDENTATION = ("expected <block end>", "mapping values are not allowed here", "did not find expected key",
                "did not find expected '-' indicator")


def _plain_words(problem: str) -> str:
    for original, plain in _PLAIN:
        if original in problem:
            return f"{plain} ({problem})"
    return problem


def load_yaml_file(path: str | Path):
    """Read a policy file as UTF-8 (a BOM is tolerated) and parse it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicySyntaxError(f"cannot read file: {error.strerror}", Span(str(path), 1, 1)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PolicySyntaxError(f"file is larger than {MAX_FILE_BYTES} bytes", Span(str(path), 1, 1))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise PolicySyntaxError(
            f"not UTF-8 (byte 0x{raw[error.start]:02x}); save the file as UTF-8",
            Span(str(path), line, 1),
        ) from None
    return load_yaml_text(text, str(path))
