"""The diff as one JSON document, and its text summary for the terminal.

Every output (text, ``--format json``, the HTML page) is rendered from the same document
built by :func:`build_document`, so the figures cannot disagree between them.

The document (``format: "ecorules-diff/1"``); amounts are integers in yuan, dates ISO text
(where a rule of either side rounds to the fen, ``totals.unit`` is "fen" and every amount is
exact text with two places, "0.48", as ``ecorules explain`` writes a finding in fen)::

    {
      "format": "ecorules-diff/1",
      "as_of": "2014-01-01",
      "registry": "path/of/registry.csv",
      "base":     {"path": "policies/", "policies": ["id@version", ...], "fingerprint": "sha256"},
      "proposed": {"path": "drafts/",   "policies": [...],               "fingerprint": "..."},
      "rows": {"in": 12, "compared": 11, "rejected_base": 1, "rejected_proposed": 1,
               "rejected_only_proposed": 0,         # figures below are over the compared rows
               "unreadable": 0},                    # malformed lines: never reached a scorer
      "totals": {"before_yuan": 42000000, "after_yuan": 48000000, "difference_yuan": 6000000,
                 "changed_enterprises": 5, "districts_with_impact": 4,
                 "list_entries": 0, "list_exits": 0},
      "districts": [{"district": "中原区", "before_yuan", "after_yuan", "difference_yuan",
                     "enterprises_before", "enterprises_after",   # with an amount owed
                     "changed_enterprises"}, ...],                 # by |difference|, then name
      "rules": [{"key": "policy.id:rule_id", "policy": "policy.id", "rule": "rule_id",
                 "status": "added" | "removed" | "changed" | "parameter changed"
                           | "rounding changed" | "unchanged" | "not in force",
                 "title", "kind", "before_yuan", "after_yuan", "difference_yuan",
                 "fired_before", "fired_after",                    # rows on which it fired
                 "condition", "reads": [fact, ...],
                 "citation": {"document", "article", "text"},      # the proposal's, else the base's
                 "citation_before": {...} | null}, ...],           # only when the words changed
      "lists": [{"list", "title", "before", "after", "entered", "left"}, ...],
      "enterprises": {"count": 5, "shown": 5, "top": 20,          # count: all changed rows
                      "items": [{"uscc", "name", "district", "before_yuan", "after_yuan",
                                 "difference_yuan", "lists_entered": [list id],
                                 "lists_left": [list id],
                                 "rules": [{"key", "before_yuan", "after_yuan",   # responsible
                                            "fired_before", "fired_after",
                                            "lists_entered", "lists_left"}],
                                 "facts": {registry column: value}}, ...]},
                      # items: by |difference| then USCC; the first "top" are explained
      "tests": {"base_under_proposal": {"run", "passed", "failed", "not_run",
                                        "failures": [{"policy", "case", "where", "problems"}],
                                        "not_run_cases": [{"policy", "case", "reason"}]},
                "proposal": {"run", "passed", "failed", "failures": [...]}},
      "policy_changes": {"counts": {...}, "policies": [...], "facts": [...], "unchanged": [...]}
    }

``policy_changes`` is :meth:`PolicyDiff.to_dict` (see ``_policy_diff.py``).
"""

from __future__ import annotations

import datetime as dt
import textwrap
import unicodedata
from typing import Any

from ecorules.rules import Citation, PolicySet

from .._explain import _yuan
from ._cases import CaseCheck
from ._impact import Impact, RuleImpact
from ._policy_diff import PolicyDiff, plain

FORMAT = "ecorules-diff/1"


def _citation(citation: Citation | None) -> dict[str, Any] | None:
    if citation is None:
        return None
    return {"document": citation.document, "article": citation.article, "text": citation.text}


