"""What the ONNX Runtime engines share: a graph builder over onnx.helper and
the CPU session they run in (qa/e5_onnx.py, qa/use_onnx.py)."""

from __future__ import annotations

import contextlib
import ctypes
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17  # LayerNormalization


def return_freed_memory() -> None:
    """Building the session frees the numpy weights (~85 MB) and ORT's parse
    of the graph, which glibc keeps in its heap (the float32 engine held
    ~250 MB instead of ~170). Give them back."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def session(model: bytes | str, threads: int) -> ort.InferenceSession:
    """An ORT CPU session with every graph optimisation, on `threads` intra-op threads."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class GraphBuilder:
    """Nodes and initializers of a graph, each value named once."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._count = 0

    def _name(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, value: np.ndarray | np.generic, name: str | None = None) -> str:
        name = name or self._name("const")
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, kind: str, inputs: list[str], outputs: list[str], **attributes: Any) -> None:
        self.nodes.append(helper.make_node(kind, inputs, outputs, **attributes))

    def op(self, kind: str, *inputs: str, **attributes: Any) -> str:
        out = self._name(kind.lower())
        self.node(kind, list(inputs), [out], **attributes)
        return out

    def columns(self, x: str, start: int, end: int) -> str:
        """x[:, start:end]."""
        return self.op(
            "Slice",
            x,
            self.const(np.array([start], np.int64)),
            self.const(np.array([end], np.int64)),
            self.const(np.array([1], np.int64)),
        )

    def layer_norm(self, x: str, weight: np.ndarray, bias: np.ndarray, eps: float) -> str:
        return self.op(
            "LayerNormalization",
            x,
            self.const(weight.ravel().astype(np.float32)),
            self.const(bias.ravel().astype(np.float32)),
            axis=-1,
            epsilon=eps,
        )

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        domains: tuple[str, ...] = (),
    ) -> onnx.ModelProto:
        """The graph, with opset OPSET and version 1 of each of `domains`."""
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers)
        opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, 1) for d in domains]
        return helper.make_model(graph, opset_imports=opsets)
