"""The private internals of the dependencies (and OS tricks), one module per dependency.

Each module lists in its docstring every internal it reaches, why, and the
versions it was checked against; ``tests/test_compat_<dep>.py`` fails when one
of them changes shape. Nothing else in ``actors`` or ``runtime`` reaches them.
"""

__all__: list[str] = []
