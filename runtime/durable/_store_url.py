"""The store URL every process of a system opens: one absolute path for SQLite."""

from __future__ import annotations

from pathlib import Path

from runtime.stores import DEFAULT_PATH


def absolute_store_url(url: str | None) -> str:
    """The store URL with an absolute path, so every process opens the same file.

        absolute_store_url("sqlite:///runs.db")  # "sqlite:////home/me/runs.db"
    """
    if url is None:
        return f"sqlite:///{DEFAULT_PATH.resolve()}"
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not sep:
        return url
    path, q, query = rest.partition("?")
    if path.startswith("/") and not path.startswith("//"):
        absolute = Path(path[1:]).resolve()
        return f"sqlite:///{absolute}{q}{query}"
    return url


__all__ = ["absolute_store_url"]
