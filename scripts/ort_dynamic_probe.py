#!/usr/bin/env python3
"""How ONNX Runtime computes dynamic quantisation (`quantize_dynamic`;
docs/onnx.md, item 20): candidate float32 formulas against ONNX Runtime's
outputs on seeded random data. Run on demand: `pip install numpy onnx
onnxruntime`.

Prints, per probe, how many outputs differ from ONNX Runtime's:
- DynamicQuantizeLinear (uint8): scale, zero point and quantised values
  against the rule `min = min(x.min(), 0)`, `max = max(x.max(), 0)`,
  `scale = (max - min) / 255`, `zp = round_half_even(clamp(0 - min / scale,
  0, 255))`, `y = saturate(round_half_even(x / scale) + zp)` (float32
  throughout; and against multiplying by the reciprocal instead), on random
  tensors, all-positive and all-negative ones, one of zeros (scale 1,
  zero point 0), and ties;
- ConvInteger -> Cast -> Mul(x_scale * w_scale) -> Add(bias): the float
  epilogue as separate float32 roundings against one fused multiply-add;
- MatMulInteger -> Cast -> Mul -> Add, which ONNX Runtime fuses with the
  DynamicQuantizeLinear before it into com.microsoft.DynamicQuantizeMatMul:
  the same candidates;
- the float32 Softmax (the dynamic classifiers' last operator): MLAS's
  AVX-512F kernel (its exp polynomial in fused multiply-adds, sixteen-lane
  sums, a product by 1 / sum) against the float64 softmax rounded;
- the float32 AveragePool windows of the zoo models in this form against a
  sequential row-major window sum divided by the count;
- an LRN with glibc powf (accsim's before 5 December; ONNX Runtime uses
  Eigen's pow, which scripts/ort_lrn_probe.py and accsim now reproduce)
  read by a DynamicQuantizeLinear: how often its scale and values differ.
A fused multiply-add is emulated in float64 (exact product, one rounding of
the sum to float32 but for a double rounding, negligible at these sizes).
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F32 = np.float32


def fma(a, b, c):
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(F32)


def session(nodes, inputs, outputs, inits, level=None):
    g = h.make_graph(nodes, "g", inputs, outputs, [nh.from_array(np.array(v), k) for k, v in inits.items()])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if level is not None:
        so.graph_optimization_level = level
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def dql_rule(x, reciprocal=False):
    """The candidate rule, float32 throughout."""
    lo = min(F32(x.min()), F32(0))
    hi = max(F32(x.max()), F32(0))
    scale = F32(1) if hi == lo else F32(F32(hi - lo) / F32(255))
    with np.errstate(divide="ignore", invalid="ignore"):
        initial = F32(F32(0) - F32(lo / scale))
        zp = np.uint8(np.rint(np.clip(initial, 0, 255)))
        q = x * (F32(1) / scale) if reciprocal else x / scale
        q = np.clip(q.astype(F32), F32(0) - F32(zp), F32(255) - F32(zp))
        y = (np.rint(q) + F32(zp)).astype(np.uint8)
    return scale, zp, y


def dql_session(shape):
    node = h.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    return session([node], [h.make_tensor_value_info("x", T.FLOAT, shape)],
                   [h.make_tensor_value_info("y", T.UINT8, shape), h.make_tensor_value_info("s", T.FLOAT, []),
                    h.make_tensor_value_info("z", T.UINT8, [])], {})


def dql_inputs(rng, shape, trials):
    for t in range(trials):
        lo, hi = sorted(rng.uniform(-4, 4, 2))
        kind = t % 4
        if kind == 0:
            yield rng.uniform(lo, hi, shape).astype(F32)
        elif kind == 1:
            yield np.abs(rng.standard_normal(shape) * hi).astype(F32)
        elif kind == 2:
            yield (-np.abs(rng.standard_normal(shape) * 3)).astype(F32)
        else:
            # Ties: values on odd multiples of scale / 2 of the data's own scale.
            x = rng.uniform(-2, 3, shape).astype(F32)
            s, _, _ = dql_rule(x)
            k = rng.integers(-200, 200, shape)
            x = np.clip((k + F32(0.5)) * s, x.min(), x.max()).astype(F32)
            yield x


def dynamic_quantize_linear(rng, trials=400, shape=(1, 16, 9, 7)):
    s = dql_session(list(shape))
    bad = {"scale": 0, "zero point": 0, "values": 0, "values (reciprocal)": 0}
    total = ties = 0
    for x in dql_inputs(rng, shape, trials):
        y, scale, zp = s.run(None, {"x": x})
        rs, rz, ry = dql_rule(x)
        _, _, ry2 = dql_rule(x, reciprocal=True)
        bad["scale"] += int(F32(scale).tobytes() != rs.tobytes())
        bad["zero point"] += int(zp != rz)
        bad["values"] += int((y != ry).sum())
        bad["values (reciprocal)"] += int((y != ry2).sum())
        total += y.size
        q = x / rs
        ties += int((np.abs(q - np.floor(q)) == F32(0.5)).sum())
    print(f"DynamicQuantizeLinear: {trials} tensors of {shape}, {total} values, {ties} of them x / scale on a tie")
    for k, v in bad.items():
        print(f"  {k:22s} differs in {v}")
    for label, x in (("all 0.0", np.zeros(shape, F32)), ("all -0.0", np.full(shape, F32(-0.0)))):
        y, scale, zp = s.run(None, {"x": x})
        rs, rz, ry = dql_rule(x)
        same = F32(scale).tobytes() == rs.tobytes() and zp == rz and np.array_equal(y, ry)
        print(f"  {label}: ONNX Runtime gives scale {float(scale)}, zero point {int(zp)}, values "
              f"{np.unique(y).tolist()}; the rule {'agrees' if same else 'DIFFERS'}")


def epilogue_candidates(acc, xs, ws, b):
    m = F32(xs * ws)
    fa = acc.astype(F32)
    return {"separate (Cast, Mul, Add)": (fa * m + b).astype(F32), "fused multiply-add": fma(fa, m, b)}


def conv_integer(rng, trials=50, cin=8, cout=16, hw=(9, 9)):
    shape = [1, cin, *hw]
    nodes = [
        h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        h.make_node("Mul", ["xs", "ws"], ["m"]),
        h.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"], pads=[1, 1, 1, 1]),
        h.make_node("Cast", ["acc"], ["af"], to=T.FLOAT),
        h.make_node("Mul", ["af", "m"], ["mul"]),
        h.make_node("Add", ["mul", "b"], ["y"]),
    ]
    bad = {}
    n = 0
    for _ in range(trials):
        w = rng.integers(0, 256, (cout, cin, 3, 3)).astype(np.uint8)
        wz, ws = np.uint8(rng.integers(100, 156)), F32(rng.uniform(0.001, 0.02))
        b = (rng.standard_normal((cout, 1, 1)) * 0.3).astype(F32)
        s = session(nodes, [h.make_tensor_value_info("x", T.FLOAT, shape)],
                    [h.make_tensor_value_info("y", T.FLOAT, None), h.make_tensor_value_info("acc", T.INT32, None),
                     h.make_tensor_value_info("xs", T.FLOAT, [])],
                    {"w": w, "wz": wz, "ws": ws, "b": b})
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 3)).astype(F32)
        y, acc, xs = s.run(None, {"x": x})
        xs_r, xz_r, xq_r = dql_rule(x)
        exact = exact_conv(xq_r.astype(np.int64) - int(xz_r), w.astype(np.int64) - int(wz))
        bad["ConvInteger int32 sums"] = bad.get("ConvInteger int32 sums", 0) + int((acc != exact).sum())
        for k, v in epilogue_candidates(exact, xs_r, ws, b).items():
            bad[k] = bad.get(k, 0) + int((v != y).sum())
        n += y.size
    print(f"ConvInteger chain: {trials} convs 3x3 pad 1 {cin}->{cout} on {hw}, {n} float outputs")
    for k, v in bad.items():
        print(f"  {k:28s} differs in {v}")


def exact_conv(x, w):
    _, cin, hh, ww = x.shape
    cout = w.shape[0]
    p = np.zeros((cin, hh + 2, ww + 2), np.int64)
    p[:, 1:-1, 1:-1] = x[0]
    out = np.zeros((1, cout, hh, ww), np.int64)
    for i in range(3):
        for j in range(3):
            out[0] += np.einsum("oc,chw->ohw", w[:, :, i, j], p[:, i:i + hh, j:j + ww])
    return out


def matmul_integer(rng, trials=200, k=64, n=24):
    nodes = [
        h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        h.make_node("Mul", ["xs", "ws"], ["m"]),
        h.make_node("MatMulInteger", ["xq", "w", "xz", "wz"], ["acc"]),
        h.make_node("Cast", ["acc"], ["af"], to=T.FLOAT),
        h.make_node("Mul", ["af", "m"], ["mul"]),
        h.make_node("Add", ["mul", "b"], ["y"]),
    ]
    bad = {}
    for _ in range(trials):
        w = rng.integers(0, 256, (k, n)).astype(np.uint8)
        wz, ws = np.uint8(rng.integers(100, 156)), F32(rng.uniform(0.001, 0.02))
        b = (rng.standard_normal(n) * 0.3).astype(F32)
        s = session(nodes, [h.make_tensor_value_info("x", T.FLOAT, [1, k])],
                    [h.make_tensor_value_info("y", T.FLOAT, None)], {"w": w, "wz": wz, "ws": ws, "b": b})
        x = (rng.standard_normal((1, k)) * rng.uniform(0.5, 3)).astype(F32)
        (y,) = s.run(None, {"x": x})
        xs, xz, xq = dql_rule(x)
        exact = (xq.astype(np.int64) - int(xz)) @ (w.astype(np.int64) - int(wz))
        for key, v in epilogue_candidates(exact, xs, ws, b).items():
            bad[key] = bad.get(key, 0) + int((v != y).sum())
    print(f"MatMulInteger chain (ONNX Runtime runs DynamicQuantizeMatMul): {trials} x [1, {k}] x [{k}, {n}], "
          f"{trials * n} float outputs")
    for key, v in bad.items():
        print(f"  {key:28s} differs in {v}")


def write_goldens(out_dir, seed=21, shape=(1, 4, 6, 5)):
    """ONNX Runtime's DynamicQuantizeLinear and ConvInteger-chain outputs on
    small seeded tensors, for tests/ort_dynamic.rs: `dql.x.npy` (float32
    `[12, *shape]`: random, all-positive, all-negative and tie tensors, one
    of zeros), `dql.y.npy` (uint8), `dql.scale.npy` (float32), `dql.zp.npy`
    (uint8); `conv.*.npy`: one DynamicQuantizeLinear -> ConvInteger (3x3,
    pads 1, uint8 weights with a zero point) -> Cast -> Mul -> Add chain."""
    import os

    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    xs = list(dql_inputs(rng, shape, 11)) + [np.zeros(shape, F32)]
    s = dql_session(list(shape))
    outs = [s.run(None, {"x": x}) for x in xs]
    np.save(os.path.join(out_dir, "dql.x.npy"), np.stack(xs))
    np.save(os.path.join(out_dir, "dql.y.npy"), np.stack([o[0] for o in outs]))
    np.save(os.path.join(out_dir, "dql.scale.npy"), np.array([o[1] for o in outs], F32))
    np.save(os.path.join(out_dir, "dql.zp.npy"), np.array([o[2] for o in outs], np.uint8))
    cin, cout = shape[1], 6
    nodes = [
        h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        h.make_node("Mul", ["xs", "ws"], ["m"]),
        h.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["acc"], pads=[1, 1, 1, 1]),
        h.make_node("Cast", ["acc"], ["af"], to=T.FLOAT),
        h.make_node("Mul", ["af", "m"], ["mul"]),
        h.make_node("Add", ["mul", "b"], ["y"]),
    ]
    w = rng.integers(0, 256, (cout, cin, 3, 3)).astype(np.uint8)
    wz, ws = np.uint8(rng.integers(100, 156)), F32(rng.uniform(0.001, 0.02))
    b = (rng.standard_normal((cout, 1, 1)) * 0.3).astype(F32)
    cs = session(nodes, [h.make_tensor_value_info("x", T.FLOAT, list(shape))],
                 [h.make_tensor_value_info("y", T.FLOAT, None)], {"w": w, "wz": wz, "ws": ws, "b": b})
    x = (rng.standard_normal(shape) * 2).astype(F32)
    (y,) = cs.run(None, {"x": x})
    for name, v in (("x", x), ("w", w), ("wz", np.array([wz])), ("ws", np.array([ws], F32)),
                    ("b", b.reshape(-1)), ("y", y)):
        np.save(os.path.join(out_dir, f"conv.{name}.npy"), v)
    # Softmax rows (MLAS's kernel of this CPU: the goldens need AVX-512F).
    for d, rows in ((1000, 3), (37, 4)):
        s = softmax_session(d)
        x = np.stack([(rng.standard_normal((1, d)) * (4 * k + 1)).astype(F32) for k in range(rows)])
        y = np.stack([s.run(None, {"x": xi})[0] for xi in x])
        np.save(os.path.join(out_dir, f"softmax{d}.x.npy"), x[:, 0])
        np.save(os.path.join(out_dir, f"softmax{d}.y.npy"), y[:, 0])
    print(f"wrote ONNX Runtime {ort.__version__} goldens to {out_dir}")


# MLAS's float32 Softmax on x86-64 with AVX-512F (compute.cpp's constants,
# SoftmaxKernelAvx512F / TransKernelAvx512F): the candidate rule.
EXP = {
    "lower": F32(-103.9720840454), "bias": F32(12582912.0), "log2e": F32(1.44269504088896341),
    "ln2_high": F32(-6.93145752e-1), "ln2_low": F32(-1.42860677e-6),
    "poly": [F32(float.fromhex(v)) for v in ("0x1.694000p-10", "0x1.125edcp-7", "0x1.555b5ap-5",
                                           "0x1.555450p-3", "0x1.fffff6p-2")],
}


def mlas_exp(v):
    x = np.maximum(EXP["lower"], v).astype(F32)
    m = (fma(x, EXP["log2e"], EXP["bias"]) - EXP["bias"]).astype(F32)
    x = fma(m, EXP["ln2_high"], x)
    x = fma(m, EXP["ln2_low"], x)
    p = np.full_like(x, EXP["poly"][0])
    for c in EXP["poly"][1:] + [F32(1), F32(1)]:
        p = fma(p, x, c)
    return (p.astype(np.float64) * np.exp2(m.astype(np.float64))).astype(F32)


def mlas_softmax(row):
    e = mlas_exp((row + F32(-row.max())).astype(F32))
    lanes = np.zeros(16, F32)
    for i in range(0, len(row), 16):
        chunk = e[i:i + 16]
        lanes[:len(chunk)] = (lanes[:len(chunk)] + chunk).astype(F32)
    a = (lanes[8:] + lanes[:8]).astype(F32)
    s = F32(F32(F32(a[0] + a[1]) + F32(a[2] + a[3])) + F32(F32(a[4] + a[5]) + F32(a[6] + a[7])))
    return (e * F32(F32(1) / s)).astype(F32)


def softmax_session(d):
    return session([h.make_node("Softmax", ["x"], ["y"], axis=1)], [h.make_tensor_value_info("x", T.FLOAT, [1, d])],
                   [h.make_tensor_value_info("y", T.FLOAT, [1, d])], {})


def softmax(rng, rows=30):
    print("float Softmax (MLAS; this CPU: " + ("AVX-512F" if "avx512f" in open("/proc/cpuinfo").read() else
                                               "no AVX-512F, the rule does not apply") + ")")
    for d in (1000, 100, 37, 10, 7):
        s = softmax_session(d)
        bad = {"MLAS AVX-512F rule": 0, "float64 softmax rounded": 0}
        for _ in range(rows):
            x = (rng.standard_normal((1, d)) * rng.uniform(0.5, 20)).astype(F32)
            (y,) = s.run(None, {"x": x})
            bad["MLAS AVX-512F rule"] += int((mlas_softmax(x[0]) != y[0]).sum())
            e = np.exp(x[0].astype(np.float64) - x.max())
            bad["float64 softmax rounded"] += int(((e / e.sum()).astype(F32) != y[0]).sum())
        print(f"  {rows} rows of {d}: " + ", ".join(f"{k} differs in {v}" for k, v in bad.items()))


def average_pool_rule(x, k, s, p, include_pad=False):
    """Each window's in-image elements summed in row-major order in float32,
    divided by their count (or, with count_include_pad, the window's size)."""
    c, hh, ww = x.shape
    oh, ow = (hh + p[0] + p[2] - k[0]) // s[0] + 1, (ww + p[1] + p[3] - k[1]) // s[1] + 1
    y = np.zeros((c, oh, ow), F32)
    for ch, oy, ox in np.ndindex(c, oh, ow):
        acc, n = F32(0), 0
        for i, j in np.ndindex(k[0], k[1]):
            iy, ix = oy * s[0] - p[0] + i, ox * s[1] - p[1] + j
            if 0 <= iy < hh and 0 <= ix < ww:
                acc, n = F32(acc + x[ch, iy, ix]), n + 1
        y[ch, oy, ox] = F32(acc / F32(k[0] * k[1] if include_pad else n))
    return y


def average_pool(rng, trials=5):
    """Float32 AveragePool between the dynamic layers (the zoo's shapes)."""
    print("float AveragePool (the dynamic zoo models' windows)")
    for label, k, st, p, shape in (("2x2 stride 2 (DenseNet)", [2, 2], [2, 2], [0, 0, 0, 0], [1, 16, 14, 14]),
                                   ("3x3 stride 1 pads 1 (Inception v2)", [3, 3], [1, 1], [1, 1, 1, 1], [1, 16, 14, 14]),
                                   ("3x3 stride 2 pads 1 (ShuffleNet)", [3, 3], [2, 2], [1, 1, 1, 1], [1, 16, 14, 14]),
                                   ("7x7, the whole plane (GoogLeNet)", [7, 7], [1, 1], [0, 0, 0, 0], [1, 64, 7, 7]),
                                   ("3x3 stride 2 pads 1, 24 channels (plain NCHW kernel)", [3, 3], [2, 2], [1, 1, 1, 1],
                                    [1, 24, 28, 28])):
        node = h.make_node("AveragePool", ["x"], ["y"], kernel_shape=k, strides=st, pads=p)
        s = session([node], [h.make_tensor_value_info("x", T.FLOAT, shape)], [h.make_tensor_value_info("y", T.FLOAT, None)], {})
        bad = total = 0
        for _ in range(trials):
            x = (np.maximum(rng.standard_normal(shape), 0) * rng.uniform(0.5, 4)).astype(F32)
            (y,) = s.run(None, {"x": x})
            bad += int((average_pool_rule(x[0], k, st, p) != y[0]).sum())
            total += y.size
        print(f"  {label}: sequential window sum / count differs in {bad} of {total}")


def average_pool_columns_rule(x, k, s, p, include_pad=False):
    """MLAS's vectorised NCHW pool (`MlasPool2DVectorKernel`, strides 1 or 2,
    kernels up to 32): each input column's in-image rows of the window
    summed top to bottom (starting from the first row), then the window's
    column sums added left to right starting from its first column (a
    padding column is +0.0), divided by the in-image count (or the whole
    window with count_include_pad)."""
    c, hh, ww = x.shape
    oh, ow = (hh + p[0] + p[2] - k[0]) // s[0] + 1, (ww + p[1] + p[3] - k[1]) // s[1] + 1
    y = np.zeros((c, oh, ow), F32)
    for ch, oy in np.ndindex(c, oh):
        r0, r1 = max(oy * s[0] - p[0], 0), min(oy * s[0] - p[0] + k[0], hh)
        cols = x[ch, r0, :].astype(F32)
        for r in range(r0 + 1, r1):
            cols = (cols + x[ch, r, :]).astype(F32)
        padded = np.concatenate([np.zeros(p[1], F32), cols, np.zeros(k[1] + p[3] + 4, F32)])
        for ox in range(ow):
            b = ox * s[1]
            acc = padded[b]
            for j in range(1, k[1]):
                acc = F32(acc + padded[b + j])
            lo, hi = max(b, p[1]), min(b + k[1], p[1] + ww)
            n = k[0] * k[1] if include_pad else (hi - lo) * (r1 - r0)
            y[ch, oy, ox] = F32(acc / F32(n))
    return y


def average_pool_orders(rng, trials=5):
    """Which order ONNX Runtime's float AveragePool sums a window in: the
    NCHWc kernel (channels a multiple of 16 on AVX-512) against the plain
    NCHW vector kernel (other channel counts), both count_include_pad."""
    print("float AveragePool: row-major window sum against MLAS's column sums")
    for label, k, st, p, shape in (("3x3 s2 p1, 24 ch (ShuffleNet)", [3, 3], [2, 2], [1, 1, 1, 1], [1, 24, 28, 28]),
                                   ("3x3 s1 p1, 24 ch", [3, 3], [1, 1], [1, 1, 1, 1], [1, 24, 13, 11]),
                                   ("2x2 s2, 20 ch", [2, 2], [2, 2], [0, 0, 0, 0], [1, 20, 14, 14]),
                                   ("3x3 s2 p1, 16 ch", [3, 3], [2, 2], [1, 1, 1, 1], [1, 16, 28, 28]),
                                   ("3x3 s1 p1, 32 ch", [3, 3], [1, 1], [1, 1, 1, 1], [1, 32, 13, 11])):
        for include in (0, 1):
            node = h.make_node("AveragePool", ["x"], ["y"], kernel_shape=k, strides=st, pads=p,
                               count_include_pad=include)
            s = session([node], [h.make_tensor_value_info("x", T.FLOAT, shape)],
                        [h.make_tensor_value_info("y", T.FLOAT, None)], {})
            rows = cols = total = 0
            for _ in range(trials):
                x = (rng.standard_normal(shape) * rng.uniform(0.5, 4)).astype(F32)
                (y,) = s.run(None, {"x": x})
                rows += int((average_pool_rule(x[0], k, st, p, bool(include)) != y[0]).sum())
                cols += int((average_pool_columns_rule(x[0], k, st, p, bool(include)) != y[0]).sum())
                total += y.size
            print(f"  {label}, count_include_pad {include}: row order differs in "
                  f"{rows}, column sums in {cols} of {total}")


def float_batch_norm(rng, trials=50, shape=(1, 40, 7, 9), pool_first=False):
    """Float32 BatchNormalization (inference): ONNX Runtime's order against
    the textbook one and a fused multiply-add; with 64 channels (a multiple
    of the AVX-512 NCHWc block) read from a MaxPool (`pool_first`, which
    ONNX Runtime runs in NCHWc form), its NCHWc form, whose scale is a
    division, `s = g / sqrt(v + e)`."""
    c = shape[1]
    r = lambda a: a.reshape(1, c, 1, 1)
    diff = {"s = (1/sqrt(v+e))*g, b = B - m*s, x*s + b": 0, "fma(x, s, b)": 0,
            "(x - m) * (g / sqrt(v+e)) + B": 0, "s = g / sqrt(v+e), b = B - m*s, x*s + b": 0}
    nodes = [h.make_node("BatchNormalization", ["x", "g", "B", "m", "v"], ["y"], epsilon=1e-5)]
    x_in = "x"
    if pool_first:
        nodes.insert(0, h.make_node("MaxPool", ["x2"], ["x"], kernel_shape=[2, 2], strides=[2, 2]))
        x_in = "x2"
    in_shape = (1, c, 2 * shape[2], 2 * shape[3]) if pool_first else shape
    for _ in range(trials):
        g, v = rng.uniform(0.3, 2, c).astype(F32), rng.uniform(0.3, 2, c).astype(F32)
        b, m = (rng.standard_normal(c) * .5).astype(F32), (rng.standard_normal(c) * .5).astype(F32)
        s = session(nodes, [h.make_tensor_value_info(x_in, T.FLOAT, in_shape)],
                    [h.make_tensor_value_info("y", T.FLOAT, None)], dict(g=g, B=b, m=m, v=v))
        x = (rng.standard_normal(in_shape) * 3).astype(F32)
        (y,) = s.run(None, {x_in: x})
        if pool_first:
            x = x.reshape(1, c, shape[2], 2, shape[3], 2).max(axis=(3, 5))
        inv = (F32(1) / np.sqrt((v + F32(1e-5)).astype(F32))).astype(F32)
        ns = (inv * g).astype(F32)
        nb = (b - (m * ns).astype(F32)).astype(F32)
        ds = (g / np.sqrt((v + F32(1e-5)).astype(F32))).astype(F32)
        db = (b - (m * ds).astype(F32)).astype(F32)
        cands = [((x * r(ns)).astype(F32) + r(nb)).astype(F32), fma(x, r(ns), r(nb)),
                 (((x - r(m)).astype(F32) * r(ds)).astype(F32) + r(b)).astype(F32),
                 ((x * r(ds)).astype(F32) + r(db)).astype(F32)]
        for key, cand in zip(diff, cands):
            diff[key] += int((cand != y).sum())
    print(f"float BatchNormalization, {trials} tensors of {shape}{' after a MaxPool' if pool_first else ''}: " +
          ", ".join(f"{k} differs in {v}" for k, v in diff.items()))


def lrn_powf(x, size, alpha, beta, bias):
    """accsim's LRN before 5 December (docs/onnx.md, item 16: ONNX Runtime's running sum of
    squares, every product rounded) with glibc's powf, in float32."""
    import ctypes

    libm = ctypes.CDLL("libm.so.6")
    libm.powf.restype, libm.powf.argtypes = ctypes.c_float, [ctypes.c_float, ctypes.c_float]
    powf = np.vectorize(lambda a, b: libm.powf(float(a), float(b)), otypes=[F32])
    c = x.shape[0]
    pre = (size - 1) // 2
    sq = np.concatenate([np.zeros((pre,) + x.shape[1:], F32), (x * x).astype(F32),
                         np.zeros((size - 1 - pre,) + x.shape[1:], F32)])
    a = F32(alpha / size)
    scale = np.full(x.shape[1:], bias, F32)
    for i in range(size):
        scale = (scale + (a * sq[i]).astype(F32)).astype(F32)
    out = np.zeros_like(x)
    for ch in range(c):
        if ch > 0:
            scale = (scale + (a * sq[ch + size - 1]).astype(F32)).astype(F32)
            scale = (scale + (-a * sq[ch - 1]).astype(F32)).astype(F32)
        out[ch] = (x[ch] * powf(scale, F32(-beta))).astype(F32)
    return out


def lrn_then_dynamic_quantize(rng, trials=6, shape=(1, 64, 27, 27)):
    """AlexNet's LRN (size 5, alpha 1e-4, beta 0.75, bias 1) read by a
    DynamicQuantizeLinear, as quantize_dynamic leaves it."""
    size, alpha, beta, bias = 5, F32(1e-4), F32(0.75), F32(1.0)
    nodes = [h.make_node("LRN", ["x"], ["y"], size=size, alpha=float(alpha), beta=float(beta), bias=float(bias)),
             h.make_node("DynamicQuantizeLinear", ["y"], ["q", "s", "z"])]
    s = session(nodes, [h.make_tensor_value_info("x", T.FLOAT, list(shape))],
                [h.make_tensor_value_info(n, t, None) for n, t in (("y", T.FLOAT), ("q", T.UINT8), ("s", T.FLOAT))], {})
    floats = values = scales = total = 0
    for _ in range(trials):
        x = (np.maximum(rng.standard_normal(shape), 0) * rng.uniform(5, 60)).astype(F32)
        y, q, scale = s.run(None, {"x": x})
        ours = lrn_powf(x[0], size, alpha, beta, bias)
        rs, _, rq = dql_rule(ours)
        floats += int((ours != y[0]).sum())
        values += int((rq != q[0]).sum())
        scales += int(rs != F32(scale))
        total += y.size
    print(f"LRN (powf) then DynamicQuantizeLinear, {trials} tensors of {shape}: float outputs differ in {floats} "
          f"of {total}, quantised values in {values}, scales in {scales} of {trials}")


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--goldens", metavar="DIR", help="write tests/ort_dynamic.rs's goldens to DIR and exit")
    args = ap.parse_args()
    if args.goldens:
        write_goldens(args.goldens)
        return
    rng = np.random.default_rng(20)
    print(f"onnxruntime {ort.__version__}")
    dynamic_quantize_linear(rng)
    conv_integer(rng)
    matmul_integer(rng)
    softmax(rng)
    average_pool(rng)
    average_pool_orders(rng)
    float_batch_norm(rng)
    float_batch_norm(rng, shape=(1, 64, 14, 14))
    float_batch_norm(rng, shape=(1, 64, 14, 14), pool_first=True)
    float_batch_norm(rng, shape=(1, 40, 14, 14), pool_first=True)
    lrn_then_dynamic_quantize(rng)


if __name__ == "__main__":
    main()
