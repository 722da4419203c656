"""taskflow_deps: small helpers shared by the TaskFlow services.

Stands in for a pip-installed third-party dependency; it is vendored into
backend/packages (as ``pip install --target packages`` would lay it out) and
reaches the interpreter through PYTHONPATH=/app:/app/packages.
"""

import re
import unicodedata

__version__ = "1.0.0"
__all__ = ["__version__", "slugify", "truncate"]

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text, max_length=48):
    """Return a lowercase ASCII slug: ``"Ship v1.0 (beta)!"`` -> ``"ship-v1-0-beta"``."""
    normalized = unicodedata.normalize("NFKD", str(text))
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NON_WORD.sub("-", ascii_text).strip("-")
    if max_length and len(slug) > max_length:
        slug = slug[:max_length].rstrip("-")
    return slug or "task"


def truncate(text, limit, suffix="\u2026"):
    """Shorten ``text`` to at most ``limit`` characters, marking the cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(suffix))].rstrip() + suffix
