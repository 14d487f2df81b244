"""The process host: actor processes, their supervision, and what each process runs.

``Host`` is what an ``ActorSystem`` needs of a process host (``ProcessHost``
here; the Ray backend's ``RayProcessHost``), ``Placement`` what a process is
for a backend with several machines. ``ProcessHost`` spawns actors into
processes of their own from a spec, supervises and stops them, and tells a
layer built on it (``ProcessHooks``) what happened to each process by actor id;
``child_main`` is the life of one actor process (boot, host the actor, exit);
``HostedActor`` hosts a pykka actor behind the process's node; ``Supervisor``
watches every child and restarts crashed ones; ``ChildProcess`` and the
lifeline watch processes by pid; ``SystemRegistry`` mirrors pykka's registry in
every process.
"""

from runtime.processes._child import BootSpec, child_main
from runtime.processes._contract import Host
from runtime.processes._exits import ProcessExit, ProcessHandle
from runtime.processes._hooks import ProcessHooks
from runtime.processes._host import HostedActor
from runtime.processes._lifeline import ChildProcess
from runtime.processes._placement import Placement
from runtime.processes._process_host import ProcessHost
from runtime.processes._registry import Entry, Mirror, SystemRegistry
from runtime.processes._socket_dirs import (
    OWNER_FILE,
    PREFIX,
    make_socket_dir,
    owner_of,
    remove_stale_socket_dirs,
)
from runtime.processes._supervisor import Child, ChildState, Supervisor

__all__ = [
    "OWNER_FILE",
    "PREFIX",
    "BootSpec",
    "Child",
    "ChildProcess",
    "ChildState",
    "Entry",
    "Host",
    "HostedActor",
    "Mirror",
    "Placement",
    "ProcessExit",
    "ProcessHandle",
    "ProcessHooks",
    "ProcessHost",
    "Supervisor",
    "SystemRegistry",
    "child_main",
    "make_socket_dir",
    "owner_of",
    "remove_stale_socket_dirs",
]
