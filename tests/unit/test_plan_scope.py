"""Planning a few names of a zone (records.plan_scope) gives what planning the whole zone gives at them.

Over the random zones of test_plan_properties (records of the portal, of other owners and of nobody, ownership
TXTs in every format ExternalDNS has written, several namings, namings also read), random desired states and
random sets of changed names: the plan of those names, seeing only the record sets plan_scope selects, has
exactly the whole-zone plan's groups, conflicts and skipped entries at those names.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from records.ownership import DEFAULT_TXT_NAMING, TxtNaming, read_registry
from records.plan import UPDATE, ZoneConfig, compute_plan
from records.plan_scope import scope_names, scoped_current, scoped_lookup_names, txt_candidates
from records.recordset import RecordSet
from tests.unit.test_plan_properties import NAMES, PROPERTY, Case, cases


def _at(plan, scope):
    return (
        [g for g in plan.groups if g.key.name in scope],
        [c for c in plan.conflicts if c.name in scope],
        [s for s in plan.skipped if s.key.name in scope],
    )


def _scoped(case: Case, scope: frozenset[str], **kw):
    lookup = scoped_lookup_names(scope, (case.config.naming, *case.config.also_read))
    return compute_plan(case.desired, scoped_current(case.zone, lookup), case.config, scope=scope, **kw)


@PROPERTY
@given(case=cases(), changed=st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
def test_the_scoped_plan_is_the_whole_plan_at_the_scoped_names(case: Case, changed: list[str]) -> None:
    scope = scope_names(changed)
    whole = compute_plan(case.desired, case.zone, case.config)
    got = _scoped(case, scope)
    assert _at(got, scope) == _at(whole, scope)
    # and nothing outside the scope: a record at a TXT's name is context, never a change
    assert all(g.key.name in scope for g in got.groups)


@PROPERTY
@given(case=cases())
def test_every_ownership_txt_of_a_name_is_among_its_candidates(case: Case) -> None:
    namings = (case.config.naming, *case.config.also_read)
    registry = read_registry(case.zone, case.config.naming, also_read=case.config.also_read)
    for (name, _type, _sid), ownership in registry.entries.items():
        assert ownership.txt.name in txt_candidates(name, namings), (name, ownership.txt.name)


def test_a_wildcard_is_looked_up_under_its_replacement_and_as_itself() -> None:
    naming = TxtNaming(prefix="txt-", wildcard_replacement="wild")
    got = txt_candidates("*.example.com.", [naming])
    assert "txt-a-wild.example.com." in got
    assert "txt-a-*.example.com." in got
    assert "a-*.example.com." in txt_candidates("*.example.com", [TxtNaming()])
    assert "_dnsportal-a.*.example.com." in txt_candidates("*.example.com", [DEFAULT_TXT_NAMING])


def test_the_share_needing_approval_counts_the_whole_zone_not_the_scope() -> None:
    # 30 records owned; a scoped plan updating 1 of them must not read as "100 % of the owned records"
    config = ZoneConfig(zone="example.com.", owner_id="portal", min_owned_for_share=1)
    from records.endpoint import Endpoint
    from records.ownership import ownership_record

    zone, desired = [], []
    for i in range(30):
        rs = RecordSet(f"h{i}.example.com.", "A", "", 300, ("192.0.2.1",))
        zone += [rs, ownership_record(rs, "portal", {"resource": "service/ns/x"}, config.naming)]
        desired.append(
            Endpoint.make(
                f"h{i}.example.com",
                "A",
                ["192.0.2.2" if i == 0 else "192.0.2.1"],
                ttl=300,
                labels={"resource": "service/ns/x"},
            )
        )
    scope = scope_names(["h0.example.com"])
    alone = _scoped(Case(config, zone, desired), scope)
    assert alone.needs_approval  # without the zone's count: 1 of 1 owned
    counted = _scoped(Case(config, zone, desired), scope, owned_total=30)
    assert [g.kind for g in counted.groups] == [UPDATE]
    assert not counted.needs_approval, counted.approval_reasons
    assert counted.owned_count == 30


def test_a_record_at_a_txt_name_is_context_not_a_delete() -> None:
    # Without a prefix, b's typed TXT lives at a-b, so the scoped plan sees the portal's A record there too
    # (its own TXT, at a-a-b, it does not see): that record is context, neither planned nor a conflict.
    from records.endpoint import Endpoint
    from records.ownership import ownership_record

    config = ZoneConfig(zone="example.com.", owner_id="portal", naming=TxtNaming())
    zone = []
    for name in ("b.example.com.", "a-b.example.com."):
        rs = RecordSet(name, "A", "", 300, ("192.0.2.1",))
        zone += [rs, ownership_record(rs, "portal", {"resource": "service/ns/x"}, config.naming)]
    desired = [
        Endpoint.make(n, "A", ["192.0.2.9"], ttl=300, labels={"resource": "service/ns/x"})
        for n in ("b.example.com", "a-b.example.com")
    ]
    scope = scope_names(["b.example.com"])
    lookup = scoped_lookup_names(scope, [config.naming])
    assert "a-b.example.com." in lookup
    got = compute_plan(desired, scoped_current(zone, lookup), config, scope=scope)
    assert [(g.kind, g.key.name) for g in got.groups] == [(UPDATE, "b.example.com.")]
    assert not got.conflicts, got.conflicts


@PROPERTY
@given(case=cases())
def test_the_previous_endpoints_read_a_name_at_a_time_are_the_whole_aggregate(case: Case) -> None:
    # The plan aggregates the previous endpoints per name when it first asks (records.plan._PreviousByName).
    from records.aggregate import aggregate
    from records.plan import _PreviousByName

    config = case.config
    whole = aggregate(
        case.desired,
        config.zone,
        managed_types=config.managed_types,
        subzones=config.subzones,
        alias_load_balancers=config.alias_load_balancers,
    ).records
    lazy = _PreviousByName(case.desired, config.zone, config)
    for key, record in whole.items():
        assert lazy.get(key) == record
    for name in NAMES:
        for rtype in ("A", "AAAA", "CNAME"):
            assert lazy.get((name, rtype, "")) == whole.get((name, rtype, ""))
