"""The diff as one self-contained HTML page for legal staff (``ecorules diff --html``).

One file, nothing fetched: the style sheet and the script are inlined (``_assets``), the
document is embedded as a JSON blob that the script draws the chart from, and the fonts are
whatever CJK fonts the reader's machine has (a stack that covers Windows, macOS and Linux).
Every text that comes from a policy or a registry passes through ``html.escape``; the JSON
blob has ``<``, ``>`` and ``&`` escaped as ``\\u003c`` and so on, so no value can close the
script element or open a comment.
"""

from __future__ import annotations

import html
import json
from decimal import Decimal
from typing import Any

from .._explain import _yuan
from ._assets import CSS, JS

_STATUS_WORDS = {
    "added": "新增 added", "removed": "删除 removed", "changed": "修改 changed", "moved": "改期 moved",
    "unchanged": "未变 unchanged", "parameter changed": "参数修改 parameter changed", "not in force": "未施行 not in force",
    "rounding changed": "舍入修改 rounding changed",
}
_KIND_WORDS = {"parameter": "参数", "rule": "规则", "list": "名单", "test": "用例", "fact": "字段"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def embedded_json(document: dict[str, Any]) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&' in the text at all."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str)  # Decimal yuan: exact text
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _signed(amount: int) -> str:
    return f"{amount:+,}"


def _direction(amount: int) -> str:
    return "up" if amount > 0 else "down" if amount < 0 else ""


def _badge(status: str) -> str:
    return f'<span class="badge {_e(status.replace(" ", "-"))}">{_e(_STATUS_WORDS.get(status, status))}</span>'


def _num(value: int, text: str | None = None, cls: str = "") -> str:
    return f'<td class="num {cls}" data-sort="{value}">{_e(text if text is not None else f"{value:,}")}</td>'


def render_html(document: dict[str, Any]) -> str:
    """The whole page as text (UTF-8 when written)."""
    title = "政策修订影响评估 Impact of a proposed policy change"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)} · {_e(document['as_of'])}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        _header(document),
        _summary(document),
        _districts(document),
        _rules(document),
        _lists(document),
        _policy_changes(document["policy_changes"]),
        _tests(document["tests"]),
        _top(document),
        _changed_table(document),
        f'<script type="application/json" id="diff-data">{embedded_json(document)}</script>',
        f"<script>{JS}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _header(document) -> str:
    rows = document["rows"]
    return (
        "<header>"
        "<h1>政策修订影响评估 <small>Impact of a proposed policy change</small></h1>"
        f'<p class="meta">评估日 As of <b id="as-of">{_e(document["as_of"])}</b> · 名录 Registry <code>{_e(document["registry"])}</code> · '
        f'{rows["in"]:,} 行 rows read, {rows["compared"]:,} compared, {rows["rejected_base"]:,} rejected by the base set, '
        f'{rows["rejected_proposed"]:,} by the proposal ({rows["rejected_only_proposed"]:,} by the proposal only), '
        f'{rows["unreadable"]:,} unreadable</p>'
        f'<p class="meta">现行 Base <code>{_e(document["base"]["path"])}</code>: {_e(", ".join(document["base"]["policies"]))}</p>'
        f'<p class="meta">草案 Proposed <code>{_e(document["proposed"]["path"])}</code>: {_e(", ".join(document["proposed"]["policies"]))}</p>'
        "</header>"
    )


def _card(ident: str, label: str, value: int, text: str, sub: str = "", cls: str = "") -> str:
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="figure {cls}" id="{ident}" data-value="{value}">{_e(text)}</div>'
        f'<div class="sub">{_e(sub)}</div></div>'
    )


def _summary(document) -> str:
    totals, tests = document["totals"], document["tests"]
    failed = tests["base_under_proposal"]["failed"] + tests["proposal"]["failed"]
    difference = totals["difference_yuan"]
    cards = [
        _card("total-before", "现行合计 Owed now", totals["before_yuan"], f"{totals['before_yuan']:,} 元", _wan(totals["before_yuan"])),
        _card("total-after", "草案合计 Owed under the proposal", totals["after_yuan"], f"{totals['after_yuan']:,} 元", _wan(totals["after_yuan"])),
        _card("total-difference", "差额 Difference", difference, f"{difference:+,} 元", _wan(difference, signed=True), _direction(difference)),
        _card("changed-count", "结果变化的企业 Enterprises changed", totals["changed_enterprises"], f"{totals['changed_enterprises']:,}",
              f"{totals['districts_with_impact']} 个区县受影响 districts affected"),
        _card("list-entries", "列入/移出名单 List entries/exits", totals["list_entries"], f"+{totals['list_entries']:,} / -{totals['list_exits']:,}"),
        _card("failed-cases", "未通过的测试用例 Failing test cases", failed, f"{failed:,}",
              f"现行 base {tests['base_under_proposal']['failed']}, 草案 proposal {tests['proposal']['failed']}", "up" if failed else ""),
    ]
    return '<section id="summary"><h2>概要 <small>Summary</small></h2><div class="cards">' + "".join(cards) + "</div></section>"


