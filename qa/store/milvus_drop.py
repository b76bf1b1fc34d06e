"""Dropping a pruned build's Milvus collection, once no other build of its
index folder searches it."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pymilvus import MilvusClient, MilvusException

from .layout import META
from .milvus_client import MilvusUnavailable, connect

log = logging.getLogger(__name__)


def drop(meta: dict[str, Any]) -> None:
    """Free a pruned build's search: its collection, once no other build of
    its index folder uses it (the index's builds share one). Never raises: the
    new build is already published, so a failure here only leaves an orphan
    collection, logged by name."""
    uri, name = meta.get("uri", ""), meta.get("collection", "")
    if not uri or not name or _still_used(meta):
        return
    try:
        client = connect(uri)
    except MilvusUnavailable as exc:
        log.warning("Milvus collection %s not dropped: %s", name, exc)
        return
    try:
        drop_quietly(client, name)
    finally:
        client.close()


def _still_used(meta: dict[str, Any]) -> bool:
    """Whether another build of the index folder searches the same collection.
    When that cannot be told (the folder moved), the collection is kept."""
    if "index_dir" not in meta:
        return False  # a bare publish (tests) or a build of the older format
    builds = Path(meta["index_dir"]) / "builds"
    if not builds.is_dir():
        log.warning("Milvus collection %s kept: %s is gone", meta["collection"], builds)
        return True
    for other in builds.iterdir():
        if other.name.startswith(".") or other.name == meta.get("build"):
            continue
        try:
            search = json.loads((other / META).read_text()).get("search") or {}
        except (OSError, ValueError):
            continue
        if (search.get("uri"), search.get("collection")) == (meta["uri"], meta["collection"]):
            return True
    return False


def drop_quietly(client: MilvusClient, name: str) -> None:
    try:
        if client.has_collection(name):
            client.drop_collection(name)
    except MilvusException as exc:
        log.warning("Milvus collection %s not dropped: %s", name, exc.message)
