"""libyaml's parser is only a faster way to the pure-Python loader's result.

Whatever ``load_yaml_text`` returns or raises must be exactly what the pure-Python loader
(``_Loader``, the reference) returns or raises: the same values, the same spans of every
mapping, key, value, sequence and item, the same error text with the same ``file:line:col``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ecorules.rules import PolicyError, _yaml, load_policies
from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).parents[2]
YAML_FILES = sorted(
    path for folder in ("policies", "tests", "examples") for path in (ROOT / folder).rglob("*.y*ml")
)
needs_libyaml = pytest.mark.skipif(_yaml._CLoader is None, reason="PyYAML was built without libyaml")


def _tree(value, ancestors=()):
    """The value with every span, comparable with ==; a recursive alias is cut short."""
    if id(value) in ancestors:
        return "<recursion>"
    ancestors += (id(value),)
    if isinstance(value, _yaml.Located):
        return ("map", value.span, [(key, value.key_spans[key], value.value_spans[key], _tree(item, ancestors))
                                    for key, item in value.items()])
    if isinstance(value, _yaml.LocatedList):
        return ("seq", value.span, list(value.item_spans), [_tree(item, ancestors) for item in value])
    return (type(value), value)


def _outcome(load, text):
    try:
        return "ok", _tree(load(text))
    except PolicyError as error:
        return "error", type(error), str(error)
    except Exception as error:  # noqa: BLE001 - the reference's crashes must be kept too
        return "crash", type(error), str(error)


def _reference(text):
    return _yaml._load(_yaml._Loader, text, "f.yaml")


def _assert_same(text):
    assert _outcome(lambda t: _yaml.load_yaml_text(t, "f.yaml"), text) == _outcome(_reference, text)


EDGE_CASES = {
    "crlf": "a: 1\r\nb:\r\n  - x\r\n  - y: 2.5\r\n",
    "cr only": "a: 1\rb: 2\r",
    "bom first": "\ufeffa: 1\n",
    "bom inside": "a: '\ufeff'\n",
    "line separators": "a: 1\x85b: 2\u2029c: 3\n",
    "tab after colon": "a:\t1\n",
    "tab in flow": "a: [1,\t2]\n",
    "tab in plain": "a: x\ty\n",
    "no final newline": "a: 1",
    "comment without newline": "a: 1\n# end",
    "chinese block": "名称: 金水区\n说明: |\n  第一行\n  第二行\n",
    "merge": "a: &x {k: 1}\nb: *x\nc:\n  <<: [*x]\n  d: 2\n",
    "folded and kept": "a: >\n  one\n  two\n\n  three\nb: |+\n  x\n\n\nc: |-\n  y\n",
    "escapes": 'a: "\\x41\\u00e9\\U0001F600\\t\\\\\\"\\/\\N\\_\\L\\P"\n',
    "surrogate escape": 'a: "\\ud800"\n',
    "multi-line plain": "a: one\n  two\nb: 1\n",
    "empty flow value": "{a: 1, b: ,2}\n",
    "empty flow key": "{: a}\n",
    "question mark in flow": "a: {b: x ?y}\n",
    "colon in flow": "a: [http://x.y/z, b:c]\n",
    "block header comment": "a: |#\n  x\n",
    "spaced header comment": "a: |  # note\n  x\n",
    "explicit tags": "a: !!str 1\nb: !!float '1.5'\n",
    "tag with comma": "[!!str,a]\n",
    "python tag": "a: !!python/object:os.system 'ls'\n",
    "yaml 1.2": "%YAML 1.2\n---\na: 1\n",
    "yaml 2.0": "%YAML 2.0\n---\na: 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "empty": "",
    "only a comment": "# hi\n",
    "duplicate key": "a: 1\na: 2\n",
    "decimals": "a: 1.0\nb: .5\nc: 1e3\nd: 1_000.5\ne: -0.0\n",
    "infinite": "a: .inf\n",
    "control character": "a: \x07\n",
    "bad date": "a: 2012-13-45\n",
    "nesting": "a: " + "[" * 45 + "]" * 45 + "\n",
    "aliases": "a: &x 1\nb: [" + ", ".join(["*x"] * 101) + "]\n",
    "recursive": "&x {a: *x}\n",
    "complex key": "? [a, b]\n: 1\n",
    "bad indentation": "a:\n  b: 1\n c: 2\n",
    "unclosed flow": "a: [1, 2\n",
    "plain starting with @": "a: @x\n",
}


@pytest.mark.parametrize("name", EDGE_CASES)
def test_edge_cases_read_as_the_reference_reads_them(name):
    _assert_same(EDGE_CASES[name])


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_yaml_file_of_the_project_reads_as_the_reference_reads_it(path):
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        pytest.skip("not UTF-8: refused before parsing")
    _assert_same(text)


@needs_libyaml
def test_the_shipped_policies_take_the_c_path():
    """Else the speed is silently lost: each shipped file must pass libyaml's checks."""
    for path in (ROOT / "policies").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8-sig")
        assert _yaml._c_may_read(text), path
        _yaml._load(_yaml._CLoader, text, str(path))  # raises if the C path would give up


