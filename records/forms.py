from __future__ import annotations

from functools import cache
from typing import Any

from django import forms

from records.models import ProviderAccount, Zone


@cache
def aws_regions() -> frozenset[str]:
    """Every region of every AWS partition, from the endpoint data botocore ships (no network)."""
    import boto3

    session = boto3.session.Session()
    # Route53 itself is global (no regions in the data); STS is in every region and is what the role
    # credentials and the regional endpoints of the account use.
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sts", partition_name=partition)
    )


class AccountForm(forms.Form):
    """An account of a DNS provider: a Route53 account, or a PowerDNS server reached through its HTTP API."""

    name = forms.SlugField(max_length=63, help_text="A short id, e.g. aws-prod or pdns-dc1.")
    kind = forms.ChoiceField(
        choices=ProviderAccount.Kind.choices,
        initial=ProviderAccount.Kind.ROUTE53,
        label="Provider",
        widget=forms.RadioSelect,
        required=False,
    )
    credential_kind = forms.ChoiceField(
        choices=ProviderAccount.CredentialKind.choices, label="Credentials (Route53)", required=False
    )
    access_key_id = forms.CharField(required=False, label="Access key id (Route53)")
    secret = forms.CharField(
        required=False,
        label="Secret: Route53's secret access key (or the role's external id), or PowerDNS's API key",
        widget=forms.PasswordInput(render_value=False),
    )
    role_arn = forms.CharField(required=False, label="Role ARN (Route53)")
    region = forms.CharField(initial="us-east-1", required=False, label="Region (Route53)")
    endpoint_url = forms.URLField(
        assume_scheme="https",
        required=False,
        label="Endpoint URL",
        help_text="Route53: leave empty for AWS (only for tests and compatible APIs). "
        "PowerDNS: the API's URL, e.g. http://pdns.internal:8081 (required).",
    )
    server_id = forms.CharField(
        max_length=63, initial="localhost", required=False, label="Server id (PowerDNS)"
    )
    dns_servers = forms.CharField(
        max_length=500,
        required=False,
        label="DNS servers (PowerDNS)",
        help_text="host:port of the servers answering this server's zones, comma-separated, for "
        "verification, e.g. 10.0.0.53:53; empty: the zones' NS records.",
    )
    rate = forms.FloatField(
        initial=5.0,
        min_value=0.1,
        max_value=50,
        help_text="Requests per second to Route53 for this account, shared by every worker.",
    )
    burst = forms.IntegerField(initial=5, min_value=1, max_value=100)

    def clean_region(self) -> str:
        region = (self.cleaned_data.get("region") or "").strip() or "us-east-1"
        if self.data.get("kind") == ProviderAccount.Kind.POWERDNS:
            return "us-east-1"  # unused by PowerDNS
        if region not in aws_regions():
            raise forms.ValidationError(
                f"{region!r} is not an AWS region; use a region name such as us-east-1 or eu-west-1."
            )
        return region

    def clean_dns_servers(self) -> str:
        from records.verify import nameserver_entry_problems

        text = self.cleaned_data.get("dns_servers") or ""
        problems = nameserver_entry_problems(text)
        if problems:
            raise forms.ValidationError(
                [f"{p}; write a host name or an IP address, with an optional port 1-65535" for p in problems]
            )
        return ", ".join(e.strip() for e in text.split(",") if e.strip())

    def clean(self) -> dict:
        data = super().clean()
        data["kind"] = data.get("kind") or ProviderAccount.Kind.ROUTE53
        if data["kind"] == ProviderAccount.Kind.POWERDNS:
            if not data.get("endpoint_url") and "endpoint_url" not in self.errors:
                self.add_error("endpoint_url", "Give the PowerDNS API's URL, e.g. http://pdns.internal:8081.")
            if not data.get("secret"):
                self.add_error("secret", "Give the PowerDNS API key (its api-key setting).")
            data["credential_kind"] = ProviderAccount.CredentialKind.STATIC
            data["access_key_id"] = data["role_arn"] = ""
            data["server_id"] = (data.get("server_id") or "").strip() or "localhost"
            return data
        kind = data.get("credential_kind") or ProviderAccount.CredentialKind.STATIC
        data["credential_kind"] = kind
        data["server_id"], data["dns_servers"] = "localhost", ""
        if kind == ProviderAccount.CredentialKind.STATIC and not (
            data.get("access_key_id") and data.get("secret")
        ):
            self.add_error("secret", "An access key pair needs both the key id and the secret.")
        if kind == ProviderAccount.CredentialKind.ROLE and not data.get("role_arn", "").startswith("arn:"):
            self.add_error("role_arn", "Give the role's ARN, e.g. arn:aws:iam::123456789012:role/dnsportal.")
        return data


class ImportZonesForm(forms.Form):
    domain_filter = forms.CharField(
        required=False, help_text="Only zones under these domains (comma-separated)."
    )

    def clean_domain_filter(self) -> list[str]:
        return [
            d.strip().lower().rstrip(".") for d in self.cleaned_data["domain_filter"].split(",") if d.strip()
        ]


class ZoneForm(forms.ModelForm):
    class Meta:
        model = Zone
        fields = [
            "owner_id",
            "policy",
            "txt_prefix",
            "txt_suffix",
            "drift_interval",
            "full_read_interval",
            "approval_mode",
            "webhook_url",
            "nameserver_override",
            "verify_interval",
            "enabled",
            "private",
        ]
        labels = {"private": "Internal zone (not served on the internet)"}
        help_texts = {
            "owner_id": "The TXT owner id the portal writes in this zone; never an ExternalDNS instance's.",
            "txt_prefix": "Where ownership TXT records go. The default keeps the apex's TXT inside the zone.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["private"]
        if self.instance.account_id and self.instance.account.is_powerdns:
            field.help_text = (
                "PowerDNS does not know whether a zone is internal: say so here. In an internal zone, "
                "private addresses (RFC 1918, loopback, CGNAT) are legitimate and need no second person's "
                "approval."
            )
        else:
            # Route53 says whether a hosted zone is private; the import reads it
            field.disabled = True
            field.help_text = "Read from Route53: a private hosted zone answers only inside its VPCs."

    def clean_nameserver_override(self) -> str:
        from records.verify import nameserver_entry_problems

        text = self.cleaned_data["nameserver_override"]
        problems = nameserver_entry_problems(text)
        if problems:
            raise forms.ValidationError(
                [f"{p}; write a host name or an IP address, with an optional port 1-65535" for p in problems]
            )
        return ", ".join(e.strip() for e in text.split(",") if e.strip())

    def clean(self) -> dict:
        data = super().clean()
        if data.get("txt_prefix") and data.get("txt_suffix"):
            raise forms.ValidationError(
                "Set a TXT prefix or a TXT suffix, not both (as ExternalDNS requires)."
            )
        drift, full = data.get("drift_interval"), data.get("full_read_interval")
        if drift and full is not None and full < drift:
            self.add_error(
                "full_read_interval",
                f"A full read is also a drift check: make it at least the drift interval ({drift} s).",
            )
        return data
