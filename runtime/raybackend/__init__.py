"""The Ray backend, phase 1: a prototype of one pykka actor hosted in one Ray actor.

Not wired into ``ActorSystem`` yet (docs/design-ray.md says what phase 2 needs).
Nothing here is imported with the package, so ``local.prepare_process()`` can run
before ``ray`` is imported:

* ``host.ActorHost``: the Ray actor that is the "process" of one pykka actor, and
  ``starting.start_host`` to start one;
* ``ref.RayActorRef``: a picklable ref whose ``tell``/``ask`` reach it from the
  service process or from any other Ray actor; an ask's reply resolves a
  ``runtime.Future``;
* ``transport.RayTransport``: the transport seam (``runtime.transport.Transport``)
  over those hosts, so the system's own ``ActorRef`` and proxies run on Ray;
* ``sequencing.InOrder``: per-sender FIFO, which Ray does not promise a threaded actor;
* ``replies``: a ``Future`` sent inside a message is answered by whoever receives it;
* ``wire`` and ``outcomes``: messages and answers as our own pickled bytes, in the
  error encoding every transport uses (``runtime.transport.caller_exception``);
* ``local.LocalRay``: a local Ray on loopback for tests and benchmarks.

    from runtime.raybackend.starting import start_host

    ref = start_host(Counter, name="counter")     # a Ray actor hosting Counter
    ref.tell(1)
    assert ref.ask("total", timeout=5) == 1
"""
