"""Both sides of an annotation change, as the editor and the proposal page show them."""

from __future__ import annotations

from records.annotation_diff import ADDED, CHANGED, REMOVED, SAME, annotation_diff, yaml_line

P = "external-dns.alpha.kubernetes.io/"


def test_removed_added_changed_and_kept_keys_are_marked_on_their_side() -> None:
    before = {f"{P}hostname": "app.example.com", f"{P}aws-weight": "50", f"{P}set-identifier": "a"}
    after = {f"{P}hostname": "app.example.com", f"{P}aws-failover": "PRIMARY", f"{P}set-identifier": "b"}
    diff = annotation_diff(before, after)
    assert [(line.key.removeprefix(P), line.state) for line in diff.before] == [
        ("aws-weight", REMOVED),
        ("hostname", SAME),
        ("set-identifier", CHANGED),
    ]
    assert [(line.key.removeprefix(P), line.state) for line in diff.after] == [
        ("aws-failover", ADDED),
        ("hostname", SAME),
        ("set-identifier", CHANGED),
    ]
    assert (diff.removed, diff.added, diff.changed) == (
        (f"{P}aws-weight",),
        (f"{P}aws-failover",),
        (f"{P}set-identifier",),
    )
    assert not diff.before[1].marked and diff.before[0].marked


def test_values_are_written_as_yaml_writes_them_in_a_manifest() -> None:
    # An annotation value is a string: YAML quotes what it would read as a number, a boolean or null.
    assert yaml_line(f"{P}aws-weight", "80") == f"    {P}aws-weight: '80'"
    assert yaml_line(f"{P}aws-geolocation-country-code", "*") == f"    {P}aws-geolocation-country-code: '*'"
    assert yaml_line("x", "true", indent=0) == "x: 'true'"
    assert yaml_line("x", "PRIMARY", indent=0) == "x: PRIMARY"
    assert annotation_diff({}, {}).before == ()
