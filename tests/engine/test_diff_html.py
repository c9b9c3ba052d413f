"""Tests for the diff's HTML page: self-contained, escaped, and working in a real browser.

The browser test drives Debian's Chromium (``/usr/bin/chromium``, installed by .ci/run)
through playwright's Python package, without playwright's own browser download. It is
skipped only where that browser is absent, and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from diff_fixtures import ADD_RULE, CREDIT, REMOVE_RULE, WATER, edited, write_registry, write_set
from ecorules.engine.diff._html import embedded_json, render_html
from ecorules.engine.diff._run import run_diff

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]



def draft_water() -> str:
    """More per direct-discharge case, less per outfall, and a new surcharge: bars both ways."""
    return edited(ADD_RULE).replace("value: 10000000", "value: 12000000").replace("value: 1000000\n", "value: 800000\n")


def draft_credit() -> str:
    return CREDIT.replace("direct_discharge_cases > 0", "direct_discharge_cases > 0 or untreated_outfalls > 2")


@pytest.fixture
def document(tmp_path):
    base = write_set(tmp_path / "base")
    proposed = write_set(tmp_path / "draft", draft_water(), draft_credit())
    return run_diff(base, proposed, write_registry(tmp_path / "registry.csv"), dt.date(2014, 1, 1))


@pytest.fixture
def page_file(tmp_path, document) -> Path:
    path = tmp_path / "report.html"
    path.write_text(render_html(document), encoding="utf-8")
    return path


def blob(text: str) -> dict:
    match = re.search(r'<script type="application/json" id="diff-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


def test_page_is_self_contained(page_file, document):
    text = page_file.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in text
    assert "http://" not in text and "https://" not in text
    assert "<script src" not in text and "<link" not in text and "@import" not in text and "url(" not in text
    assert '"Noto Sans CJK SC"' in text and '"Microsoft YaHei"' in text  # a CJK font stack
    assert blob(text) == json.loads(json.dumps(document, ensure_ascii=False))


def test_text_is_escaped(tmp_path):
    """A title that looks like markup stays text, in the page and in the JSON blob."""
    hostile = "<script>alert('x')</script> & </script><!--"
    water = WATER.replace("title: 排污口未治理到位,每个扣款100万元", f'title: "{hostile}"')
    water = water.replace("value: 1000000\n", "value: 1100000\n")
    base = write_set(tmp_path / "base")
    proposed = write_set(tmp_path / "draft", water)
    document = run_diff(base, proposed, write_registry(tmp_path / "r.csv"), dt.date(2014, 1, 1))
    text = render_html(document)
    assert "<script>alert" not in text and "</script><!--" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;/script&gt;&lt;!--" in text
    assert text.count("<script") == 2  # the blob and the inline script, nothing else
    assert blob(text)["rules"][1]["title"] == hostile
    assert "\\u003c/script\\u003e" in embedded_json({"t": hostile})


def test_page_without_changes_says_so(tmp_path):
    base = write_set(tmp_path / "base")
    document = run_diff(base, base, write_registry(tmp_path / "r.csv"), dt.date(2014, 1, 1))
    text = render_html(document)
    assert "两套政策内容相同 The two sets say the same." in text
    assert "没有企业的结果发生变化" in text


def test_command_writes_the_page(tmp_path):
    from click.testing import CliRunner
    from ecorules.engine._cli_diff import diff

    base = write_set(tmp_path / "base")
    proposed = write_set(tmp_path / "draft", draft_water(), draft_credit())
    out = tmp_path / "out.html"
    result = CliRunner().invoke(diff, ["--base", str(base), "--proposed", str(proposed), "--registry",
                                       str(write_registry(tmp_path / "r.csv")), "--as-of", "2014-01-01",
                                       "--html", str(out), "--format", "json"])
    # done, and exit 1: the draft's own test cases fail (a CI gate reads the exit code)
    assert result.exit_code == 1, result.output
    assert json.loads(result.output)["tests"]["proposal"]["failed"] > 0
    assert blob(out.read_text(encoding="utf-8")) == json.loads(result.output)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("no browser: /usr/bin/chromium is absent (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_page_in_a_real_browser(browser, page_file, document, tmp_path):
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if not r.url.startswith("file://") else None)
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")

    # The chart drew one bar per district with an impact, each the right length sign.
    with_impact = [d for d in document["districts"] if d["difference_yuan"]]
    bars = page.locator("#district-chart rect.bar")
    assert bars.count() == len(with_impact) == 4
    drawn = {bars.nth(i).get_attribute("data-district"): int(bars.nth(i).get_attribute("data-difference")) for i in range(bars.count())}
    assert drawn == {d["district"]: d["difference_yuan"] for d in with_impact}
    assert page.locator("#district-chart text.label").all_text_contents() == [
        d["district"] for d in sorted(with_impact, key=lambda d: -d["difference_yuan"])
    ]
    assert page.locator("#district-chart").bounding_box()["height"] > 50

    # The figures shown are the document's.
    totals = document["totals"]
    for ident, value in (("total-before", totals["before_yuan"]), ("total-after", totals["after_yuan"]),
                         ("total-difference", totals["difference_yuan"]), ("changed-count", totals["changed_enterprises"])):
        figure = page.locator(f"#{ident}")
        assert int(figure.get_attribute("data-value")) == value
        assert figure.inner_text().replace(",", "").replace(" 元", "").lstrip("+") == str(value)
    rows = page.locator("#district-table tbody tr")
    shown = [[c.strip() for c in rows.nth(i).locator("td").all_inner_texts()[:4]] for i in range(rows.count())]
    assert shown == [[d["district"], f"{d['before_yuan']:,}", f"{d['after_yuan']:,}", f"{d['difference_yuan']:+,}"]
                     for d in document["districts"]]
    assert page.locator(".explain").count() == len(document["enterprises"]["items"])

    # Sorting: click the difference header, ascending, then again, descending.
    table = page.locator("#changed-table")
    header = table.locator("th", has_text="差额 Difference")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    differences = [int(v) for v in table.locator("tbody tr td:nth-child(6)").evaluate_all("cells => cells.map(c => c.dataset.sort)")]
    assert differences == sorted(item["difference_yuan"] for item in document["enterprises"]["items"])
    header.click()
    differences = [int(v) for v in table.locator("tbody tr td:nth-child(6)").evaluate_all("cells => cells.map(c => c.dataset.sort)")]
    assert differences == sorted((item["difference_yuan"] for item in document["enterprises"]["items"]), reverse=True)
    table.locator("th", has_text="企业名称 Name").click()
    names = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert names == sorted(names)

    # Filtering: a district name keeps exactly that district's rows.
    page.fill("#filter", "二七区")
    visible = table.locator("tbody tr:not([hidden])")
    expected = [i for i in document["enterprises"]["items"] if i["district"] == "二七区"]
    assert visible.count() == len(expected) == 2
    assert sorted(visible.locator("td:nth-child(1)").all_inner_texts()) == sorted(i["uscc"] for i in expected)
    assert page.locator("#filter-count").inner_text() == f"显示 2 / {len(document['enterprises']['items'])} shown"
    page.fill("#filter", "blacklist 鑫源")
    assert visible.count() == 1
    page.fill("#filter", "")
    assert visible.count() == len(document["enterprises"]["items"])

    page.screenshot(path=str(tmp_path / "diff_report.png"), full_page=True)
    page.locator("#summary").screenshot(path=str(tmp_path / "diff_summary.png"))
    page.close()
    assert problems == []
    assert (tmp_path / "diff_report.png").stat().st_size > 10_000


def test_chart_of_decreases_only(browser, tmp_path):
    """A draft that only lowers amounts: bars grow left from an axis at the right, clear of
    the district names."""
    base = write_set(tmp_path / "base")
    proposed = write_set(tmp_path / "draft", edited(REMOVE_RULE))
    document = run_diff(base, proposed, write_registry(tmp_path / "r.csv"), dt.date(2014, 1, 1))
    path = tmp_path / "report.html"
    path.write_text(render_html(document), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        bars = [page.locator("#district-chart rect.bar").nth(i).bounding_box() for i in range(2)]
        labels = [page.locator("#district-chart text.label").nth(i).bounding_box() for i in range(2)]
        axis = page.locator("#district-chart line.axis").bounding_box()
        assert page.locator("#district-chart rect.bar.down").count() == 2  # 二七区 and 新密市
        for bar, label in zip(bars, labels, strict=True):
            assert bar["x"] > label["x"] + label["width"]
            assert abs(bar["x"] + bar["width"] - axis["x"]) < 2
        assert bars[0]["width"] < bars[1]["width"]  # -10 M (新密市) first, then -20 M (二七区)
        page.locator("#chart-box").screenshot(path=str(tmp_path / "chart_decreases.png"))
        assert errors == []
    finally:
        page.close()
