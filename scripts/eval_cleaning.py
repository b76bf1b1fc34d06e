"""Keep and drop rates of the cleaner on the development pages.

For each page: the share of must-keep snippets found in the cleaned text (keep)
and the share of chrome snippets absent from it (drop). Text dumps are cleaned
by `clean_text`; HTML pages by `clean_html` and, for comparison, by plain
`trafilatura.extract` with its default settings.

With --rules, each repair clean_html makes to trafilatura's output
(qa.clean.HTML_RULES) is measured on every HTML page: what the cleaner gives
without it, the words it removes and on how many pages (-v: the text itself,
to judge whether it is chrome or article), against trafilatura alone (no rule).

With --metadata, the publication date, outlet and author found on each page
(HTML and its text dump) against html/metadata.json.

    python scripts/eval_cleaning.py [--data ../shared/data] [--show PAGE] [--rules [-v]]
                                    [--metadata]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from qa.clean import HTML_RULES, clean_html, clean_text, normalize
from qa.publication_date import accentless_key as fold_name

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Score:
    """Snippet counts for one page (or a total)."""

    kept: int
    keep_total: int
    dropped: int
    drop_total: int

    def __add__(self, other: Score) -> Score:
        return Score(
            self.kept + other.kept,
            self.keep_total + other.keep_total,
            self.dropped + other.dropped,
            self.drop_total + other.drop_total,
        )

    @property
    def keep_rate(self) -> float:
        return self.kept / self.keep_total if self.keep_total else 1.0

    @property
    def drop_rate(self) -> float:
        return self.dropped / self.drop_total if self.drop_total else 1.0


ZERO = Score(0, 0, 0, 0)


def fold(text: str) -> str:
    """Matching key: NFC, every run of whitespace (no-break spaces included) one space.

    The snippets were typed with plain spaces where pages print U+00A0 before
    "!" or ":", and some end in a space that stood for a line break.
    """
    return " ".join(normalize(text).split())


def score(text: str, expect: dict[str, list[str]]) -> Score:
    """Count the snippets of `expect` that `text` keeps and drops."""
    text = fold(text)
    must = [fold(s) for s in expect.get("must_include", [])]
    must_not = [fold(s) for s in expect.get("must_not_include", [])]
    return Score(
        sum(s in text for s in must),
        len(must),
        sum(s not in text for s in must_not),
        len(must_not),
    )


def load(folder: Path) -> dict[str, dict[str, list[str]]]:
    pages: dict[str, dict[str, list[str]]] = json.loads(
        (folder / "expectations.json").read_text(encoding="utf-8")
    )["pages"]
    return pages


def evaluate(
    folder: Path, cleaners: dict[str, Callable[[str, str | None], str]]
) -> dict[str, dict[str, Score]]:
    """Per cleaner name, per page, the score of that cleaner's output."""
    results: dict[str, dict[str, Score]] = {name: {} for name in cleaners}
    for page, expect in sorted(load(folder).items()):
        raw = (folder / page).read_text(encoding="utf-8")
        url = expect.get("url")
        for name, cleaner in cleaners.items():
            results[name][page] = score(cleaner(raw, url if isinstance(url, str) else None), expect)
    return results


def trafilatura_with(
    favor_precision: bool = False, favor_recall: bool = False, include_comments: bool = True
) -> Callable[[str, str | None], str]:
    """Plain trafilatura.extract with these settings (none given: its defaults, the baseline)."""

    def run(html: str, url: str | None) -> str:
        import trafilatura

        text = trafilatura.extract(
            html,
            url=url,
            favor_precision=favor_precision,
            favor_recall=favor_recall,
            include_comments=include_comments,
        )
        return normalize(text or "")

    return run


def text_cleaner(raw: str, _url: str | None) -> str:
    return clean_text(raw).text


def html_cleaner(html: str, url: str | None) -> str:
    return clean_html(html, url).text


def html_cleaner_with(rules: tuple[str, ...]) -> Callable[[str, str | None], str]:
    def run(html: str, url: str | None) -> str:
        return clean_html(html, url, rules).text

    return run


def removed_words(before: str, after: str) -> list[str]:
    """Words of `before` that `after` lacks (a multiset difference, in order)."""
    missing = Counter(before.split()) - Counter(after.split())
    out = []
    for word in before.split():
        if missing[word] > 0:
            missing[word] -= 1
            out.append(word)
    return out


def rule_table(folder: Path, verbose: bool) -> None:
    """Per rule: the figures without it, and the words it removes on which pages."""
    pages = sorted(load(folder))
    raws = {p: (folder / p).read_text(encoding="utf-8") for p in pages}
    expect = load(folder)
    urls = {p: u if isinstance(u := expect[p].get("url"), str) else None for p in pages}

    def texts(rules: tuple[str, ...]) -> dict[str, str]:
        return {p: clean_html(raws[p], urls[p], rules).text for p in pages}

    full = texts(HTML_RULES)
    total = sum((score(full[p], expect[p]) for p in pages), ZERO)
    print(f"\nHTML rules (all rules: {fmt(total)})")
    print(f"{'rule':<14} {'without it: keep / drop':<31} {'words removed':>13}  pages")
    rows = [(r, tuple(x for x in HTML_RULES if x != r)) for r in HTML_RULES]
    rows.append(("(none)", ()))
    for name, rules in rows:
        without = texts(rules)
        s = sum((score(without[p], expect[p]) for p in pages), ZERO)
        removed = {p: removed_words(without[p], full[p]) for p in pages}
        hit = [p for p in pages if removed[p]]
        words = sum(len(w) for w in removed.values())
        print(f"{name:<14} {fmt(s):<31} {words:>13}  {len(hit)} {' '.join(hit)}")
        if verbose and name != "(none)":
            for p in hit:
                print(f"    {p}: {' '.join(removed[p])[:400]}")


