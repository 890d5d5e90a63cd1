"""The verification forms of a hostname's page: "Probe over HTTP" (how many requests, to which port and path).

The limits are records.probe's, which the service checks again (records.verification_services); the browser
checks them too (min/max on the inputs), so a keyboard user hears of a bad value before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms

from records.probe import DEFAULT_REQUESTS, MAX_REQUESTS, path_problem, port_problem, requests_problem


class ProbeForm(forms.Form):
    """The "Probe over HTTP" form; errors read like the service's refusals ("n must be 1–10000")."""  # noqa: RUF002

    zone_id = forms.IntegerField(widget=forms.HiddenInput)
    n = forms.IntegerField(
        label="Requests",
        initial=DEFAULT_REQUESTS,
        help_text=f"1 to {MAX_REQUESTS}; each resolves the name on the zone's nameservers.",
        widget=forms.NumberInput(attrs={"min": 1, "max": MAX_REQUESTS}),
        error_messages={"invalid": "n must be a whole number", "required": "n is required"},
    )
    port = forms.IntegerField(
        initial=80,
        widget=forms.NumberInput(attrs={"min": 1, "max": 65535}),
        error_messages={"invalid": "port must be a whole number", "required": "port is required"},
    )
    path = forms.CharField(
        initial="/",
        max_length=2000,
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocapitalize": "off"}),
        error_messages={"required": "path is required"},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "probe-%s")  # unique on the hostname page, beside its other forms
        super().__init__(*args, **kwargs)

    def _check(self, name: str, problem_of: Callable[[Any], str]) -> Any:
        value = self.cleaned_data[name]
        if problem := problem_of(value):
            raise forms.ValidationError(problem)
        return value

    def clean_n(self) -> int:
        return self._check("n", requests_problem)

    def clean_port(self) -> int:
        return self._check("port", port_problem)

    def clean_path(self) -> str:
        return self._check("path", path_problem)
