"""The ledger as Open Contracting Data Standard (OCDS 1.1) releases, records and files.

Each contract's procurement process is one OCDS contracting process. Its `ocid` is the
configured prefix (default `ocds-community-ledger`; a deployment registers its own with OCDS and
sets it) followed by the purchase project's id: the process begins with the project, so its
ocid is already fixed by the planning and tender releases that come before any contract.

Releases: one per ledger event of the process, in feed order. Its `id` is the ocid and the event's
feed position (`<ocid>-<position>`), so an auditor finds its event in `/events`, and a release
never changes once made. Its `date` is the event's business time (`occurred_at`), except that an
event recorded after a later-dated one takes the date of the release before it: OCDS tools merge
releases in `date` order, and this keeps that order the ledger's, so the compiled release is
the ledger's current state. The event's own business time stays in the field it fills (award
date, date signed, date met, transaction date). Date-times are written at +08:00.

| ledger event                          | tag                 | what its release carries       |
| ------------------------------------- | ------------------- | ------------------------------ |
| project opened                        | planning            | planning.budget, tender        |
| project published                     | tender              | tender                         |
| application, withdrawal, closing,     | tenderUpdate        | tender                         |
|   evaluation, project unsuccessful    |                     |                                |
| project cancelled                     | tenderCancellation  | tender                         |
| award (after evaluation, or direct)   | award               | tender, awards                 |
| objection lodged or answered,         | awardUpdate         | tender (objections as          |
|   project contracted                  |                     |   milestones), awards          |
| budget commitment or release of the   | planningUpdate      | planning.budget                |
|   contract's value                    |                     |                                |
| contract signed                       | contract            | contracts[0]                   |
| contract activated                    | contractUpdate      | contracts[0]                   |
| contract completed or terminated      | contractTermination | contracts[0], status terminated|
| delivery reported                     | implementation      | the delivery as a milestone    |
| delivery accepted, rejected, reversed | implementationUpdate| that milestone                 |
| payment recorded                      | implementation      | the payment as a transaction   |
| payment reversed                      | implementationUpdate| the reversal as a transaction  |

Every release also carries `parties` (each organization with all its roles so far, since OCDS
replaces a party's `roles` whole when merging), `buyer` and `initiationType` "tender".

- Parties: the street office (街道办事处) is `buyer` and `procuringEntity`; the finance bureau
  holding the budget is `funder`, and `payer` once a payment is made; the provider is `tenderer`
  (if it applied), `supplier` once awarded, and `payee` once paid; other applicants are
  `tenderer`. The community (社区居委会) that implements the contract has the custom role
  `community` (the open partyRole codelist has no role for an entrusted implementer). Names are
  the catalog's as of the contract's signing; an organization it does not know is named by its id.
- planning.budget: the street office's allocation (`id`) of the budget (`projectID`, `project`);
  `amount` is the project's estimate until the contract commits its value, then the commitment
  less what completion or termination released.
- tender: procurementMethod is what the ledger enforces (open: any eligible provider may apply
  in the published period; selective: only invited ones; direct: single source or entrustment);
  procurementMethodDetails names the legal method. Status planned (draft), active (published,
  closed, evaluated), complete (awarded), cancelled, unsuccessful. Tenderers are all who applied,
  withdrawn or not. Applicants' prices never appear, sealed or disclosed: only the awarded one.
  Objections (质疑) are `assessment` milestones, met when answered.
- awards[0] (`id` = the project id): pending through publicity (公示) and objections, active once
  contracted, with the awarded price.
- contracts[0] (`id` = the contract id): active when signed, terminated when completed or
  terminated (the reason in its description). implementation.milestones: one `delivery`
  milestone per delivery (scheduled while pending; met, partiallyMet or notMet when decided;
  an acceptance reversed is notMet, its dateMet set to null so that merging removes it).
  implementation.transactions: one per payment (`payment:<treasury reference>`) and one per
  reversal (`reversal:<treasury reference>`, a negative amount), so they sum to what was paid.
- Amounts: integer fen inside; in OCDS a JSON number written from the exact decimal text
  (`380000.00`), never through a float. Read them with a decimal parser to keep them exact.

Packages: a release package per contract (or a page of contracts), and a record package whose
record embeds the releases and their compiled release, merged by `ocdsmerge` with the merge
rules of OCDS 1.1.5. `publishedDate` is the record time of the latest event in the package, so
the same ledger state always exports the same bytes. As files: `<ocid>.releases.json` and
`<ocid>.record.json`, whose `uri` is their own file URI.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast
from uuid import UUID

from ocdsmerge import Merger  # type: ignore[import-untyped]

from proto.actor import Actor
from services.ledger.application import LedgerApplication
from services.ledger.audit.ocds_process import (
    EXPORTER,
    History,
    Process,
    Reading,
    contract_process,
)
from services.ledger.audit.ocds_sections import Json, when
from services.ledger.audit.ocid import DEFAULT_OCID_PREFIX, check_prefix

__all__ = [
    "DEFAULT_OCID_PREFIX",
    "MERGE_RULES",
    "OCDS_VERSION",
    "PUBLISHER",
    "History",
    "Process",
    "Reading",
    "check_prefix",
    "compiled_release",
    "contract_process",
    "export_ocds",
    "ocds_json",
    "record_package",
    "release_package",
]

OCDS_VERSION = "1.1"
PUBLISHER = "Community services ledger"
# The merge rules of the OCDS 1.1.5 release schema (tests derive them from the schema and
# compare): the release schema is not shipped with the ledger, and ocdsmerge would fetch it.
MERGE_RULES: dict[tuple[str, ...], str] = {
    **{(field,): "omitWhenMerged" for field in ("id", "date", "tag")},
    **{
        tuple(path.split(".")): "wholeListMerge"
        for path in (
            "awards.amendment.changes",
            "awards.amendments.changes",
            "awards.items.additionalClassifications",
            "awards.suppliers.additionalIdentifiers",
            "buyer.additionalIdentifiers",
            "contracts.amendment.changes",
            "contracts.amendments.changes",
            "contracts.implementation.transactions.payee.additionalIdentifiers",
            "contracts.implementation.transactions.payer.additionalIdentifiers",
            "contracts.items.additionalClassifications",
            "contracts.relatedProcesses.relationship",
            "parties.additionalIdentifiers",
            "parties.roles",
            "relatedProcesses.relationship",
            "tender.additionalProcurementCategories",
            "tender.amendment.changes",
            "tender.amendments.changes",
            "tender.items.additionalClassifications",
            "tender.procuringEntity.additionalIdentifiers",
            "tender.submissionMethod",
            "tender.tenderers.additionalIdentifiers",
        )
    },
}


def compiled_release(releases: Sequence[Json]) -> Json:
    """The releases merged by OCDS's rules, in date order: the process's latest state."""
    return cast(Json, Merger(merge_rules=MERGE_RULES).create_compiled_release(list(releases)))


def _package(processes: Sequence[Process], uri: str, publisher: str) -> Json:
    latest = max((p.updated_at for p in processes), default=datetime.now(UTC))
    return {
        "uri": uri,
        "version": OCDS_VERSION,
        "publishedDate": when(latest),
        "publisher": {"name": publisher},
    }


def release_package(processes: Sequence[Process], *, uri: str, publisher: str = PUBLISHER) -> Json:
    """An OCDS release package of the processes' releases, in order."""
    return {
        **_package(processes, uri, publisher),
        "releases": [release for process in processes for release in process.releases],
    }


