"""multilingual-e5-small run by ONNX Runtime, on the weights qa/e5.py reads.

The graph is built at load with onnx.helper from the layers E5Model has
dequantised (nothing is downloaded or stored): opset-17 operators, and ORT's
own MatMulIntegerToFloat (com.microsoft) for the int8 products; ORT's
optimiser fuses the erf GELU with its bias. The tokenizer, the word table (kept
4-bit, rows dequantised as read), the windows of long texts and the pooling
weights are E5Model's; the graph takes the summed embeddings of a batch of
windows and their mask and gives each window's mean last hidden state and
every token's last hidden state (`states`, read by the token match).

Its products run in int8 (`int8`, E5Encoder's choice, qa/encoders/e5.py):
weights per output, activations per token (`_Builder.linear`), cosine 0.998
or more with the float32 vectors (median 0.9993). In float32 (`int8=False`)
it gives the numpy engine's vectors. Speeds: scripts/bench_e5.py.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .e5 import E5Model, Layer
from .onnx_graph import GraphBuilder, return_freed_memory, session

# A padded key's score: exp() of it is 0 in float32, as e5.py's -1e30.
MASKED = -1e9


class OnnxE5Model(E5Model):
    """E5Model whose batches run through an ORT session.

    `int8`: the layers' products in int8 (see `_Builder.linear`), else in
    float32. The session runs on one thread: E5Model.forward runs a batch of
    texts as `threads` batches on as many Python threads (faster here than
    ORT's own threads sharing each product), and one question is too small
    to gain from a second core."""

    # ORT's products run fastest on batches whose activations stay in the
    # core's cache: 256 tokens ran ~1.2x faster than 1024 (scripts/bench_e5.py).
    batch_tokens = 256

    def __init__(self, threads: int = 1, int8: bool = True) -> None:
        super().__init__(threads=threads)
        self.int8 = int8
        graph = encoder_graph(self, int8).SerializeToString()
        # The session holds its own copy of the weights: E5Model's float32
        # ones (~85 MB) are no longer needed.
        self.layers = []
        self._session = session(graph, threads=1)
        # ORT's Python session keeps the model's bytes (85 MB) to rebuild
        # itself on another provider; the CPU one never does.
        self._session._model_bytes = None
        del graph
        return_freed_memory()

    def _forward_batch(
        self, windows: list[list[int]], keep: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        if not keep:
            (pooled,) = self._session.run(["pooled"], self._inputs(windows))
            return np.asarray(pooled), np.zeros((len(windows), 0, self.dim), np.float32)
        pooled, states = self._session.run(None, self._inputs(windows))
        # Padding's states are not zero in the graph: zero them here.
        for row, window in enumerate(windows):
            states[row, len(window) :] = 0.0
        return np.asarray(pooled), np.ascontiguousarray(states[:, :keep])

    def _inputs(self, windows: list[list[int]]) -> dict[str, np.ndarray]:
        x = self.embeddings(windows)
        mask = np.zeros(x.shape[:2], dtype=np.float32)
        for row, window in enumerate(windows):
            mask[row, : len(window)] = 1.0
        return {"embeddings": x, "mask": mask}


def encoder_graph(model: E5Model, int8: bool) -> onnx.ModelProto:
    """The encoder's layers as an ONNX model.

    Inputs: `embeddings` (batch, tokens, dim), the summed word, position and
    type embeddings (E5Model.embeddings); `mask` (batch, tokens), 1 for a
    token, 0 for padding. Outputs: `pooled` (batch, dim), the mean of each
    window's last hidden states over its tokens; `states` (batch, tokens, dim).

    Between attentions the tokens are rows of one (batch x tokens, dim)
    matrix, so the products, norms and per-token scales need no reshaping:
    fewer operators, which is most of a question's time."""
    b = _Builder()
    dim, heads = model.dim, model.heads
    batch_tokens = b.op("Shape", "embeddings", end=2)
    rows = b.op("Reshape", "embeddings", b.const(np.array([-1, dim], np.int64)))
    if int8:
        # the activations' zero point, one per token row (`_Builder.linear`)
        b.zero_points = b.op(
            "Expand",
            b.const(np.array([128], np.uint8)),
            b.op("Shape", rows, end=1),
        )
    x = b.layer_norm(rows, *model.embedding_norm, model.eps)
    # (batch, tokens) -> (batch, 1, 1, tokens): 0 for a token, MASKED for padding
    masked = b.op("Mul", b.op("Sub", "mask", b.const(np.float32(1))), b.const(np.float32(-MASKED)))
    bias = b.op("Unsqueeze", masked, b.const(np.array([1, 2], dtype=np.int64)))
    split = b.op(
        "Concat", batch_tokens, b.const(np.array([3, heads, dim // heads], np.int64)), axis=0
    )
    for n, layer in enumerate(model.layers):
        x = _layer(b, f"l{n}", layer, x, bias, split, dim, heads, model.eps, int8)
    b.node(
        "Reshape",
        [x, b.op("Concat", batch_tokens, b.const(np.array([dim], np.int64)), axis=0)],
        ["states"],
    )
    weights = b.op("Unsqueeze", "mask", b.const(np.array([2], dtype=np.int64)))
    total = b.op(
        "ReduceSum", b.op("Mul", "states", weights), b.const(np.array([1], np.int64)), keepdims=0
    )
    count = b.op("ReduceSum", "mask", b.const(np.array([1], np.int64)))  # keepdims: (batch, 1)
    b.node("Div", [total, count], ["pooled"])
    return b.model(
        "multilingual-e5-small",
        [
            helper.make_tensor_value_info(
                "embeddings", TensorProto.FLOAT, ["batch", "tokens", dim]
            ),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "tokens"]),
        ],
        [
            helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", dim]),
            helper.make_tensor_value_info("states", TensorProto.FLOAT, ["batch", "tokens", dim]),
        ],
        domains=("com.microsoft",),
    )


def _layer(
    b: _Builder,
    name: str,
    layer: Layer,
    x: str,
    bias: str,
    split: str,
    dim: int,
    heads: int,
    eps: float,
    int8: bool,
) -> str:
    """One post-LN BERT layer over `x` (batch x tokens, dim); with `int8`,
    its four products in int8 (`_Builder.linear`). `split` is the shape
    (batch, tokens, 3, heads, head_dim) its queries, keys and values take."""
    qkv = b.linear(x, layer.qkv, layer.qkv_bias, f"{name}.qkv", int8)
    # (batch x tokens, 3 dim) -> (3, batch, heads, tokens, head_dim)
    parts = b.op("Transpose", b.op("Reshape", qkv, split), perm=[2, 0, 3, 1, 4])
    q, k, v = (b.op("Gather", parts, b.const(np.int64(i)), axis=0) for i in range(3))
    # queries are pre-scaled by 1/sqrt(head_dim) (E5Model)
    scores = b.op("MatMul", q, b.op("Transpose", k, perm=[0, 1, 3, 2]))
    probs = b.op("Softmax", b.op("Add", scores, bias), axis=-1)
    context = b.op("Transpose", b.op("MatMul", probs, v), perm=[0, 2, 1, 3])
    context = b.op("Reshape", context, b.const(np.array([-1, dim], np.int64)))
    attended = b.op("Add", b.linear(context, layer.out, layer.out_bias, f"{name}.out", int8), x)
    x = b.layer_norm(attended, *layer.norm1, eps)
    hidden = b.gelu(b.linear(x, layer.up, layer.up_bias, f"{name}.up", int8))
    y = b.op("Add", b.linear(hidden, layer.down, layer.down_bias, f"{name}.down", int8), x)
    return b.layer_norm(y, *layer.norm2, eps)


class _Builder(GraphBuilder):
    """A graph with E5's products (in int8 or float32) and GELU."""

    def __init__(self) -> None:
        super().__init__()
        self.zero_points = ""  # one uint8 128 per token row, set by encoder_graph

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str, int8: bool) -> str:
        """x @ weight.T + bias; `weight` (outputs, inputs), `bias` a column (E5Model's)."""
        bias_name = self.const(bias.ravel(), f"{name}.bias")
        if not int8:
            w = self.const(np.ascontiguousarray(weight.T), f"{name}.weight")
            return self.op("Add", self.op("MatMul", x, w), bias_name)
        # Weights: int8, a scale per output. Activations: a scale per token
        # (its largest |value| / 127), stored as uint8 around 128 (ORT's fast
        # u8 x s8 kernels). ORT's dynamic quantisation (DynamicQuantizeLinear,
        # onnxruntime.quantization.quantize_dynamic) takes one scale for the
        # whole batch instead: a text's vector then moved with its
        # batch-mates (cosine ~0.999 to its own), and the products whose
        # inputs have outliers (attention output, down projection) cost ~1
        # point of PIAF rank-1. A token's own scale keeps each text's vector
        # its own and every product in int8 at rank-1 within noise.
        scale = np.abs(weight).max(axis=1) / 127.0
        scale[scale == 0] = 1.0
        quantised = np.clip(np.rint(weight / scale[:, None]), -127, 127).astype(np.int8)
        w = self.const(np.ascontiguousarray(quantised.T), f"{name}.weight")
        # A token's scale: its largest |value| / 127, from its max and min
        # (two reads of x instead of an Abs pass and a read).
        largest = self.op(
            "Max",
            self.op("ReduceMax", x, axes=[-1], keepdims=0),
            self.op("Neg", self.op("ReduceMin", x, axes=[-1], keepdims=0)),
        )
        x_scale = self.op(
            "Max",
            self.op("Div", largest, self.const(np.float32(127))),
            self.const(np.float32(1e-12)),  # an all-zero token
        )
        # Each token row quantised by one QuantizeLinear (per axis), and the
        # product, its cast and the weights' scales in one fused kernel
        # (MatMulIntegerToFloat): ~1.4x faster than the same arithmetic as
        # separate elementwise passes, with the same values.
        xq = self.op("QuantizeLinear", x, x_scale, self.zero_points, axis=0)
        product = self.op(
            "MatMulIntegerToFloat",
            xq,
            w,
            self.const(np.array([1.0], np.float32)),
            self.const(scale.astype(np.float32)),
            self.const(np.array([128], np.uint8)),
            domain="com.microsoft",
        )
        column = self.op("Unsqueeze", x_scale, self.const(np.array([1], np.int64)))
        return self.op("Add", self.op("Mul", product, column), bias_name)

    def gelu(self, x: str) -> str:
        """x (1 + erf(x / sqrt 2)) / 2, the pattern ORT fuses into one Gelu."""
        erf = self.op("Erf", self.op("Div", x, self.const(np.float32(np.sqrt(2.0)))))
        one_plus = self.op("Add", erf, self.const(np.float32(1.0)))
        return self.op("Mul", self.op("Mul", x, one_plus), self.const(np.float32(0.5)))
