"""Refs: values stored once by the hash of their bytes, and the digest actor that stores them.

``Ref`` is the handle a branch gets from ``ctx.save``; ``PendingDigest`` is its
digest while it is being computed; the digest actor hashes and writes each
distinct blob once, fed by a worker's ``DigestClient`` (off the branch's
thread, through copy-on-write fork snapshots for large values). What Refs need
from outside (a ``BlobStore``, a ``RefBackend`` per process) is declared here.
"""

from actors.refs._backend import RefBackend, current_backend, install_backend, using_backend
from actors.refs._blob_store import MemoryBlobStore, digest_of
from actors.refs._cache import BlobCache
from actors.refs._digest_actor import DigestActor, LoadBlob, StoreBlob
from actors.refs._digest_client import CallbackReply, DigestClient, InlineRefs
from actors.refs._fork_snapshot import ForkSnapshots, estimated_bytes, unserializable_cause
from actors.refs._pending import DIGEST_BYTES, PendingDigest, new_token
from actors.refs._ref import (
    Ref,
    Spilled,
    collecting,
    patch,
    pending_refs,
    save,
    spill_if_large,
    tokens_in,
    unspill,
)

__all__ = [
    "DIGEST_BYTES",
    "BlobCache",
    "CallbackReply",
    "DigestActor",
    "DigestClient",
    "ForkSnapshots",
    "InlineRefs",
    "LoadBlob",
    "MemoryBlobStore",
    "PendingDigest",
    "Ref",
    "RefBackend",
    "Spilled",
    "StoreBlob",
    "collecting",
    "current_backend",
    "digest_of",
    "estimated_bytes",
    "install_backend",
    "new_token",
    "patch",
    "pending_refs",
    "save",
    "spill_if_large",
    "tokens_in",
    "unserializable_cause",
    "unspill",
    "using_backend",
]
