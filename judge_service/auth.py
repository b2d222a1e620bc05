"""API keys: generation, hashing and scopes (the key itself is shown once, only its hash is kept)."""

from __future__ import annotations

import hashlib
import secrets

# `label`: a rater on the /label page; it reads and writes only its own blind assignments.
SCOPES = ("submit", "read", "admin", "label")
KEY_PREFIX = "js"


def new_key() -> tuple[str, str]:
    """A fresh key and its public prefix (the prefix identifies the key in listings)."""
    prefix = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix


def hash_key(key: str) -> str:
    """SHA-256 of a key: keys are 256-bit random tokens, so a fast hash is enough."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str) -> list[str]:
    """Validate a comma-separated scope list."""
    scopes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}; got {text!r}")
    return list(dict.fromkeys(scopes))


def has_scope(granted: list[str], needed: str) -> bool:
    """`admin` implies every scope."""
    return needed in granted or "admin" in granted
