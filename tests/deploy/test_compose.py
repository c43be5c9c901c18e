"""deploy/compose.yaml follows the Compose specification and starts things in a safe order."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from cryptography.fernet import Fernet

from services.__main__ import SERVICES
from services.catalog.settings import CatalogSettings
from services.common.auth import AuthSettings
from services.ledger.audit.signing import load_signing_key
from services.ledger.settings import LedgerSettings
from services.notifier.settings import NotifierSettings
from tests.deploy.support import (
    DEPLOY,
    IMAGE,
    PROJECT_ROOT,
    SETTINGS,
    is_setting,
    load_yaml,
    run_probe,
    stub_server,
)

COMPOSE_FILE = DEPLOY / "compose.yaml"
# Secrets by name, never by value: these variables may only be the paths of secret files.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN|DATABASE_URL", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"://[^\s/:@]+:[^\s/@]+@")


def compose_spec() -> dict[str, Any]:
    """The Compose specification's JSON Schema, as check-jsonschema ships it (pinned)."""
    text = (
        resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    ).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return document


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def app_services() -> dict[str, dict[str, Any]]:
    """The services' containers (built from the image), migrations included."""
    return {name: s for name, s in services().items() if s.get("image") == IMAGE}


def long_running() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if s.get("restart") != "no"}


def migrations() -> dict[str, str]:
    """Which compose service migrates which service's database."""
    found = {}
    for name, service in app_services().items():
        command = service["command"]
        if command[1:] == ["migrate"]:
            found[command[0]] = name
    return found


def test_the_file_matches_the_compose_specification() -> None:
    """compose.yaml validates against the Compose specification's JSON Schema."""
    schema = compose_spec()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = [
        f"{error.json_path}: {error.message}"
        for error in validator_class(schema).iter_errors(compose())
    ]
    assert errors == []


def test_the_schema_check_is_strict() -> None:
    """A misspelt key is refused, so a clean result means something."""
    schema = compose_spec()
    document = compose()
    document["services"]["catalog"]["helthcheck"] = {"test": ["NONE"]}
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert not validator.is_valid(document)


def test_every_dependency_names_its_condition() -> None:
    """No bare `depends_on` list: a bare one waits for a container to start, not to be ready."""
    for name, service in services().items():
        for dependency, how in service.get("depends_on", {}).items():
            assert isinstance(how, dict), (name, dependency)
            assert "condition" in how, (name, dependency)


def test_everything_that_uses_postgres_waits_until_it_is_healthy() -> None:
    """Every container of the image, migrations first, starts once PostgreSQL takes connections."""
    for name, service in app_services().items():
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name


def test_each_service_starts_after_its_migration_completed() -> None:
    """catalog, ledger and notifier start only once their own schema migration succeeded."""
    migrating = migrations()
    assert set(migrating) == set(SERVICES)
    for service_name, migration in migrating.items():
        assert services()[migration]["restart"] == "no"
        depends_on = services()[service_name]["depends_on"]
        assert depends_on[migration] == {"condition": "service_completed_successfully"}


def test_the_services_start_catalog_then_ledger_then_notifier() -> None:
    """The ledger waits for a healthy catalog, the notifier for a healthy ledger."""
    assert services()["ledger"]["depends_on"]["catalog"] == {"condition": "service_healthy"}
    assert services()["notifier"]["depends_on"]["ledger"] == {"condition": "service_healthy"}


def test_every_long_running_service_has_a_healthcheck() -> None:
    """`service_healthy` needs a healthcheck; one-shot migrations switch the image's off."""
    for name, service in services().items():
        check = service.get("healthcheck", {})
        if name in long_running():
            assert check.get("test"), name
            assert not check.get("disable"), name
        else:
            assert check == {"disable": True}, name


