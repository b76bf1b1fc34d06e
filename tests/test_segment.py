"""Sentence segmentation (qa.segment): French and English cases, and properties on
random and real texts."""

from __future__ import annotations

import re
import time

import pytest
from helpers import assert_sentence_invariants, piaf_contexts, real_texts, seed_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.segment import _token_before, split_sentences


def texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


# ---------------------------------------------------------------- abbreviations


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "M. Dupont est arrivé lundi. Mme Martin est venue mardi.",
            ["M. Dupont est arrivé lundi.", "Mme Martin est venue mardi."],
        ),
        (
            "Le Dr. Martin et le Pr. Durand ont signé. Mlle. Roux aussi.",
            ["Le Dr. Martin et le Pr. Durand ont signé.", "Mlle. Roux aussi."],
        ),
        (
            "He met Mr. Smith and Dr. Jones in London. They talked for an hour.",
            ["He met Mr. Smith and Dr. Jones in London.", "They talked for an hour."],
        ),
        (
            "Selon J. Kerry, la réunion est utile. Le Drian approuve.",
            ["Selon J. Kerry, la réunion est utile.", "Le Drian approuve."],
        ),
        (
            "Voir fig. 3 et art. 12 du code civil. La loi change.",
            ["Voir fig. 3 et art. 12 du code civil.", "La loi change."],
        ),
        (
            "Les U.S.A. ont voté contre. La France s'est abstenue.",
            ["Les U.S.A. ont voté contre.", "La France s'est abstenue."],
        ),
        (
            "Les ministres, e.g. Le Drian, sont là. Fin.",
            ["Les ministres, e.g. Le Drian, sont là.", "Fin."],
        ),
    ],
)
def test_abbreviations_do_not_end_sentences(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


def test_lowercase_one_letter_word_is_not_an_initial() -> None:
    assert texts("Il y en a. Les autres sont partis.") == [
        "Il y en a.",
        "Les autres sont partis.",
    ]


# ---------------------------------------------------------------- times and numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Les ministres se retrouvent à 11H00 GMT au ministère. Ils repartent à 14h30.",
            ["Les ministres se retrouvent à 11H00 GMT au ministère.", "Ils repartent à 14h30."],
        ),
        (
            "La croissance a atteint 1.5 % en 2015. Le chômage baisse.",
            ["La croissance a atteint 1.5 % en 2015.", "Le chômage baisse."],
        ),
        (
            "La ville compte 1 000 habitants. Elle en comptait 1\u202f200 en 1990.",
            ["La ville compte 1 000 habitants.", "Elle en comptait 1\u202f200 en 1990."],
        ),
        (
            "Le budget est de 3,5 milliards. Il était de 3.14 milliards en 2014. Fin.",
            ["Le budget est de 3,5 milliards.", "Il était de 3.14 milliards en 2014.", "Fin."],
        ),
        (
            "The rate rose 1.5 percent. About 1,000 people came.",
            ["The rate rose 1.5 percent.", "About 1,000 people came."],
        ),
        (
            "Il est né en 1990. 2015 fut une année difficile.",
            ["Il est né en 1990.", "2015 fut une année difficile."],
        ),
    ],
)
def test_times_and_numbers(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


# ---------------------------------------------------------------- quotes and punctuation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "« Nous allons gagner », a dit le ministre. Il est parti.",
            ["« Nous allons gagner », a dit le ministre.", "Il est parti."],
        ),
        (
            "Il est parti. «Nous reviendrons», a-t-il promis.",
            ["Il est parti.", "«Nous reviendrons», a-t-il promis."],
        ),
        (
            "Il a dit «Nous gagnerons.» Puis il est parti.",
            ["Il a dit «Nous gagnerons.»", "Puis il est parti."],
        ),
        (
            "He said “We will win.” Then he left.",
            ["He said “We will win.”", "Then he left."],
        ),
        (
            'He said "Stop." Then he left.',
            ['He said "Stop."', "Then he left."],
        ),
        (
            "Le ministre a parlé. “Nothing is decided”, said Mr. Carter.",
            ["Le ministre a parlé.", "“Nothing is decided”, said Mr. Carter."],
        ),
        (
            "Vraiment ? Oui ! Bon… D'accord.",
            ["Vraiment ?", "Oui !", "Bon…", "D'accord."],
        ),
        (
            "Vraiment\u202f? Oui\u00a0! Bon.",
            ["Vraiment\u202f?", "Oui\u00a0!", "Bon."],
        ),
        (
            "(Voir plus haut.) Ensuite le débat.",
            ["(Voir plus haut.)", "Ensuite le débat."],
        ),
    ],
)
def test_quotes_and_terminal_punctuation(text: str, expected: list[str]) -> None:
    assert texts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Il a dit : « Nous gagnerons. » Puis il est parti.",
            ["Il a dit : « Nous gagnerons. »", "Puis il est parti."],
        ),
        (
            "Il a demandé «\u00a0Pourquoi\u00a0?\u00a0» Personne ne répondit.",
            ["Il a demandé «\u00a0Pourquoi\u00a0?\u00a0»", "Personne ne répondit."],
        ),
    ],
)
def test_french_closing_quote_after_a_space_ends_the_sentence(
    text: str, expected: list[str]
) -> None:
    assert texts(text) == expected


