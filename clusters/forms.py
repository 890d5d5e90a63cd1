from __future__ import annotations

import re

from django import forms

from clusters.kubeconfig import MAX_BYTES, KubeconfigError, list_contexts
from clusters.models import Cluster, slug_validator
from clusters.services import Credentials, validate_credentials

_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$")


def parse_labels(text: str) -> dict[str, str]:
    """`region=us-east-1, site=dc1` → {"region": "us-east-1", "site": "dc1"}."""
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in re.split(r"[,\n]", text or ""))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _LABEL.match(key) or (value and not _LABEL.match(value)):
            raise forms.ValidationError(f"{item!r} is not a label: write key=value, e.g. region=us-east-1.")
        labels[key] = value
    return labels


def format_labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


class CredentialsForm(forms.Form):
    kubeconfig = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 12, "spellcheck": "false", "autocomplete": "off", "class": "mono"}
        ),
        help_text="Paste the kubeconfig. Credentials must be inline (token or client-certificate-data); "
        "exec plugins and file paths are refused.",
    )
    kubeconfig_file = forms.FileField(required=False, help_text="…or upload the file (at most 1 MiB).")
    context = forms.ChoiceField(required=False, choices=[("", "(the file's current-context)")])
    allow_insecure = forms.BooleanField(
        required=False,
        label="Accept insecure-skip-tls-verify",
        help_text="Only if the cluster has no verifiable certificate; shown on the cluster as a warning.",
    )
    aws_access_key_id = forms.CharField(required=False, label="AWS access key id (EKS only)")
    aws_secret_access_key = forms.CharField(
        required=False,
        label="AWS secret access key (EKS only)",
        widget=forms.PasswordInput(render_value=False),
    )
    eks_cluster_name = forms.CharField(required=False, label="EKS cluster name")
    eks_region = forms.CharField(required=False, label="EKS region", help_text="e.g. us-east-1")

    def __init__(self, *args, require_kubeconfig: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.require_kubeconfig = require_kubeconfig
        text = self._raw_kubeconfig()
        if text:
            try:
                names, current = list_contexts(text)
            except KubeconfigError:
                names, current = [], None
            label = f"(current-context: {current})" if current else "(choose a context)"
            self.fields["context"].choices = [("", label), *[(n, n) for n in names]]

    def _raw_kubeconfig(self) -> str:
        if not self.is_bound:
            return ""
        upload = self.files.get("kubeconfig_file") if self.files else None
        if upload is not None and upload.size <= MAX_BYTES:
            return upload.read().decode("utf-8", errors="replace")
        return self.data.get("kubeconfig", "") or ""

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("kubeconfig_file")
        if upload is not None:
            if upload.size > MAX_BYTES:
                self.add_error(
                    "kubeconfig_file", "The file is larger than 1 MiB; a kubeconfig is never that big."
                )
                return data
            upload.seek(0)
            data["kubeconfig"] = upload.read().decode("utf-8", errors="replace")
        text = data.get("kubeconfig", "")
        if not text.strip():
            if self.require_kubeconfig:
                self.add_error("kubeconfig", "Paste a kubeconfig or upload its file.")
            return data
        keys = [data.get("aws_access_key_id"), data.get("aws_secret_access_key")]
        if any(keys) and not all(keys):
            self.add_error(
                "aws_access_key_id", "For EKS, give both the access key id and the secret access key."
            )
            return data
        try:
            self.access = validate_credentials(self.credentials(data))
        except KubeconfigError as exc:
            for problem in exc.problems:
                field = {"contexts": "context", "eks": "eks_cluster_name"}.get(problem.field, "kubeconfig")
                self.add_error(field, f"{problem.field}: {problem.message}")
        return data

    def credentials(self, data: dict | None = None) -> Credentials:
        data = data if data is not None else self.cleaned_data
        return Credentials(
            kubeconfig=data.get("kubeconfig", ""),
            context=data.get("context", ""),
            allow_insecure=bool(data.get("allow_insecure")),
            aws_access_key_id=data.get("aws_access_key_id", ""),
            aws_secret_access_key=data.get("aws_secret_access_key", ""),
            eks_cluster_name=data.get("eks_cluster_name", ""),
            eks_region=data.get("eks_region", ""),
        )


class ClusterRegisterForm(CredentialsForm):
    name = forms.CharField(
        max_length=63,
        validators=[slug_validator],
        help_text="A short id like rke2-dc1; it cannot be changed later.",
    )
    display_name = forms.CharField(max_length=100, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    labels = forms.CharField(required=False, help_text="key=value pairs, e.g. region=us-east-1, site=dc1")

    field_order = [
        "name",
        "display_name",
        "description",
        "labels",
        "kubeconfig",
        "kubeconfig_file",
        "context",
        "allow_insecure",
        "aws_access_key_id",
        "aws_secret_access_key",
        "eks_cluster_name",
        "eks_region",
    ]

    def clean_name(self) -> str:
        from clusters.urls import RESERVED_NAMES

        name = self.cleaned_data["name"]
        if name in RESERVED_NAMES:
            raise forms.ValidationError(
                f"{name!r} is reserved for a page of the portal; choose another name."
            )
        if Cluster.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A cluster called {name!r} is already registered.")
        return name

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data.get("labels", ""))


class ClusterEditForm(CredentialsForm):
    display_name = forms.CharField(max_length=100, required=False)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    labels = forms.CharField(required=False)
    write_back_prefix = forms.ChoiceField(
        choices=Cluster.Prefix.choices,
        label="Annotation prefix for write-back",
        help_text="For objects with no ExternalDNS annotation yet; one that has some keeps its prefix.",
    )

    field_order = [
        "display_name",
        "description",
        "labels",
        "write_back_prefix",
        "kubeconfig",
        "kubeconfig_file",
        "context",
        "allow_insecure",
        "aws_access_key_id",
        "aws_secret_access_key",
        "eks_cluster_name",
        "eks_region",
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, require_kubeconfig=False, **kwargs)
        self.fields[
            "kubeconfig"
        ].help_text = "Leave empty to keep the stored kubeconfig; paste a new one to replace it."

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data.get("labels", ""))


