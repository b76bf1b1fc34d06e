"""Connecting to Milvus, and the names the Milvus store's writer
(`milvus_backend`), reader (`milvus_search`) and pruning (`milvus_drop`) share.

The same code talks to Milvus Lite (a local `*.db` path, served in-process by
the `milvus-lite` package) and to a Milvus standalone or distributed server
(`http://host:19530`). A Milvus Lite path can be open in one process at a
time; for a builder and a server in separate processes, run a Milvus server
(or `milvus-lite server`) and give its http:// URI instead.
"""

from __future__ import annotations

from pymilvus import MilvusClient, MilvusException

from ..errors import IndexProblem

KIND = "milvus"
KEYS_NPY = "milvus_keys.npy"  # row i of the build -> its chunk's key in the collection
STALE_NPY = "milvus_stale.npy"  # keys the build removed, deleted by the next build


class MilvusUnavailable(IndexProblem):
    """The Milvus a build's search lives in cannot be reached."""


def is_lite(uri: str) -> bool:
    """Whether pymilvus serves `uri` with Milvus Lite (its rule: a local `*.db` path)."""
    return uri.endswith(".db") and "://" not in uri


def connect(uri: str) -> MilvusClient:
    """A client for `uri`; pymilvus shares one gRPC channel per address, and a
    Milvus Lite path gets one in-process server per process."""
    lite_file = is_lite(uri)
    # Milvus Lite's in-process server answers idle keepalive pings with
    # GOAWAY "too_many_pings" (noise on stderr, then a reconnect): no pings
    # without calls there; a real server keeps pymilvus's defaults.
    options = {"grpc.keepalive_permit_without_calls": 0} if lite_file else {}
    try:
        return MilvusClient(uri=uri, grpc_options=options)
    except MilvusException as exc:
        hint = (
            " A Milvus Lite file can be open in one process at a time: stop the other "
            "process, or serve it with `milvus-lite server` and use its http:// URI."
        )
        message = f"Cannot connect to Milvus at {uri}: {exc.message}."
        raise MilvusUnavailable(message + (hint if lite_file else "")) from exc
