#!/usr/bin/env python3
"""What ONNX Runtime does with the int8 QDQ convolutions it leaves unfused
(`qdq_s8s8_pt`; docs/onnx.md, item 6). Run on demand: `pip install numpy
onnx onnxruntime`.

    python3 scripts/ort_unfused_conv_probe.py                 # the float Conv's sum order
    python3 scripts/ort_unfused_conv_probe.py MODEL.onnx ...  # which Convs stay unfused, and why

1. For each QDQ model given, the optimised graph (`ORT_ENABLE_EXTENDED`)
   and, per float `Conv` left in it, the types of its input and output
   quantisation after ONNX Runtime's int8-to-uint8 rewrite, and how many
   nodes read the original `Q -> DQ` pair on each side.
2. A float `DQ(x), DQ(w), DQ(b) -> Conv` (what an unfused group runs)
   against candidate float32 sum orders, on seeded random shapes: the
   products `x_f * w_f` of the dequantised values accumulated by fused
   multiply-adds in im2col order (input channel, kernel row, kernel
   column), in blocks of `stride_k` whose sums are added, the bias added
   last. MLAS's SGEMM picks `stride_k`: 128, doubled (and its `stride_n`
   of 128 halved) while `stride_n > 16` and `stride_n / 2 >= N`, N being
   the output's positions. A fused multiply-add is emulated in float64.
"""
import collections
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F32 = np.float32


def fma(a, b, c):
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(F32)


def optimised(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    with tempfile.TemporaryDirectory() as d:
        so.optimized_model_filepath = os.path.join(d, "opt.onnx")
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


def readers(graph):
    out = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            out[i].append(n)
    return out


def zero_point_type(graph, name):
    inits = {i.name: i for i in graph.initializer}
    return str(onnx.helper.tensor_dtype_to_np_dtype(inits[name].data_type)) if name in inits else "?"


def unfused(path):
    """The optimised graph's float Convs by the types of their input DQ and
    output Q, and the original graph's Q -> DQ pairs by how many nodes read
    them (ONNX Runtime's int8-to-uint8 rewrite leaves a pair read by more
    than one node int8)."""
    original = onnx.load(path)
    cons = readers(original.graph)
    pairs = collections.Counter()
    for n in original.graph.node:
        if n.op_type == "QuantizeLinear":
            dqs = [d for d in cons[n.output[0]] if d.op_type == "DequantizeLinear"]
            if dqs:
                pairs["read by one node" if sum(len(cons[d.output[0]]) for d in dqs) == 1 else "read by more"] += 1
    opt = optimised(path)
    counts = collections.Counter(n.op_type for n in opt.graph.node)
    print(f"{os.path.basename(path)}: ONNX Runtime runs {counts['QLinearConv']} QLinearConv, {counts['Conv']} float Conv; "
          f"Q -> DQ pairs: {dict(pairs)}")
    oprod = {o: n for n in opt.graph.node for o in n.output}
    ocons = readers(opt.graph)
    kinds = collections.Counter()
    for n in opt.graph.node:
        if n.op_type != "Conv":
            continue
        dq = oprod[n.input[0]]
        q = next(c for c in ocons[n.output[0]] if c.op_type == "QuantizeLinear")
        kinds[(zero_point_type(opt.graph, dq.input[2]), zero_point_type(opt.graph, q.input[2]))] += 1
    for (t_in, t_out), k in sorted(kinds.items()):
        print(f"  {k} float Conv: input {t_in}, output {t_out}")


def float_conv_case(rng, cin, cout, hw, k):
    x = rng.integers(0, 256, (1, cin, hw, hw)).astype(np.uint8)
    xs, xz = F32(0.02), np.uint8(rng.integers(0, 40))
    w = rng.integers(-127, 128, (cout, cin, k, k)).astype(np.int8)
    ws = F32(0.01)
    b = rng.integers(-500, 500, cout).astype(np.int32)
    bs = F32(xs * ws)
    nodes = [h.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
             h.make_node("DequantizeLinear", ["w", "ws"], ["wf"]),
             h.make_node("DequantizeLinear", ["b", "bs"], ["bf"]),
             h.make_node("Conv", ["xf", "wf", "bf"], ["y"], pads=[k // 2] * 4)]
    inits = [nh.from_array(np.array(v), n) for n, v in (("xs", xs), ("xz", xz), ("w", w), ("ws", ws), ("b", b), ("bs", bs))]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.UINT8, [1, cin, hw, hw])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]).SerializeToString(), so,
                             providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"x": x})
    xf = ((x[0].astype(np.int32) - int(xz)).astype(F32) * xs).astype(F32)
    wf = (w.astype(F32) * ws).astype(F32).reshape(cout, -1)
    bf = (b.astype(F32) * bs).astype(F32)
    p = k // 2
    xp = np.zeros((cin, hw + 2 * p, hw + 2 * p), F32)
    xp[:, p:p + hw, p:p + hw] = xf
    cols = np.array([xp[c, i:i + hw, j:j + hw].reshape(-1) for c in range(cin) for i in range(k) for j in range(k)])
    return y[0].reshape(cout, -1), wf, cols, bf


