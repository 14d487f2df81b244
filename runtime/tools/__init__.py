"""The tools of the ``durable-actors`` command: demo, inspect, executions, trace, bench."""

__all__: list[str] = []  # run by the CLI, not imported by name
