from django.conf import settings
from django.db import models


class Identity(models.Model):
    """A person of an OpenID provider, linked to the portal account their logins use.

    The link is the provider's issuer and subject (`sub`), which OpenID Connect promises never to reassign; a
    username or an e-mail address is not, so a local account of the same name is never taken over.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identity"
    )
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="sso_identity_issuer_subject")
        ]
        verbose_name_plural = "identities"

    def __str__(self) -> str:
        return f"{self.subject} at {self.issuer}"
