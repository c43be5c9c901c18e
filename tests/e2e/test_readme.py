"""The README's worked example runs as written against freshly started services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import RunningService
from tests.support.readme import section


def run_example(tmp_path: Path, services: dict[str, RunningService], example: str) -> str:
    script = tmp_path / f"{example}.py"
    script.write_text(section(f"<!-- {example}:start -->", "python"), encoding="utf-8")
    # Loopback must not go through a proxy the environment may name.
    env = {
        **os.environ,
        "CATALOG_URL": services["catalog"].url,
        "LEDGER_URL": services["ledger"].url,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# In the README's order: the second example's figures assume the first ran before it.
@pytest.mark.parametrize("example", ["worked-example", "purchase-example"])
def test_examples_print_what_the_readme_says(
    services: dict[str, RunningService], tmp_path: Path, example: str
) -> None:
    expected = section(f"<!-- {example}:end -->", "text")
    assert run_example(tmp_path, services, example) == expected
    # Running it again changes nothing: every create carries the caller's code or reference.
    assert run_example(tmp_path, services, example) == expected
