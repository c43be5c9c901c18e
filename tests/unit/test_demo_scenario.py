"""The demo's scenario holds the articles' counts and figures, exactly."""

from __future__ import annotations

from collections import Counter

from demo.scenario import ALL_PURCHASES_FEN, FIRST_ITEM, PUSH_DOWN_FEN, SMALL, build


def test_wuhou_has_the_articles_counts_and_money() -> None:
    scenario = build()
    push_down = [i for i in scenario.items if i.code.startswith("DEMO-WH-PD-")]
    assert len(push_down) == 139
    assert len({i.category for i in push_down}) == 4
    assert {i.duty_list for i in scenario.items if i.code.startswith("DEMO-WH-")} == {
        "party_organization",
        "committee_statutory",
        "committee_assisting",
    }
    assert len(scenario.purchases) == 315
    providers = {p.provider_code for p in scenario.purchases}
    assert len(providers) > 110
    # The 30.85 million is allocated, contracted and, net of the one reversal, paid in full.
    assert sum(b.amount_fen for b in scenario.budgets) == ALL_PURCHASES_FEN
    assert scenario.push_down.amount_fen == sum(scenario.push_down.allocations.values())
    assert sum(p.value_fen for p in scenario.purchases) == PUSH_DOWN_FEN
    paid = sum(
        pay.amount_fen for p in scenario.purchases for pay in p.payments if pay.reversal is None
    )
    assert paid == PUSH_DOWN_FEN
    assert sum(pay.reversal is not None for p in scenario.purchases for pay in p.payments) == 1
    assert sum(not d.accepted for p in scenario.purchases for d in p.deliveries) == 5
    # Funding follows the task: the push-down items bring exactly what their purchases cost.
    assert sum(i.funding_fen for i in push_down) == PUSH_DOWN_FEN


def test_the_first_agreement_is_cuqiao_longjin_on_2014_04_14() -> None:
    scenario = build()
    first = scenario.purchases[0]
    names = {o.code: o.name for o in scenario.organizations}
    assert (names[first.street_code], names[first.community_code], names[first.provider_code]) == (
        "Cuqiao street office",
        "Longjin community",
        "Longjin residents' service center",
    )
    assert (first.signed_on.isoformat(), first.title) == ("2014-04-14", FIRST_ITEM)


def test_haiyu_offers_256_items_of_three_kinds_from_18_providers_on_96_platforms() -> None:
    scenario = build()
    items = [i for i in scenario.items if i.code.startswith("DEMO-HY-")]
    assert len(items) == 256
    assert set(Counter(i.kind for i in items)) == {"public", "social", "market"}
    providers = [o for o in scenario.organizations if o.code.startswith("DEMO-HY-PROVIDER-")]
    assert len(providers) == 18
    assert len(scenario.haiyu_platforms) == 96
    offered = {code for p in scenario.haiyu_platforms for code in p.item_codes}
    assert offered == {i.code for i in items}  # every item is offered somewhere


def test_the_same_scale_gives_the_same_story_and_the_small_one_adds_up_too() -> None:
    assert build(SMALL) == build(SMALL)
    small = build(SMALL)
    assert sum(p.value_fen for p in small.purchases) == PUSH_DOWN_FEN