def test_without_libyaml_the_policies_load_the_same(monkeypatch):
    with_c = load_policies()
    monkeypatch.setattr(_yaml, "_CLoader", None)
    assert load_policies() == with_c


_WORDS = ["a", "key", "金水区", "x y", "it's", 'q"d', "line\nbreak", "1", "2.5", "yes", "", " lead",
          "trail ", "#h", "a: b", "- x", "?q", "😀", "é\u00a0", "long " * 20]
_SCALARS = st.one_of(st.sampled_from(_WORDS), st.integers(-5, 10**6), st.none(), st.booleans())
_TREES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_WORDS), inner, max_size=4)),
    max_leaves=12,
)
_INSERTS = [" ", "  ", "\n", "\r\n", "\t", "#", "# c", ":", "-", "'", '"', "&A ", "*A", "|", ">", "!", "?", ",",
            "[", "]", "{", "}", "\u2028", "\ufeff"]


@st.composite
def _documents(draw):
    """Documents that PyYAML writes in one of its styles, then damaged at a few places."""
    text = yaml.safe_dump(
        draw(_TREES), allow_unicode=draw(st.booleans()), indent=draw(st.sampled_from([2, 4])),
        default_flow_style=draw(st.sampled_from([False, True, None])), width=draw(st.sampled_from([20, 1000])),
        default_style=draw(st.sampled_from([None, "'", '"', "|", ">"])),
    )
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(_INSERTS)) + text[at + draw(st.integers(0, 1)):]
    return text


@settings(max_examples=300, deadline=None)
@given(_documents())
def test_damaged_documents_read_as_the_reference_reads_them(text):
    _assert_same(text)


@pytest.mark.parametrize("path", ["c", "reference"])
def test_a_control_character_and_an_impossible_date_are_errors_with_their_place(path, monkeypatch):
    if path == "reference":
        monkeypatch.setattr(_yaml, "_CLoader", None)
    with pytest.raises(PolicyError) as caught:
        _yaml.load_yaml_text("policy:\n  id: x\x01y\n", "p.yaml")
    assert str(caught.value).startswith(
        "p.yaml:2:8: YAML: character U+0001 is not allowed (a control character); remove it")
    with pytest.raises(PolicyError) as caught:
        _yaml.load_yaml_text("policy:\n  effective: 2012-13-45\n", "p.yaml")
    assert str(caught.value).startswith("p.yaml:2:14: '2012-13-45' is not a valid date (month must be in 1..12)")
    assert str(_yaml.load_yaml_text("d: 2012-02-29\n", "p.yaml")["d"]) == "2012-02-29"
