"""Encryption of secrets at rest (kubeconfigs, AWS keys, API keys) with a rotatable key list.

New values are encrypted with the first key of DNSPORTAL_ENCRYPTION_KEYS; any key of the list decrypts, so a
key is rotated by putting a new one first, re-encrypting (manage.py rotate_encryption_keys) and dropping the
old one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class DecryptionError(Exception):
    pass


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with any key in DNSPORTAL_ENCRYPTION_KEYS."
        ) from None


def reencrypt(token: str) -> str:
    """The same secret encrypted with the first key (a no-op in meaning, a new ciphertext)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError(
            "A stored secret cannot be decrypted with any key in DNSPORTAL_ENCRYPTION_KEYS."
        ) from None


def fingerprint(*parts: str) -> str:
    """SHA-256 over the parts: what pages show instead of a secret."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def plaintext_property(column: str, *, reveal: Callable[[str], None], doc: str = "") -> property:
    """A model property for the plaintext of the EncryptedTextField `column`: reading decrypts and hands the
    plaintext to `reveal` (which registers it for log redaction) before anyone can log it; writing encrypts;
    "" stands for none."""

    def get(obj: models.Model) -> str:
        token = getattr(obj, column)
        if not token:
            return ""
        text = decrypt(token)
        reveal(text)
        return text

    def set_(obj: models.Model, text: str) -> None:
        setattr(obj, column, encrypt(text) if text else "")

    return property(get, set_, doc=doc)


class EncryptedTextField(models.TextField):
    """Holds a Fernet token, never plaintext; models expose the secret through a property that decrypts.

    Marking the column with its own class lets `manage.py rotate_encryption_keys` find every encrypted column.
    """

    description = "Secret, encrypted with DNSPORTAL_ENCRYPTION_KEYS"


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    from django.apps import apps

    return [
        (model, field.attname)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
