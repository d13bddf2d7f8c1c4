#!/usr/bin/env python3
"""How ONNX Runtime computes DenseNet's per-channel operators (docs/onnx.md,
item 19): candidate float32 formulas against ONNX Runtime's outputs on
seeded random data. Run on demand: `pip install numpy onnx onnxruntime`.

Prints, per candidate, how many outputs differ from ONNX Runtime's:
BatchNormalization (DQ -> BN -> Q, float32 output and quantised), and
com.microsoft.QLinearMul / QLinearAdd with a `[C, 1, 1]` constant B.
A fused multiply-add is emulated in float64 (exact product, one rounding
of the sum to float32 but for a double rounding, which these sizes make
negligible).
"""
import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

F32 = np.float32


def fma(a, b, c):
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(F32)


def sat(v, dt):
    i = np.iinfo(dt)
    return np.clip(v, i.min, i.max).astype(dt)


def session(nodes, inputs, outputs, inits, ms=False):
    opsets = [h.make_opsetid("", 13)] + ([h.make_opsetid("com.microsoft", 1)] if ms else [])
    g = h.make_graph(nodes, "g", inputs, outputs, [nh.from_array(np.array(v), k) for k, v in inits.items()])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(h.make_model(g, opset_imports=opsets).SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


def batch_norm(rng, trials=100, shape=(1, 64, 4, 64)):
    c = shape[1]
    r = lambda a: a.reshape(1, c, 1, 1)
    diff = {"float x*s+b": 0, "float fma(x,s,b)": 0, "q x*s+b": 0, "q fma": 0, "q textbook": 0}
    for _ in range(trials):
        sx, sy = [F32(10 ** rng.uniform(-2, -0.5)) for _ in range(2)]
        zx, zy = [np.uint8(rng.integers(0, 256)) for _ in range(2)]
        scale, var = rng.uniform(0.3, 2, c).astype(F32), rng.uniform(0.3, 2, c).astype(F32)
        bias, mean = (rng.standard_normal(c) * .5).astype(F32), (rng.standard_normal(c) * .5).astype(F32)
        x = rng.integers(0, 256, shape).astype(np.uint8)
        s = session([h.make_node("DequantizeLinear", ["x", "sx", "zx"], ["d"]),
                     h.make_node("BatchNormalization", ["d", "sc", "B", "mean", "var"], ["bn"], epsilon=1e-5),
                     h.make_node("QuantizeLinear", ["bn", "sy", "zy"], ["y"])],
                    [h.make_tensor_value_info("x", T.UINT8, shape)],
                    [h.make_tensor_value_info("y", T.UINT8, shape), h.make_tensor_value_info("bn", T.FLOAT, shape)],
                    dict(sx=sx, zx=zx, sy=sy, zy=zy, sc=scale, B=bias, mean=mean, var=var))
        y, bn = s.run(None, {"x": x})
        xf = ((x.astype(np.int32) - int(zx)).astype(F32) * sx).astype(F32)
        inv = (F32(1) / np.sqrt((var + F32(1e-5)).astype(F32))).astype(F32)
        ns = (inv * scale).astype(F32)
        nb = (bias - (mean * ns).astype(F32)).astype(F32)
        unfused = ((xf * r(ns)).astype(F32) + r(nb)).astype(F32)
        fused = fma(xf, r(ns), r(nb))
        textbook = ((((xf - r(mean)).astype(F32) * r(inv)).astype(F32) * r(scale)).astype(F32) + r(bias)).astype(F32)
        q = lambda v: sat(np.rint((v / sy).astype(F32)) + int(zy), np.uint8)
        diff["float x*s+b"] += (unfused != bn).sum()
        diff["float fma(x,s,b)"] += (fused != bn).sum()
        diff["q x*s+b"] += (q(unfused) != y).sum()
        diff["q fma"] += (q(fused) != y).sum()
        diff["q textbook"] += (q(textbook) != y).sum()
    return diff, trials * np.prod(shape)


def mul_add(rng, trials=300, shape=(1, 64, 4, 64)):
    c = shape[1]
    diff = {"add fma(b,rb,fixed)": 0, "add fixed+b*rb": 0, "mul sse2": 0, "mul c++": 0}
    n = 0
    for _ in range(trials):
        for dt, tt in ((np.uint8, T.UINT8), (np.int8, T.INT8)):
            info = np.iinfo(dt)
            sa, sb, sc = [F32(10 ** rng.uniform(-3, -0.5)) for _ in range(3)]
            za, zb, zc = [dt(rng.integers(info.min, info.max + 1)) for _ in range(3)]
            b = rng.integers(info.min, info.max + 1, (c, 1, 1)).astype(dt)
            x = rng.integers(info.min, info.max + 1, shape).astype(dt)
            inits = dict(sa=sa, za=za, sb=sb, zb=zb, sc=sc, zc=zc, b=b)
            bf = b.astype(F32)
            for op in ("QLinearAdd", "QLinearMul"):
                s = session([h.make_node(op, ["x", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                                         domain="com.microsoft")],
                            [h.make_tensor_value_info("x", tt, shape)], [h.make_tensor_value_info("y", tt, shape)],
                            inits, ms=True)
                y = s.run(None, {"x": x})[0]
                if op == "QLinearAdd":
                    ra, rb = F32(sa / sc), F32(sb / sc)
                    fixed = F32(F32(zc) - fma(ra, F32(za), F32(rb * F32(zb))))
                    for key, fx in (("add fma(b,rb,fixed)", fma(bf, rb, fixed)),
                                    ("add fixed+b*rb", (fixed + (bf * rb).astype(F32)).astype(F32))):
                        diff[key] += (sat(np.rint(fma(x.astype(F32), ra, fx)), dt) != y).sum()
                else:
                    ratio = F32(F32(sa * sb) / sc)
                    prod = (x.astype(np.int32) - np.int32(za)) * (b.astype(np.int32) - np.int32(zb))
                    v = ((prod.astype(F32) * ratio).astype(F32) + F32(zc)).astype(F32)
                    diff["mul sse2"] += (sat(np.rint(v), dt) != y).sum()
                    va = (sa * (x.astype(np.int32) - np.int32(za)).astype(F32)).astype(F32)
                    vb = (sb * (b.astype(np.int32) - np.int32(zb)).astype(F32)).astype(F32)
                    vc = ((va * vb).astype(F32) / sc).astype(F32)
                    diff["mul c++"] += (sat(np.rint(vc + F32(zc)), dt) != y).sum()
            n += x.size
    return diff, n


def main():
    print("onnxruntime", ort.__version__)
    for name, (diff, n) in (("BatchNormalization", batch_norm(np.random.default_rng(2))),
                            ("QLinearAdd / QLinearMul, B [C, 1, 1]", mul_add(np.random.default_rng(1)))):
        print(f"{name}: outputs differing from ONNX Runtime, of {n} each")
        for k, v in diff.items():
            print(f"  {k}: {v}")


if __name__ == "__main__":
    main()