def general_case(rng, cin, cout, hw, k, stride=1, group=1, pad=None, w_zero_bias=False):
    """A float `DQ -> Conv` with any stride, group and padding; returns
    ONNX Runtime's output [cout, N], and per group the dequantised weights
    [cout/g, K] and im2col columns [K, N], and the dequantised bias."""
    pad = k // 2 if pad is None else pad
    x = rng.integers(0, 256, (1, cin, hw, hw)).astype(np.uint8)
    xs, xz = F32(0.02), np.uint8(rng.integers(0, 40))
    w = rng.integers(-127, 128, (cout, cin // group, k, k)).astype(np.int8)
    ws = F32(0.01)
    b = rng.integers(-500, 500, cout).astype(np.int32)
    bs = F32(xs * ws)
    nodes = [h.make_node("DequantizeLinear", ["x", "xs", "xz"], ["xf"]),
             h.make_node("DequantizeLinear", ["w", "ws"], ["wf"]),
             h.make_node("DequantizeLinear", ["b", "bs"], ["bf"]),
             h.make_node("Conv", ["xf", "wf", "bf"], ["y"], pads=[pad] * 4, strides=[stride] * 2, group=group)]
    inits = [nh.from_array(np.array(v), n) for n, v in (("xs", xs), ("xz", xz), ("w", w), ("ws", ws), ("b", b), ("bs", bs))]
    g = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.UINT8, [1, cin, hw, hw])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]).SerializeToString(), so,
                             providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"x": x})
    xf = ((x[0].astype(np.int32) - int(xz)).astype(F32) * xs).astype(F32)
    wf = (w.astype(F32) * ws).astype(F32).reshape(cout, -1)
    bf = (b.astype(F32) * bs).astype(F32)
    oh = (hw + 2 * pad - k) // stride + 1
    xp = np.zeros((cin, hw + 2 * pad, hw + 2 * pad), F32)
    xp[:, pad:pad + hw, pad:pad + hw] = xf
    icg, ocg = cin // group, cout // group
    per_group = []
    for gi in range(group):
        cols = np.array([xp[c, i:i + stride * oh:stride, j:j + stride * oh:stride].reshape(-1)
                         for c in range(gi * icg, (gi + 1) * icg) for i in range(k) for j in range(k)])
        per_group.append((wf[gi * ocg:(gi + 1) * ocg], cols, bf[gi * ocg:(gi + 1) * ocg]))
    return y[0].reshape(cout, -1), per_group, oh * oh


def float_conv_more(rng):
    print("more shapes: strides, groups (depthwise), 1x1, large N, channels a multiple of 16 (NCHWc)")
    for cin, cout, hw, k, stride, group in ((64, 16, 56, 1, 1, 1), (256, 32, 28, 1, 1, 1), (512, 16, 14, 3, 1, 1),
                                            (160, 32, 28, 3, 2, 1), (64, 64, 14, 3, 1, 64), (32, 32, 9, 3, 2, 32),
                                            (64, 32, 13, 3, 1, 4), (1024, 16, 7, 1, 1, 1), (1024, 16, 4, 1, 1, 1),
                                            (96, 16, 55, 1, 1, 1), (3, 16, 32, 7, 2, 1), (200, 24, 12, 1, 1, 1)):
        y, per_group, n = general_case(rng, cin, cout, hw, k, stride, group)
        rule = mlas_stride_k(n)
        ocg = cout // group
        bad = {}
        for s in sorted({rule, 128, 256, 1 << 20}):
            got = np.concatenate([blocked_sum(wf, cols, bf, s) for wf, cols, bf in per_group])
            bad[f"blocks of {s}"] = int((got != y).sum())
        print(f"  {cin}->{cout} {k}x{k} stride {stride} group {group} on {hw}x{hw} (K {per_group[0][1].shape[0]}, N {n}, "
              f"rule: blocks of {rule}), {y.size} outputs: " + ", ".join(f"{key} differs in {v}" for key, v in bad.items()))


def mlas_stride_k(n):
    stride_n, stride_k = 128, 128
    while stride_n > 16 and stride_n // 2 >= n:
        stride_k *= 2
        stride_n //= 2
    return stride_k


def blocked_sum(wf, cols, bf, stride_k):
    kk = cols.shape[0]
    out = None
    for k0 in range(0, kk, stride_k):
        acc = np.zeros((wf.shape[0], cols.shape[1]), F32)
        for j in range(k0, min(kk, k0 + stride_k)):
            acc = fma(wf[:, j:j + 1], cols[j:j + 1, :], acc)
        out = acc if out is None else (out + acc).astype(F32)
    return (out + bf[:, None]).astype(F32)


def float_conv(rng):
    print("float DQ -> Conv (an unfused int8 group), single thread, this CPU")
    for cin, cout, hw, k in ((16, 8, 13, 1), (96, 16, 15, 1), (64, 16, 13, 3), (300, 8, 9, 1), (64, 16, 7, 3),
                             (300, 8, 7, 1), (64, 16, 5, 3), (600, 8, 3, 1), (48, 8, 11, 3)):
        y, wf, cols, bf = float_conv_case(rng, cin, cout, hw, k)
        n = hw * hw
        rule = mlas_stride_k(n)
        bad = {f"blocks of {s}": int((blocked_sum(wf, cols, bf, s) != y).sum()) for s in sorted({rule, 128, 256, 512, cols.shape[0]})}
        print(f"  {cin}->{cout} {k}x{k} on {hw}x{hw} (K {cols.shape[0]}, N {n}, rule: blocks of {rule}), {y.size} outputs: "
              + ", ".join(f"{key} differs in {v}" for key, v in bad.items()))


def main():
    if len(sys.argv) > 1:
        for path in sys.argv[1:]:
            unfused(path)
        return
    float_conv(np.random.default_rng(1))
    float_conv_more(np.random.default_rng(2))


if __name__ == "__main__":
    main()
