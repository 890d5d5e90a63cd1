"""Route53 request sizing, bisection and pagination: the limits moto does not check, checked here.

moto enforces neither the 32,000-character limit nor AWS's all-or-nothing batches, and never pages inside a
name (testinfra.md §1), so these rules are proven on the pure functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from records.plan import ACTION_CREATE, ACTION_DELETE, ACTION_UPSERT, Change
from records.providers.base import ChangeGroupInput
from records.providers.batching import (
    DEFAULT_LIMITS,
    Batch,
    Cost,
    Limits,
    PaginationStalled,
    bisect,
    change_cost,
    group_cost,
    make_batches,
    next_page_start,
)
from records.recordset import AliasTarget, RecordSet, Routing, txt_encode

ZONE = "example.com."


def a(name: str, *values: str, sid: str = "", ttl: int = 300) -> RecordSet:
    return RecordSet(
        f"{name}.{ZONE}",
        "A",
        set_identifier=sid,
        ttl=ttl,
        values=values or ("192.0.2.1",),
        routing=Routing(weight=10) if sid else Routing(),
    )


def txt(name: str, text: str) -> RecordSet:
    return RecordSet(f"{name}.{ZONE}", "TXT", ttl=300, values=(txt_encode(text),))


def alias(name: str) -> RecordSet:
    return RecordSet(
        f"{name}.{ZONE}",
        "A",
        alias=AliasTarget("dualstack.lb-1.eu-west-1.elb.amazonaws.com.", "Z32O12XQLNTSW2"),
    )


def group(index: int, *changes: tuple[str, RecordSet]) -> ChangeGroupInput:
    return ChangeGroupInput(index, tuple(Change(action, rs) for action, rs in changes))


def flat(batches: Sequence[Batch]) -> list[int]:
    return [i for b in batches for i in b.indexes]


# --- counting ---------------------------------------------------------------------------------------------


def test_upsert_counts_twice_toward_both_limits() -> None:
    rs = a("www", "192.0.2.1", "192.0.2.22", "192.0.2.133")  # 3 values, 9 + 10 + 11 = 30 characters
    assert change_cost(Change(ACTION_CREATE, rs)) == Cost(records=3, chars=30, changes=1)
    assert change_cost(Change(ACTION_DELETE, rs)) == Cost(records=3, chars=30, changes=1)
    assert change_cost(Change(ACTION_UPSERT, rs)) == Cost(records=6, chars=60, changes=1)


def test_alias_counts_one_record_and_no_characters() -> None:
    assert change_cost(Change(ACTION_CREATE, alias("lb"))) == Cost(records=1, chars=0, changes=1)
    assert change_cost(Change(ACTION_UPSERT, alias("lb"))) == Cost(records=2, chars=0, changes=1)


def test_txt_characters_count_the_quotes_route53_stores() -> None:
    rs = txt("x", "heritage=external-dns")  # stored as "\"heritage=external-dns\"": 21 + 2 quotes
    assert change_cost(Change(ACTION_CREATE, rs)).chars == 23


def test_a_group_counts_all_its_changes() -> None:
    g = group(0, (ACTION_UPSERT, a("www", "192.0.2.1")), (ACTION_UPSERT, txt("a-www", "x" * 10)))
    assert group_cost(g) == Cost(records=4, chars=2 * 9 + 2 * 12, changes=2)


# --- the limits -------------------------------------------------------------------------------------------


def test_1000_records_fit_one_request_and_1001_do_not() -> None:
    groups = [group(i, (ACTION_CREATE, a(f"h{i}"))) for i in range(1001)]
    batching = make_batches(groups)
    assert [len(b.groups) for b in batching.batches] == [1000, 1]
    assert batching.batches[0].cost.records == 1000


def test_upserts_count_double_so_500_fill_a_request() -> None:
    groups = [group(i, (ACTION_UPSERT, a(f"h{i}"))) for i in range(1200)]
    batches = make_batches(groups).batches
    assert [len(b.groups) for b in batches] == [500, 500, 200]
    assert all(b.cost.records <= 1000 for b in batches)
    assert flat(batches) == list(range(1200))


def test_32000_characters_split_requests_that_moto_would_accept_whole() -> None:
    # 200 TXT values of 250 characters (+2 quotes): 50,400 characters in 200 records. moto accepts this in
    # one request; Route53 refuses it.
    groups = [group(i, (ACTION_CREATE, txt(f"t{i}", "v" * 250))) for i in range(200)]
    batches = make_batches(groups).batches
    assert [b.cost.chars for b in batches] == [126 * 252, 74 * 252]
    assert all(b.cost.chars <= 32_000 for b in batches)
    assert flat(batches) == list(range(200))


def test_upsert_characters_count_double() -> None:
    groups = [group(i, (ACTION_UPSERT, txt(f"t{i}", "v" * 250))) for i in range(100)]
    batches = make_batches(groups).batches
    # each UPSERT counts 504 characters: 63 fit in 32,000
    assert [len(b.groups) for b in batches] == [63, 37]


def test_alias_records_are_limited_by_the_record_count_only() -> None:
    groups = [group(i, (ACTION_CREATE, alias(f"lb{i}"))) for i in range(1500)]
    batches = make_batches(groups).batches
    assert [b.cost for b in batches] == [Cost(1000, 0, 1000), Cost(500, 0, 500)]


def test_a_group_too_large_for_any_request_is_reported_not_sent() -> None:
    many = a("big", *(f"10.0.{i // 250}.{i % 250}" for i in range(600)))
    groups = [
        group(0, (ACTION_CREATE, a("small"))),
        group(1, (ACTION_UPSERT, many), (ACTION_UPSERT, txt("a-big", "owner"))),  # 1,200 + 2 records
        group(2, (ACTION_CREATE, txt("long", "x" * 33_000))),  # one value over 32,000 characters
        group(3, (ACTION_CREATE, a("after"))),
    ]
    batching = make_batches(groups)
    assert flat(batching.batches) == [0, 3]
    assert set(batching.oversize) == {1, 2}
    msg = batching.oversize[1]
    assert "big.example.com. A" in msg
    assert "1,202 resource records (limit 1,000)" in msg
    assert "UPSERT twice" in msg
    assert "not sent" in msg
    assert "value characters (limit 32,000)" in batching.oversize[2]


def test_a_group_exactly_at_the_limits_is_sent() -> None:
    values = [f"10.{i // 250}.{i % 250}.1" for i in range(500)]
    groups = [group(0, (ACTION_UPSERT, a("edge", *values)))]  # 500 values upserted: exactly 1,000
    batching = make_batches(groups)
    assert not batching.oversize
    assert batching.batches[0].cost.records == 1000


# --- names together, order inside a request ----------------------------------------------------------------


def test_a_names_delete_and_create_share_a_request_even_when_far_apart() -> None:
    # The plan orders deletes first and creates last; filler groups between them fill more than one request.
    groups = [group(0, (ACTION_DELETE, a("www", "192.0.2.1")), (ACTION_DELETE, txt("a-www", "owner")))]
    groups += [group(i, (ACTION_CREATE, a(f"h{i}"))) for i in range(1, 1200)]
    cname = RecordSet(f"www.{ZONE}", "CNAME", ttl=300, values=("shop.example.net.",))
    groups.append(group(1200, (ACTION_CREATE, cname), (ACTION_CREATE, txt("cname-www", "owner"))))
    batches = make_batches(groups).batches
    with_www = [b for b in batches if f"www.{ZONE}" in b.names]
    assert len(with_www) == 1
    assert {0, 1200} <= set(with_www[0].indexes)
    actions = [
        (c.action, c.record.name, c.record.type) for c in with_www[0].changes() if "www" in c.record.name
    ]
    assert actions == [
        (ACTION_DELETE, f"www.{ZONE}", "A"),
        (ACTION_DELETE, f"a-www.{ZONE}", "TXT"),
        (ACTION_CREATE, f"www.{ZONE}", "CNAME"),
        (ACTION_CREATE, f"cname-www.{ZONE}", "TXT"),
    ]
    assert sorted(flat(batches)) == list(range(1201))
    assert all(list(b.indexes) == sorted(b.indexes) for b in batches)


def test_inside_a_request_deletes_come_first_then_upserts_then_creates() -> None:
    groups = [
        group(0, (ACTION_CREATE, a("new"))),
        group(1, (ACTION_UPSERT, a("changed", "192.0.2.9"))),
        group(2, (ACTION_DELETE, a("gone"))),
        group(3, (ACTION_CREATE, a("new2"))),
        group(4, (ACTION_DELETE, a("gone2"))),
    ]
    (batch,) = make_batches(groups).batches
    assert [(c.action, c.record.name.split(".")[0]) for c in batch.changes()] == [
        (ACTION_DELETE, "gone"),
        (ACTION_DELETE, "gone2"),
        (ACTION_UPSERT, "changed"),
        (ACTION_CREATE, "new"),
        (ACTION_CREATE, "new2"),
    ]


def test_weighted_sets_of_one_name_stay_in_one_request() -> None:
    groups = [group(i, (ACTION_CREATE, a(f"h{i}"))) for i in range(990)]
    groups += [group(990 + k, (ACTION_CREATE, a("shop", f"192.0.2.{k}", sid=f"dc{k}"))) for k in range(20)]
    batches = make_batches(groups).batches
    shop = [b for b in batches if f"shop.{ZONE}" in b.names]
    assert len(shop) == 1 and len(shop[0].groups) == 20


def test_a_name_too_large_for_one_request_is_split_in_order_with_a_note() -> None:
    groups = [
        group(k, (ACTION_UPSERT, a("shop", *(f"10.{k}.0.{i}" for i in range(200)), sid=f"s{k}")))
        for k in range(4)
    ]
    batching = make_batches(groups)  # 4 x 400 records at one name: more than one request
    assert not batching.oversize
    assert flat(batching.batches) == [0, 1, 2, 3]
    assert [len(b.groups) for b in batching.batches] == [2, 2]
    assert batching.notes and "shop.example.com." in batching.notes[0]


# --- bisection --------------------------------------------------------------------------------------------


def test_bisect_halves_a_batch_in_order() -> None:
    batch = Batch.of(group(i, (ACTION_CREATE, a(f"h{i}"))) for i in range(7))
    left, right = bisect(batch)
    assert left.indexes == (0, 1, 2) and right.indexes == (3, 4, 5, 6)
    assert left.cost + right.cost == batch.cost


def test_bisect_keeps_a_names_groups_together_when_it_can() -> None:
    batch = Batch.of(
        [
            group(0, (ACTION_DELETE, a("www"))),
            group(1, (ACTION_CREATE, a("h1"))),
            group(2, (ACTION_CREATE, a("h2"))),
            group(3, (ACTION_CREATE, RecordSet(f"www.{ZONE}", "CNAME", ttl=60, values=("x.example.net.",)))),
        ]
    )
    left, right = bisect(batch)
    assert {0, 3} <= set(left.indexes) or {0, 3} <= set(right.indexes)
    assert sorted(left.indexes + right.indexes) == [0, 1, 2, 3]


def test_bisect_splits_the_groups_of_a_single_name() -> None:
    batch = Batch.of(group(k, (ACTION_CREATE, a("shop", sid=f"s{k}"))) for k in range(4))
    left, right = bisect(batch)
    assert left.indexes == (0, 1) and right.indexes == (2, 3)


def test_bisect_refuses_a_single_group() -> None:
    with pytest.raises(ValueError, match="one group"):
        bisect(Batch.of([group(0, (ACTION_CREATE, a("x")))]))


def test_bisecting_down_isolates_every_bad_group() -> None:
    bad = {3, 11, 12}
    calls = 0

    def apply(batch: Batch) -> tuple[list[int], list[int]]:
        # Route53's semantics: a request with any bad change applies nothing
        nonlocal calls
        calls += 1
        if not bad & set(batch.indexes):
            return list(batch.indexes), []
        if len(batch.groups) == 1:
            return [], list(batch.indexes)
        left, right = bisect(batch)
        la, lf = apply(left)
        ra, rf = apply(right)
        return la + ra, lf + rf

    applied, failed = apply(Batch.of(group(i, (ACTION_CREATE, a(f"h{i}"))) for i in range(16)))
    assert sorted(failed) == sorted(bad)
    assert applied == [i for i in range(16) if i not in bad]
    assert calls <= 2 * len(bad) * 4 + 1  # O(k log n) requests, not n


# --- pagination -------------------------------------------------------------------------------------------


def page(*, truncated: bool, name: str = "", rtype: str = "", ident: str = "") -> dict[str, object]:
    out: dict[str, object] = {"ResourceRecordSets": [], "IsTruncated": truncated, "MaxItems": "300"}
    if name:
        out["NextRecordName"] = name
    if rtype:
        out["NextRecordType"] = rtype
    if ident:
        out["NextRecordIdentifier"] = ident
    return out


def test_pagination_starts_at_the_beginning_and_ends_when_not_truncated() -> None:
    assert next_page_start([]) == {}
    assert next_page_start([page(truncated=False)]) is None


def test_pagination_continues_at_the_next_name_and_type() -> None:
    assert next_page_start([page(truncated=True, name="m.example.com.", rtype="A")]) == {
        "StartRecordName": "m.example.com.",
        "StartRecordType": "A",
    }


def test_pagination_continues_inside_a_name_and_type_with_the_set_identifier() -> None:
    # Route53 ends a page inside the weighted sets of one name and type: NextRecordIdentifier says where
    pages = [
        page(truncated=True, name="shop.example.com.", rtype="A", ident="dc-301"),
        page(truncated=True, name="shop.example.com.", rtype="A", ident="dc-601"),
    ]
    assert next_page_start(pages[:1]) == {
        "StartRecordName": "shop.example.com.",
        "StartRecordType": "A",
        "StartRecordIdentifier": "dc-301",
    }
    assert next_page_start(pages)["StartRecordIdentifier"] == "dc-601"  # type: ignore[index]
    assert next_page_start([*pages, page(truncated=False)]) is None


def test_pagination_that_returns_the_same_continuation_twice_is_stalled() -> None:
    # moto ignores StartRecordIdentifier and never returns NextRecordIdentifier: the same page comes back
    same = page(truncated=True, name="shop.example.com.", rtype="A")
    with pytest.raises(PaginationStalled, match="same continuation"):
        next_page_start([same, same])


def test_a_truncated_page_without_a_next_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="NextRecordName"):
        next_page_start([page(truncated=True)])


# --- the property -----------------------------------------------------------------------------------------

SMALL = Limits(records=12, chars=400, changes=6)


@st.composite
def groups_strategy(draw: st.DrawFn) -> list[ChangeGroupInput]:
    names = [f"n{i}" for i in range(draw(st.integers(1, 12)))]
    out: list[ChangeGroupInput] = []
    for index in range(draw(st.integers(0, 40))):
        changes = []
        for _ in range(draw(st.integers(1, 3))):
            action = draw(st.sampled_from([ACTION_CREATE, ACTION_UPSERT, ACTION_DELETE]))
            name = draw(st.sampled_from(names))
            if draw(st.integers(0, 9)) == 0:
                rs = alias(name)
            else:
                values = draw(st.lists(st.text("abc", min_size=0, max_size=90), min_size=1, max_size=5))
                rs = RecordSet(f"{name}.{ZONE}", "TXT", ttl=60, values=tuple(values))
            changes.append(Change(action, rs))
        out.append(ChangeGroupInput(index, tuple(changes)))
    return out


def _components(groups: Sequence[ChangeGroupInput]) -> list[set[int]]:
    comps: list[tuple[set[str], set[int]]] = []
    for g in groups:
        names = {c.record.name for c in g.changes}
        merged = (set(names), {g.index})
        rest = []
        for comp in comps:
            if comp[0] & names:
                merged[0].update(comp[0])
                merged[1].update(comp[1])
            else:
                rest.append(comp)
        comps = [*rest, merged]
    return [c[1] for c in comps]


@settings(max_examples=150, deadline=None)
@given(groups_strategy(), st.sampled_from([SMALL, Limits(records=30, chars=900, changes=20), DEFAULT_LIMITS]))
def test_batches_keep_every_group_once_in_order_within_both_limits(
    groups: list[ChangeGroupInput], limits: Limits
) -> None:
    batching = make_batches(groups, limits=limits)
    position = {g.index: p for p, g in enumerate(groups)}
    sent = flat(batching.batches)
    # every group exactly once: sent whole, or reported as too large (exactly when it is)
    assert sorted(sent + list(batching.oversize)) == sorted(position)
    assert len(set(sent)) == len(sent)
    for g in groups:
        assert (g.index in batching.oversize) == (not group_cost(g).fits(limits))
    by_index = {g.index: g for g in groups}
    for b in batching.batches:
        assert b.groups, "no empty requests"
        assert b.cost.fits(limits)
        assert b.cost == Batch.of(b.groups).cost
        assert all(by_index[g.index] is g for g in b.groups), "groups are never split or altered"
        pos = [position[i] for i in b.indexes]
        assert pos == sorted(pos), "input order inside a request"
        order = [c.action for c in b.changes()]
        assert order == sorted(order, key=[ACTION_DELETE, ACTION_UPSERT, ACTION_CREATE].index)
    firsts = [position[b.indexes[0]] for b in batching.batches]
    assert firsts == sorted(firsts), "requests in input order"
    # groups that share a name share a request whenever they fit in one together
    batch_of = {i: n for n, b in enumerate(batching.batches) for i in b.indexes}
    kept = [g for g in groups if g.index not in batching.oversize]
    for comp in _components(kept):
        total = Cost()
        for i in comp:
            total = total + group_cost(by_index[i])
        if total.fits(limits):
            assert len({batch_of[i] for i in comp}) == 1
    # with no shared names, the requests are exactly the input, in order
    if all(len(c) == 1 for c in _components(kept)):
        assert sent == [g.index for g in kept]


@settings(max_examples=80, deadline=None)
@given(groups_strategy())
def test_bisect_splits_into_two_nonempty_ordered_halves(groups: list[ChangeGroupInput]) -> None:
    for b in make_batches(groups, limits=SMALL).batches:
        if len(b.groups) < 2:
            continue
        left, right = bisect(b)
        assert left.groups and right.groups
        assert sorted(left.indexes + right.indexes) == sorted(b.indexes)
        assert list(left.indexes) == [i for i in b.indexes if i in set(left.indexes)]
        assert list(right.indexes) == [i for i in b.indexes if i in set(right.indexes)]
        assert left.cost + right.cost == b.cost
