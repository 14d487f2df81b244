"""The private internals of the runtime's own dependencies, one module per dependency.

See ``actors._compat`` for the rule; ``multiprocess`` is here because only the
runtime starts processes.
"""

__all__: list[str] = []