def metadata_table(data: Path) -> None:
    """Date, outlet and author per page: found (HTML, text dump) against the annotation."""
    truth = json.loads((data / "html" / "metadata.json").read_text(encoding="utf-8"))["pages"]
    urls = {
        p: u if isinstance(u := e.get("url"), str) else None for p, e in load(data / "html").items()
    }
    counts = Counter[str]()
    print(f"\n{'page':<38} {'date: annotated / HTML / text':<38} outlet / author (HTML)")
    for page, want in sorted(truth.items()):
        html = clean_html((data / "html" / page).read_text(encoding="utf-8"), urls.get(page))
        dump = data / "text" / page.replace(".html", ".txt")
        text = clean_text(dump.read_text(encoding="utf-8"))
        counts["html date"] += html.date == want["date"]
        counts["text date"] += text.date == want["date"]
        counts["text date wrong"] += text.date is not None and text.date != want["date"]
        counts["html outlet"] += _same(html.source, want["outlet"])
        counts["text outlet"] += _same(text.source, want["outlet"])
        counts["text outlet named"] += text.source is not None
        counts["author"] += _same(html.author, want["author"]) and html.author is not None
        counts["author wrong"] += html.author is not None and not _same(html.author, want["author"])
        dates = f"{want['date']} / {html.date} / {text.date}"
        print(f"{page:<38} {dates:<38} {html.source!r} / {html.author!r}")
    n = len(truth)
    print(
        f"dates right: HTML {counts['html date']}/{n}, text dumps {counts['text date']}/{n} "
        f"({counts['text date wrong']} wrong); outlets: HTML {counts['html outlet']}/{n}, "
        f"text {counts['text outlet']}/{n} ({counts['text outlet named']} named); "
        f"authors: {counts['author']} right, {counts['author wrong']} wrong"
    )


def _same(found: str | None, annotated: str | None) -> bool:
    """Equal once folded, or one name inside the other ("PSL", "Université PSL")."""
    if not found or not annotated:
        return found == annotated
    a, b = f" {fold_name(found)} ", f" {fold_name(annotated)} "
    return a in b or b in a


def fmt(s: Score) -> str:
    keep = f"{s.kept:>2}/{s.keep_total:<2} {s.keep_rate:6.1%}"
    return f"{keep}  {s.dropped:>2}/{s.drop_total:<2} {s.drop_rate:6.1%}"


def table(title: str, results: dict[str, dict[str, Score]]) -> None:
    names = list(results)
    print(f"\n{title}")
    header = "".join(f" | {name:^29}" for name in names)
    print(f"{'page':<40}{header}")
    print(f"{'':<40}" + " | keep              drop         " * len(names))
    pages = sorted(next(iter(results.values())))
    for page in pages:
        print(f"{page:<40}" + "".join(f" | {fmt(results[n][page]):<29}" for n in names))
    totals = {n: sum(results[n].values(), ZERO) for n in names}
    print(f"{'TOTAL':<40}" + "".join(f" | {fmt(totals[n]):<29}" for n in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT.parent / "shared" / "data",
        help="folder with text/ and html/ (default: ../shared/data from the project root)",
    )
    parser.add_argument("--show", help="print the cleaned text of this page (file name)")
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also score trafilatura with favor_precision, favor_recall, no comments",
    )
    parser.add_argument(
        "--rules", action="store_true", help="measure each repair of trafilatura's output"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="with --rules: the words")
    parser.add_argument(
        "--metadata", action="store_true", help="dates, outlets, authors against metadata.json"
    )
    args = parser.parse_args(argv)
    data: Path = args.data
    if args.rules:
        rule_table(data / "html", args.verbose)
        return 0
    if args.metadata:
        metadata_table(data)
        return 0
    if args.show:
        folder = data / ("html" if args.show.endswith(".html") else "text")
        raw = (folder / args.show).read_text(encoding="utf-8")
        cleaned = clean_html(raw) if args.show.endswith(".html") else clean_text(raw)
        print(f"title: {cleaned.title!r}\ncredit: {cleaned.credit!r}\ndate: {cleaned.date!r}\n")
        print(cleaned.text)
        return 0
    table("Text dumps (clean_text)", evaluate(data / "text", {"clean_text": text_cleaner}))
    html_cleaners = {
        "clean_html": html_cleaner,
        "trafilatura alone (no rule)": html_cleaner_with(()),
        "trafilatura default": trafilatura_with(),
    }
    if args.variants:
        html_cleaners |= {
            "traf. favor_precision": trafilatura_with(favor_precision=True),
            "traf. favor_recall": trafilatura_with(favor_recall=True),
            "traf. no comments": trafilatura_with(include_comments=False),
        }
    table("HTML pages", evaluate(data / "html", html_cleaners))
    return 0


if __name__ == "__main__":
    sys.exit(main())
