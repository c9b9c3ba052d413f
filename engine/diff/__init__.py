"""``ecorules diff``: the impact of a rule change, proposed policies against those in force.

Read ``_run.py`` first: :func:`run_diff` is the whole feature as one library call, and it
names every step below. The click command is ``engine/_cli_diff.py``; it only parses options
and renders this package's document.

- ``_run.py`` — load both policy sets, score the registry, compare, build the document.
- ``_source.py`` — the registry read once, batch by batch, with the columns both sets need.
- ``_impact.py`` — both compiled programs over each batch in one pass (the fastcalc kernel),
  totals per district, rule and list; its result types are in ``_impact_types.py``, and
  keeping and building the changed rows is ``_changed_rows.py``.
- ``_policy_diff.py`` — what changed in the policy text: rules, parameters, dated values.
- ``_cases.py`` — the base test cases run under the proposal, and the proposal's own cases.
- ``_report.py`` — the one JSON document (its shape is documented there) and the text summary.
- ``_html.py`` — the self-contained HTML page; its style sheet and script are ``_assets.py``
  (Python strings, so there is no data file to ship).

Nothing here is imported by the single-case or batch parts of ``engine/``; this package uses
their ``_evaluator``, ``_testing``, ``_sources`` and ``_explain`` modules.
"""
