"""The text of a one-file test policy, for tests that write YAML and check positions in it."""

from __future__ import annotations


def policy_head(policy_id: str, facts: str) -> str:
    """Lines 1-9 (the header and the uscc fact), then ``facts`` (YAML lines indented 2)."""
    return (
        f'policy:\n  id: {policy_id}\n  title: t\n  authority: t\n  document: t\n  version: "1"\n'
        f"  effective: 2000-01-01\nfacts:\n  uscc: {{type: string}}\n{facts}"
    )