def record_package(
    processes: Sequence[Process],
    *,
    uri: str,
    packages: Iterable[str] = (),
    publisher: str = PUBLISHER,
) -> Json:
    """An OCDS record package: per process, its releases embedded and its compiled release."""
    package = _package(processes, uri, publisher)
    used = list(packages)
    if used:
        package["packages"] = used
    package["records"] = [
        {
            "ocid": process.ocid,
            "releases": process.releases,
            "compiledRelease": compiled_release(process.releases),
        }
        for process in processes
    ]
    return package


def _encode(value: Any, indent: int | None, depth: int) -> str:
    if isinstance(value, Decimal):
        # The decimal's own text is a valid JSON number: exact, with no float in between.
        return format(value, "f")
    if isinstance(value, float):
        raise TypeError(f"OCDS documents carry Decimal amounts, never a float ({value!r})")
    if isinstance(value, dict):
        colon = ": " if indent is not None else ":"
        parts = [
            json.dumps(str(key), ensure_ascii=False) + colon + _encode(item, indent, depth + 1)
            for key, item in value.items()
        ]
        return _wrap("{", "}", parts, indent, depth)
    if isinstance(value, list | tuple):
        return _wrap("[", "]", [_encode(item, indent, depth + 1) for item in value], indent, depth)
    return json.dumps(value, ensure_ascii=False)


def _wrap(start: str, end: str, parts: list[str], indent: int | None, depth: int) -> str:
    if not parts:
        return start + end
    if indent is None:
        return start + ",".join(parts) + end
    inner = "\n" + " " * (indent * (depth + 1))
    return start + inner + ("," + inner).join(parts) + "\n" + " " * (indent * depth) + end


def ocds_json(document: Any, *, indent: int | None = None) -> bytes:
    """UTF-8 JSON of an OCDS document, amounts as exact JSON numbers; indented if asked."""
    return _encode(document, indent, 0).encode()


def export_ocds(
    ledger: LedgerApplication,
    directory: Path | str,
    *,
    prefix: str = DEFAULT_OCID_PREFIX,
    budget_id: UUID | None = None,
    by: Actor = EXPORTER,
    publisher: str = PUBLISHER,
) -> list[Path]:
    """Write each contract's `<ocid>.releases.json` and `<ocid>.record.json`; return the paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cursor: int | None = 0
    while cursor is not None:
        page = ledger.list_contracts(
            budget_id=budget_id,
            purchaser_id=None,
            implementer_id=None,
            provider_id=None,
            after=cursor,
            limit=100,
            by=by,
        )
        # Read after the listing, so that every contract on the page exists at this position.
        reading = Reading(ledger.reads.head())
        for contract_id in page.ids:
            process = contract_process(ledger, contract_id, by=by, prefix=prefix, reading=reading)
            releases = (folder / f"{process.ocid}.releases.json").resolve()
            record = (folder / f"{process.ocid}.record.json").resolve()
            package = release_package([process], uri=releases.as_uri(), publisher=publisher)
            releases.write_bytes(ocds_json(package, indent=2))
            package = record_package(
                [process], uri=record.as_uri(), packages=[releases.as_uri()], publisher=publisher
            )
            record.write_bytes(ocds_json(package, indent=2))
            written += [releases, record]
        cursor = page.next_cursor
    return written