def _rule_status(rule: RuleImpact, changed_rules: set[tuple[str, str]], changed_parameters: set[tuple[str, str]],
                 rounded: frozenset[tuple[str, str]] = frozenset()) -> str:
    """The rule's own text changed, or the rounding its policy declares for its amounts, or a
    parameter it reads, or none (figures may still move when another rule changes the
    population, e.g. a list)."""
    if rule.base is None and rule.proposed is None:
        return "not in force"
    if rule.base is None:
        return "added"
    if rule.proposed is None:
        return "removed"
    if (rule.policy, rule.rule) in changed_rules:
        return "changed"
    if (rule.policy, rule.rule) in rounded:
        return "rounding changed"
    reads = set(rule.base.parameters) | set(rule.proposed.parameters)
    if any((rule.policy, name) in changed_parameters for name in reads):
        return "parameter changed"
    return "unchanged"


def _rule_entry(rule: RuleImpact, changed_rules, changed_parameters, rounded=frozenset()) -> dict[str, Any]:
    info = rule.proposed or rule.base
    before = _citation(rule.base.citation) if rule.base else None
    after = _citation(rule.proposed.citation) if rule.proposed else None
    return {
        "key": f"{rule.policy}:{rule.rule}",
        "policy": rule.policy,
        "rule": rule.rule,
        "status": _rule_status(rule, changed_rules, changed_parameters, rounded),
        "title": info.title if info else None,
        "kind": info.kind if info else None,
        "before_yuan": rule.before_yuan,
        "after_yuan": rule.after_yuan,
        "difference_yuan": rule.difference_yuan,
        "fired_before": rule.fired_before,
        "fired_after": rule.fired_after,
        "condition": info.condition if info else None,
        "reads": list(info.reads) if info else [],
        "citation": after or before,
        "citation_before": before if before and after and before != after else None,
    }


def _set_entry(path: str, policies: PolicySet) -> dict[str, Any]:
    return {"path": path, "policies": [p.key for p in policies], "fingerprint": policies.fingerprint}


def _failure(result) -> dict[str, Any]:
    return {"policy": result.policy.key, "case": result.case.name, "where": result.where, "problems": list(result.problems)}


