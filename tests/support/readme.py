"""The README's code blocks, for tests that run them as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def section(marker: str, fence: str) -> str:
    """The body of the first `fence` code block after `marker` in the README."""
    text = README.read_text(encoding="utf-8")
    found = re.search(re.escape(marker) + r".*?```" + fence + r"\n(.*?)```", text, re.DOTALL)
    assert found, f"README has no {fence} block after {marker!r}"
    return found.group(1)
