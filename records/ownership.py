"""The TXT ownership registry, compatible with ExternalDNS's (`registry/txt`, `registry/mapper`).

A record is owned by an owner id when a TXT record set at its *ownership name* holds
`"heritage=external-dns,external-dns/owner=<id>,external-dns/resource=<kind>/<ns>/<name>"` with the same set
identifier. The portal reads every format ExternalDNS has written (typed `a-`/`aaaa-`/`cname-` names, legacy
untyped names, configured prefix or suffix, `%{record_type}` templates, pre-v0.22 `cname-` TXTs for alias A
records) and writes exactly what ExternalDNS v0.18+ writes, so both can share a zone and each keeps its own
records (shared/reference/external-dns.md, section 3).

Pure: no Django, boto3 or Kubernetes import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from records.recordset import (
    DEFAULT_TTL,
    RecordSet,
    in_zone,
    normalize_name,
    txt_decode,
    txt_encode,
)

HERITAGE = "external-dns"
LABEL_OWNER = "owner"
LABEL_RESOURCE = "resource"
RECORD_TYPE_TEMPLATE = "%{record_type}"

# The types ExternalDNS's mapper recognises in a TXT name, in its order (mapper.go `supportedRecords`): the
# order matters when a `%{record_type}` affix could match two types, and we must pick the one ExternalDNS
# picks.
MAPPER_TYPES = ("A", "AAAA", "CNAME", "NS", "MX", "PTR", "SRV", "NAPTR", "TXT", "DNAME")

# A DNS label is at most 63 octets (RFC 1035 2.3.4); prefix/suffix count toward it.
MAX_LABEL = 63


@dataclass(frozen=True, slots=True)
class TxtNaming:
    """Where the ownership TXT of a record lives: ExternalDNS's `--txt-prefix`/`--txt-suffix` and
    `--txt-wildcard-replacement`, with its mapper's exact rules.

    Name = prefix + first label + suffix + "." + rest, where the first label gets a `<type>-` marker unless
    the prefix or suffix carries `%{record_type}` (replaced by the lower-case type). Prefix and suffix are
    lower-cased and mutually exclusive, as ExternalDNS enforces at startup.
    """

    prefix: str = ""
    suffix: str = ""
    wildcard_replacement: str = ""
    # per record type: (resolved prefix, type marker "a-" or "", resolved suffix); a plan computes 100,000s of
    # TXT names, so the template is resolved once per type, not per name
    _affixes: dict[str, tuple[str, str, str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # the reverse mapping's common case as one compiled pattern (built on first use), see record_for_txt
    _typed: list[re.Pattern[str]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.prefix and self.suffix:
            raise ValueError("TXT prefix and TXT suffix are mutually exclusive (as in ExternalDNS)")
        # frozen: normalise through object.__setattr__, the dataclass-sanctioned way
        object.__setattr__(self, "prefix", self.prefix.lower())
        object.__setattr__(self, "suffix", self.suffix.lower())
        object.__setattr__(self, "wildcard_replacement", self.wildcard_replacement.lower())

    @property
    def type_in_affix(self) -> bool:
        return RECORD_TYPE_TEMPLATE in self.prefix or RECORD_TYPE_TEMPLATE in self.suffix

    def txt_name(self, name: str, record_type: str) -> str:
        """The ownership TXT name of record `name` (FQDN) of `record_type` (ExternalDNS mapper ToTXTName)."""
        aff = self._affixes.get(record_type)
        if aff is None:
            rt = record_type.lower()
            aff = (
                self.prefix.replace(RECORD_TYPE_TEMPLATE, rt),
                "" if self.type_in_affix else rt + "-",
                self.suffix.replace(RECORD_TYPE_TEMPLATE, rt),
            )
            self._affixes[record_type] = aff
        prefix, marker, suffix = aff
        dns = name[:-1] if name[-1:] == "." else name
        first, dot, rest = dns.partition(".")
        if first == "*" and self.wildcard_replacement:
            first = self.wildcard_replacement
        if not dot:
            return prefix + marker + first + suffix + "."
        return prefix + marker + first + suffix + "." + rest + "."

    def affixes(self, record_type: str) -> tuple[str, str, str]:
        """(prefix, type marker, suffix) of `record_type`'s TXT names: name = prefix + marker + first label +
        suffix + "." + rest. For callers that compute many names (the plan inlines txt_name with these)."""
        self.txt_name("x.", record_type)  # fills the cache
        return self._affixes[record_type]

    def record_for_txt(self, txt_name: str) -> tuple[str, str] | None:
        """The (record name FQDN, record type or "" when untyped) a TXT name stands for (ToEndpointName).

        None when the name does not carry this naming's prefix/suffix. Legacy names (no type marker) give type
        "".
        """
        dns = (txt_name[:-1] if txt_name.endswith(".") else txt_name).lower()
        if not self.suffix:  # prefix mode, also the no-affix default (ExternalDNS: isPrefix = no suffix)
            if not self._typed:
                self._typed.append(self._typed_pattern())
            m = self._typed[0].match(dns)
            if m is not None:
                # same answer as _drop_affix's loop: the alternation tries the types in MAPPER_TYPES order
                rest = dns[m.end() :]
                return (rest + ".", MAPPER_TYPES[m.lastindex - 1]) if rest and m.lastindex else None
            got = self._drop_affix(dns)
        else:
            dc = self.suffix.count(".")
            parts = dns.split(".", 1 + dc)
            if len(parts) <= dc:
                return None
            got = self._drop_affix(".".join(parts[: 1 + dc]))
            if got is not None and len(parts) > 1 + dc:
                got = (got[0] + "." + parts[1 + dc], got[1])
        if got is None or not got[0]:
            return None
        return got[0] + ".", got[1]

    def _typed_pattern(self) -> re.Pattern[str]:
        # Prefix mode only. With the template: one alternative per type, the whole resolved prefix
        # ("_dnsportal-a."); without: the prefix, then "<type>-" as extractRecordTypeDefaultPosition reads it.
        types = [t.lower() for t in MAPPER_TYPES]
        if self.type_in_affix:
            alts = "|".join(f"({re.escape(self.prefix.replace(RECORD_TYPE_TEMPLATE, t))})" for t in types)
            return re.compile(f"(?:{alts})")
        alts = "|".join(f"({re.escape(t)})" for t in types)
        return re.compile(f"{re.escape(self.prefix)}(?:{alts})-")

    def _drop_affix(self, name: str) -> tuple[str, str] | None:
        prefix, suffix = self.prefix, self.suffix
        if self.type_in_affix:
            for t in MAPPER_TYPES:
                tl = t.lower()
                if not suffix:
                    p = prefix.replace(RECORD_TYPE_TEMPLATE, tl)
                    if name.startswith(p):
                        return name[len(p) :], t
                else:
                    s = suffix.replace(RECORD_TYPE_TEMPLATE, tl)
                    if name.endswith(s):
                        return name[: len(name) - len(s)], t
            # TXTs written before the template was configured: the affix without the template
            prefix = prefix.replace(RECORD_TYPE_TEMPLATE, "")
            suffix = suffix.replace(RECORD_TYPE_TEMPLATE, "")
        if not suffix:
            if name.startswith(prefix):
                return _type_from_first_label(name[len(prefix) :])
            return None
        if name.endswith(suffix):
            return _type_from_first_label(name[: len(name) - len(suffix)])
        return None

    def describe(self) -> str:
        """The ExternalDNS flags that produce this naming, for the zone page and explanations."""
        flags = []
        if self.prefix:
            flags.append(f"--txt-prefix={self.prefix}")
        if self.suffix:
            flags.append(f"--txt-suffix={self.suffix}")
        if self.wildcard_replacement:
            flags.append(f"--txt-wildcard-replacement={self.wildcard_replacement}")
        return " ".join(flags) or "(no TXT prefix or suffix)"


def _type_from_first_label(name: str) -> tuple[str, str]:
    # mapper.go extractRecordTypeDefaultPosition: the text before the first "-" names the type, if it is one.
    # A legacy TXT for a name like "a-team.example.com" is therefore read as typed; ExternalDNS does the same.
    head, dash, tail = name.partition("-")
    if dash:
        for t in MAPPER_TYPES:
            if head == t.lower():
                return tail, t
    return name, ""


# The portal's naming for new zones: the record type inside a prefix that ends in ".", so the ownership TXT of
# `example.com` (the apex) is `_dnsportal-a.example.com`, inside the zone. ExternalDNS's default (no prefix)
# names it `a-example.com`, which is a sibling of the zone, not in it: Route53 cannot hold it and the apex
# record stays unowned forever (ExternalDNS issues #449, #5010). A prefix without `%{record_type}` does not
# help either: the `a-` marker is glued to the first label, `_dnsportal.a-example.com`, again outside. The
# leading underscore keeps these names out of the host-name space (like `_dmarc`), so they never collide with
# a real host such as `a.example.com`, and the type in the label keeps A, AAAA and CNAME ownership apart.
# ExternalDNS instances sharing the zone read it with `--txt-prefix=_dnsportal-%{record_type}.`.
PORTAL_TXT_PREFIX = "_dnsportal-%{record_type}."
DEFAULT_TXT_NAMING = TxtNaming(prefix=PORTAL_TXT_PREFIX)

# ExternalDNS's own default, for zones the portal shares with ExternalDNS instances that run without flags.
EXTERNAL_DNS_TXT_NAMING = TxtNaming()


def can_own_apex(naming: TxtNaming, zone: str, record_types: Iterable[str] = ("A", "AAAA")) -> bool:
    """Whether this naming puts the ownership TXT of the zone apex inside the zone (so it can be written).

    The apex can hold A/AAAA (and alias) records but never a CNAME, so those are the types checked by default.
    """
    apex = normalize_name(zone)
    for t in record_types:
        txt = naming.txt_name(apex, t)
        if txt == apex or not in_zone(txt, apex) or _long_label(txt):
            return False
    return True


def explain_apex(naming: TxtNaming, zone: str) -> str:
    """One or two sentences for the zone page: can this naming own the apex, and why (not)."""
    apex = normalize_name(zone)
    txt = naming.txt_name(apex, "A")
    if can_own_apex(naming, zone):
        return (
            f"Ownership records use {naming.describe()}: the apex {apex} is owned through {txt}, inside the "
            "zone, so the portal can manage apex records."
        )
    return (
        f"Ownership records use {naming.describe()}: the apex {apex} would be owned through {txt}, which is "
        f"outside the zone, so apex records cannot be owned or managed. Use a prefix that contains "
        f"%{{record_type}} and ends in '.', such as {PORTAL_TXT_PREFIX}, to manage the apex."
    )


def _long_label(name: str) -> bool:
    return any(len(label) > MAX_LABEL for label in name.rstrip(".").split("."))


# --- the TXT value ---------------------------------------------------------------------------------------


def format_ownership_value(labels: Mapping[str, str]) -> str:
    """The TXT value ExternalDNS writes (Labels.SerializePlain(withQuotes=true)), byte for byte.

    `heritage=external-dns` first, then `external-dns/<key>=<value>` for each label with keys sorted,
    joined by "," and wrapped in double quotes. A text longer than 255 characters is split into several
    quoted strings, because Route53 rejects a longer character-string (ExternalDNS does not split; its
    write would fail).
    """
    tokens = [f"heritage={HERITAGE}"]
    tokens.extend(f"{HERITAGE}/{k}={labels[k]}" for k in sorted(labels))
    text = ",".join(tokens)
    if len(text) <= 255 and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    return txt_encode(text)


_CANONICAL_VALUE = re.compile(r"heritage=external-dns(?:,external-dns/[^,=]*=[^,=]*)*")
# The canonical value: one quoted string, "owner" exactly once; label characters exclude quote and backslash,
# so the quotes matched are the string's own.
_L = r'[^,="\\]*'
CANONICAL_OWNERSHIP_VALUE = re.compile(
    rf'"(heritage=external-dns(?:,external-dns/(?!owner=){_L}={_L})*'
    rf',external-dns/owner=({_L})(?:,external-dns/(?!owner=){_L}={_L})*)"'
)
_LABEL_PAIR = re.compile(r",external-dns/([^,=]*)=([^,=]*)")


def owned_by_pattern(owner_id: str) -> re.Pattern[str]:
    """A pattern that matches (fullmatch) a TXT value in ExternalDNS's canonical form naming `owner_id`.

    For hot loops; a value it does not match may still name the owner in another form (see
    ownership_in_value).
    """
    return re.compile(
        rf'"heritage=external-dns(?:,external-dns/(?!owner=){_L}={_L})*'
        rf",external-dns/owner={re.escape(owner_id)}(?:,external-dns/(?!owner=){_L}={_L})*\""
    )


def parse_ownership_value(value: str) -> dict[str, str] | None:
    """The labels in an ownership TXT value, or None when it is not one (no or another heritage).

    Follows ExternalDNS's NewLabelsFromStringPlain: quotes dropped, tokens split on ",", a token counts only
    when it has exactly one "=", `heritage=<other>` disqualifies, keys `external-dns/<k>` become labels.
    """
    return _parse_text(txt_decode(value))


def _parse_text(text: str) -> dict[str, str] | None:
    if "heritage=" not in text:  # most TXT records in a zone are not ownership records
        return None
    if _CANONICAL_VALUE.fullmatch(text):
        # what ExternalDNS writes, parsed in C; the loop below gives the same labels, only slower
        return dict(_LABEL_PAIR.findall(text))
    labels: dict[str, str] = {}
    found = False
    for token in text.split(","):
        kv = token.split("=")
        if len(kv) != 2:
            continue
        k, v = kv
        if k == "heritage":
            if v != HERITAGE:
                return None
            found = True
        elif k.startswith(HERITAGE):
            labels[k.removeprefix(HERITAGE + "/")] = v
    return labels if found else None


def ownership_in_value(value: str) -> tuple[str, str | None]:
    """(label text, owner id) of a TXT value; owner None when it is not an ownership record.

    A value in ExternalDNS's canonical form (one quoted string, keys sorted) is read with one match; anything
    else goes through the full ExternalDNS parse. An ownership record without an owner label gives "".
    """
    m = CANONICAL_OWNERSHIP_VALUE.fullmatch(value)
    if m is not None:
        return m.group(1), m.group(2)
    text = txt_decode(value)
    labels = _parse_text(text)
    return text, (labels.get(LABEL_OWNER, "") if labels is not None else None)


# --- reading a zone --------------------------------------------------------------------------------------


class Ownership(NamedTuple):
    """Who owns a record, and the TXT record set that says so.

    A NamedTuple rather than a frozen dataclass: a zone read builds one per ownership TXT (100,000s), and a
    tuple is built and read in C. `text` is the TXT's label text; `labels` parses it on demand.
    """

    owner: str
    text: str
    txt: RecordSet  # the ownership TXT record set, as read from the zone
    form: str  # "typed" (current format), "alias-cname" (pre-v0.22 alias A) or "legacy" (untyped name)

    @property
    def labels(self) -> dict[str, str]:
        """Every label of the TXT (owner, resource, CRD labels)."""
        return _parse_text(self.text) or {}

    @property
    def resource(self) -> str:
        return self.labels.get(LABEL_RESOURCE, "")


@dataclass(frozen=True, slots=True)
class Registry:
    """The ownership view of a zone: which TXT record sets are ownership records, and what they say.

    `entries` maps (record name FQDN, record type or "" for legacy, set identifier) to the ownership read from
    the TXT; look records up with `owner_of`. `txt_owners` maps the key of every TXT record set that is an
    ownership record to the owner id it names (those are registry data, never managed records themselves).
    """

    naming: TxtNaming
    entries: dict[tuple[str, str, str], Ownership] = field(default_factory=dict)
    txt_owners: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def txt_keys(self) -> frozenset[tuple[str, str, str]]:
        return frozenset(self.txt_owners)

    def owner_of(self, rs: RecordSet) -> Ownership | None:
        """The ownership of a (non-TXT-registry) record set, with ExternalDNS's fallbacks.

        Typed TXT first; for an alias A record the pre-v0.22 `cname-` TXT next; then the legacy untyped TXT,
        except for AAAA (ExternalDNS never wrote legacy TXTs for AAAA).
        """
        name = rs.name
        wr = self.naming.wildcard_replacement
        if wr and name.startswith("*."):
            # ExternalDNS looks wildcard records up under the replacement it wrote into the TXT name
            name = wr + name[1:]
        sid = rs.set_identifier
        got = self.entries.get((name, rs.type, sid))
        if got is not None:
            return got
        if rs.type == "A" and rs.alias is not None:
            got = self.entries.get((name, "CNAME", sid))
            if got is not None:
                return got._replace(form="alias-cname")
        if rs.type != "AAAA":
            return self.entries.get((name, "", sid))
        return None


def read_registry(
    records: Iterable[RecordSet], naming: TxtNaming, *, also_read: Sequence[TxtNaming] = ()
) -> Registry:
    """Read every ownership TXT of a zone under `naming` (and, with lower priority, other namings).

    `also_read` lets the portal recognise records owned by ExternalDNS instances that use a different prefix
    or suffix than the zone's own, so they show as "owned by <id>" rather than "unowned" (both are never
    touched). When two TXTs claim one record, the zone's own naming wins, then the TXT at the name that naming
    writes for the record (an old template-less name can read as typed too), then the smaller name, so the
    result does not depend on the input order.
    """
    entries: dict[tuple[str, str, str], Ownership] = {}
    txt_owners: dict[tuple[str, str, str], str] = {}
    namings = (naming, *also_read)
    rank: dict[tuple[str, str, str], tuple[int, bool, str]] = {}  # priority of each entry, lower wins
    for rs in records:
        if rs.type != "TXT" or not rs.values:
            continue
        # ExternalDNS parses only the first value of a TXT record set (registry.go: Targets[0])
        text, owner = ownership_in_value(rs.values[0])
        if owner is None:
            continue
        sid = rs.set_identifier
        txt_owners[(rs.name, "TXT", sid)] = owner
        for i, nm in enumerate(namings):
            got = nm.record_for_txt(rs.name)
            if got is None:
                continue
            rname, rtype = got
            if i > 0 and nm.wildcard_replacement and rname.startswith(nm.wildcard_replacement + "."):
                # another naming's wildcard replacement: store under the name the zone's naming looks up
                rname = "*" + rname[len(nm.wildcard_replacement) :]
                if naming.wildcard_replacement:
                    rname = naming.wildcard_replacement + rname[1:]
            ekey = (rname, rtype, sid)
            prio = (i, bool(rtype) and nm.txt_name(rname, rtype) != rs.name, rs.name)
            if ekey in rank and rank[ekey] <= prio:
                continue
            rank[ekey] = prio
            entries[ekey] = Ownership(owner, text, rs, "typed" if rtype else "legacy")
    return Registry(naming=naming, entries=entries, txt_owners=txt_owners)


# --- writing ---------------------------------------------------------------------------------------------


def ownership_labels(owner_id: str, labels: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """The labels an ownership TXT carries: the endpoint's labels (resource, CRD labels) plus our owner id."""
    out = dict(labels.items() if isinstance(labels, Mapping) else labels)
    out.pop("ownedRecord", None)  # ExternalDNS's in-memory bookkeeping label, never serialised
    out[LABEL_OWNER] = owner_id
    return {k: v for k, v in out.items() if v != "" or k == LABEL_OWNER}


def ownership_record(
    record: RecordSet, owner_id: str, labels: Mapping[str, str] | Iterable[tuple[str, str]], naming: TxtNaming
) -> RecordSet:
    """The ownership TXT record set for `record`, as ExternalDNS v0.18+ writes it.

    Same set identifier and the same routing fields and health check as the record it owns (ExternalDNS copies
    ProviderSpecific onto the TXT), so a weighted A record gets a weighted TXT; TTL unset, i.e. the AWS
    default 300; typed name even for alias A records (v0.22+ writes `a-`, not `cname-`).
    """
    if not owner_id:
        raise ValueError("owner id must not be empty (ExternalDNS refuses an empty --txt-owner-id)")
    return RecordSet(
        name=naming.txt_name(record.name, record.type),
        type="TXT",
        set_identifier=record.set_identifier,
        ttl=DEFAULT_TTL,
        values=(format_ownership_value(ownership_labels(owner_id, labels)),),
        routing=record.routing,
        health_check_id=record.health_check_id,
    )
