"""The three services running as real processes, each on its own SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import RunningService, running_services


@pytest.fixture(scope="module")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's services keep their databases and logs."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def services(services_dir: Path) -> Iterator[dict[str, RunningService]]:
    """Catalog, ledger and notifier, started once per module and stopped after it."""
    with running_services(services_dir) as running:
        yield running
