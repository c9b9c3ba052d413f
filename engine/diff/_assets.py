"""The style sheet and the script of the diff's HTML page, inlined into every page.

The page must open on an air-gapped office PC: no CDN, no web font, no framework. The script
reads the document from the page's embedded JSON blob (``#diff-data``), draws the chart of the
impact per district as inline SVG, and makes the table of changed enterprises sortable (click
a header; again to reverse) and filterable (text box). Figures outside the chart are rendered
on the server, so the page reads correctly even with scripts disabled.
"""

CSS = """
:root {
  --ink: #1d2733; --muted: #5b6775; --line: #d9dee4; --paper: #ffffff; --band: #f4f6f8;
  --up: #b8322a; --down: #23804a; --accent: #1f5f99;
}
* { box-sizing: border-box; }
body {
  margin: 0; color: var(--ink); background: var(--band);
  font-family: "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "PingFang SC",
    "Hiragino Sans GB", "Microsoft YaHei", "WenQuanYi Micro Hei", "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; line-height: 1.5;
}
header, section { max-width: 1180px; margin: 0 auto; padding: 16px 24px; }
header { background: var(--paper); border-bottom: 3px solid var(--accent); max-width: none; }
header > * { max-width: 1132px; margin-left: auto; margin-right: auto; }
h1 { font-size: 22px; margin: 4px auto; }
h1 small, h2 small { font-weight: normal; color: var(--muted); font-size: 60%; }
h2 { font-size: 18px; margin: 8px 0 12px; border-left: 4px solid var(--accent); padding-left: 8px; }
h3 { font-size: 15px; margin: 12px 0 6px; }
.meta { color: var(--muted); margin: 2px auto; }
.meta code { color: var(--ink); }
section { background: var(--paper); margin-top: 12px; border-radius: 6px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .figure { font-size: 20px; font-weight: bold; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; }
.up { color: var(--up); } .down { color: var(--down); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " ▲"; }
table.sortable th[aria-sort="descending"]::after { content: " ▼"; }
.filter { display: flex; gap: 12px; align-items: center; margin-bottom: 8px; }
.filter input { flex: 0 1 360px; padding: 6px 8px; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
.filter .count { color: var(--muted); }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; background: var(--band); border: 1px solid var(--line); }
.badge.added { background: #e7f4ec; border-color: #9fd0b1; }
.badge.removed { background: #fbeaea; border-color: #e3a5a1; }
.badge.changed, .badge.moved, .badge.parameter-changed, .badge.rounding-changed { background: #fdf5e3; border-color: #e6cf8f; }
.change { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 8px 0; }
.change ul { margin: 4px 0; padding-left: 20px; }
del { color: var(--up); } ins { color: var(--down); text-decoration: none; }
code { font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px; background: var(--band); padding: 0 3px; }
blockquote { margin: 4px 0 4px 8px; padding: 4px 10px; border-left: 3px solid var(--line); color: #34404d; }
.fail { color: var(--up); font-weight: bold; }
.problems { margin: 2px 0 8px 20px; color: var(--muted); }
#chart-box svg { width: 100%; height: auto; display: block; }
#chart-box .axis { stroke: var(--muted); stroke-width: 1; }
#chart-box text { font-size: 12px; fill: var(--ink); }
.empty { color: var(--muted); }
.explain { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.explain .head { font-weight: bold; }
.explain .rule { margin: 6px 0 0 12px; }
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("diff-data").textContent);

  function grouped(n) {
    var sign = n < 0 ? "-" : "";
    var digits = String(Math.abs(n));
    return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  function wan(n) {
    var sign = n > 0 ? "+" : (n < 0 ? "-" : "");
    var value = Math.abs(n) / 10000;
    var text = value >= 100 || value === Math.round(value) ? grouped(Math.round(value)) : value.toFixed(1);
    return sign + text + " 万元";
  }
  var chart = document.getElementById("district-chart");
  // The <svg> element comes from the page's markup, so the HTML parser gave it the SVG
  // namespace: new shapes take the namespace from it (no namespace URI to spell out here).
  function el(name, attrs, text) {
    var node = document.createElementNS(chart.namespaceURI, name);
    for (var key in attrs) { node.setAttribute(key, attrs[key]); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function drawChart() {
    var box = document.getElementById("chart-box");
    // a diff in fen writes its amounts as exact text ("0.00"): compared as numbers here
    var rows = data.districts.filter(function (d) { return Number(d.difference_yuan) !== 0; });
    // Signed, largest increase first; ties keep the document's order (the sort is stable).
    rows.sort(function (a, b) { return b.difference_yuan - a.difference_yuan; });
    if (!rows.length) {
      var p = document.createElement("p");
      p.className = "empty";
      p.textContent = "没有区县受影响 No district is affected.";
      chart.style.display = "none";
      box.appendChild(p);
      return;
    }
    var labelWidth = 230, valueWidth = 110, barHeight = 22, gap = 8, width = 1100, top = 10;
    var height = top + rows.length * (barHeight + gap) + 24;
    var max = Math.max.apply(null, rows.map(function (d) { return Math.abs(d.difference_yuan); }));
    var hasNegative = rows.some(function (d) { return d.difference_yuan < 0; });
    var hasPositive = rows.some(function (d) { return d.difference_yuan > 0; });
    // Where zero stands: in the middle when bars go both ways, else next to the labels
    // (increases only) or at the right edge (decreases only); value labels outside the bars.
    var zero, scale;
    if (hasNegative && hasPositive) {
      var half = (width - labelWidth - 2 * valueWidth) / 2;
      zero = labelWidth + valueWidth + half;
      scale = half / max;
    } else if (hasPositive) {
      zero = labelWidth + 8;
      scale = (width - zero - valueWidth) / max;
    } else {
      zero = width - 8;
      scale = (zero - labelWidth - valueWidth) / max;
    }
    var svg = chart;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    rows.forEach(function (d, i) {
      var y = top + i * (barHeight + gap);
      var length = Math.max(1, Math.abs(d.difference_yuan) * scale);
      var x = d.difference_yuan >= 0 ? zero : zero - length;
      var bar = el("rect", {"class": "bar " + (d.difference_yuan > 0 ? "up" : "down"), x: x, y: y,
        width: length, height: barHeight, fill: d.difference_yuan > 0 ? "#b8322a" : "#23804a",
        "data-district": d.district, "data-difference": d.difference_yuan});
      bar.appendChild(el("title", {}, d.district + ": " + grouped(d.before_yuan) + " → " +
        grouped(d.after_yuan) + " 元 (" + (d.difference_yuan > 0 ? "+" : "") + grouped(d.difference_yuan) + " 元)"));
      svg.appendChild(bar);
      svg.appendChild(el("text", {x: labelWidth - 8, y: y + barHeight / 2 + 4, "text-anchor": "end",
        "class": "label"}, d.district));
      var right = d.difference_yuan >= 0;
      svg.appendChild(el("text", {x: right ? x + length + 6 : x - 6, y: y + barHeight / 2 + 4,
        "text-anchor": right ? "start" : "end", "class": "value"}, wan(d.difference_yuan)));
    });
    svg.appendChild(el("line", {"class": "axis", x1: zero, x2: zero, y1: top - 4, y2: height - 20}));
    svg.appendChild(el("text", {x: zero, y: height - 4, "text-anchor": "middle"}, "0"));
  }

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    return numeric ? Number(raw) : raw;
  }

  function makeSortable(table) {
    var headers = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      th.addEventListener("click", function () {
        var numeric = th.getAttribute("data-type") === "number";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(headers, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
          var order = numeric ? x - y : (x < y ? -1 : (x > y ? 1 : 0));
          return ascending ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  }

  function makeFilterable(input, table, counter) {
    var rows = table.tBodies[0].rows;
    function apply() {
      var words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      Array.prototype.forEach.call(rows, function (row) {
        var text = row.textContent.toLowerCase();
        var keep = words.every(function (w) { return text.indexOf(w) !== -1; });
        row.hidden = !keep;
        if (keep) { shown += 1; }
      });
      counter.textContent = "显示 " + shown + " / " + rows.length + " shown";
    }
    input.addEventListener("input", apply);
    apply();
  }

  drawChart();
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
  var table = document.getElementById("changed-table");
  if (table) {
    makeFilterable(document.getElementById("filter"), table, document.getElementById("filter-count"));
  }
})();
"""
