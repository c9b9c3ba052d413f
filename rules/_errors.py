"""The exceptions of ecorules, one root and a child per stage.

Every error about a policy carries the :class:`Span` of the offending text, so that the
message reads ``file:line:col: message`` and shows the line with a caret, the way a compiler
does. Data lives in attributes (``span``, ``suggestion``) so that tools need not parse text.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Span:
    """Where something stands in a policy file: 1-based line and column, end exclusive."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    source_line: str | None = None  # the text of `line`, to show beneath the message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def text(self) -> str:
        """The text the span covers on its line, as written (to the line's end if longer)."""
        line = self.source_line or ""
        end = self.end_column if self.end_line in (None, self.line) and self.end_column else len(line) + 1
        return line[self.column - 1:end - 1]

    def shifted(self, offset: int, length: int) -> Span:
        """The span of characters ``offset .. offset+length`` inside a one-line scalar."""
        column = self.column + offset
        return attrs.evolve(self, column=column, end_line=self.line, end_column=column + length)


class EcorulesError(Exception):
    """Root of every error raised on purpose by ecorules."""


class PolicyError(EcorulesError, ValueError):
    """A policy file is wrong. ``str()`` gives ``file:line:col: message``."""

    def __init__(self, message: str, span: Span | None = None, suggestion: str | None = None):
        self.message = message
        self.span = span
        self.suggestion = suggestion
        super().__init__(self._render())

    def _render(self) -> str:
        text = self.message
        if self.suggestion:
            text += f" (did you mean {self.suggestion!r}?)"
        if self.span is None:
            return text
        rendered = f"{self.span}: {text}"
        if self.span.source_line is not None:
            line = self.span.source_line.rstrip("\n")
            width = 1
            if self.span.end_column and self.span.end_line in (None, self.span.line):
                width = max(1, self.span.end_column - self.span.column)
            rendered += f"\n    {line}\n    {' ' * (self.span.column - 1)}{'^' * width}"
        return rendered

    def __reduce__(self):  # keep the error picklable for multiprocessing callers
        return (type(self), (self.message, self.span, self.suggestion))


class PolicySyntaxError(PolicyError):
    """The YAML itself, or an expression inside it, cannot be parsed."""


class PolicySchemaError(PolicyError):
    """The YAML parses but does not have the shape of a policy (keys, types, values)."""


class PolicyTypeError(PolicyError, TypeError):
    """An expression is ill-typed, refers to an unknown name, or may overflow."""


class PolicySetError(PolicyError):
    """Policies are fine one by one but conflict when loaded together."""


class RecordError(EcorulesError, ValueError):
    """One record (a case or a registry row) is invalid; it names the field and the value."""

    def __init__(self, message: str, field: str | None = None, value: object = None):
        self.message = message
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}" if field else message)

    def __reduce__(self):
        return (type(self), (self.message, self.field, self.value))


class ParameterNotSetError(EcorulesError, LookupError):
    """A rule needs a parameter that has no value in force on the date of evaluation."""


class UsageError(EcorulesError, TypeError, ValueError):
    """A call the API does not accept: an argument of the wrong type or an unknown name (a
    domain no policy judges, a backend that does not exist). A TypeError and a ValueError
    too, so that callers catching either keep working."""


class ClosedError(EcorulesError, RuntimeError):
    """An evaluator (or its durable-rules host) used after :meth:`close`."""


class KernelError(EcorulesError):
    """The batch kernel cannot run a program (raised when compiling, never silently)."""