def build_document(
    impact: Impact,
    policy_diff: PolicyDiff,
    cases: CaseCheck,
    *,
    base: tuple[str, PolicySet],
    proposed: tuple[str, PolicySet],
    registry: str,
    top: int,
) -> dict[str, Any]:
    """The one document every output is rendered from (see the module docstring)."""
    changed_rules = {(policy.policy, item.name) for policy in policy_diff.policies for item in policy.rules}
    changed_parameters = {(policy.policy, item.name) for policy in policy_diff.policies for item in policy.parameters}
    rounded = frozenset((policy.policy, name) for policy in policy_diff.policies for name in policy.rounded)
    rules = [_rule_entry(rule, changed_rules, changed_parameters, rounded) for rule in impact.rules]
    items = [
        {
            "uscc": e.uscc,
            "name": e.name,
            "district": e.district,
            "before_yuan": e.before_yuan,
            "after_yuan": e.after_yuan,
            "difference_yuan": e.difference_yuan,
            "lists_entered": list(e.lists_entered),
            "lists_left": list(e.lists_left),
            "rules": [
                {
                    "key": f"{r.policy}:{r.rule}",
                    "before_yuan": r.before_yuan,
                    "after_yuan": r.after_yuan,
                    "fired_before": r.fired_before,
                    "fired_after": r.fired_after,
                    "lists_entered": list(r.lists_entered),
                    "lists_left": list(r.lists_left),
                }
                for r in e.rules
            ],
            "facts": plain(e.facts),
        }
        for e in impact.changed
    ]
    base_results = cases.base_under_proposal
    return {
        "format": FORMAT,
        "as_of": impact.as_of.isoformat(),
        "registry": registry,
        "base": _set_entry(*base),
        "proposed": _set_entry(*proposed),
        "rows": {
            "in": impact.rows_in,
            "compared": impact.rows_compared,
            "rejected_base": impact.rejected_base,
            "rejected_proposed": impact.rejected_proposed,
            "rejected_only_proposed": impact.rejected_only_proposed,
            "unreadable": impact.rows_unreadable,
        },
        "totals": {
            "before_yuan": impact.before_yuan,
            "after_yuan": impact.after_yuan,
            "difference_yuan": impact.difference_yuan,
            "unit": impact.unit,
            "changed_enterprises": impact.changed_count,
            "districts_with_impact": sum(1 for d in impact.districts if d.difference_yuan),
            "list_entries": sum(item.entered for item in impact.lists),
            "list_exits": sum(item.left for item in impact.lists),
        },
        "districts": [
            {
                "district": d.district,
                "before_yuan": d.before_yuan,
                "after_yuan": d.after_yuan,
                "difference_yuan": d.difference_yuan,
                "enterprises_before": d.enterprises_before,
                "enterprises_after": d.enterprises_after,
                "changed_enterprises": d.changed,
            }
            for d in impact.districts
        ],
        "rules": rules,
        "lists": [
            {"list": x.list, "title": x.title, "before": x.before, "after": x.after, "entered": x.entered, "left": x.left}
            for x in impact.lists
        ],
        "enterprises": {"count": impact.changed_count, "shown": len(items), "top": top, "items": items},
        "tests": {
            "base_under_proposal": {
                "run": len(base_results),
                "passed": sum(r.passed for r in base_results),
                "failed": len(cases.base_failed),
                "not_run": len(cases.not_run),
                "failures": [_failure(r) for r in cases.base_failed],
                "not_run_cases": [{"policy": n.policy, "case": n.case, "reason": n.reason} for n in cases.not_run],
            },
            "proposal": {
                "run": len(cases.proposal.results),
                "passed": len(cases.proposal.results) - len(cases.proposal_failed),
                "failed": len(cases.proposal_failed),
                "failures": [_failure(r) for r in cases.proposal_failed],
            },
        },
        "policy_changes": policy_diff.to_dict(),
    }


# -- text -------------------------------------------------------------------------------------------
def _width(text: str) -> int:
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _cell(text: str, width: int, right: bool = False) -> str:
    pad = " " * max(0, width - _width(text))
    return pad + text if right else text + pad


def _table(header: list[str], rows: list[list[str]], numeric: set[int]) -> list[str]:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        lines.append("  " + "  ".join(_cell(v, widths[i], i in numeric) for i, v in enumerate(row)).rstrip())
    return lines


def _signed(amount: int) -> str:
    return f"{amount:+,}"


def _amount(amount: int) -> str:
    return f"{amount:,}"


