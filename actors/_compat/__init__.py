"""The private internals of our dependencies, one module per dependency.

Each module lists the internals it uses, why, and the versions it was checked
against; ``tests/test_compat_<dependency>.py`` fails when one changes shape.
"""
__all__: list[str] = []
