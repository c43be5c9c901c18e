"""The README's worked example runs as written against freshly started services."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import RunningService
from tests.support.readme import README, section

PROJECT = README.parent


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


def test_the_auditors_first_hour_runs_as_written(
    services: dict[str, RunningService], tmp_path: Path
) -> None:
    # After the worked examples above, as the README has it; in a directory of its own, with
    # the project's .venv beside it, so the state file and exports land there.
    (tmp_path / ".venv").symlink_to(PROJECT / ".venv")
    script = tmp_path / "audit.sh"
    script.write_text(section("<!-- audit-example:start -->", "sh"), encoding="utf-8")
    env = {**os.environ, "LEDGER_URL": services["ledger"].url, "NO_PROXY": "127.0.0.1"}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified: " in result.stdout
    # The 2014 push-down budget, its Cuqiao allocation and what was paid by the year's end.
    assert "appropriated 30850000.00" in result.stdout
    assert "allocated 1200000.00" in result.stdout
    assert "paid 30000.00" in result.stdout
    assert "checked " in result.stdout
    csv_lines = (tmp_path / "flow-2014.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_lines) > 3
    assert len(list((tmp_path / "ocds-2014").glob("*.record.json"))) == 2
    assert (tmp_path / ".ledger-audit" / "state.json").exists()
