"""`python -m services NAME …`, the image's entrypoint, runs the named service or refuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
USAGE = "usage: python -m services <catalog|ledger|notifier>"


def run_services(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *arguments],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unknown_service_name_fails_with_the_usage() -> None:
    """A mistyped service name in `docker run IMAGE …` stops at once and says what is accepted."""
    result = run_services("bogus")
    assert result.returncode != 0
    assert USAGE in result.stderr


def test_no_service_name_fails_with_the_usage() -> None:
    """An image run with its command overridden to nothing does not start some default service."""
    result = run_services()
    assert result.returncode != 0
    assert USAGE in result.stderr


def test_the_arguments_after_the_name_reach_that_service(tmp_path: Path) -> None:
    """`… catalog migrate now` is the catalog's own command line: its own refusal, no database."""
    database = tmp_path / "catalog.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["CATALOG_DATABASE_URL"] = f"sqlite:///{database}"
    result = run_services("catalog", "migrate", "now", env=env)
    assert result.returncode == 1
    assert "usage: python -m services.catalog [migrate]" in result.stderr
    assert not database.exists()


def test_migrate_through_the_dispatcher_migrates(tmp_path: Path) -> None:
    """`docker run IMAGE catalog migrate` brings the catalog's database to its schema and exits."""
    database = tmp_path / "catalog.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATALOG_")}
    env["CATALOG_DATABASE_URL"] = f"sqlite:///{database}"
    result = run_services("catalog", "migrate", env=env)
    assert result.returncode == 0, result.stderr
    assert database.stat().st_size > 0