def test_postgres_is_pinned_keeps_its_data_and_is_checked_over_tcp() -> None:
    """An official image by tag, a named volume, and pg_isready over TCP, not the init socket."""
    postgres = services()["postgres"]
    name, _, tag = postgres["image"].partition(":")
    assert name == "postgres"
    assert tag
    assert tag != "latest"
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]
    test = postgres["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert "--host=127.0.0.1" in test


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_services_healthcheck_passes_only_when_ready(status: int, healthy: bool) -> None:
    """The services' probe asks /readyz (database answers too) and fails on anything but 2xx."""
    for name in SERVICES:
        test = services()[name]["healthcheck"]["test"]
        assert test[0] == "CMD"
        assert "http://127.0.0.1:8000/readyz" in test[3]
        with stub_server(status) as server:
            exit_status = run_probe(test[1:], server.port)
        assert server.paths == ["/readyz"]
        assert (exit_status == 0) is healthy, name


def test_each_service_is_built_from_the_repository_dockerfile() -> None:
    """Context is the repository root, so the image is built, never pulled under its bare name."""
    for name, service in app_services().items():
        build = service["build"]
        assert (COMPOSE_FILE.parent / build["context"]).resolve() == PROJECT_ROOT, name
        assert (PROJECT_ROOT / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
        assert service["command"][0] in SERVICES, name


def test_the_services_are_published_on_8001_8002_8003() -> None:
    """The ports the README names map to 8000 in each container, on loopback only."""
    published = {name: services()[name]["ports"] for name in SERVICES}
    assert published == {
        "catalog": ["127.0.0.1:8001:8000"],
        "ledger": ["127.0.0.1:8002:8000"],
        "notifier": ["127.0.0.1:8003:8000"],
    }


def test_services_find_each_other_by_compose_name() -> None:
    """Every *_URL setting names another compose service on the container port."""
    for name in SERVICES:
        for key, value in services()[name]["environment"].items():
            if key.endswith("_URL"):
                url = urlsplit(value)
                assert url.hostname in services(), (name, key)
                assert url.hostname != name, (name, key)
                assert url.port == 8000, (name, key)
    assert services()["ledger"]["environment"]["LEDGER_CATALOG_URL"] == "http://catalog:8000"
    notifier = services()["notifier"]["environment"]
    assert notifier["NOTIFIER_LEDGER_URL"] == "http://ledger:8000"
    assert notifier["NOTIFIER_CATALOG_URL"] == "http://catalog:8000"


def test_every_service_runs_in_production_mode_and_migrates_only_by_the_job() -> None:
    """*_MODE=production (no development secret accepted); no migration at start-up."""
    for name, service in app_services().items():
        environment = service["environment"]
        prefix = service["command"][0].upper()
        assert environment[f"{prefix}_MODE"] == "production", name
        if "migrate_on_start" in SETTINGS[f"{prefix}_"].model_fields:
            assert environment[f"{prefix}_MIGRATE_ON_START"] == "false", name


def test_every_variable_and_secret_is_a_setting_of_its_service() -> None:
    """Settings ignore unknown names, so a misspelt variable or secret file would go unnoticed."""
    for name, service in app_services().items():
        prefix = service["command"][0].upper() + "_"
        for variable in service["environment"]:
            assert variable.startswith(prefix), (name, variable)
            assert is_setting(variable), (name, variable)
        for secret in service["secrets"]:
            assert is_setting(secret), (name, secret)


def test_no_secret_value_is_written_in_the_file() -> None:
    """No secret-named variable in any environment, no credentials in any URL."""
    assert not CREDENTIALS_IN_URL.search(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in services().items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert key.endswith("_FILE"), (name, key)
                assert str(value).startswith("/run/secrets/"), (name, key)


def test_secrets_are_files_in_the_ignored_secrets_folder() -> None:
    """Each secret is ./secrets/<its name>, a folder git ignores but for its .gitignore."""
    for name, secret in compose()["secrets"].items():
        assert secret == {"file": f"./secrets/{name}"}
    ignore = (DEPLOY / "secrets" / ".gitignore").read_text(encoding="utf-8").split()
    assert [rule for rule in ignore if not rule.startswith("#")][-2:] == ["*", "!.gitignore"]


def test_each_service_sees_only_its_own_secrets() -> None:
    """A service's container gets the shared token secret and its own prefix's secrets only."""
    for name, service in app_services().items():
        prefix = service["command"][0]
        for secret in service["secrets"]:
            assert secret == "auth_jwt_secret" or secret.startswith(f"{prefix}_"), (name, secret)
        assert f"{prefix}_database_url" in service["secrets"], name


def generate_secrets(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DEPLOY / "generate-secrets.sh"), str(folder)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_generate_secrets_makes_every_secret_in_a_form_the_services_accept(tmp_path: Path) -> None:
    """The script makes exactly the secrets compose mounts, each usable where it goes."""
    folder = tmp_path / "secrets"
    result = generate_secrets(folder)
    assert result.returncode == 0, result.stderr
    made = {path.name: path.read_text(encoding="utf-8") for path in folder.iterdir()}
    assert set(made) == set(compose()["secrets"])
    load_signing_key(made["ledger_checkpoint_key"])
    Fernet(made["notifier_encryption_key"].encode())
    for name in ("auth_jwt_secret", "ledger_beneficiary_key", "ledger_sealing_key"):
        assert len(base64.urlsafe_b64decode(made[name] + "=" * (-len(made[name]) % 4))) >= 32
    for service in SERVICES:
        url = urlsplit(made[f"{service}_database_url"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert (url.username, url.path) == (service, f"/{service}")
        assert url.password == made[f"{service}_db_password"]


def test_the_services_read_the_generated_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mounted as /run/secrets, each file is the value of the setting it is named after."""
    for variable in list(os.environ):
        if variable.startswith(tuple(SETTINGS)):
            monkeypatch.delenv(variable)  # the environment would win over the files
    folder = tmp_path / "secrets"
    assert generate_secrets(folder).returncode == 0

    def made(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    auth = AuthSettings(_secrets_dir=folder)
    assert auth.jwt_secret.get_secret_value() == made("auth_jwt_secret")
    ledger = LedgerSettings(_secrets_dir=folder)
    assert ledger.database_url == made("ledger_database_url")
    assert ledger.beneficiary_key.get_secret_value() == made("ledger_beneficiary_key")
    assert ledger.sealing_key.get_secret_value() == made("ledger_sealing_key")
    assert ledger.checkpoint_key.get_secret_value() == made("ledger_checkpoint_key")
    notifier = NotifierSettings(_secrets_dir=folder)
    assert notifier.database_url == made("notifier_database_url")
    assert notifier.encryption_key.get_secret_value() == made("notifier_encryption_key")
    catalog = CatalogSettings(_secrets_dir=folder)
    assert catalog.database_url == made("catalog_database_url")


def test_generate_secrets_keeps_what_exists_and_hides_the_folder(tmp_path: Path) -> None:
    """A second run changes no key (data sealed under it stays readable); others can't list them."""
    folder = tmp_path / "secrets"
    assert generate_secrets(folder).returncode == 0
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert generate_secrets(folder).returncode == 0
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == before
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    # Bind-mounted as they are: the containers' users (10001, postgres) must be able to read them.
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o644}


def test_postgres_creates_each_service_database_from_secret_files() -> None:
    """init.sql gives each service its own role and database, its password read from a secret."""
    postgres = services()["postgres"]
    assert "./postgres/init.sql:/docker-entrypoint-initdb.d/init.sql:ro" in postgres["volumes"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    script = (DEPLOY / "postgres" / "init.sql").read_text(encoding="utf-8")
    assert not re.search(r"PASSWORD\s+'", script, re.IGNORECASE)
    for service in SERVICES:
        assert f"{service}_db_password" in postgres["secrets"]
        assert f"`cat /run/secrets/{service}_db_password`" in script
        assert f"CREATE ROLE {service} LOGIN PASSWORD :'{service}_password';" in script
        assert f"CREATE DATABASE {service} OWNER {service};" in script
        assert f"REVOKE ALL ON DATABASE {service} FROM PUBLIC;" in script