def test_lowercase_after_a_dot_does_not_split() -> None:
    assert texts("Le score était de 2 à 1. puis le match a repris.") == [
        "Le score était de 2 à 1. puis le match a repris."
    ]


# ---------------------------------------------------------------- headings and lines


def test_heading_is_its_own_sentence_and_marked() -> None:
    text = "Stratégie militaire faible\nPour les Américains, la réunion doit aider. Voilà."
    sentences = split_sentences(text)
    assert [(s.text, s.heading) for s in sentences] == [
        ("Stratégie militaire faible", True),
        ("Pour les Américains, la réunion doit aider.", False),
        ("Voilà.", False),
    ]


def test_line_break_always_ends_a_sentence() -> None:
    text = "Une ligne de texte qui continue, comme une phrase longue sans point final\nla suite."
    assert texts(text) == [
        "Une ligne de texte qui continue, comme une phrase longue sans point final",
        "la suite.",
    ]


def test_seed_article_sentences() -> None:
    text = seed_text()
    sentences = split_sentences(text)
    assert_sentence_invariants(text, sentences)
    by_text = {s.text: s for s in sentences}
    assert by_text["Stratégie militaire faible"].heading
    assert (
        "Les ministres de la Défense des sept pays les plus engagés dans la campagne aérienne "
        "alliée et la formation des forces irakiennes - Etats-Unis, France, Australie, "
        "Grande-Bretagne, Allemagne, Italie et Pays-Bas - se retrouvent à 11H00 GMT au "
        "ministère français de la Défense."
    ) in by_text
    assert not any(s.text.startswith((".", ",", ";")) for s in sentences)
    assert sum(s.heading for s in sentences) == 1


def test_empty_and_blank_text() -> None:
    assert split_sentences("") == []
    assert split_sentences(" \n\u00a0\n\t ") == []


# ---------------------------------------------------------------- properties

ALPHABET = st.sampled_from(
    [*"aeéiouAÉBCMDrmz019.!?…«»“”\"'()-,:; \n\t", "\u00a0", "\u202f", "...", "M. ", "1 000"]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ALPHABET, max_size=120).map("".join))
def test_property_random_text(text: str) -> None:
    sentences = split_sentences(text)
    assert_sentence_invariants(text, sentences)
    assert all("\n" not in s.text for s in sentences)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_property_any_unicode(text: str) -> None:
    assert_sentence_invariants(text, split_sentences(text))


def test_property_real_texts() -> None:
    """The seed, the dev page dumps (raw and cleaned) and the 185 PIAF paragraphs."""
    corpus = real_texts()
    assert len(corpus) > 200
    for name, text in corpus:
        sentences = split_sentences(text)
        assert sentences, name
        try:
            assert_sentence_invariants(text, sentences)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


# ---------------------------------------------------------------- linear work

_TOKEN_BEFORE = re.compile(r"(\S+)$")  # how the token before a dot was found before


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=60).map("".join), st.integers(min_value=0, max_value=60))
def test_token_before_a_dot_is_what_the_old_search_found(text: str, at: int) -> None:
    """The backward walk finds the same token as the regular expression that
    searched from the start of the text, so sentences stay byte-identical."""
    at = min(at, len(text))
    match = _TOKEN_BEFORE.search(text, 0, at)
    assert _token_before(text, at) == (match.group(1) if match else "")


def _cpu_seconds(text: str) -> float:
    """Least CPU time of a few splits: CPU time, not wall time, so that other
    processes on a loaded machine count as little as possible."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        split_sentences(text)
        best = min(best, time.process_time() - started)
    return best


def test_splitting_time_grows_linearly_with_the_text() -> None:
    """Four times the text takes about four times as long, not sixteen (every
    full stop used to rescan the text from its start: a 2 MB article never
    finished). The bound is loose on purpose: it separates linear from
    quadratic, not fast from slow; the time target is in scripts/bench_segment.py."""
    prose = " ".join(piaf_contexts())  # one long line of real prose, the worst case
    small, large = prose[:30_000], (prose * 4)[:120_000]
    split_sentences(small)  # warm-up
    ratio = _cpu_seconds(large) / _cpu_seconds(small)
    assert ratio < 8, f"4x the text took {ratio:.1f}x the time"
