"""Where the article is among a page's lines: the contiguous run with the
most prose in a text dump (a maximum sub-array over line scores), the short
lines kept inside it, and the non-prose tail after HTML's last paragraph."""

from __future__ import annotations

from collections.abc import Sequence

from .lines import SHORT, Kind, Line, classify
from .text import comparison_key

# Run scoring. Prose counts by its length (near-good prose at half weight);
# a dropped line costs a toll plus its length and a short line a smaller toll,
# so a long run of menu entries is a wall the article run does not cross, while
# a heading, caption or timestamp inside the article is not.
_NEAR_WEIGHT = 0.5
_BAD_TOLL = 12
_SHORT_TOLL = 4
_SHORT_WEIGHT = 0.25
_SKIP_TOLL = 1
_RELATED_TOLL = 400
# Below a comments header, prose weighs less: a long thread must not win over
# the article above it. Only a header after some prose counts, since a header
# in the top menu links to comments rather than opening them.
_COMMENTS_WEIGHT = 0.25
_COMMENTS_AFTER = 500
_COPY_KEY = 60  # folded characters that identify a paragraph printed twice


def _neighbour(kinds: Sequence[Kind], i: int, step: int) -> Kind:
    """Class of the nearest line that is neither short nor skipped; BAD past the ends."""
    j = i + step
    while 0 <= j < len(kinds):
        if kinds[j] in (Kind.GOOD, Kind.BAD):
            return kinds[j]
        j += step
    return Kind.BAD


def revise(kinds: Sequence[Kind]) -> list[Kind]:
    """Context pass (after jusText) inside the article run.

    A short line is kept between kept lines and dropped next to chrome or at
    the edges of the run. The run was chosen for its prose, so near-good lines
    in it count as good.
    """
    base = [Kind.GOOD if k is Kind.NEAR else k for k in kinds]
    out: list[Kind] = list(base)
    for i, kind in enumerate(base):
        if kind is Kind.SHORT:
            both_good = _neighbour(base, i, -1) is Kind.GOOD and _neighbour(base, i, 1) is Kind.GOOD
            out[i] = Kind.GOOD if both_good else Kind.BAD
    return out


def _line_score(line: Line, weight: float) -> float:
    length = len(line.text)
    if line.marker:
        return -float(_RELATED_TOLL)
    if line.kind is Kind.GOOD:
        return weight * length
    if line.kind is Kind.NEAR:
        return weight * _NEAR_WEIGHT * length
    if line.kind is Kind.SHORT:
        return -(_SHORT_TOLL + _SHORT_WEIGHT * length)
    if line.kind is Kind.SKIP:
        return -float(_SKIP_TOLL)
    return -float(_BAD_TOLL + length)


def main_run(lines: Sequence[Line]) -> tuple[int, int]:
    """Indices [start, end) of the contiguous run of lines with the most prose."""
    best, best_span = 0.0, (0, 0)
    total, start = 0.0, 0
    weight, prose = 1.0, 0.0
    for i, line in enumerate(lines):
        if line.marker == "comments" and prose >= _COMMENTS_AFTER:
            weight = _COMMENTS_WEIGHT
        score = _line_score(line, weight)
        prose += max(score, 0.0)
        if total <= 0:
            total, start = 0.0, i
        total += score
        if total > best:
            best, best_span = total, (start, i + 1)
    return best_span


def drop_early_copies(lines: list[Line]) -> list[Line]:
    """A paragraph printed twice is a teaser or caption the first time: judge it bad there.

    The first copy is often cut short ("…"), so copies are matched on their opening words.
    """

    def key(text: str) -> str:
        return comparison_key(text)[:_COPY_KEY]

    last = {key(line.text): i for i, line in enumerate(lines) if len(line.text) >= SHORT}
    return [
        Line(line.text, Kind.BAD) if len(line.text) >= SHORT and last[key(line.text)] != i else line
        for i, line in enumerate(lines)
    ]


def trim_tail(lines: list[str]) -> tuple[list[str], list[str]]:
    """Split off the run of non-prose lines after the last paragraph (dates, tags, names).

    A run introduced by a line ending in ":" is a list the article announced:
    kept. With no paragraph at all, everything is tail: trafilatura found no
    article (a "Menu" or a share button left on a page without one).
    """
    end = len(lines)
    while end > 0 and classify(lines[end - 1]).kind not in (Kind.GOOD, Kind.NEAR):
        end -= 1
    if end > 0 and lines[end - 1].endswith(":"):
        return lines, []
    return lines[:end], lines[end:]
