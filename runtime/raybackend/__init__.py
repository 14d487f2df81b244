"""The Ray backend: ``ActorSystem(backend="ray")`` runs every actor as a Ray actor of its own.

Nothing here is imported with the package (``ray`` is the optional ``[ray]``
extra), so ``local.prepare_process()`` can run before ``ray`` is imported:

* ``process_host.RayProcessHost``: the process host (``runtime.processes.Host``)
  on Ray: spawns hosts where ``Placement`` says, stops them in rank order;
* ``supervision.RaySupervisor``: watches every host through one pending call and
  applies each actor's ``RestartPolicy`` to Ray's restarts;
* ``host.ActorHost``: the Ray actor that is the "process" of one pykka actor, and
  ``starting.start_host`` to start one on its own;
* ``transport.RayTransport``: the transport seam (``runtime.transport.Transport``)
  over those hosts, in the service process and in every host;
* ``registry``: pykka's ``ActorRegistry`` mirrored into every host;
* ``ref.RayActorRef``: a picklable ref to a host, numbering what it sends;
* ``sequencing.InOrder``: per-sender FIFO, which Ray does not promise a threaded actor;
* ``replies``, ``outcomes``, ``wire``: futures inside messages and answers, and
  the error encoding every transport uses (``runtime.transport.caller_exception``);
* ``connection``: connecting to Ray, or using the application's connection;
* ``local.LocalRay``: a local Ray on loopback for tests and benchmarks.

    with ActorSystem(store="sqlite:///state.db", backend="ray") as system:
        system.map(Resize, images).result(timeout=600)
"""
