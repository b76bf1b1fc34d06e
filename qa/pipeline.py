"""The question-answering engine: wires embedding, retrieval and answering
over one loaded index, and follows the index when a new build is published."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .answer import AnswerWeights, citations, score_sentences, short_answer
from .embed import Encoder, load_encoder
from .errors import BadQuestion, QAError
from .lang import detect_language
from .lexical import terms
from .records import Answer, Passage
from .retrieve import Query, RetrievalWeights, idf_weights, retrieve_chunks
from .settings import Settings
from .store import IndexReader, current_build_id

log = logging.getLogger(__name__)

MESSAGES = {
    "fr": {
        "answered": "D'après « {title} » :",
        "abstain": "Je ne trouve pas la réponse à cette question dans les articles.",
        "empty": "L'index ne contient aucun article.",
    },
    "en": {
        "answered": "According to “{title}”:",
        "abstain": "I could not find the answer to this question in the articles.",
        "empty": "The index holds no article.",
    },
}


@dataclass(frozen=True)
class Tuning:
    retrieval: RetrievalWeights = field(default_factory=RetrievalWeights)
    answer: AnswerWeights = field(default_factory=AnswerWeights)


class QAEngine:
    """Answers questions from one index folder. Thread-safe."""

    def __init__(
        self,
        index_dir: Path | str,
        encoder: Encoder,
        settings: Settings | None = None,
        tuning: Tuning | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.index_dir = Path(index_dir)
        self.encoder = encoder
        self.tuning = tuning or Tuning()
        self._reader = self._open()
        self._reload_lock = threading.Lock()

    @classmethod
    def load(cls, settings: Settings, encoder: Encoder | None = None) -> QAEngine:
        """The engine for `settings.index_dir`, with the encoder the index was built with
        unless one is given (which must then match it)."""
        if encoder is None:
            reader = IndexReader(settings.index_dir)
            name = reader.meta["encoder"]["name"]
            reader.close()
            encoder = load_encoder(name, settings.encoder_threads())
        return cls(settings.index_dir, encoder, settings)

    def _open(self) -> IndexReader:
        reader = IndexReader(self.index_dir)
        reader.check_encoder(self.encoder.name, self.encoder.dim)
        return reader

    @property
    def reader(self) -> IndexReader:
        return self._reader

    def reload_if_changed(self) -> bool:
        """Switch to a newer published build, if there is one. A build that fails
        to load is logged and the current one kept: serving never stops."""
        latest = current_build_id(self.index_dir)
        if latest is None or latest == self._reader.build_id:
            return False
        with self._reload_lock:
            if current_build_id(self.index_dir) == self._reader.build_id:
                return False
            try:
                fresh = self._open()
            except QAError as exc:
                log.error(
                    "new index build not loaded, still serving %s: %s", self._reader.build_id, exc
                )
                return False
            # One reference swap: a request holds the reader it started with.
            self._reader = fresh
            log.info("now serving index build %s", fresh.build_id)
            return True

    def validate(self, question: object, top_k: object = None) -> tuple[str, int]:
        if not isinstance(question, str):
            raise BadQuestion("The question must be a string.")
        question = question.strip()
        if not question:
            raise BadQuestion("The question is empty.")
        if len(question) > self.settings.max_question_chars:
            raise BadQuestion(
                f"The question is {len(question)} characters long; the limit is "
                f"{self.settings.max_question_chars}."
            )
        if top_k is None:
            return question, self.settings.top_k
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, int)
            or not 1 <= top_k <= self.settings.max_top_k
        ):
            raise BadQuestion(f"top_k must be an integer from 1 to {self.settings.max_top_k}.")
        return question, top_k

    def ask(self, question: object, top_k: object = None) -> Answer:
        """Answer one question: the best sentence verbatim with its citation, or an abstention."""
        started = time.perf_counter()
        text, k = self.validate(question, top_k)
        reader = self._reader
        lang = detect_language(text)
        messages = MESSAGES[lang]
        query_terms = tuple(terms(text, lang))
        query = Query(
            text=text,
            lang=lang,
            vector=self.encoder.encode([text])[0],
            terms=query_terms,
            idf=idf_weights(reader, query_terms),
        )
        weights = self.tuning
        read = max(k, weights.answer.read_chunks)
        chunks = retrieve_chunks(reader, query, read, weights.retrieval)
        passages = [
            Passage(
                c.chunk.article_id,
                c.chunk.chunk_id,
                "",
                c.chunk.start,
                c.chunk.end,
                round(c.score, 4),
            )
            for c in chunks[:k]
        ]
        articles = reader.articles(p.article_id for p in passages)
        passages = [
            Passage(
                p.article_id,
                p.chunk_id,
                articles[p.article_id].text[p.start : p.end],
                p.start,
                p.end,
                p.score,
            )
            for p in passages
        ]
        scored = score_sentences(reader, query, chunks, weights.answer, weights.retrieval)
        threshold = self.settings.abstain_threshold or weights.answer.abstain_below
        if not scored:
            message = messages["empty"] if reader.counts["articles"] == 0 else messages["abstain"]
            return Answer(text, lang, False, None, None, message, [], passages, _ms(started))
        if scored[0].score < threshold:
            return Answer(
                text, lang, False, None, None, messages["abstain"], [], passages, _ms(started)
            )
        best = scored[0]
        cited = citations(scored)
        return Answer(
            question=text,
            language=lang,
            answered=True,
            answer=cited[0].sentence,
            short_answer=short_answer(best, query),
            message=messages["answered"].format(title=best.article.title),
            citations=cited,
            passages=passages,
            took_ms=_ms(started),
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
