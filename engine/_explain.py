"""The readable explanation of a decision: Chinese text with English labels, citing clauses."""

from __future__ import annotations

import textwrap

from ecorules.rules import PolicySet
from ecorules.rules._steps import Cap, NamedValue, Period

from ._decision import Decision
from ._group import ONE_ACT_ONE_FINE, GroupDecision


def _yuan(amount: int) -> str:
    """1,000,000 元 (100 万元): the figure as written in Chinese documents too."""
    text = f"{amount:,} 元"
    if amount >= 10_000 and amount % 10_000 == 0:
        text += f" ({amount // 10_000:,} 万元)"
    return text


def render_text(decision: Decision, policies: PolicySet) -> str:
    lines = [
        f"对象 Subject: {decision.subject}    评估日 As of: {decision.as_of}    类别 Domain: {decision.domain}",
        "适用政策 Policies in force: " + (", ".join(decision.policies) or "无 none"),
    ]
    if decision.law_date is not None:
        lines.append(f"适用法律之日 Law as of: {decision.law_date}")
    if decision.law_note:
        lines.append(f"从旧兼从轻 Law applied (行政处罚法第三十七条): {decision.law_note}")
    lines.append("")
    computed = {(entry.policy, entry.rule): entry.steps for entry in decision.trace}
    if decision.findings:
        lines.append("扣款/罚款 Findings:")
        for finding in decision.findings:
            lines.append(f"  - {finding.title}")
            lines.append(f"    金额 Amount: {_yuan(finding.amount_yuan)}  类型 Kind: {finding.kind.label} ({finding.kind.value})  承担方 Payer: {finding.payer}")
            if finding.law_note:
                lines.append(f"    适用法律 Law applied (行政处罚法第三十七条): {finding.law_note}")
            if not finding.imposed:
                lines.append(f"    不予处罚 Superseded: 同一违法行为按罚款数额高的规定处罚,已适用 {finding.superseded_by}")
            lines.append(f"    依据 Citation: {finding.citation}")
            lines.extend(_quote(finding.citation.text))
            lines.extend(_steps(computed.get((finding.policy, finding.rule), ()), "    "))
    else:
        lines.append("扣款/罚款 Findings: 无 none")
    if decision.sanctions:
        lines.append("名单 Sanctions:")
        for sanction in decision.sanctions:
            lines.append(f"  - 列入 {sanction.list_title} ({sanction.list}): {sanction.reason}")
            lines.append(f"    期间 From {sanction.start} until {sanction.end or '无期限 open-ended'}")
            lines.append(f"    依据 Citation: {sanction.citation}")
            lines.extend(_quote(sanction.citation.text))
            lines.extend(_steps(computed.get((sanction.policy, sanction.rule), ()), "    "))
    else:
        lines.append("名单 Sanctions: 无 none")
    for lift in decision.lifts:
        lines.append(f"  - 移出 {lift.list_title} ({lift.list}) from {lift.start}: {lift.reason} (rule {lift.rule})")
    lines.append(f"合计 Total: {_yuan(decision.total_yuan)}")
    lines.append("")
    lines.append("判断过程 Trace:")
    for entry in decision.trace:
        mark = "触发 fired" if entry.fired else "未触发 not fired"
        reads = ", ".join(f"{name}={'空 empty' if value is None else value}" for name, value in entry.reads.items())
        lines.append(f"  [{mark}] {entry.policy} {entry.rule}: {entry.condition}")
        lines.append(f"      读取 reads: {reads}")
        if entry.note:
            lines.append(f"      注 note: {entry.note}")
        lines.extend(_steps(entry.steps, "      "))
    for warning in decision.warnings:
        lines.append(f"提示 Warning: {warning}")
    return "\n".join(lines)


def render_group_text(group: GroupDecision, policies: PolicySet) -> str:
    """An enterprise and its cases: each case explained, then the enterprise on its roll-ups."""
    lines = [f"评估日 As of: {group.as_of}    案件数 Cases: {len(group.children)}", ""]
    for child in group.children:
        lines.append(f"== 案件 Case {child.subject} ==")
        lines.append(render_text(child, policies))
        lines.append("")
    if any(not f.imposed for f in group.findings):
        lines.append("一事不二罚 One act, one fine:")
        lines.extend(_quote(ONE_ACT_ONE_FINE))
        lines.append("")
    if group.parent is not None:
        lines.append(f"== 企业 Enterprise {group.parent.subject} ==")
        lines.append(render_text(group.parent, policies))
        lines.append("")
    lines.append(f"总计 Total (imposed): {_yuan(group.total_yuan)}")
    return "\n".join(lines)


_STEP_LABELS = {Period: "期间 Period", Cap: "封顶 Bound", NamedValue: "计算 Step"}


def _steps(steps, indent: str) -> list[str]:
    """How the amount and the dates were computed: each period with its first and last day
    and how it was counted, each cap and the bound taken, each named value."""
    if not steps:
        return []
    return [f"{indent}计算过程 Computed:"] + [f"{indent}  {_STEP_LABELS[type(step)]}: {step.text}" for step in steps]


def _quote(text: str) -> list[str]:
    """The clause's words, wrapped, in Chinese quotation marks."""
    wrapped = textwrap.wrap(f"“{text}”", 60)
    return [f"    {line}" for line in wrapped]