def render_text(document: dict[str, Any]) -> str:
    """The terminal summary: totals, districts, rules, lists, tests, policy changes, top rows."""
    totals, rows = document["totals"], document["rows"]
    lines = [
        "政策修订影响评估 Impact of a proposed policy change",
        f"评估日 As of: {document['as_of']}    名录 Registry: {document['registry']}",
        f"现行 Base: {document['base']['path']} ({', '.join(document['base']['policies'])})",
        f"草案 Proposed: {document['proposed']['path']} ({', '.join(document['proposed']['policies'])})",
        f"行数 Rows: {rows['in']:,} read, {rows['compared']:,} compared, {rows['rejected_base']:,} rejected by the base set, "
        f"{rows['rejected_proposed']:,} by the proposal ({rows['rejected_only_proposed']:,} by the proposal only), "
        f"{rows['unreadable']:,} unreadable",
        "",
        f"合计 Total owed: {_yuan(totals['before_yuan'])} → {_yuan(totals['after_yuan'])}; "
        f"差额 difference {_signed(totals['difference_yuan'])} 元",
        f"结果变化的企业 Enterprises whose outcome changes: {totals['changed_enterprises']:,}; "
        f"列入名单 list entries: {totals['list_entries']:,}; 移出名单 list exits: {totals['list_exits']:,}",
    ]
    if document["districts"]:
        lines += ["", "按区县 By district (元 yuan):"]
        lines += _table(
            ["区县 district", "before", "after", "difference", "changed"],
            [[d["district"], _amount(d["before_yuan"]), _amount(d["after_yuan"]), _signed(d["difference_yuan"]), f"{d['changed_enterprises']:,}"]
             for d in document["districts"]],
            {1, 2, 3, 4},
        )
    lines += ["", "按规则 By rule (元 yuan; fired = rows):"]
    lines += _table(
        ["规则 rule", "status", "before", "after", "difference", "fired before", "fired after"],
        [[r["key"], r["status"], _amount(r["before_yuan"]), _amount(r["after_yuan"]), _signed(r["difference_yuan"]),
          f"{r['fired_before']:,}", f"{r['fired_after']:,}"] for r in document["rules"]],
        {2, 3, 4, 5, 6},
    )
    if document["lists"]:
        lines += ["", "名单 Lists (rows):"]
        lines += _table(
            ["名单 list", "before", "after", "entered", "left"],
            [[f"{x['title']} ({x['list']})", f"{x['before']:,}", f"{x['after']:,}", f"{x['entered']:,}", f"{x['left']:,}"]
             for x in document["lists"]],
            {1, 2, 3, 4},
        )
    lines += ["", *render_policy_changes(document["policy_changes"])]
    lines += ["", *_render_tests(document["tests"])]
    lines += ["", *_render_top(document)]
    return "\n".join(lines)


def render_policy_changes(changes: dict[str, Any]) -> list[str]:
    """The policy diff as readable lines (also used by the HTML page's plain-text fallback)."""
    lines = ["政策文本变化 Policy changes:"]
    if not changes["policies"] and not changes["facts"]:
        return lines + ["  无 none: the two sets say the same"]
    for policy in changes["policies"]:
        sides = f"{policy['base'] or '—'} → {policy['proposed'] or '—'}"
        lines.append(f"  {policy['status']} {policy['policy']} {policy['title']} ({sides})")
        for field in policy["header"]:
            lines.append(f"    {field['field']}: {field['before']} → {field['after']}")
        for item in policy["parameters"] + policy["lists"] + policy["rules"] + policy["tests"]:
            lines += _render_item(item)
    for item in changes["facts"]:
        lines += _render_item(item)
    return lines


_KIND_WORDS = {"parameter": "参数 parameter", "rule": "规则 rule", "list": "名单 list", "test": "用例 test", "fact": "字段 fact"}


def _render_item(item: dict[str, Any]) -> list[str]:
    title = f" {item['title']}" if item.get("title") else ""
    lines = [f"    {item['status']} {_KIND_WORDS[item['kind']]} {item['name']}{title}"]
    summary = item.get("summary") or {}
    if item["kind"] == "rule" and summary:
        lines.append(f"      when: {summary['condition']}")
        for finding in summary["findings"]:
            lines.append(f"      {finding['kind']}: {finding['amount']} (payer: {finding['payer']})")
        for sanction in summary["sanctions"]:
            lines.append(f"      list: {sanction['list']} ({sanction['reason']})")
        citation = summary["citation"]
        lines.append(f"      依据 Citation: {citation['document']} {citation['article'] or ''}".rstrip())
    if item["kind"] == "parameter" and summary:
        for value in summary["values"]:
            lines.append(f"      from {value['from']}: {value['value']} ({value['reference']})")
    for field in item["fields"]:
        lines.append(f"      {field['field']}: {field['before']} → {field['after']}")
    for value in item["values"]:
        if value["status"] == "moved":
            lines.append(f"      moved: {value['value_after']} from {value['start_before']} → from {value['start_after']}")
        elif value["status"] == "added":
            lines.append(f"      added: from {value['start_after']}: {value['value_after']} ({value['reference_after']})")
        elif value["status"] == "removed":
            lines.append(f"      removed: from {value['start_before']}: {value['value_before']}")
        else:
            lines.append(f"      changed: from {value['start_after']}: {value['value_before']} → {value['value_after']} ({value['reference_after']})")
    return lines


