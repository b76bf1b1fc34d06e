"""Building, extending and shrinking an index folder.

Every change publishes a new build and swaps it in (see `qa.store`). An add
or a removal costs work in proportion to the change: the new build hard-links
the previous one's files, adds a segment for the new articles and marks the
removed ones deleted (`qa.store.append`). A full build, a compaction, and any
change to a build that cannot take segments (one from before them, a Milvus
build) write every article again, carrying the stored vectors over, so only
new text is encoded.

Modules: `encoding` (articles to indexed records and their vectors), `full`
(full builds), `update` (add, remove, compact), `report` (`BuildReport`).
Code outside this package goes through the names below.
"""

from __future__ import annotations

from .encoding import embedding_text, index_articles
from .full import build, build_from_articles
from .report import BuildReport, counted
from .update import add, compact, remove

__all__ = [
    "BuildReport",
    "add",
    "build",
    "build_from_articles",
    "compact",
    "counted",
    "embedding_text",
    "index_articles",
    "remove",
]
