"""Connecting an ``ActorSystem`` to Ray, and leaving it as it was found.

The application configures, the library does not: a process already connected
to Ray (``ray.init`` by the application) is used as it is, and left connected.
Otherwise the system connects with ``SystemConfig.ray_address`` and
``ray_namespace`` (``None``: Ray's own choice, which joins a cluster named by
``RAY_ADDRESS`` or started on this machine, or starts a local one), touching
no logging configuration, and disconnects at its shutdown.

    owned = connect(config)          # True: this call connected; disconnect(owned) at the end
"""

from __future__ import annotations

from typing import Any

import ray

from actors import tracelog
from runtime.config import SystemConfig

log = tracelog.get_logger("runtime.raybackend")


def connect(config: SystemConfig) -> bool:
    """Make sure this process is connected to Ray; whether this call connected it."""
    if ray.is_initialized():
        return False
    init: Any = ray.init  # untyped overloads
    context = init(address=config.ray_address, namespace=config.ray_namespace,
                   configure_logging=False)
    log.info("ray.connected", address=str(context.address_info.get("gcs_address", "")))
    return True


def disconnect(owned: bool) -> None:
    """Disconnect from Ray if ``connect`` connected this process."""
    if owned and ray.is_initialized():
        ray.shutdown()


__all__ = ["connect", "disconnect"]