def _wan(amount: int, signed: bool = False) -> str:
    """The amount in 万元 (ten thousands), exact: 4,250.5 万元."""
    sign = "-" if amount < 0 else ("+" if signed and amount > 0 else "")
    if isinstance(amount, Decimal):  # a diff in fen: exact, the fen as further places
        text = f"{abs(amount) / 10_000:,f}"
        return f"{sign}{text.rstrip('0').rstrip('.') if '.' in text else text} 万元"
    whole, rest = divmod(abs(amount), 10_000)
    return f"{sign}{whole:,}" + (f".{rest:04d}".rstrip("0") if rest else "") + " 万元"


def _districts(document) -> str:
    rows = "".join(
        f"<tr><td>{_e(d['district'])}</td>{_num(d['before_yuan'])}{_num(d['after_yuan'])}"
        f"{_num(d['difference_yuan'], _signed(d['difference_yuan']), _direction(d['difference_yuan']))}"
        f"{_num(d['enterprises_before'])}{_num(d['enterprises_after'])}{_num(d['changed_enterprises'])}</tr>"
        for d in document["districts"]
    )
    return (
        '<section id="districts"><h2>按区县 <small>Fiscal impact per district (元 yuan)</small></h2>'
        '<div id="chart-box"><svg id="district-chart" role="img" aria-label="按区县的差额 Difference per district"></svg></div>'
        '<table id="district-table" class="sortable"><thead><tr><th>区县 District</th>'
        '<th class="num" data-type="number">现行 Before</th><th class="num" data-type="number">草案 After</th>'
        '<th class="num" data-type="number">差额 Difference</th><th class="num" data-type="number">应扣企业 Owing before</th>'
        '<th class="num" data-type="number">应扣企业 Owing after</th><th class="num" data-type="number">变化 Changed</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _rules(document) -> str:
    rows = "".join(
        f"<tr><td>{_e(r['title'])}<br><code>{_e(r['key'])}</code></td><td>{_badge(r['status'])}</td>"
        f"{_num(r['before_yuan'])}{_num(r['after_yuan'])}"
        f"{_num(r['difference_yuan'], _signed(r['difference_yuan']), _direction(r['difference_yuan']))}"
        f"{_num(r['fired_before'])}{_num(r['fired_after'])}</tr>"
        for r in document["rules"]
    )
    return (
        '<section id="rules"><h2>按规则 <small>Impact per rule (元 yuan; fired = enterprises)</small></h2>'
        '<table id="rule-table" class="sortable"><thead><tr><th>规则 Rule</th><th>状态 Status</th>'
        '<th class="num" data-type="number">现行 Before</th><th class="num" data-type="number">草案 After</th>'
        '<th class="num" data-type="number">差额 Difference</th><th class="num" data-type="number">触发 Fired before</th>'
        '<th class="num" data-type="number">触发 Fired after</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></section>"
    )


def _lists(document) -> str:
    if not document["lists"]:
        return ""
    rows = "".join(
        f"<tr><td>{_e(x['title'])} <code>{_e(x['list'])}</code></td>{_num(x['before'])}{_num(x['after'])}"
        f"{_num(x['entered'], '+' + format(x['entered'], ','), 'up' if x['entered'] else '')}"
        f"{_num(x['left'], '-' + format(x['left'], ','), 'down' if x['left'] else '')}</tr>"
        for x in document["lists"]
    )
    return (
        '<section id="lists"><h2>名单 <small>Lists (enterprises)</small></h2>'
        '<table id="list-table"><thead><tr><th>名单 List</th><th class="num">现行 Before</th><th class="num">草案 After</th>'
        f'<th class="num">列入 Entered</th><th class="num">移出 Left</th></tr></thead><tbody>{rows}</tbody></table></section>'
    )


def _policy_changes(changes) -> str:
    body = []
    for policy in changes["policies"]:
        items = policy["header"] and [_fields(policy["header"])] or []
        items += [_item(item) for item in policy["parameters"] + policy["lists"] + policy["rules"] + policy["tests"]]
        body.append(
            f'<div class="change policy">{_badge(policy["status"])} <b>{_e(policy["title"])}</b> '
            f'<code>{_e(policy["base"] or "—")}</code> → <code>{_e(policy["proposed"] or "—")}</code>'
            f'<ul>{"".join(f"<li>{i}</li>" for i in items)}</ul></div>'
        )
    if changes["facts"]:
        body.append('<div class="change"><b>registry 字段 Facts</b><ul>' + "".join(f"<li>{_item(i)}</li>" for i in changes["facts"]) + "</ul></div>")
    if not body:
        body.append('<p class="empty">两套政策内容相同 The two sets say the same.</p>')
    counts = changes["counts"]
    summary = (
        f'规则 rules: +{counts["rules_added"]} / -{counts["rules_removed"]} / ~{counts["rules_changed"]}; '
        f'参数 parameters: +{counts["parameters_added"]} / -{counts["parameters_removed"]} / ~{counts["parameters_changed"]}'
    )
    return f'<section id="policy-changes"><h2>政策文本变化 <small>Policy changes · {_e(summary)}</small></h2>{"".join(body)}</section>'


def _fields(fields) -> str:
    return "<ul>" + "".join(
        f"<li><code>{_e(f['field'])}</code>: <del>{_e(_text(f['before']))}</del> → <ins>{_e(_text(f['after']))}</ins></li>"
        for f in fields
    ) + "</ul>"


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _item(item) -> str:
    head = f'{_badge(item["status"])} {_e(_KIND_WORDS[item["kind"]])} <code>{_e(item["name"])}</code> {_e(item.get("title") or "")}'
    details = []
    summary = item.get("summary") or {}
    if item["kind"] == "rule" and summary:
        details.append(f"<li>条件 when: <code>{_e(summary['condition'])}</code></li>")
        details += [f"<li>{_e(f['kind'])}: <code>{_e(f['amount'])}</code> (payer: {_e(f['payer'])})</li>" for f in summary["findings"]]
        details += [f"<li>名单 list: <code>{_e(s['list'])}</code> ({_e(s['reason'])})</li>" for s in summary["sanctions"]]
        details.append(_citation(summary["citation"]))
    if item["kind"] == "parameter" and summary:
        details += [f"<li>自 from {_e(v['from'])}: <b>{_e(v['value'])}</b> ({_e(v['reference'])})</li>" for v in summary["values"]]
    for value in item["values"]:
        if value["status"] == "moved":
            details.append(f"<li>{_badge('moved')} <b>{_e(value['value_after'])}</b>: 自 from <del>{_e(value['start_before'])}</del> → <ins>{_e(value['start_after'])}</ins></li>")
        elif value["status"] == "added":
            details.append(f"<li>{_badge('added')} 自 from {_e(value['start_after'])}: <ins>{_e(value['value_after'])}</ins> ({_e(value['reference_after'])})</li>")
        elif value["status"] == "removed":
            details.append(f"<li>{_badge('removed')} 自 from {_e(value['start_before'])}: <del>{_e(value['value_before'])}</del></li>")
        else:
            details.append(f"<li>{_badge('changed')} 自 from {_e(value['start_after'])}: <del>{_e(value['value_before'])}</del> → <ins>{_e(value['value_after'])}</ins> ({_e(value['reference_after'])})</li>")
    fields = _fields(item["fields"]) if item["fields"] else ""
    return head + (f"<ul>{''.join(details)}</ul>" if details else "") + fields


def _citation(citation) -> str:
    if not citation:
        return ""
    where = f"{citation['document']} {citation.get('article') or ''}".strip()
    return f"<li>依据 Citation: {_e(where)}<blockquote>“{_e(citation['text'])}”</blockquote></li>"


def _tests(tests) -> str:
    base, proposal = tests["base_under_proposal"], tests["proposal"]
    parts = [
        f'<p id="tests-summary">现行用例在草案下 Base cases under the proposal: {base["run"]} run, {base["passed"]} passed, '
        f'<span class="{"fail" if base["failed"] else ""}">{base["failed"]} failed</span>, {base["not_run"]} not run. '
        f'草案用例 The proposal\'s own cases: {proposal["run"]} run, {proposal["passed"]} passed, '
        f'<span class="{"fail" if proposal["failed"] else ""}">{proposal["failed"]} failed</span>.</p>'
    ]
    for heading, failures in (("现行用例在草案下失败 Base cases failing under the proposal", base["failures"]),
                              ("草案用例失败 Proposal cases failing", proposal["failures"])):
        if failures:
            parts.append(f"<h3>{_e(heading)}</h3><ul>")
            for failure in failures:
                parts.append(
                    f'<li><span class="fail">FAIL</span> <code>{_e(failure["policy"])}</code> {_e(failure["case"])} '
                    f'<small>{_e(failure["where"])}</small><ul class="problems">'
                    + "".join(f"<li>{_e(p)}</li>" for p in failure["problems"]) + "</ul></li>"
                )
            parts.append("</ul>")
    if base["not_run_cases"]:
        parts.append("<h3>未运行 Not run</h3><ul>" + "".join(
            f"<li><code>{_e(c['policy'])}</code> {_e(c['case'])}: {_e(c['reason'])}</li>" for c in base["not_run_cases"]) + "</ul>")
    return '<section id="tests"><h2>测试用例 <small>Test cases</small></h2>' + "".join(parts) + "</section>"


def _top(document) -> str:
    enterprises = document["enterprises"]
    shown = enterprises["items"][: enterprises["top"]]
    rules = {r["key"]: r for r in document["rules"]}
    titles = {x["list"]: x["title"] for x in document["lists"]}
    cards = [_explain(item, rules, titles) for item in shown]
    if not cards:
        cards.append('<p class="empty">没有企业的结果发生变化 No enterprise\'s outcome changes.</p>')
    return (
        f'<section id="top"><h2>变化最大的企业 <small>Top changed enterprises, with the clauses responsible '
        f'({len(shown)} of {enterprises["count"]:,})</small></h2>{"".join(cards)}</section>'
    )


def _explain(item, rules, titles) -> str:
    difference = item["difference_yuan"]
    lines = [
        f'<div class="explain" data-uscc="{_e(item["uscc"])}"><div class="head">{_e(item["name"])} '
        f'<code>{_e(item["uscc"])}</code> {_e(item["district"])}</div>'
        f'<div>金额 Amount: {_e(_yuan(item["before_yuan"]))} → {_e(_yuan(item["after_yuan"]))} '
        f'(<span class="{_direction(difference)}">{difference:+,} 元</span>)</div>'
    ]
    lines += [f"<div>列入 Enters: {_e(titles.get(x, x))} <code>{_e(x)}</code></div>" for x in item["lists_entered"]]
    lines += [f"<div>移出 Leaves: {_e(titles.get(x, x))} <code>{_e(x)}</code></div>" for x in item["lists_left"]]
    for change in item["rules"]:
        rule = rules[change["key"]]
        fired = f"{'触发 fires' if change['fired_before'] else '不触发 does not fire'} → {'触发 fires' if change['fired_after'] else '不触发 does not fire'}"
        if rule["kind"] is not None:
            effect = f"{change['before_yuan']:,} → {change['after_yuan']:,} 元"
        else:
            effect = "; ".join([f"列入 enters {x}" for x in change["lists_entered"]] + [f"移出 leaves {x}" for x in change["lists_left"]])
        reads = ", ".join(f"{name}={_value(item['facts'].get(name))}" for name in rule["reads"] if name in item["facts"])
        lines.append(
            f'<div class="rule">{_badge(rule["status"])} <b>{_e(rule["title"])}</b> <code>{_e(change["key"])}</code>'
            f"<div>{_e(effect)}; {_e(fired)}</div>"
            + (f"<div>读取 Reads: <code>{_e(reads)}</code></div>" if reads else "")
            + (f"<ul>{_citation(rule['citation'])}</ul>" if rule["citation"] else "")
            + "</div>"
        )
    lines.append("</div>")
    return "".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _changed_table(document) -> str:
    enterprises = document["enterprises"]
    rows = []
    for item in enterprises["items"]:
        difference = item["difference_yuan"]
        lists = " ".join([f"+{x}" for x in item["lists_entered"]] + [f"-{x}" for x in item["lists_left"]])
        rules = " ".join(r["key"].split(":", 1)[1] for r in item["rules"])
        rows.append(
            f"<tr><td>{_e(item['uscc'])}</td><td>{_e(item['name'])}</td><td>{_e(item['district'])}</td>"
            f"{_num(item['before_yuan'])}{_num(item['after_yuan'])}{_num(difference, _signed(difference), _direction(difference))}"
            f"<td>{_e(lists)}</td><td>{_e(rules)}</td></tr>"
        )
    note = ""
    if enterprises["shown"] < enterprises["count"]:
        note = f'<p class="empty">显示前 {enterprises["shown"]:,} 家(共 {enterprises["count"]:,} 家) The first {enterprises["shown"]:,} of {enterprises["count"]:,}, by |difference|.</p>'
    return (
        '<section id="changed"><h2>结果变化的企业 <small>Enterprises whose outcome changes</small></h2>'
        '<div class="filter"><input id="filter" type="search" placeholder="筛选 Filter: 名称、代码、区县、规则…" '
        'aria-label="筛选 Filter"><span class="count" id="filter-count"></span></div>'
        '<table id="changed-table" class="sortable"><thead><tr><th>统一社会信用代码 USCC</th><th>企业名称 Name</th>'
        '<th>区县 District</th><th class="num" data-type="number">现行 Before</th><th class="num" data-type="number">草案 After</th>'
        '<th class="num" data-type="number">差额 Difference</th><th>名单 Lists</th><th>规则 Rules</th></tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table>{note}</section>'
    )


__all__ = ["embedded_json", "render_html"]
