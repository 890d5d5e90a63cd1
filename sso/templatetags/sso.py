from django import template
from django.conf import settings

register = template.Library()


@register.inclusion_tag("sso/partials/login_button.html", takes_context=True)
def sso_login_button(context: template.Context) -> dict:
    """ "Sign in with <provider>" on the login page, when single sign-on is configured."""
    return {
        "enabled": settings.OIDC_ENABLED,
        "provider_name": settings.OIDC_PROVIDER_NAME,
        "next": context.get("next", ""),
    }
