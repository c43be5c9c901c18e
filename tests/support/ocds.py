"""OCDS validation for tests: libcoveocds, offline, against OCDS 1.1.5 in ../shared/ocds/.

libcoveocds answers with a report and never fails: a package passes here only when the report has
no validation errors and no values outside a closed codelist, nor conformance errors (a malformed
ocid prefix) or findings of its additional checks (empty fields and the like). The schema is
read from the zip beside the checkout; the project keeps no copy.

libcoveocds 0.17.0 reads the zip for everything but one file: on a record package it resolves
the record schema's `$ref` to the versioned release schema by downloading it, even with
`--standard-zip`. Here that download is answered from the same zip, and any other is refused.
"""

from __future__ import annotations

import json
import re
import tempfile
import warnings
import zipfile
from functools import cache
from pathlib import Path
from typing import Any, cast
from unittest import mock

import jsonref  # type: ignore[import-untyped]
from libcoveocds.api import ocds_json_output  # type: ignore[import-untyped]
from libcoveocds.config import LibCoveOCDSConfig  # type: ignore[import-untyped]
from ocdsmerge.rules import get_merge_rules  # type: ignore[import-untyped]

STANDARD_ZIP = Path(__file__).resolve().parents[3] / "shared" / "ocds" / "standard-1__1__5.zip"
SCHEMA_FOLDER = "standard-1__1__5/schema/"
RELEASE_SCHEMA = SCHEMA_FOLDER + "release-schema.json"
_STANDARD_URL = re.compile(
    r"https?://standard\.open-contracting\.org/schema/1__1__5/([\w.-]+\.json)"
)


class _Answer:
    """Just what jsonref reads of a `requests` response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def raise_for_status(self) -> None:
        """Always found: the file came out of the zip."""

    def json(self, **kwargs: Any) -> Any:
        """The file's JSON."""
        return json.loads(self._body, **kwargs)


class _StandardFromZip:
    """Stands in for `requests` in jsonref: the standard's schema files from the zip, no network."""

    def get(self, uri: str) -> _Answer:
        """The file of OCDS 1.1.5's schema at `uri`; any other URL is refused."""
        found = _STANDARD_URL.fullmatch(uri)
        if found is None:
            raise ConnectionError(f"OCDS validation runs offline; it tried to fetch {uri}")
        with zipfile.ZipFile(STANDARD_ZIP) as archive:
            return _Answer(archive.read(SCHEMA_FOLDER + found[1]))


def review(package: dict[str, Any]) -> dict[str, Any]:
    """libcoveocds's whole report on a package (parsed JSON), as its command line prints it."""
    assert STANDARD_ZIP.is_file(), f"the OCDS 1.1.5 schema is missing: {STANDARD_ZIP}"
    config = LibCoveOCDSConfig()
    config.config["standard_zip"] = STANDARD_ZIP.as_uri()
    config.config["context"] = "api"
    with (
        tempfile.TemporaryDirectory(prefix="libcoveocds-") as output,
        mock.patch.object(jsonref, "requests", _StandardFromZip()),
    ):
        report = ocds_json_output(output, json_data=package, lib_cove_ocds_config=config)
    return cast(dict[str, Any], report)


def ocds_errors(package: dict[str, Any]) -> list[str]:
    """What libcoveocds finds wrong with a package, one line each; empty when it passes."""
    report = review(package)
    errors = [
        f"{error['path']}: {error['description']} ({error.get('value')!r})"
        for error in report.get("validation_errors", [])
    ]
    errors += [
        f"{path}: {sorted(found['values'])} not in the closed codelist {found['codelist']}"
        for path, found in report.get("additional_closed_codelist_values", {}).items()
    ]
    errors += [
        f"{kind}: {found}" for kind, found in (report.get("conformance_errors") or {}).items()
    ]
    errors += [
        f"{check}: {found}" for check, found in (report.get("additional_checks") or {}).items()
    ]
    if report.get("json_deref_error"):
        errors.append(f"schema: {report['json_deref_error']}")
    return errors


def open_codelist_additions(package: dict[str, Any]) -> dict[str, list[str]]:
    """Codes outside OCDS's open codelists, by field: allowed, and to be documented."""
    found = review(package).get("additional_open_codelist_values", {})
    return {path: sorted(values["values"]) for path, values in found.items()}


@cache
def standard_merge_rules() -> dict[tuple[str, ...], str]:
    """The merge rules ocdsmerge derives from OCDS 1.1.5's release schema, read from the zip."""
    with zipfile.ZipFile(STANDARD_ZIP) as archive:
        schema = json.loads(archive.read(RELEASE_SCHEMA))
    with warnings.catch_warnings():
        # ocdsmerge calls jsonref's old spelling, which warns; the rules are what matters.
        warnings.simplefilter("ignore", DeprecationWarning)
        rules = get_merge_rules(schema)
    return cast(dict[tuple[str, ...], str], rules)