def _render_tests(tests: dict[str, Any]) -> list[str]:
    base, proposal = tests["base_under_proposal"], tests["proposal"]
    lines = [
        f"测试用例 Test cases: base cases under the proposal: {base['run']} run, {base['passed']} passed, "
        f"{base['failed']} failed, {base['not_run']} not run; the proposal's own: {proposal['run']} run, "
        f"{proposal['passed']} passed, {proposal['failed']} failed",
    ]
    for title, failures in (("现行用例在草案下失败 base case fails under the proposal", base["failures"]),
                            ("草案用例失败 proposal case fails", proposal["failures"])):
        for failure in failures:
            lines.append(f"  FAIL ({title}) {failure['policy']} {failure['case']} ({failure['where']})")
            lines += [f"      {problem}" for problem in failure["problems"]]
    for case in base["not_run_cases"]:
        lines.append(f"  NOT RUN {case['policy']} {case['case']}: {case['reason']}")
    return lines


def _render_top(document: dict[str, Any]) -> list[str]:
    enterprises = document["enterprises"]
    shown = enterprises["items"][: enterprises["top"]]
    lines = [f"变化最大的企业 Top changed enterprises ({len(shown)} of {enterprises['count']:,}):"]
    rules = {r["key"]: r for r in document["rules"]}
    titles = {x["list"]: x["title"] for x in document["lists"]}
    for number, item in enumerate(shown, 1):
        lines += explain_item(item, rules, titles, number)
    return lines


def explain_item(item: dict[str, Any], rules: dict[str, Any], titles: dict[str, str], number: int) -> list[str]:
    """One changed enterprise in the style of ``ecorules explain``: amounts, then each rule
    responsible with its clause quoted and the registry values it read."""
    lines = [
        f"  {number}. {item['name']}  {item['uscc']}  {item['district']}",
        f"     金额 Amount: {_yuan(item['before_yuan'])} → {_yuan(item['after_yuan'])} ({_signed(item['difference_yuan'])} 元)",
    ]
    for list_id in item["lists_entered"]:
        lines.append(f"     列入 enters: {titles.get(list_id, list_id)} ({list_id})")
    for list_id in item["lists_left"]:
        lines.append(f"     移出 leaves: {titles.get(list_id, list_id)} ({list_id})")
    for change in item["rules"]:
        rule = rules[change["key"]]
        fired = f"{'fires' if change['fired_before'] else 'does not fire'} → {'fires' if change['fired_after'] else 'does not fire'}"
        lines.append(f"     - {rule['title']} [{change['key']}, {rule['status']}]")
        if rule["kind"] is not None:
            lines.append(f"       {_amount(change['before_yuan'])} → {_amount(change['after_yuan'])} 元; {fired}")
        else:
            lists = [f"列入 enters {x}" for x in change["lists_entered"]] + [f"移出 leaves {x}" for x in change["lists_left"]]
            lines.append(f"       {'; '.join(lists) or 'list unchanged'}; {fired}")
        citation = rule["citation"]
        if citation:
            lines.append(f"       依据 Citation: {citation['document']} {citation['article'] or ''}".rstrip())
            lines += [f"       {line}" for line in textwrap.wrap(f"“{citation['text']}”", 60)]
        reads = ", ".join(f"{name}={_show(item['facts'].get(name))}" for name in rule["reads"] if name in item["facts"])
        if reads:
            lines.append(f"       读取 reads: {reads}")
    return lines


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


__all__ = ["FORMAT", "build_document", "explain_item", "render_policy_changes", "render_text"]
