"""Process titles: ``ps``, ``top`` and ``/proc/<pid>/cmdline`` name each actor process.

Every process a system starts is titled ``durable-actors: <name>``, the same
name as in ``ActorSystem.processes()`` (``checkpoint``, ``worker-0``, a spawned
actor's name), so an operator finds the process to look at, or to signal,
without asking the system. The service process keeps its own title: it is the
application's.

    $ ps -eo pid,args | grep durable-actors
    4121 durable-actors: checkpoint
    4133 durable-actors: worker-0
"""

from __future__ import annotations

import setproctitle

TITLE_PREFIX = "durable-actors: "


def title_for(name: str) -> str:
    """The title of the process that hosts the actor ``name``."""
    return f"{TITLE_PREFIX}{name}"


def set_title(name: str) -> None:
    """Title this process after the actor it hosts (call it in the actor's own process)."""
    setproctitle.setproctitle(title_for(name))


__all__ = ["TITLE_PREFIX", "set_title", "title_for"]