def parse_flag_lines(text: str) -> dict[str, object]:
    """ExternalDNS-style arguments, one per line (`--domain-filter=example.com`, `--namespace=shop`).

    Repeated list flags add up, as they do on ExternalDNS's command line."""
    from clusters.source_options import LIST_OPTIONS

    values: dict[str, object] = {}
    problems: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.lstrip("-").partition("=")
        name = name.strip()
        if not name:
            problems.append(f"line {number}: {raw!r} is not an option (write --name=value).")
            continue
        if name in LIST_OPTIONS:
            existing = values.setdefault(name, [])
            existing.extend(v for v in value.split(",") if v.strip())  # type: ignore[union-attr]
        else:
            values[name] = value.strip() if sep else "true"
    if problems:
        raise forms.ValidationError(problems)
    return values


def format_flag_lines(mapping: dict[str, object]) -> str:
    lines = []
    for name, value in mapping.items():
        if isinstance(value, list):
            lines += [f"--{name}={v}" for v in value]
        elif value is True:
            lines.append(f"--{name}")
        else:
            lines.append(f"--{name}={str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines)


class SourceOptionsForm(forms.Form):
    options = forms.CharField(
        required=False,
        label="Source options",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "mono"}),
        help_text="ExternalDNS's flags, one per line, e.g. --domain-filter=example.com, --namespace=shop, "
        "--publish-internal-services. Paste the arguments your ExternalDNS runs with.",
    )

    def clean_options(self):
        from clusters.source_options import SourceOptions, SourceOptionsError

        mapping = parse_flag_lines(self.cleaned_data.get("options", ""))
        try:
            return SourceOptions.from_mapping(mapping)
        except SourceOptionsError as exc:
            # every bad flag with its reason, one error each: fixing them one save at a time is tedious
            raise forms.ValidationError(exc.problems) from None
