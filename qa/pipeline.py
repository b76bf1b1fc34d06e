"""The question-answering engine: wires embedding, retrieval and answering
over one loaded index, and follows the index when a new build is published."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from threadpoolctl import ThreadpoolController

from .embed import Encoder, load_encoder, load_rescorer
from .errors import BadQuestion, QAError
from .features import ANSWER_TYPE, candidates, names_counted
from .filters import ArticleFilter
from .qtype import NUMBER
from .question import QuestionAnalyser
from .records import Answer, Passage
from .retrieve import Query, RetrievalWeights, ScoredChunk, retrieve_chunks
from .scorer import AnswerWeights, ScoredSentence, citations, score_sentences
from .settings import Settings
from .short import short_answer
from .store import IndexReader, current_build_id
from .token_match import TokenEncoder

log = logging.getLogger(__name__)
SECOND_SENTENCES = 10  # the second encoder's nearest sentences, whose passages are read
# Sentences whose scores are within this share of the answer model's scale (its
# abstention threshold, in the units of the raw score) answer equally well:
# among them the newest article's comes first. 5% is 0.32 with the first-pass
# weights, under a third of the trained "close call" margin (close_below, 1.03)
# at which the second encoder is asked to decide between two sentences.
TIE_SHARE = 0.05

MESSAGES = {
    "fr": {
        "answered": "D'après « {title} » :",
        "unsure": "Réponse incertaine, d'après « {title} » :",
        "abstain": "Je ne trouve pas la réponse à cette question dans les articles.",
        "empty": "L'index ne contient aucun article.",
        "filtered": "Aucun article indexé ne correspond à ces dates ou à ces sources.",
    },
    "en": {
        "answered": "According to “{title}”:",
        "unsure": "Not sure, but according to “{title}”:",
        "abstain": "I could not find the answer to this question in the articles.",
        "empty": "The index holds no article.",
        "filtered": "No indexed article matches these dates or sources.",
    },
}


@dataclass(frozen=True)
class Ranking:
    """Everything `rank` found for one question."""

    reader: IndexReader
    query: Query
    chunks: list[ScoredChunk]
    scored: list[ScoredSentence]
    rescored: bool  # the second encoder was asked
    weights: AnswerWeights  # what scored `scored`
    allowed: frozenset[str] | None = None  # the articles a filter let through, if any


@dataclass(frozen=True)
class Tuning:
    answer: AnswerWeights  # for an index without a second encoder
    retrieval: RetrievalWeights = field(default_factory=RetrievalWeights)
    rescoring: AnswerWeights | None = None  # with one: they read its cosine


@dataclass(frozen=True)
class Served:
    """What a request answers from: one build's reader, the second sentence
    encoder it was built with and the weights for them. Swapped whole on
    reload, so a request never mixes two builds."""

    reader: IndexReader
    rescorer: Encoder | None
    tuning: Tuning


class QAEngine:
    """Answers questions from one index folder. Thread-safe."""

    def __init__(
        self,
        index_dir: Path | str,
        encoder: Encoder,
        settings: Settings | None = None,
        tuning: Tuning | None = None,
        rescorer: Encoder | None = None,
    ) -> None:
        """`rescorer`, the second sentence encoder, defaults to the one the index
        was built with (none when it has none); a later build brings its own.
        `tuning` defaults to the weights fitted for the encoders."""
        self.settings = settings or Settings()
        self.index_dir = Path(index_dir)
        self.encoder = encoder
        self._tuning = tuning
        reader = IndexReader(self.index_dir)
        self._served = self._serving(reader, rescorer or self._rescorer_for(reader, None))
        self._reload_lock = threading.Lock()
        self._questions = QuestionAnalyser(encoder)
        # numpy's BLAS (OpenBLAS) splits even a question's small matrix products
        # (cosines, word alignments) over a thread per core: on 2 cores the
        # hand-offs cost more than the products, and its spinning threads slow
        # the second encoder (in process, PIAF p50 ~1.5x). A question runs on
        # the threads its encoders read it with (`query_threads`), as in a server.
        self._blas = ThreadpoolController()

    @classmethod
    def load(cls, settings: Settings, encoder: Encoder | None = None) -> QAEngine:
        """The engine for `settings.index_dir`, with the encoder the index was built with
        unless one is given (which must then match it)."""
        if encoder is None:
            reader = IndexReader(settings.index_dir)
            name = reader.meta["encoder"]["name"]
            reader.close()
            encoder = load_encoder(name, settings.query_encoder_threads())
        return cls(settings.index_dir, encoder, settings)

    def _rescorer_for(self, reader: IndexReader, current: Encoder | None) -> Encoder | None:
        """The second sentence encoder `reader`'s build was made with: `current`
        when it is that one, else loaded."""
        if current is not None and current.name == reader.rescorer_name:
            return current
        return load_rescorer(reader.rescorer_name, self.settings.query_encoder_threads())

    def _serving(self, reader: IndexReader, rescorer: Encoder | None) -> Served:
        reader.check_encoder(self.encoder.name, self.encoder.dim)
        if rescorer is None:
            reader.check_rescorer(None, None)
        else:
            reader.check_rescorer(rescorer.name, rescorer.dim)
            if isinstance(rescorer, TokenEncoder) and reader.rescore_tokens is None:
                # Answers still come, without the "token_match" feature.
                log.warning(
                    "%s: built without the second encoder's token states (an index "
                    "from before they were kept); rebuild it for the answers the "
                    "answer model was trained to give.",
                    reader.path,
                )
        return Served(reader, rescorer, self._tuning or self._fitted(rescorer))

    def _fitted(self, rescorer: Encoder | None) -> Tuning:
        """The trained weights (qa/models/answer-model.json) for these encoders."""
        second = AnswerWeights.trained(second_encoder=True) if rescorer is not None else None
        return Tuning(AnswerWeights.trained(second_encoder=False), rescoring=second)

    @property
    def reader(self) -> IndexReader:
        return self._served.reader

    @property
    def rescorer(self) -> Encoder | None:
        return self._served.rescorer

    @property
    def tuning(self) -> Tuning:
        return self._served.tuning

    def reload_if_changed(self) -> bool:
        """Switch to a newer published build, if there is one. A build that fails
        to load is logged and the current one kept: serving never stops."""
        latest = current_build_id(self.index_dir)
        if latest is None or latest == self.reader.build_id:
            return False
        with self._reload_lock:
            if current_build_id(self.index_dir) == self.reader.build_id:
                return False
            try:
                fresh = IndexReader(self.index_dir)
                served = self._serving(fresh, self._rescorer_for(fresh, self.rescorer))
            except QAError as exc:
                log.error(
                    "new index build not loaded, still serving %s: %s", self.reader.build_id, exc
                )
                return False
            # One reference swap: a request holds what it started with.
            self._served = served
            log.info("now serving index build %s", fresh.build_id)
            return True

    def validate(self, question: object, top_k: object = None) -> tuple[str, int]:
        if not isinstance(question, str):
            raise BadQuestion("The question must be a string.")
        question = question.strip()
        if not question:
            raise BadQuestion("The question is empty.")
        try:
            question.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadQuestion("The question holds a character that is not valid Unicode.") from exc
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

    def rank(
        self,
        question: str,
        top_k: int,
        exclude: frozenset[str] = frozenset(),
        only: ArticleFilter | None = None,
    ) -> Ranking:
        """Retrieve passages and score their sentences, best first.

        `exclude` hides articles (evaluation uses it to ask a question whose
        article is absent, the hard case for abstention); `only`, when
        active, keeps the articles it matches.
        """
        threads = self.settings.query_encoder_threads()
        with self._blas.limit(limits=threads, user_api="blas"):
            return self._rank(question, top_k, exclude, only)

    def _rank(
        self,
        question: str,
        top_k: int,
        exclude: frozenset[str],
        only: ArticleFilter | None,
    ) -> Ranking:
        served = self._served
        reader, tuning = served.reader, served.tuning
        allowed = only.allowed(reader) if only is not None and only.active else None
        query = self._questions.analyse(question, reader)
        question = query.text
        read = max(top_k, tuning.answer.read_chunks)
        chunks = retrieve_chunks(reader, query, read, tuning.retrieval, exclude, only=allowed)
        first = candidates(reader, query, chunks, tuning.retrieval)
        scored = score_sentences(first, tuning.answer)
        # When the first pass is unsure (a low best score, or a close call),
        # the second encoder reads the question: its sentence search brings
        # the passages of its nearest sentences in (paraphrases that share no
        # word with the question, which USE's passage vectors miss), and its
        # cosine joins every candidate's features, scored by its own weights.
        second, rescorer = tuning.rescoring, served.rescorer
        rescored = bool(second and rescorer and tuning.answer.unsure(scored))
        if rescored:
            tokens = None
            if reader.rescore_tokens is not None and isinstance(rescorer, TokenEncoder):
                vector, tokens = rescorer.encode_query_tokens(question)
            else:
                vector = rescorer.encode_queries([question])[0]  # type: ignore[union-attr]
            near = reader.rescore_sentences(vector, SECOND_SENTENCES)
            also = reader.chunks_holding([r for r, _ in near])
            chunks = retrieve_chunks(
                reader, query, read, tuning.retrieval, exclude, also, only=allowed
            )
            found = candidates(reader, query, chunks, tuning.retrieval, first)
            found = found.rescored(reader, vector, tokens)
            scored = score_sentences(found, second)  # type: ignore[arg-type]
        weights = second if rescored and second else tuning.answer
        return Ranking(reader, query, chunks, scored, rescored, weights, allowed)

    def answers(self, ranking: Ranking) -> bool:
        """Whether the best sentence answers: it scores at least the abstention
        threshold and, when the question asks for a number, holds a number
        of the kind asked ("how much does X earn" is not answered by a
        sentence with no amount), and for "how many X", names X (by stem or
        meaning: `features.names_counted`). Number spans are found reliably; names and
        places are not (a third of PIAF's right answers to "qui"/"où"
        questions hold none that the patterns see), so for those the
        "answer_type" feature weighs in the score instead."""
        return bool(ranking.scored) and self._answers(ranking.scored[0], ranking)

    def _answers(self, best: ScoredSentence, ranking: Ranking) -> bool:
        query = ranking.query
        if best.score < self.settings.abstain_threshold:
            return False
        if query.kind != NUMBER:
            return True
        return best.features[ANSWER_TYPE] > 0 and names_counted(
            ranking.reader, query, best.sentence.row, best.text, best.article.lang
        )

    def newer_first(self, ranking: Ranking) -> list[ScoredSentence]:
        """`ranking.scored` with the sentences that answer as well as the best
        (within TIE_SHARE of the score scale) newest article first; undated
        ones after the dated, score order kept between equals."""
        scored = ranking.scored
        margin = TIE_SHARE * abs(ranking.weights.abstain_below)
        tied = [
            s for s in scored if s.score >= scored[0].score - margin and self._answers(s, ranking)
        ]
        if len({s.article.date for s in tied}) < 2:
            return scored
        ahead = sorted(tied, key=lambda s: s.article.date or "", reverse=True)
        moved = {id(s) for s in tied}
        return ahead + [s for s in scored if id(s) not in moved]

    def ask(
        self, question: object, top_k: object = None, only: ArticleFilter | None = None
    ) -> Answer:
        """Answer one question: the best sentence verbatim with its citation, or an
        abstention; with `only`, from the articles it matches."""
        return self.ask_ranked(question, top_k, only)[0]

    def ask_ranked(
        self, question: object, top_k: object = None, only: ArticleFilter | None = None
    ) -> tuple[Answer, Ranking]:
        """`ask`, with the ranking the answer came from (evaluation reads both)."""
        started = time.perf_counter()
        text, k = self.validate(question, top_k)
        ranking = self.rank(text, k, only=only)
        reader, query, scored = ranking.reader, ranking.query, ranking.scored
        messages = MESSAGES[query.lang]
        texts = reader.articles(c.chunk.article_id for c in ranking.chunks[:k])
        passages = [
            Passage(
                c.chunk.article_id,
                c.chunk.chunk_id,
                texts[c.chunk.article_id].text[c.chunk.start : c.chunk.end],
                c.chunk.start,
                c.chunk.end,
                round(c.score, 4),
            )
            for c in ranking.chunks[:k]
        ]
        if not self.answers(ranking):
            if reader.counts["articles"] == 0:
                message = messages["empty"]
            elif ranking.allowed is not None and not ranking.allowed:
                message = messages["filtered"]
            else:
                message = messages["abstain"]
            none = Answer(text, query.lang, False, None, None, message, [], passages, _ms(started))
            return none, ranking
        scored = self.newer_first(ranking)
        best = scored[0]
        cited = citations(scored)
        # A low score is still an answer, but one to check: 40% right on the
        # dev sets, and most answers to questions the articles do not cover.
        sure = best.score >= self.settings.sure_threshold
        message = messages["answered" if sure else "unsure"].format(title=best.article.title)
        answer = Answer(
            question=text,
            language=query.lang,
            answered=True,
            answer=cited[0].sentence,
            short_answer=short_answer(best, query, reader),
            message=message,
            citations=cited,
            passages=passages,
            took_ms=_ms(started),
        )
        return answer, ranking


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
