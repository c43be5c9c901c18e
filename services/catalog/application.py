"""The catalog's use cases: each check-and-write is one function, run as one serialized
transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel

from proto.actor import Actor, Role
from proto.catalog import (
    CommunityGuide,
    DeliveryMode,
    DutyList,
    Funding,
    GuideOrganization,
    GuidePlatform,
    GuideRefusal,
    GuideService,
    ItemDomain,
    ItemKind,
    ItemStatus,
    Organization,
    OrganizationKind,
    Platform,
    PlatformType,
    Refusal,
    Registration,
    ServiceItem,
    UnitPrice,
)
from services.catalog.domain import items as admission
from services.catalog.domain.communities import check_platform, check_refusal
from services.catalog.domain.organizations import new_organization, require_kind
from services.catalog.store.changes import ChangeStore, Facets, Filters, StoredChange, Writer
from services.common.errors import InvalidCommand, NotFound, RuleViolation
from services.common.permissions import require_acting_for, require_role

M = TypeVar("M", bound=BaseModel)

STREAM_TYPES: dict[type[BaseModel], str] = {
    Organization: "organization",
    ServiceItem: "item",
    Platform: "platform",
    Refusal: "refusal",
}


def _facets(record: BaseModel) -> Facets:
    if isinstance(record, Organization):
        return Facets(kind=record.kind.value, parent_id=record.street_office_id, code=record.code)
    if isinstance(record, ServiceItem):
        return Facets(kind=record.kind.value, status=record.status.value, code=record.code)
    if isinstance(record, Platform):
        return Facets(kind=record.type.value, parent_id=record.community_id)
    if isinstance(record, Refusal):
        return Facets(parent_id=record.community_id)
    raise TypeError(f"not a catalog record: {type(record).__name__}")


def _load(
    writer: Writer, model: type[M], record_id: UUID, role: str, *, named_in_body: bool = False
) -> M:
    """The record, or an error: 404 for the request's own resource, 422 for one its body names."""
    head = writer.head(record_id)
    if head is None or head.stream_type != STREAM_TYPES[model]:
        if named_in_body:
            raise InvalidCommand(f"{role} {record_id} is not in the catalog")
        raise NotFound(f"no {role} {record_id}")
    return model.model_validate(head.record)


def _by_code(
    writer: Writer, model: type[M], code: str | None, same: Callable[[M], bool]
) -> M | None:
    """The record a caller's code already names: the same one again, or a conflict."""
    if code is None:
        return None
    head = writer.head_by_code(STREAM_TYPES[model], code)
    if head is None:
        return None
    existing = model.model_validate(head.record)
    if not same(existing):
        raise RuleViolation(
            f"code {code!r} already names {STREAM_TYPES[model]} {head.stream_id}, "
            "which differs from this one"
        )
    return existing


def _append(writer: Writer, event_type: str, record: M, occurred_at: datetime) -> M:
    stored = writer.append(
        stream_id=record.id,  # type: ignore[attr-defined]
        stream_type=STREAM_TYPES[type(record)],
        event_type=event_type,
        record=record.model_dump(mode="json"),
        facets=_facets(record),
        occurred_at=occurred_at,
    )
    return type(record).model_validate(stored.record)


