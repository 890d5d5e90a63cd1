"""How a desired record set differs from the zone's: the diff and its reasons, whether an update needs
DELETE + CREATE, the record set to write, and whether an ownership TXT is already right.

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

from dataclasses import replace

from records.ownership import parse_ownership_value
from records.recordset import DEFAULT_TTL, RecordSet, canonical_value

# --- the diff --------------------------------------------------------------------------------------------


def _needs_replace(old: RecordSet, new: RecordSet) -> bool:
    # ExternalDNS (aws.go): an update becomes DELETE + CREATE when alias-ness or the routing policy changes;
    # Route53 rejects an UPSERT that turns e.g. a weighted record set into a latency one.
    return (old.alias is None) != (new.alias is None) or old.routing.policies != new.routing.policies


def _unchanged(want: RecordSet, have: RecordSet) -> bool:
    # Fast equality for the diff's common case: plain record sets with identical values. Anything else goes
    # through _diff, which decides the same way, only slower.
    return (
        want.values == have.values
        and want.alias is None
        and have.alias is None
        and (want.ttl is None or want.ttl == have.ttl)
        and (want.routing is have.routing or want.routing == have.routing)
        and want.health_check_id == have.health_check_id
    )


def _diff(want: RecordSet, have: RecordSet) -> list[str]:
    """What differs, as reasons ("target changed 1.2.3.4 → 5.6.7.8"); empty when nothing does."""
    out: list[str] = []
    rtype = want.type
    if want.alias is not None or have.alias is not None:
        if want.alias is None or have.alias is None:
            out.append(
                f"{'alias' if have.alias else 'plain'} record becomes {'alias' if want.alias else 'plain'}: "
                f"{have.describe_values()} → {want.describe_values()}"
            )
        else:
            wa, ha = want.alias, have.alias
            if canonical_value("CNAME", wa.dns_name) != canonical_value("CNAME", ha.dns_name):
                out.append(f"alias target changed {ha.dns_name} → {wa.dns_name}")
            if wa.evaluate_target_health != ha.evaluate_target_health:
                out.append(
                    f"evaluate target health {ha.evaluate_target_health} → {wa.evaluate_target_health}"
                )
            if wa.hosted_zone_id and wa.hosted_zone_id != ha.hosted_zone_id:
                out.append(f"alias hosted zone changed {ha.hosted_zone_id} → {wa.hosted_zone_id}")
    else:
        if want.values != have.values:
            w = {canonical_value(rtype, v): v for v in want.values}
            h = {canonical_value(rtype, v): v for v in have.values}
            if w.keys() != h.keys():
                added = [w[k] for k in sorted(w.keys() - h.keys())]
                removed = [h[k] for k in sorted(h.keys() - w.keys())]
                if len(added) == 1 and len(removed) == 1:
                    out.append(f"target changed {removed[0]} → {added[0]}")
                else:
                    if added:
                        out.append(f"target{'s' if len(added) > 1 else ''} added {', '.join(added)}")
                    if removed:
                        out.append(f"target{'s' if len(removed) > 1 else ''} removed {', '.join(removed)}")
        # TTL only when configured: an unset TTL leaves whatever the zone holds (ExternalDNS: no ping-pong)
        if want.ttl is not None and want.ttl != have.ttl:
            out.append(f"TTL changed {have.ttl} → {want.ttl}")
    if want.routing != have.routing:
        out.append(f"routing changed {have.routing.describe()} → {want.routing.describe()}")
    if want.health_check_id != have.health_check_id:
        out.append(
            f"health check changed {have.health_check_id or '(none)'} → {want.health_check_id or '(none)'}"
        )
    return out


def _after(want: RecordSet, have: RecordSet | None) -> RecordSet:
    """The record set to write: desired, with what desired leaves open taken from the zone or defaults."""
    ttl = want.ttl
    alias = want.alias
    if alias is None:
        if ttl is None:
            # not configured: keep the zone's TTL on updates, the AWS default on creates
            ttl = (
                have.ttl if have is not None and have.alias is None and have.ttl is not None else DEFAULT_TTL
            )
    elif (
        not alias.hosted_zone_id
        and have is not None
        and have.alias is not None
        and canonical_value("CNAME", have.alias.dns_name) == canonical_value("CNAME", alias.dns_name)
    ):
        # the provider resolved the target's hosted zone when it created the alias; keep it
        alias = replace(alias, hosted_zone_id=have.alias.hosted_zone_id)
    if ttl == want.ttl and alias is want.alias:
        return want
    return replace(want, ttl=ttl, alias=alias)


def _txt_equivalent(existing: RecordSet, wanted: RecordSet, owner_id: str) -> bool:
    # The ownership TXT is right when it names us and carries the record's routing. A stale resource label
    # alone is not worth a change (ExternalDNS does not compare labels either); it is rewritten on the next
    # update.
    if existing.routing != wanted.routing or existing.health_check_id != wanted.health_check_id:
        return False
    labels = parse_ownership_value(existing.values[0]) if existing.values else None
    return labels is not None and labels.get("owner") == owner_id
