"""The identity provider's groups to one of the four roles: the map, the claim, the highest role wins."""

from __future__ import annotations

import pytest

from sso.mapping import ROLE_ORDER, groups_from_claim, parse_role_map, role_for_groups

MAP = "dns-admins=admin,dns-approvers=approver,dns-operators=operator,dns-viewers=viewer"


def test_the_role_order_is_the_portals():
    from dnsportal.roles import ROLES

    assert list(ROLE_ORDER) == ROLES


def test_a_map_parses_from_pairs_and_from_json():
    assert parse_role_map(MAP) == {
        "dns-admins": "admin",
        "dns-approvers": "approver",
        "dns-operators": "operator",
        "dns-viewers": "viewer",
    }
    assert parse_role_map(" dns-admins = Admin , ,") == {"dns-admins": "admin"}
    assert parse_role_map("") == {}
    # LDAP DNs hold `=` and `,`: the JSON form carries them.
    dn = "cn=dns-admins,ou=groups,dc=example,dc=com"
    assert parse_role_map(f'{{"{dn}": "admin", "/dns/approvers": "approver"}}') == {
        dn: "admin",
        "/dns/approvers": "approver",
    }


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("dns-admins", "entry 'dns-admins' is not GROUP=ROLE"),
        ("=admin", "entry '=admin' is not GROUP=ROLE"),
        (
            "dns-admins=root",
            "maps 'dns-admins' to 'root', which is not one of viewer, operator, approver, admin",
        ),
        ("g=admin,g=viewer", "maps 'g' twice (admin and viewer)"),
        ('{"g": 1}', "must be an object of group name to role"),
        ("{nope", "is not a JSON object"),
    ],
)
def test_a_wrong_map_says_which_entry(raw, message):
    with pytest.raises(ValueError) as exc:
        parse_role_map(raw)
    assert message in str(exc.value)


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        (["a", "b"], ["a", "b"]),
        ("a", ["a"]),
        (None, []),
        ({"a": 1}, []),
        (42, []),
        (["a", None, 7], ["a", "7"]),
    ],
)
def test_the_groups_claim_is_read_as_providers_send_it(claim, groups):
    assert groups_from_claim(claim) == groups


def test_the_highest_mapped_role_wins_and_unmapped_groups_are_ignored():
    role_map = parse_role_map(MAP)
    decision = role_for_groups(["staff", "dns-operators", "dns-approvers"], role_map)
    assert (decision.role, decision.matched) == ("approver", ("dns-approvers", "dns-operators"))
    assert role_for_groups(["dns-operators", "dns-admins"], role_map).role == "admin"
    assert role_for_groups(["dns-viewers"], role_map).role == "viewer"
    none = role_for_groups(["marketing", "DNS-ADMINS"], role_map)  # names compare exactly
    assert (none.role, none.matched) == (None, ())