class Catalog:
    """What may be bought, from whom, and where: the catalog's use cases."""

    def __init__(self, store: ChangeStore) -> None:
        self.store = store

    # --- organizations --------------------------------------------------------------------

    async def register_organization(
        self,
        *,
        kind: OrganizationKind,
        name: str,
        code: str | None,
        street_office_id: UUID | None,
        registration: Registration | None,
        contact: str | None,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[Organization, bool]:
        """Register a bureau, street office, community or provider; a known code finds it."""
        require_role(by, (Role.CIVIL_AFFAIRS,), "register organizations")

        def register(writer: Writer) -> tuple[Organization, bool]:
            existing = _by_code(
                writer,
                Organization,
                code,
                lambda o: (
                    (o.kind, o.name, o.street_office_id, o.registration)
                    == (kind, name, street_office_id, registration)
                ),
            )
            if existing is not None:
                return existing, False
            street_office = (
                _load(writer, Organization, street_office_id, "street office", named_in_body=True)
                if street_office_id
                else None
            )
            organization = new_organization(
                organization_id=uuid4(),
                kind=kind,
                name=name,
                code=code,
                street_office=street_office,
                registration=registration,
                contact=contact,
            )
            return (
                _append(writer, "organization.registered", organization, occurred_at),
                True,
            )

        return await self.store.write(by, register)

    # --- items and their admission --------------------------------------------------------

    async def propose_item(
        self,
        *,
        name: str,
        code: str | None,
        description: str,
        kind: ItemKind,
        domain: ItemDomain,
        target_groups: list[str],
        delivery_modes: list[DeliveryMode],
        duty_list: DutyList,
        push_down_category: str | None,
        standard_unit_price: UnitPrice | None,
        proposed_by: UUID,
        occurred_at: datetime,
        by: Actor,
    ) -> tuple[ServiceItem, bool]:
        """A district department proposes an item for communities; a known code finds it."""
        require_role(by, (Role.CIVIL_AFFAIRS,), "propose items for the catalog")

        def propose(writer: Writer) -> tuple[ServiceItem, bool]:
            existing = _by_code(
                writer,
                ServiceItem,
                code,
                lambda i: (
                    (i.name, i.kind, i.domain, i.duty_list, i.proposed_by)
                    == (name, kind, domain, duty_list, proposed_by)
                ),
            )
            if existing is not None:
                return existing, False
            department = _load(writer, Organization, proposed_by, "department", named_in_body=True)
            require_kind(department, OrganizationKind.DISTRICT_BUREAU, role="proposed_by")
            item = ServiceItem(
                id=uuid4(),
                version=1,
                name=name,
                code=code,
                description=description,
                kind=kind,
                domain=domain,
                target_groups=target_groups,
                delivery_modes=delivery_modes,
                duty_list=duty_list,
                push_down_category=push_down_category,
                standard_unit_price=standard_unit_price,
                proposed_by=proposed_by,
                status=ItemStatus.PROPOSED,
            )
            return _append(writer, "item.proposed", item, occurred_at), True

        return await self.store.write(by, propose)

    async def start_review(self, item_id: UUID, *, occurred_at: datetime, by: Actor) -> ServiceItem:
        """Put a proposed item under review."""
        return await self._move(
            item_id, "item.review_started", admission.start_review, "review items", occurred_at, by
        )

    async def admit(
        self, item_id: UUID, *, funding: list[Funding], occurred_at: datetime, by: Actor
    ) -> ServiceItem:
        """Admit a reviewed item with the funding it brings."""
        return await self._move(
            item_id,
            "item.admitted",
            lambda item: admission.admit(item, funding),
            "admit items",
            occurred_at,
            by,
        )

    async def reject(
        self, item_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> ServiceItem:
        """Reject a proposed or reviewed item, with a reason."""
        return await self._move(
            item_id,
            "item.rejected",
            lambda item: admission.reject(item, reason),
            "reject items",
            occurred_at,
            by,
        )

    async def retire(
        self, item_id: UUID, *, reason: str, occurred_at: datetime, by: Actor
    ) -> ServiceItem:
        """Retire an admitted item, with a reason."""
        return await self._move(
            item_id,
            "item.retired",
            lambda item: admission.retire(item, reason),
            "retire items",
            occurred_at,
            by,
        )

    async def _move(
        self,
        item_id: UUID,
        event_type: str,
        step: Callable[[ServiceItem], ServiceItem],
        doing: str,
        occurred_at: datetime,
        by: Actor,
    ) -> ServiceItem:
        # Every step of admission is the civil-affairs bureau's, and one serialized write.
        require_role(by, (Role.CIVIL_AFFAIRS,), doing)

        def move(writer: Writer) -> ServiceItem:
            item = _load(writer, ServiceItem, item_id, "item")
            return _append(writer, event_type, step(item), occurred_at)

        return await self.store.write(by, move)

    # --- communities ----------------------------------------------------------------------

    async def refuse_task(
        self, community_id: UUID, *, item_id: UUID, reason: str, occurred_at: datetime, by: Actor
    ) -> Refusal:
        """Record a community's refusal of a task for an item on none of its lists."""
        require_acting_for(by, Role.COMMUNITY, community_id, "refuse tasks")

        def refuse(writer: Writer) -> Refusal:
            community = _load(writer, Organization, community_id, "community")
            item = _load(writer, ServiceItem, item_id, "item", named_in_body=True)
            check_refusal(community, item, reason)
            earlier = [
                Refusal.model_validate(r.record)
                for r in writer.records("refusal", Filters(parent_id=community_id))
            ]
            if any(r.item_id == item_id for r in earlier):
                raise RuleViolation(f"community {community_id} already refused item {item_id}")
            refusal = Refusal(
                id=uuid4(),
                version=1,
                community_id=community_id,
                item_id=item_id,
                reason=reason.strip(),
            )
            return _append(writer, "refusal.recorded", refusal, occurred_at)

        return await self.store.write(by, refuse)

    async def open_platform(
        self,
        *,
        community_id: UUID,
        name: str,
        type: PlatformType,
        location: str,
        opening_hours: str | None,
        contact: str | None,
        item_ids: list[UUID],
        provider_ids: list[UUID],
        occurred_at: datetime,
        by: Actor,
    ) -> Platform:
        """Open a platform where a community's services are offered."""
        require_acting_for(by, Role.COMMUNITY, community_id, "open platforms")

        def open_one(writer: Writer) -> Platform:
            community = _load(writer, Organization, community_id, "community", named_in_body=True)
            items = [_load(writer, ServiceItem, i, "item", named_in_body=True) for i in item_ids]
            providers = [
                _load(writer, Organization, p, "provider", named_in_body=True) for p in provider_ids
            ]
            check_platform(community, items, providers)
            platform = Platform(
                id=uuid4(),
                version=1,
                community_id=community_id,
                name=name,
                type=type,
                location=location,
                opening_hours=opening_hours,
                contact=contact,
                item_ids=item_ids,
                provider_ids=provider_ids,
            )
            return _append(writer, "platform.opened", platform, occurred_at)

        return await self.store.write(by, open_one)

    # --- reads ----------------------------------------------------------------------------

    async def get(self, model: type[M], record_id: UUID, as_of: datetime | None = None) -> M:
        """One record now, or as it stood at a business time."""
        kind = STREAM_TYPES[model]
        stored = await self.store.record(kind, record_id, as_of)
        if stored is None:
            when = f" as of {as_of.isoformat()}" if as_of else ""
            raise NotFound(f"no {kind} {record_id}{when}")
        return model.model_validate(stored.record)

    async def find(
        self,
        model: type[M],
        *,
        ids: Sequence[UUID] | None = None,
        kind: str | None = None,
        parent_id: UUID | None = None,
        status: str | None = None,
        as_of: datetime | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> tuple[list[M], int | None]:
        """Records of a type, filtered; and the cursor of the next page, if there is one."""
        rows, cursor = await self.store.records(
            STREAM_TYPES[model],
            Filters(ids=ids, kind=kind, parent_id=parent_id, status=status, as_of=as_of),
            after=after,
            limit=limit,
        )
        return [model.model_validate(r.record) for r in rows], cursor

    async def history(self, model: type[M], record_id: UUID) -> list[StoredChange]:
        """Every version of a record."""
        changes = await self.store.history(record_id)
        if not changes or changes[0].stream_type != STREAM_TYPES[model]:
            raise NotFound(f"no {STREAM_TYPES[model]} {record_id}")
        return changes

    async def guide(self, community_id: UUID, as_of: datetime | None = None) -> CommunityGuide:
        """The community service guide (社区服务指南), now or as of a business time."""
        community = await self.get(Organization, community_id, as_of)
        require_kind(community, OrganizationKind.COMMUNITY, role="community")
        street_office = (
            await self.get(Organization, community.street_office_id, as_of)
            if community.street_office_id
            else None
        )
        platforms, _ = await self.find(Platform, parent_id=community_id, as_of=as_of)
        refusals, _ = await self.find(Refusal, parent_id=community_id, as_of=as_of)
        item_ids = {i for p in platforms for i in p.item_ids} | {r.item_id for r in refusals}
        provider_ids = {o for p in platforms for o in p.provider_ids}
        items = {
            i.id: i for i in (await self.find(ServiceItem, ids=list(item_ids), as_of=as_of))[0]
        }
        providers = {
            o.id: o for o in (await self.find(Organization, ids=list(provider_ids), as_of=as_of))[0]
        }

        def organization(o: Organization) -> GuideOrganization:
            return GuideOrganization(id=o.id, name=o.name, contact=o.contact)

        offered = [
            GuidePlatform(
                id=p.id,
                name=p.name,
                type=p.type,
                location=p.location,
                opening_hours=p.opening_hours,
                contact=p.contact,
                services=[
                    GuideService(
                        item_id=item.id,
                        name=item.name,
                        description=item.description,
                        kind=item.kind,
                        domain=item.domain,
                        target_groups=item.target_groups,
                        delivery_modes=item.delivery_modes,
                        standard_unit_price=item.standard_unit_price,
                    )
                    for item in (items[i] for i in p.item_ids if i in items)
                    if item.status is ItemStatus.ADMITTED
                ],
                providers=[organization(providers[o]) for o in p.provider_ids if o in providers],
            )
            for p in platforms
        ]
        kinds = {s.item_id: s.kind for p in offered for s in p.services}
        return CommunityGuide(
            community=organization(community),
            street_office=organization(street_office) if street_office else None,
            as_of=as_of,
            services_by_kind={k: sum(1 for v in kinds.values() if v is k) for k in ItemKind},
            platforms=offered,
            refused=[
                GuideRefusal(item_id=r.item_id, item_name=items[r.item_id].name, reason=r.reason)
                for r in refusals
                if r.item_id in items
            ],
        )
