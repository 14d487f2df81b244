"""What the project relies on beyond a dependency's or the OS's documented promises.

One module per dependency (``linux`` for the operating system), each listing the
internals it uses, why, and the versions it was checked against; a shape test
per module (``tests/test_compat_*.py``) fails when one of them changes.
"""

from __future__ import annotations

__all__: list[str] = []  # private: the project's own modules import these by module
