#!/usr/bin/env python
"""Django's command-line utility for dnsportal."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dnsportal.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018  (imports the settings: a bad environment stops here)
    except ImproperlyConfigured as exc:
        # One clear sentence instead of a traceback: the operator fixes an environment variable.
        sys.exit(f"dnsportal: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
