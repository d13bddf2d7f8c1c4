#!/usr/bin/env python3
"""The first layer where accsim's integers differ from ONNX Runtime's, with
ONNX Runtime's own fusion (docs/onnx.md, "The model zoo"). Run on demand:
`pip install numpy onnx onnxruntime`.

    python3 scripts/ort_first_difference.py MODEL.onnx INPUT.npy DUMP_DIR

INPUT.npy is the float input given to `accsim run --input`, DUMP_DIR that
run's `--dump`. ONNX Runtime optimises MODEL with its default options
(`ORT_ENABLE_ALL`, one thread) and saves the optimised graph
(`optimized_model_filepath`); that graph is then run unoptimised with every
QuantizeLinear output of MODEL added as a graph output, so that the added
outputs do not change what it fuses (adding them to MODEL itself does: an
output counts as a reader). Each accsim layer (a dump's `NN_<node>`) is
matched to the QuantizeLinear that follows its node (through Relu/Clip) and
compared; an int8 tensor ONNX Runtime rewrote to uint8 is compared as
`value - 128`. Prints each compared layer's differing outputs, in layer
order, and the first that differs.
"""
import glob
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort


def optimised(path, d):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = os.path.join(d, "opt.onnx")
    ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return onnx.load(so.optimized_model_filepath)


def quantised_output(model, node_name):
    """The QuantizeLinear node that follows `node_name` (through Relu/Clip)."""
    readers = {}
    for n in model.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    node = next((n for n in model.graph.node if n.name == node_name), None)
    while node is not None:
        nxt = readers.get(node.output[0], [])
        if node.op_type == "QuantizeLinear":
            return node.name
        if len(nxt) != 1 or (node.name != node_name and node.op_type not in ("Relu", "Clip")):
            return None
        node = nxt[0]
    return None


def optimised_tensor(opt, layer_node, q_node):
    """The optimised graph's tensor for a layer: its QuantizeLinear's output
    when it kept one (renamed when rewritten to uint8), else the output of
    the fused QLinear node made from the layer's node (back in NCHW when a
    Transpose follows it)."""
    readers = {}
    for n in opt.graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    for n in opt.graph.node:
        if n.name == q_node and n.op_type == "QuantizeLinear":
            return n.output[0]
    for n in opt.graph.node:
        if n.op_type.startswith("QLinear") and (n.name == layer_node or n.name.startswith(layer_node + "_token")):
            out = n.output[0]
            t = [r for r in readers.get(out, []) if r.op_type == "Transpose"]
            return t[0].output[0] if t else out
    return None


def main():
    model_path, input_path, dump = sys.argv[1:4]
    model = onnx.load(model_path)
    layers = []
    for f in sorted(glob.glob(os.path.join(dump, "*.output.npy"))):
        name = os.path.basename(f)[: -len(".output.npy")].split("_", 1)[1]
        q = quantised_output(model, name)
        if q:
            layers.append((name, q, f))
    with tempfile.TemporaryDirectory() as d:
        opt = optimised(model_path, d)
        layers = [(name, optimised_tensor(opt, name, q), f) for name, q, f in layers]
        wanted = sorted({t for _, t, _ in layers if t})
        for t in wanted:
            opt.graph.output.append(onnx.ValueInfoProto(name=t))
        path = os.path.join(d, "opt_outputs.onnx")
        onnx.save(opt, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        x = np.load(input_path)
        feed = {s.get_inputs()[0].name: x.reshape([int(v) for v in s.get_inputs()[0].shape])}
        outs = dict(zip([o.name for o in s.get_outputs()], s.run(None, feed)))
    first = None
    for name, q, f in layers:
        if q not in outs:
            print(f"{name}: no quantised tensor in ONNX Runtime's optimised graph")
            continue
        theirs = outs[q].astype(np.int64)
        mine = np.load(f)
        if outs[q].dtype == np.uint8 and mine.dtype == np.int8:
            theirs = theirs - 128
        if theirs.ndim == 4 and mine.ndim == 3 and theirs.shape[1:] == (mine.shape[1], mine.shape[2], mine.shape[0]) \
                and theirs.shape[1] != mine.shape[0]:
            theirs = theirs.transpose(0, 3, 1, 2)  # a fused NHWC kernel's output
        mine = mine.astype(np.int64).reshape(theirs.shape)
        bad = int((mine != theirs).sum())
        print(f"{name} -> {q} ({outs[q].dtype}): {bad} of {mine.size} differ"
              + (f", by up to {int(np.abs(mine - theirs).max())}" if bad else ""))
        if bad and first is None:
            first = name
    print("first differing layer:", first)


if __name__ == "__main__":
    main()
