#!/usr/bin/env python3
"""Builds the ONNX test models and their ONNX Runtime goldens.

Run on demand (not needed to build or test accsim):

    pip install numpy onnx onnxruntime
    python3 scripts/onnx_cases.py            # writes tests/data/onnx/
    python3 scripts/onnx_cases.py --check    # regenerates in a temp dir and
                                             # fails if any golden changed

Every case is a small quantised model built with `onnx.helper`, seeded, so
the files are reproducible. For each case the script writes

    tests/data/onnx/<case>.onnx          the model
    tests/data/onnx/<case>.input.npy     the input (float32 or the int type)
    tests/data/onnx/<case>.output.npy    ONNX Runtime's output

A case run on several inputs (the Softmax networks, 10 seeded inputs each)
also writes

    tests/data/onnx/<case>.inputs.npy        every input, stacked
    tests/data/onnx/<case>.outputs.npy       ONNX Runtime's output for each

(`<case>.input.npy` and `<case>.output.npy` are the first of them), and
tests/data/onnx/cases.json records per case what ONNX Runtime
actually ran after its graph optimisations (the QDQ groups it fused into
QLinear kernels), so docs/onnx.md can say which arithmetic accsim must match.

ONNX Runtime runs with its default session options (ORT_ENABLE_ALL, the CPU
execution provider), with one intra-op thread.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "onnx")

U8 = (T.UINT8, np.uint8, 0, 255)
S8 = (T.INT8, np.int8, -128, 127)


class Case:
    """A graph under construction: nodes, initializers, fresh names."""

    def __init__(self, name, seed, opset=13):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.opset = opset
        self.counter = 0
        self.ms_domain = False

    def fresh(self, stem):
        self.counter += 1
        return f"{stem}_{self.counter}"

    def const(self, array, stem="c"):
        name = self.fresh(stem)
        self.inits.append(nh.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, stem=None, domain=None, **attrs):
        out = self.fresh(stem or op.lower())
        kw = {"domain": domain} if domain else {}
        if domain == "com.microsoft":
            self.ms_domain = True
        self.nodes.append(h.make_node(op, inputs, [out], name=self.fresh("n_" + op), **kw, **attrs))
        return out

    # -- quantisation helpers -------------------------------------------------
    def qparams(self, dt, scale, zp):
        return self.const(np.float32(scale), "scale"), self.const(np.array(zp, dt[1]), "zp")

    def quantize(self, x, dt, scale, zp):
        s, z = self.qparams(dt, scale, zp)
        return self.node("QuantizeLinear", [x, s, z], "q")

    def dequantize(self, x, dt, scale, zp):
        s, z = self.qparams(dt, scale, zp)
        return self.node("DequantizeLinear", [x, s, z], "dq")

    def weights(self, shape, wdt, per_channel, axis=0, spread=40, zp=None):
        """Random integer weights, their scale(s) and zero point."""
        lo, hi = wdt[2], wdt[3]
        n = shape[axis]
        if zp is None:
            zp = 0 if wdt is S8 else 128
        q = np.clip(np.rint(self.rng.normal(zp, spread, size=shape)), lo, hi).astype(wdt[1])
        if per_channel:
            scale = (10 ** self.rng.uniform(-2.5, -1.5, size=n)).astype(np.float32)
            zpa = np.full(n, zp, wdt[1])
        else:
            scale = np.float32(10 ** self.rng.uniform(-2.5, -1.5))
            zpa = np.array(zp, wdt[1])
        return q, scale, zpa

    def dq_weights(self, q, scale, zpa, axis=0):
        attrs = {"axis": axis} if np.ndim(scale) == 1 else {}
        return self.node(
            "DequantizeLinear",
            [self.const(q, "w"), self.const(scale, "w_scale"), self.const(zpa, "w_zp")],
            "w_dq",
            **attrs,
        )

    def bias(self, n, in_scale, w_scale, spread=2000):
        b = np.rint(self.rng.normal(0, spread, size=n)).astype(np.int32)
        bscale = (np.float32(in_scale) * np.asarray(w_scale, np.float32)).astype(np.float32)
        if np.ndim(bscale) == 0:
            bscale = np.float32(bscale)
        return b, bscale

    def dq_bias(self, b, bscale):
        attrs = {"axis": 0} if np.ndim(bscale) == 1 else {}
        zero = np.zeros(np.shape(bscale), np.int32) if np.ndim(bscale) == 1 else np.array(0, np.int32)
        return self.node(
            "DequantizeLinear",
            [self.const(b, "b"), self.const(bscale, "b_scale"), self.const(zero, "b_zp")],
            "b_dq",
            **attrs,
        )

    def model(self, inp, out, in_type, in_shape, out_type, out_shape):
        graph = h.make_graph(
            self.nodes,
            self.name,
            [h.make_tensor_value_info(inp, in_type, in_shape)],
            [h.make_tensor_value_info(out, out_type, out_shape)],
            initializer=self.inits,
        )
        opsets = [h.make_opsetid("", self.opset)]
        if self.ms_domain:
            opsets.append(h.make_opsetid("com.microsoft", 1))
        m = h.make_model(graph, opset_imports=opsets, ir_version=8, producer_name="accsim scripts/onnx_cases.py")
        onnx.checker.check_model(m)
        return m


def scale_of(rng, lo=-2.3, hi=-1.3):
    return np.float32(10 ** rng.uniform(lo, hi))


def int_input(rng, dt, shape):
    return rng.integers(dt[2], dt[3] + 1, size=shape).astype(dt[1])


def float_input(rng, shape, lo=-1.0, hi=1.5):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


# ---------------------------------------------------------------------------
# QOperator form
# ---------------------------------------------------------------------------


def qlinearconv(name, seed, xdt, wdt, per_channel, cin, cout, hw, k, stride=1, pads=(0, 0, 0, 0),
                groups=1, post=None, bias=True, dilations=None):
    # Relu takes int8 from opset 14 (never uint8); Clip takes both from opset 12.
    c = Case(name, seed, opset=14 if post == "relu" else 13)
    rng = c.rng
    xs, xz = scale_of(rng, -2.2, -1.8), int(rng.integers(xdt[2] + 20, xdt[3] - 20))
    ys, yz = scale_of(rng, -1.2, -0.6), int(rng.integers(xdt[2] + 40, xdt[3] - 40))
    q, ws, wz = c.weights([cout, cin // groups, k, k], wdt, per_channel, spread=30)
    ins = ["x", c.const(np.float32(xs)), c.const(np.array(xz, xdt[1])), c.const(q, "w"), c.const(ws), c.const(wz),
           c.const(np.float32(ys)), c.const(np.array(yz, xdt[1]))]
    if bias:
        b, _ = c.bias(cout, xs, ws)
        ins.append(c.const(b, "b"))
    attrs = dict(kernel_shape=[k, k], strides=[stride, stride], pads=list(pads), group=groups)
    if dilations:
        attrs["dilations"] = dilations
    y = c.node("QLinearConv", ins, "y", **attrs)
    if post == "relu":
        y = c.node("Relu", [y], "relu")
    elif post == "clip":
        y = c.node("Clip", [y, c.const(np.array(xdt[2] + 60, xdt[1])), c.const(np.array(xdt[3] - 50, xdt[1]))], "clip")
    oh = (hw[0] + pads[0] + pads[2] - k) // stride + 1
    ow = (hw[1] + pads[1] + pads[3] - k) // stride + 1
    m = c.model("x", y, xdt[0], [1, cin, *hw], xdt[0], [1, cout, oh, ow])
    return m, {"x": int_input(rng, xdt, (1, cin, *hw))}


def qlinearmatmul(name, seed, xdt, wdt, k, n, per_channel=False):
    c = Case(name, seed, opset=13)
    rng = c.rng
    xs, xz = scale_of(rng, -2.2, -1.8), int(rng.integers(xdt[2] + 20, xdt[3] - 20))
    ys, yz = scale_of(rng, -0.9, -0.5), int(rng.integers(xdt[2] + 40, xdt[3] - 40))
    q, ws, wz = c.weights([k, n], wdt, per_channel, axis=1, spread=30)
    y = c.node("QLinearMatMul", ["x", c.const(np.float32(xs)), c.const(np.array(xz, xdt[1])), c.const(q, "w"),
                                 c.const(ws), c.const(wz), c.const(np.float32(ys)), c.const(np.array(yz, xdt[1]))], "y")
    m = c.model("x", y, xdt[0], [1, k], xdt[0], [1, n])
    return m, {"x": int_input(rng, xdt, (1, k))}


def integer_chain(name, seed, kind, xdt, wdt, per_channel, relu=False, with_bias=True):
    """ConvInteger / MatMulInteger -> Cast -> Mul(scale) [-> Add(bias)] [-> Relu] -> QuantizeLinear."""
    c = Case(name, seed, opset=13)
    rng = c.rng
    xs, xz = scale_of(rng, -2.2, -1.8), int(rng.integers(xdt[2] + 20, xdt[3] - 20))
    ys, yz = scale_of(rng, -1.0, -0.6), int(rng.integers(xdt[2] + 40, xdt[3] - 40))
    if kind == "conv":
        cin, cout, hw, k = 3, 5, (9, 8), 3
        q, ws, wz = c.weights([cout, cin, k, k], wdt, per_channel, spread=30, zp=None if wdt is S8 else 120)
        # ONNX Runtime's ConvInteger takes only a per-tensor weight zero point.
        wz_in = np.array(np.asarray(wz).flat[0], wdt[1])
        acc = c.node("ConvInteger", ["x", c.const(q, "w"), c.const(np.array(xz, xdt[1])), c.const(wz_in)], "acc",
                     kernel_shape=[k, k], pads=[1, 0, 1, 2])
        bshape = [1, cout, 1, 1]
        in_shape, out_shape = [1, cin, *hw], [1, cout, hw[0], hw[1] - 2 + 2]
    else:
        kk, n = 24, 7
        q, ws, wz = c.weights([kk, n], wdt, per_channel, axis=1, spread=30, zp=None if wdt is S8 else 120)
        acc = c.node("MatMulInteger", ["x", c.const(q, "w"), c.const(np.array(xz, xdt[1])),
                                        c.const(np.array(np.asarray(wz).flat[0], wdt[1]))], "acc")
        bshape = [1, n]
        in_shape, out_shape = [1, kk], [1, n]
    f = c.node("Cast", [acc], "accf", to=T.FLOAT)
    mul = (np.float32(xs) * np.asarray(ws, np.float32)).astype(np.float32).reshape(bshape if per_channel else [])
    f = c.node("Mul", [f, c.const(mul, "mul")], "scaled")
    if with_bias:
        b = rng.normal(0, 0.3, size=bshape).astype(np.float32)
        f = c.node("Add", [f, c.const(b, "bias")], "biased")
    if relu:
        f = c.node("Relu", [f], "relu")
    y = c.quantize(f, xdt, ys, yz)
    m = c.model("x", y, xdt[0], in_shape, xdt[0], out_shape)
    return m, {"x": int_input(rng, xdt, tuple(in_shape))}


def int_pool(name, seed, xdt, op, k, stride, pads, ceil=0, hw=(11, 10), reshape=None):
    """MaxPool on integers, optionally followed by Flatten / Reshape."""
    c = Case(name, seed, opset=13)
    rng = c.rng
    y = c.node(op, ["x"], "pool", kernel_shape=[k, k], strides=[stride, stride], pads=list(pads), ceil_mode=ceil)
    out_shape = None
    if reshape == "flatten":
        y = c.node("Flatten", [y], "flat", axis=1)
    elif reshape == "reshape":
        y = c.node("Reshape", [y, c.const(np.array([1, -1], np.int64), "shape")], "reshaped")
    m_in = [1, 4, *hw]
    sess_out = run_ort_shape(c, y, xdt, m_in)
    out_shape = list(sess_out)
    m = c.model("x", y, xdt[0], m_in, xdt[0], out_shape)
    return m, {"x": int_input(rng, xdt, tuple(m_in))}


def run_ort_shape(c, y, xdt, in_shape):
    """Output shape of a draft graph, from ONNX shape inference."""
    graph = h.make_graph(c.nodes, "draft", [h.make_tensor_value_info("x", xdt[0], in_shape)],
                         [h.make_tensor_value_info(y, xdt[0], None)], initializer=c.inits)
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", c.opset)], ir_version=8)
    inferred = onnx.shape_inference.infer_shapes(m)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == y and vi.type.tensor_type.shape.dim:
            return [d.dim_value for d in vi.type.tensor_type.shape.dim]
    raise RuntimeError("no shape")


# ---------------------------------------------------------------------------
# QDQ form
# ---------------------------------------------------------------------------


class QdqNet:
    """A QDQ network builder: activations are (quantised tensor name, dtype, scale, zp, shape)."""

    def __init__(self, name, seed, xdt, in_shape, opset=13, float_input=True):
        self.c = Case(name, seed, opset)
        self.xdt = xdt
        rng = self.c.rng
        self.in_shape = in_shape
        self.float_input = float_input
        s, z = scale_of(rng, -1.9, -1.6), int(rng.integers(xdt[2] + 60, xdt[3] - 60))
        if float_input:
            q = self.c.quantize("x", xdt, s, z)
        else:
            q = "x"
        self.act = (q, s, z, list(in_shape))

    def out_q(self, relu=False):
        rng = self.c.rng
        s = scale_of(rng, -1.4, -0.9)
        if relu:
            z = self.xdt[2]
        else:
            z = int(rng.integers(self.xdt[2] + 60, self.xdt[3] - 60))
        return s, z

    def conv(self, cout, k, stride=1, pads=(0, 0, 0, 0), groups=1, per_channel=False, act=None, wdt=S8,
             bias=True, wzp=None):
        c = self.c
        q, s, z, shape = self.act
        cin = shape[1]
        xdq = c.dequantize(q, self.xdt, s, z)
        wq, ws, wz = c.weights([cout, cin // groups, k, k], wdt, per_channel, spread=30, zp=wzp)
        ins = [xdq, c.dq_weights(wq, ws, wz)]
        if bias:
            b, bs = c.bias(cout, s, ws)
            ins.append(c.dq_bias(b, bs))
        y = c.node("Conv", ins, "conv", kernel_shape=[k, k], strides=[stride, stride], pads=list(pads), group=groups)
        ys, yz = self.out_q(relu=act in ("relu", "relu_fused"))
        if act in ("relu", "relu_fused"):
            y = c.node("Relu", [y], "relu")
        elif act == "relu6":
            ys, yz = np.float32(6.0 / (self.xdt[3] - self.xdt[2])), self.xdt[2]
            y = c.node("Clip", [y, c.const(np.float32(0), "min"), c.const(np.float32(6), "max")], "clip")
        oh = (shape[2] + pads[0] + pads[2] - k) // stride + 1
        ow = (shape[3] + pads[1] + pads[3] - k) // stride + 1
        self.act = (c.quantize(y, self.xdt, ys, yz), ys, yz, [1, cout, oh, ow])
        return self.act

    def maxpool(self, k, stride, pads=(0, 0, 0, 0), ceil=0):
        c = self.c
        q, s, z, shape = self.act
        y = c.node("MaxPool", [c.dequantize(q, self.xdt, s, z)], "maxpool", kernel_shape=[k, k],
                   strides=[stride, stride], pads=list(pads), ceil_mode=ceil)
        self.act = (c.quantize(y, self.xdt, s, z), s, z, pool_shape(shape, k, stride, pads, ceil))
        return self.act

    def avgpool(self, k, stride, pads=(0, 0, 0, 0), ceil=0, include_pad=0):
        c = self.c
        q, s, z, shape = self.act
        y = c.node("AveragePool", [c.dequantize(q, self.xdt, s, z)], "avgpool", kernel_shape=[k, k],
                   strides=[stride, stride], pads=list(pads), ceil_mode=ceil, count_include_pad=include_pad)
        ys, yz = self.out_q()
        self.act = (c.quantize(y, self.xdt, ys, yz), ys, yz, pool_shape(shape, k, stride, pads, ceil))
        return self.act

    def gap(self):
        c = self.c
        q, s, z, shape = self.act
        y = c.node("GlobalAveragePool", [c.dequantize(q, self.xdt, s, z)], "gap")
        ys, yz = self.out_q()
        self.act = (c.quantize(y, self.xdt, ys, yz), ys, yz, [1, shape[1], 1, 1])
        return self.act

    def add(self, other):
        c = self.c
        qa, sa, za, shape = self.act
        qb, sb, zb, _ = other
        y = c.node("Add", [c.dequantize(qa, self.xdt, sa, za), c.dequantize(qb, self.xdt, sb, zb)], "add")
        ys, yz = self.out_q()
        self.act = (c.quantize(y, self.xdt, ys, yz), ys, yz, shape)
        return self.act

    def flatten(self, how="flatten"):
        c = self.c
        q, s, z, shape = self.act
        n = int(np.prod(shape[1:]))
        x = c.dequantize(q, self.xdt, s, z)
        if how == "flatten":
            y = c.node("Flatten", [x], "flat", axis=1)
        else:
            y = c.node("Reshape", [x, c.const(np.array([1, n], np.int64), "shape")], "reshaped")
        self.act = (c.quantize(y, self.xdt, s, z), s, z, [1, n])
        return self.act

    def gemm(self, n, per_channel=False, act=None, wdt=S8, bias=True, matmul=False):
        c = self.c
        q, s, z, shape = self.act
        k = shape[1]
        x = c.dequantize(q, self.xdt, s, z)
        if matmul:
            wq, ws, wz = c.weights([k, n], wdt, per_channel, axis=1, spread=30)
            y = c.node("MatMul", [x, c.dq_weights(wq, ws, wz, axis=1)], "matmul")
            if bias:
                b, bs = c.bias(n, s, ws)
                y = c.node("Add", [y, c.dq_bias(b, bs)], "matmul_bias")
        else:
            wq, ws, wz = c.weights([n, k], wdt, per_channel, axis=0, spread=30)
            ins = [x, c.dq_weights(wq, ws, wz)]
            if bias:
                b, bs = c.bias(n, s, ws)
                ins.append(c.dq_bias(b, bs))
            y = c.node("Gemm", ins, "gemm", transB=1)
        ys, yz = self.out_q(relu=act == "relu")
        if act == "relu":
            y = c.node("Relu", [y], "relu")
        self.act = (c.quantize(y, self.xdt, ys, yz), ys, yz, [1, n])
        return self.act

    def finish(self, dequantize_output=False):
        c = self.c
        q, s, z, shape = self.act
        out, otype = q, self.xdt[0]
        if dequantize_output:
            out, otype = c.dequantize(q, self.xdt, s, z), T.FLOAT
        in_type = T.FLOAT if self.float_input else self.xdt[0]
        m = c.model("x", out, in_type, self.in_shape, otype, shape)
        rng = c.rng
        x = float_input(rng, tuple(self.in_shape)) if self.float_input else int_input(rng, self.xdt, tuple(self.in_shape))
        return m, {"x": x}


def pool_shape(shape, k, stride, pads, ceil):
    def one(n, pb, pe):
        span = n + pb + pe - k
        out = (-(-span // stride) if ceil else span // stride) + 1
        if ceil and (out - 1) * stride >= n + pb:
            out -= 1
        return out

    return [shape[0], shape[1], one(shape[2], pads[0], pads[2]), one(shape[3], pads[1], pads[3])]


def qdq_single(name, seed, xdt, build, in_shape=(1, 3, 9, 9), **kw):
    net = QdqNet(name, seed, xdt, list(in_shape), **kw)
    build(net)
    return net


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------


def cases():
    out = []

    def add(name, fn):
        out.append((name, fn))

    # QOperator: QLinearConv
    add("qlinearconv_u8_per_tensor", lambda n: qlinearconv(n, 1, U8, S8, False, 3, 4, (8, 8), 3, pads=(1, 1, 1, 1)))
    add("qlinearconv_s8_per_channel_stride2", lambda n: qlinearconv(n, 2, S8, S8, True, 4, 6, (9, 7), 3, stride=2,
                                                                       pads=(1, 0, 1, 1)))
    add("qlinearconv_u8_u8_weights_zero_point", lambda n: qlinearconv(n, 3, U8, U8, False, 3, 5, (7, 7), 3,
                                                                         pads=(1, 1, 1, 1)))
    add("qlinearconv_s8_groups2_asym_pads", lambda n: qlinearconv(n, 4, S8, S8, True, 4, 6, (8, 9), 3, groups=2,
                                                                     pads=(0, 1, 2, 1)))
    add("qlinearconv_u8_depthwise", lambda n: qlinearconv(n, 5, U8, S8, True, 6, 6, (10, 10), 3, groups=6,
                                                             pads=(1, 1, 1, 1)))
    add("qlinearconv_s8_1x1_odd_shape_no_bias", lambda n: qlinearconv(n, 6, S8, S8, False, 5, 3, (7, 5), 1,
                                                                         bias=False))
    add("qlinearconv_u8_clip", lambda n: qlinearconv(n, 7, U8, S8, False, 3, 4, (6, 6), 3, post="clip"))
    add("qlinearconv_s8_relu", lambda n: qlinearconv(n, 8, S8, S8, True, 3, 4, (6, 6), 3, post="relu"))
    add("qlinearconv_s8_clip", lambda n: qlinearconv(n, 9, S8, S8, True, 3, 4, (6, 6), 3, post="clip"))
    add("qlinearconv_u8_5x5_stride3", lambda n: qlinearconv(n, 10, U8, S8, True, 2, 3, (13, 11), 5, stride=3,
                                                               pads=(2, 2, 2, 2)))
    # QOperator: QLinearMatMul
    add("qlinearmatmul_u8", lambda n: qlinearmatmul(n, 11, U8, S8, 37, 9))
    add("qlinearmatmul_s8", lambda n: qlinearmatmul(n, 12, S8, S8, 20, 6))
    add("qlinearmatmul_u8_u8", lambda n: qlinearmatmul(n, 13, U8, U8, 16, 5))
    # QOperator: ConvInteger / MatMulInteger chains
    add("convinteger_u8_chain", lambda n: integer_chain(n, 14, "conv", U8, U8, False))
    add("convinteger_s8_per_channel_relu", lambda n: integer_chain(n, 15, "conv", S8, S8, True, relu=True))
    add("matmulinteger_u8_chain", lambda n: integer_chain(n, 16, "matmul", U8, S8, False))
    add("matmulinteger_s8_per_channel_no_bias", lambda n: integer_chain(n, 17, "matmul", S8, S8, True,
                                                                          with_bias=False))
    # Integer pooling and reshaping
    add("maxpool_u8_ceil_pads", lambda n: int_pool(n, 18, U8, "MaxPool", 3, 2, (1, 1, 1, 1), ceil=1))
    add("maxpool_s8_flatten", lambda n: int_pool(n, 19, S8, "MaxPool", 2, 2, (0, 0, 0, 0), reshape="flatten"))
    add("maxpool_u8_reshape", lambda n: int_pool(n, 20, U8, "MaxPool", 3, 1, (0, 1, 0, 1), reshape="reshape"))

    # QDQ form
    def conv_only(**kw):
        return lambda net: net.conv(**kw)

    add("qdq_conv_u8_per_tensor", lambda n: qdq_single(n, 21, U8, conv_only(cout=4, k=3, pads=(1, 1, 1, 1))).finish())
    add("qdq_conv_s8_per_channel_relu", lambda n: qdq_single(
        n, 22, S8, conv_only(cout=5, k=3, stride=2, pads=(1, 1, 1, 1), per_channel=True, act="relu")).finish())
    add("qdq_conv_u8_relu6", lambda n: qdq_single(
        n, 23, U8, conv_only(cout=4, k=3, pads=(1, 1, 1, 1), act="relu6")).finish())
    add("qdq_conv_s8_depthwise_stride2", lambda n: qdq_single(
        n, 24, S8, conv_only(cout=6, k=3, stride=2, pads=(0, 0, 1, 1), groups=6, per_channel=True),
        in_shape=(1, 6, 11, 11)).finish())
    add("qdq_conv_u8_groups3_asym", lambda n: qdq_single(
        n, 25, U8, conv_only(cout=6, k=2, pads=(1, 0, 0, 1), groups=3, per_channel=True),
        in_shape=(1, 3, 7, 8)).finish())
    add("qdq_conv_u8_u8_weights", lambda n: qdq_single(
        n, 26, U8, conv_only(cout=4, k=3, wdt=U8, wzp=131)).finish())
    add("qdq_conv_s8_no_bias_float_output", lambda n: qdq_single(
        n, 27, S8, conv_only(cout=3, k=1, bias=False)).finish(dequantize_output=True))
    add("qdq_conv_u8_int_input", lambda n: qdq_single(
        n, 28, U8, conv_only(cout=4, k=3, pads=(1, 1, 1, 1), per_channel=True), float_input=False).finish())
    add("qdq_gemm_u8", lambda n: qdq_single(n, 29, U8, lambda net: net.gemm(10), in_shape=(1, 40)).finish())
    add("qdq_gemm_s8_per_channel_relu", lambda n: qdq_single(
        n, 30, S8, lambda net: net.gemm(7, per_channel=True, act="relu"), in_shape=(1, 33)).finish())
    add("qdq_matmul_s8", lambda n: qdq_single(
        n, 31, S8, lambda net: net.gemm(6, matmul=True, bias=False), in_shape=(1, 25)).finish())
    add("qdq_matmul_u8_per_channel", lambda n: qdq_single(
        n, 32, U8, lambda net: net.gemm(6, matmul=True, bias=False, per_channel=True), in_shape=(1, 25)).finish())
    add("qdq_maxpool_u8_ceil", lambda n: qdq_single(
        n, 33, U8, lambda net: net.maxpool(3, 2, ceil=1), in_shape=(1, 3, 10, 9)).finish())
    add("qdq_avgpool_u8_pads", lambda n: qdq_single(
        n, 34, U8, lambda net: net.avgpool(3, 2, pads=(1, 1, 1, 1)), in_shape=(1, 3, 9, 9)).finish())
    add("qdq_avgpool_s8_ceil_odd", lambda n: qdq_single(
        n, 35, S8, lambda net: net.avgpool(2, 2, ceil=1), in_shape=(1, 4, 7, 5)).finish())
    add("qdq_avgpool_u8_include_pad", lambda n: qdq_single(
        n, 36, U8, lambda net: net.avgpool(3, 1, pads=(1, 1, 1, 1), include_pad=1), in_shape=(1, 2, 6, 6)).finish())
    add("qdq_gap_u8", lambda n: qdq_single(n, 37, U8, lambda net: net.gap(), in_shape=(1, 5, 7, 6)).finish())
    add("qdq_gap_s8", lambda n: qdq_single(n, 38, S8, lambda net: net.gap(), in_shape=(1, 5, 9, 9)).finish())

    def residual(net, per_channel):
        skip = net.conv(cout=4, k=3, pads=(1, 1, 1, 1), per_channel=per_channel, act="relu")
        net.conv(cout=4, k=3, pads=(1, 1, 1, 1), per_channel=per_channel)
        net.add(skip)

    add("qdq_add_residual_u8", lambda n: qdq_single(n, 39, U8, lambda net: residual(net, False),
                                                     in_shape=(1, 3, 8, 8)).finish())
    add("qdq_add_residual_s8", lambda n: qdq_single(n, 40, S8, lambda net: residual(net, True),
                                                     in_shape=(1, 3, 8, 8)).finish())

    def small_cnn(net, per_channel, how):
        net.conv(cout=8, k=3, pads=(1, 1, 1, 1), per_channel=per_channel, act="relu")
        net.maxpool(2, 2)
        skip = net.act
        net.conv(cout=8, k=3, pads=(1, 1, 1, 1), per_channel=per_channel, act="relu")
        net.conv(cout=8, k=1, per_channel=per_channel)
        net.add(skip)
        net.avgpool(2, 2)
        net.flatten(how)
        net.gemm(10, per_channel=per_channel)

    add("qdq_small_cnn_u8", lambda n: qdq_single(n, 41, U8, lambda net: small_cnn(net, False, "flatten"),
                                                  in_shape=(1, 3, 16, 16)).finish())
    add("qdq_small_cnn_s8_per_channel", lambda n: qdq_single(
        n, 42, S8, lambda net: small_cnn(net, True, "reshape"), in_shape=(1, 3, 12, 12),
        opset=17).finish(dequantize_output=True))

    def gap_head(net):
        net.conv(cout=6, k=3, stride=2, pads=(1, 1, 1, 1), per_channel=True, act="relu")
        net.gap()
        net.flatten()
        net.gemm(4, per_channel=True)

    add("qdq_gap_head_u8_opset21", lambda n: qdq_single(n, 43, U8, gap_head, in_shape=(1, 3, 10, 10),
                                                         opset=21).finish())
    # A ResNet-style network quantised as a user would (quantize_static, QDQ):
    # the graph input and an inner tensor each feed a conv and a residual Add.
    add("qdq_resnet_fanout_u8", lambda n: resnet_fanout(n, 44))
    # Classifiers ending in Softmax, quantised by quantize_static as a user
    # would, each run on 10 seeded inputs: ONNX Runtime fuses the final
    # DQ -> Softmax -> Q into QLinearSoftmax.
    add("qdq_softmax_cnn_u8_per_channel", lambda n: softmax_cnn(n, 45, "u8", True, "gemm"))
    add("qdq_softmax_cnn_u8_per_tensor", lambda n: softmax_cnn(n, 46, "u8", False, "gemm"))
    add("qdq_softmax_cnn_s8_per_channel", lambda n: softmax_cnn(n, 47, "s8", True, "gemm"))
    add("qdq_softmax_cnn_s8_per_tensor", lambda n: softmax_cnn(n, 48, "s8", False, "gemm"))
    add("qdq_softmax_gap_conv_u8", lambda n: softmax_cnn(n, 49, "u8", True, "conv"))
    # SqueezeNet's tail after ONNX's opset converter: Softmax on [1, 10],
    # then Reshape back to [1, 10, 1, 1] (one input).
    add("qdq_softmax_reshape_4d_s8", lambda n: softmax_cnn(n, 50, "s8", True, "reshape"))
    # The same kind of classifier quantised by quantize_static in QOperator
    # form: QLinearConv, uint8/int8 MaxPool, and the com.microsoft contrib
    # operators QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool,
    # QGemm and QLinearSoftmax; 10 inputs each.
    add("qop_cnn_u8_per_channel", lambda n: qop_cnn(n, 51, "u8", True))
    add("qop_cnn_s8_per_tensor", lambda n: qop_cnn(n, 52, "s8", False))
    # ResNet-50's and ShuffleNet's residual Sum (two inputs) between Q/DQ,
    # which ONNX Runtime runs in float32 in both forms; 10 inputs each.
    add("qdq_sum_cnn_u8_per_channel", lambda n: sum_cnn(n, 53, "u8", True, "qdq"))
    add("qop_sum_cnn_s8_per_tensor", lambda n: sum_cnn(n, 54, "s8", False, "qop"))
    # ShuffleNet's channel shuffle (Reshape - Transpose - Reshape), which
    # ONNX Runtime runs on the integers; 10 inputs each.
    add("qdq_shuffle_cnn_u8_per_channel", lambda n: shuffle_cnn(n, 55, "u8", True, "qdq"))
    add("qop_shuffle_cnn_s8_per_tensor", lambda n: shuffle_cnn(n, 56, "s8", False, "qop"))
    # GoogLeNet's Concat of three branches (ONNX Runtime: QLinearConcat,
    # copying or requantising each input), LRN (float32 between DQ and Q),
    # and a Sum of three inputs (float32); 10 inputs each.
    add("qdq_concat_cnn_u8_per_channel", lambda n: branchy_cnn(n, 57, "u8", True, "qdq", concat_body))
    add("qop_concat_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 58, "s8", False, "qop", concat_body))
    add("qdq_lrn_cnn_u8_per_channel", lambda n: branchy_cnn(n, 59, "u8", True, "qdq", lrn_body))
    add("qop_lrn_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 60, "s8", False, "qop", lrn_body))
    add("qdq_sum3_cnn_u8_per_channel", lambda n: branchy_cnn(n, 61, "u8", True, "qdq", sum3_body))
    add("qop_sum3_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 62, "s8", False, "qop", sum3_body))
    add("qdq_lrn_branch_cnn_u8_per_channel", lambda n: branchy_cnn(n, 63, "u8", True, "qdq", lrn_branch_body))
    add("qop_lrn_branch_cnn_u8_per_channel", lambda n: branchy_cnn(n, 64, "u8", True, "qop", lrn_branch_body))
    # LeakyRelu and Sigmoid (ONNX Runtime: QLinearLeakyRelu, QLinearSigmoid).
    add("qdq_activations_cnn_u8_per_channel", lambda n: branchy_cnn(n, 65, "u8", True, "qdq", activations_body))
    add("qop_activations_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 66, "s8", False, "qop", activations_body))
    # ResNet-50's residual stage in small, whose Sum-Relu results ONNX
    # Runtime keeps in float32: read unquantised by the next Sum (QOperator
    # form) and averaged over the whole plane with no QuantizeLinear between
    # (QDQ form's last block); 10 inputs each.
    add("qdq_chain_cnn_u8_per_channel", lambda n: chain_cnn(n, 67, "u8", True, "qdq", "avg"))
    add("qop_chain_cnn_u8_per_channel", lambda n: chain_cnn(n, 68, "u8", True, "qop", "avg"))
    add("qop_chain_gap_cnn_s8_per_tensor", lambda n: chain_cnn(n, 70, "s8", False, "qop", "gap"))
    # DenseNet-121's dense layer in small: a BatchNormalization after a
    # Concat (no conv to fold it into; ONNX Runtime runs it in float32
    # between DQ and Q in both forms), then a Mul and an Add by per-channel
    # constants (ONNX Runtime: QLinearMul and QLinearAdd with a broadcast
    # operand; int8 QDQ: Mul and Add unfused, in float32); 10 inputs each.
    add("qdq_bn_cnn_u8_per_channel", lambda n: branchy_cnn(n, 71, "u8", True, "qdq", dense_body))
    add("qop_bn_cnn_u8_per_channel", lambda n: branchy_cnn(n, 72, "u8", True, "qop", dense_body))
    add("qop_bn_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 73, "s8", False, "qop", dense_body))
    add("qdq_bn_cnn_s8_per_tensor", lambda n: branchy_cnn(n, 74, "s8", False, "qdq", dense_body))
    # Dynamic quantisation (quantize_dynamic, uint8, as scripts/onnx_zoo.py
    # writes dynamic_u8): DynamicQuantizeLinear before each conv and the
    # classifier, float32 between them; 10 inputs.
    add("dynamic_cnn_u8", lambda n: dynamic_cnn(n, 75))
    add("dynamic_concat_gap_cnn_u8", lambda n: dynamic_cnn(n, 76, head="concat_gap"))
    add("dynamic_residual_cnn_u8", lambda n: dynamic_cnn(n, 77, head="residual"))
    # int8 QDQ convolutions ONNX Runtime runs unfused in float32 (item 6):
    # a shared input DequantizeLinear, large sums a bias cancels; 10 inputs.
    add("qdq_unfused_conv_s8_6x6", lambda n: unfused_conv_cnn(n, 77, 64, 6, True))
    add("qdq_unfused_conv_s8_11x11", lambda n: unfused_conv_cnn(n, 78, 32, 11, True))
    add("qdq_avgpool_s8_uint8_kernel", lambda n: avgpool_uint8_kernel(n, 79))
    # The float32 operators of the other zoo models in this form: windowed
    # AveragePools in both of ONNX Runtime's summation orders (ShuffleNet,
    # Inception v2, DenseNet, GoogLeNet), and DenseNet's BatchNormalization
    # -> Mul -> Add -> Relu and ShuffleNet's channel shuffle; 10 inputs each.
    add("dynamic_avgpool_cnn_u8", lambda n: dynamic_cnn(n, 77, head="avgpool"))
    add("dynamic_bn_shuffle_cnn_u8", lambda n: dynamic_cnn(n, 78, head="bn_shuffle"))
    # AlexNet's float32 LRN read by a DynamicQuantizeLinear (through a
    # MaxPool): Eigen's pow in whole packets, powf on the tail.
    add("dynamic_lrn_cnn_u8", lambda n: dynamic_cnn(n, 80, head="lrn"))
    return out


SOFTMAX_INPUTS = 10


def avgpool_uint8_kernel(name, seed):
    """An int8 QDQ AveragePool between two convolutions, its input and
    output quantised alike (zero point -128, after a Relu): both of its
    `Q -> DQ` pairs are read by one node, so ONNX Runtime rewrites them to
    uint8 and its fused QLinearAveragePool adds the uint8 zero point (0)
    before rounding, where the int8 one (-128) loses the float average's
    last bits near a tie (docs/onnx.md, item 4). The last convolution's
    output is the graph output (a shared pair) and its input pair is
    rewritten, so it runs as a float Conv (item 6)."""
    net = QdqNet(name, seed, S8, [1, 8, 24, 24])
    net.conv(16, 3, pads=(1, 1, 1, 1), act="relu")
    c = net.c
    q, s, z, shape = net.act
    y = c.node("AveragePool", [c.dequantize(q, S8, s, z)], "avgpool", kernel_shape=[2, 2], strides=[2, 2])
    net.act = (c.quantize(y, S8, s, z), s, z, pool_shape(shape, 2, 2, (0, 0, 0, 0), 0))
    net.conv(8, 1)
    return net.finish()


def unfused_conv_cnn(name, seed, cin, hw, near_bias):
    """Two int8 QDQ convolutions (a 3x3 with pads 1 and a 1x1) reading one
    shared `DequantizeLinear` of the input, their outputs concatenated with
    their one quantisation (a copy). ONNX Runtime's int8-to-uint8 rewrite
    skips the shared input pair and rewrites each output pair, so both
    groups run as float `Conv`s (docs/onnx.md, item 6): MLAS's float32
    sums, which differ from the fused QLinearConv's exact integer sums
    where a float sum lands near a tie. `near_bias`: the inputs sit near the
    top of their range and the weights are positive, so each sum is large,
    and a bias cancels most of it (the outputs stay in range): the float32
    rounding of the large partial sums then moves many outputs. Otherwise
    random weights and inputs (differences are rare). 10 inputs."""
    c = Case(name, seed)
    rng = c.rng
    shape = [1, cin, hw, hw]
    if near_bias:
        # An int8 graph input (centred values 248 to 255): no Q -> DQ pair.
        sx, zx = np.float32(1.0 / 128), -128
        xdq = c.dequantize("x", S8, sx, zx)
    else:
        sx, zx = scale_of(rng, -1.9, -1.6), 0
        xdq = c.dequantize(c.quantize("x", S8, sx, zx), S8, sx, zx)
    ws = np.float32(10 ** rng.uniform(-2.5, -1.5))
    bs = np.float32(sx * ws)
    ys, yz = (np.float32(bs * 100), 3) if near_bias else (scale_of(rng, -1.4, -0.9), 3)
    outs = []
    for k in (3, 1):
        cout = 16
        if near_bias:
            wq = rng.integers(100, 128, size=(cout, cin, k, k)).astype(np.int8)
            # Most of the sum for inputs near the top (centred 251.5 on average).
            full = wq.reshape(cout, -1).astype(np.int64).sum(axis=1) * 503 // 2
            b = (-full + rng.integers(-200, 200, size=cout)).astype(np.int32)
        else:
            wq = np.clip(np.rint(rng.normal(0, 30, size=(cout, cin, k, k))), -127, 127).astype(np.int8)
            b = np.rint(rng.normal(0, 2000, size=cout)).astype(np.int32)
        ins = [xdq, c.dq_weights(wq, ws, np.array(0, np.int8)), c.dq_bias(b, bs)]
        y = c.node("Conv", ins, "conv", kernel_shape=[k, k], pads=[k // 2] * 4)
        outs.append(c.dequantize(c.quantize(y, S8, ys, yz), S8, ys, yz))
    out = c.quantize(c.node("Concat", outs, "concat", axis=1), S8, ys, yz)
    m = c.model("x", out, T.INT8 if near_bias else T.FLOAT, shape, T.INT8, [1, 32, hw, hw])
    if near_bias:
        inputs = np.stack([rng.integers(120, 128, size=shape).astype(np.int8) for _ in range(SOFTMAX_INPUTS)])
    else:
        inputs = np.stack([float_input(rng, tuple(shape)) for _ in range(SOFTMAX_INPUTS)])
    return m, {"x": inputs[0], "inputs": inputs}


def chain_cnn(name, seed, act, per_channel, form, pool):
    """ResNet-50's residual stage in small: conv 3x3 (3 -> 8) - relu; a
    projection block Sum(conv-relu-conv, conv 1x1) - relu; two identity
    blocks Sum(conv-relu-conv, x) - relu; then AveragePool over the whole
    7x7 plane - Reshape to [1, 8] (`pool` "avg", ResNet-50's tail) or
    GlobalAveragePool - Flatten ("gap"); gemm (-> 10) - softmax, quantised
    by quantize_static (QDQ or QOperator). The quantiser leaves each
    `Relu(Sum(..))` in float32 where its reader is a Sum (QOperator) or the
    pool (QDQ, the last block); 10 seeded inputs."""
    from onnxruntime.quantization import QuantFormat

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, k=3, relu=True):
        y = c.node("Conv", [x, weight((cout, cin, k, k)), weight((cout,), 0.1)], "conv",
                   pads=[k // 2] * 4)
        return c.node("Relu", [y], "relu") if relu else y

    in_shape = [1, 3, 7, 7]
    y = conv("x", 3, 8)
    y = c.node("Sum", [conv(conv(y, 8, 8), 8, 8, relu=False), conv(y, 8, 8, 1, relu=False)], "sum")
    y = c.node("Relu", [y], "relu")
    for _ in range(2):
        y = c.node("Relu", [c.node("Sum", [conv(conv(y, 8, 8), 8, 8, relu=False), y], "sum")], "relu")
    if pool == "avg":
        y = c.node("AveragePool", [y], "avgpool", kernel_shape=[7, 7])
        y = c.node("Reshape", [y, c.const(np.array([1, -1], np.int64), "shape")], "flat")
    else:
        y = c.node("Flatten", [c.node("GlobalAveragePool", [y], "gap")], "flat")
    y = c.node("Gemm", [y, weight((10, 8), 0.15), weight((10,), 0.1)], "fc", transB=1)
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    fmt = QuantFormat.QDQ if form == "qdq" else QuantFormat.QOperator
    model = quantise_static(c, float_model, in_shape, fmt, act, per_channel)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def softmax_cnn(name, seed, act, per_channel, head):
    """A small classifier with float weights, quantised by ONNX Runtime's
    quantize_static (QDQ, uint8 or int8 activations, int8 weights per tensor
    or per channel, reduce_range as docs/onnx.md item 7 says, MinMax
    calibration on 8 seeded inputs), ending in Softmax; 10 seeded inputs.

    head "gemm": conv 3x3 (3 -> 8) - relu - maxpool 2 - conv 3x3 (8 -> 8) -
    relu - flatten - gemm (-> 10) - softmax (axis 1 of [1, 10]).
    head "conv": conv 3x3 (3 -> 8) stride 2 - relu - global average pool -
    conv 1x1 (8 -> 10) - softmax (axis 1 of [1, 10, 1, 1]), SqueezeNet's head.
    head "reshape": as "conv", then flatten - softmax (axis -1 of [1, 10]) -
    reshape to [1, 10, 1, 1], as SqueezeNet's opset-13 conversion has it;
    one input only."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, k=3, stride=1, relu=True):
        p = k // 2
        y = c.node("Conv", [x, weight((cout, cin, k, k)), weight((cout,), 0.1)], "conv",
                   pads=[p, p, p, p], strides=[stride, stride])
        return c.node("Relu", [y], "relu") if relu else y

    in_shape = [1, 3, 8, 8]
    if head == "gemm":
        y = c.node("MaxPool", [conv("x", 3, 8)], "pool", kernel_shape=[2, 2], strides=[2, 2])
        y = c.node("Flatten", [conv(y, 8, 8)], "flat")
        y = c.node("Gemm", [y, weight((10, 8 * 4 * 4), 0.15), weight((10,), 0.1)], "fc", transB=1)
        out_shape = [1, 10]
    else:
        y = c.node("GlobalAveragePool", [conv("x", 3, 8, stride=2)], "gap")
        y = conv(y, 8, 10, k=1, relu=False)
        out_shape = [1, 10, 1, 1]
    if head == "reshape":
        y = c.node("Flatten", [y], "flat")
        y = c.node("Softmax", [y], "softmax", axis=-1)
        y = c.node("Reshape", [y, c.const(np.array(out_shape, np.int64), "shape")], "reshaped")
    else:
        y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, out_shape)
    calibration = [{"x": float_input(c.rng, tuple(in_shape))} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            return next(self.it, None)

    activation = QuantType.QUInt8 if act == "u8" else QuantType.QInt8
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "qdq.onnx")
        onnx.save(float_model, src)
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        activation_type=activation, weight_type=QuantType.QInt8, reduce_range=True)
        model = onnx.load(dst)
    if head == "reshape":
        return model, {"x": float_input(c.rng, tuple(in_shape))}
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def dynamic_cnn(name, seed, head="gemm"):
    """softmax_cnn's "gemm" classifier (conv 3x3 (3 -> 8) - relu - maxpool 2 -
    conv 3x3 (8 -> 8) - relu - flatten - gemm (-> 10) - softmax) quantised
    by ONNX Runtime's quantize_dynamic as scripts/onnx_zoo.py does it
    (uint8 weights, reduce_range): a DynamicQuantizeLinear before each
    ConvInteger / MatMulInteger, Relu, MaxPool, Flatten and Softmax left in
    float32; the output is float32 probabilities. 10 seeded inputs.

    head "concat_gap": SqueezeNet's fire module and tail in small instead:
    conv 3x3 (3 -> 8) - relu, a 1x1 and a 3x3 conv (8 -> 6 each) - relu,
    Concat, conv 1x1 (12 -> 10) - relu, GlobalAveragePool, Flatten,
    Softmax (float32 Concat and GlobalAveragePool between the layers).

    head "residual": ResNet-50's first two bottleneck blocks in small:
    conv 3x3 (3 -> 16) - relu; a 3x3 conv - relu - 3x3 conv and a 1x1 conv
    of it, Sum, Relu (read by the next block's DynamicQuantizeLinear and
    by its Sum: the fan-out of ResNet-50's `r15`); a 3x3 conv - relu - 3x3
    conv, Sum with it, Relu, AveragePool over the whole 8x8 plane,
    Reshape to [1, 16], Gemm (-> 10), Softmax. 16 channels, as ResNet-50's
    multiples of 16: ONNX Runtime then runs the float AveragePool as its
    NCHWc pool (a sequential sum); with 8 it takes MLAS's global kernel
    (four lanes), another order (docs/onnx.md, item 20).

    head "avgpool": conv 3x3 (3 -> 24) - relu - AveragePool 3x3 stride 2
    pads 1 (24 channels: ONNX Runtime's NCHW vector kernel, column sums) -
    conv 3x3 (24 -> 16) - relu - AveragePool 3x3 stride 1 pads 1
    count_include_pad (16 channels: its NCHWc kernel, row order) - flatten
    - gemm (-> 10) - softmax.

    head "bn_shuffle": conv 3x3 (3 -> 12) - relu - maxpool 2 -
    BatchNormalization - Mul and Add by [12, 1, 1] constants - Relu (DenseNet's
    pre-activation in small) - conv 1x1 (12 -> 12) - relu - channel shuffle
    in 3 groups (Reshape, Transpose, Reshape) - conv 1x1 (12 -> 10) - relu -
    GlobalAveragePool - flatten - softmax.

    head "lrn": on a 7x7 input, conv 3x3 (3 -> 11) - relu - LRN (size 5,
    alpha 1, beta 0.75, bias 1: AlexNet's but for alpha, large enough that
    the power moves) - maxpool 2 - conv 3x3 (11 -> 8) - relu - flatten -
    gemm (-> 10) - softmax. 11 x 7 x 7 = 539 LRN elements: ONNX Runtime
    takes the last 3 powers with powf, the others with Eigen's packet pow."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, k=3, relu=True):
        p = k // 2
        y = c.node("Conv", [x, weight((cout, cin, k, k)), weight((cout,), 0.1)], "conv", pads=[p, p, p, p])
        return c.node("Relu", [y], "relu") if relu else y

    def block(x, shortcut):
        y = conv(conv(x, 16, 16), 16, 16, relu=False)
        return c.node("Relu", [c.node("Sum", [y, shortcut], "sum")], "relu")

    in_shape = [1, 3, 7, 7] if head == "lrn" else [1, 3, 8, 8]
    if head == "lrn":
        y = c.node("LRN", [conv("x", 3, 11)], "lrn", size=5, alpha=1.0, beta=0.75, bias=1.0)
        y = c.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
        y = c.node("Flatten", [conv(y, 11, 8)], "flat")
        y = c.node("Gemm", [y, weight((10, 8 * 3 * 3), 0.15), weight((10,), 0.1)], "fc", transB=1)
    elif head == "residual":
        x0 = conv("x", 3, 16)
        y = block(x0, conv(x0, 16, 16, k=1, relu=False))
        y = block(y, y)
        y = c.node("AveragePool", [y], "pool", kernel_shape=[8, 8])
        y = c.node("Reshape", [y, c.const(np.array([1, -1], dtype=np.int64), "shape")], "reshape")
        y = c.node("Gemm", [y, weight((10, 16), 0.3), weight((10,), 0.1)], "fc", transB=1)
    elif head == "gemm":
        y = c.node("MaxPool", [conv("x", 3, 8)], "pool", kernel_shape=[2, 2], strides=[2, 2])
        y = c.node("Flatten", [conv(y, 8, 8)], "flat")
        y = c.node("Gemm", [y, weight((10, 8 * 4 * 4), 0.15), weight((10,), 0.1)], "fc", transB=1)
    elif head == "avgpool":
        y = c.node("AveragePool", [conv("x", 3, 24)], "pool", kernel_shape=[3, 3], strides=[2, 2],
                   pads=[1, 1, 1, 1])
        y = c.node("AveragePool", [conv(y, 24, 16)], "pool", kernel_shape=[3, 3], strides=[1, 1],
                   pads=[1, 1, 1, 1], count_include_pad=1)
        y = c.node("Flatten", [y], "flat")
        y = c.node("Gemm", [y, weight((10, 16 * 4 * 4), 0.15), weight((10,), 0.1)], "fc", transB=1)
    elif head == "bn_shuffle":
        y = c.node("MaxPool", [conv("x", 3, 12)], "pool", kernel_shape=[2, 2], strides=[2, 2])
        per = lambda lo, hi: c.const(c.rng.uniform(lo, hi, 12).astype(np.float32), "bn")
        y = c.node("BatchNormalization", [y, per(0.5, 2), per(-0.5, 0.5), per(-0.5, 0.5), per(0.3, 2)], "bn",
                   epsilon=1e-5)
        col = lambda lo, hi: c.const(c.rng.uniform(lo, hi, (12, 1, 1)).astype(np.float32), "ch")
        y = c.node("Relu", [c.node("Add", [c.node("Mul", [y, col(0.5, 1.5)], "mul"), col(-0.3, 0.3)], "add")],
                   "relu")
        y = conv(y, 12, 12, k=1)
        y = c.node("Reshape", [y, c.const(np.array([1, 3, 4, 4, 4], np.int64), "shape")], "group")
        y = c.node("Transpose", [y], "swap", perm=[0, 2, 1, 3, 4])
        y = c.node("Reshape", [y, c.const(np.array([1, 12, 4, 4], np.int64), "shape")], "ungroup")
        y = c.node("GlobalAveragePool", [conv(y, 12, 10, k=1)], "gap")
        y = c.node("Flatten", [y], "flat")
    else:
        y = conv("x", 3, 8)
        y = c.node("Concat", [conv(y, 8, 6, k=1), conv(y, 8, 6)], "cat", axis=1)
        y = c.node("GlobalAveragePool", [conv(y, 12, 10, k=1)], "gap")
        y = c.node("Flatten", [y], "flat")
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "dynamic.onnx")
        onnx.save(float_model, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QUInt8, reduce_range=True)
        model = onnx.load(dst)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def quantise_static(c, float_model, in_shape, quant_format, act, per_channel):
    """Quantises `float_model` with ONNX Runtime's quantize_static (int8
    weights, reduce_range, MinMax calibration on 8 seeded inputs)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    calibration = [{"x": float_input(c.rng, tuple(in_shape))} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            return next(self.it, None)

    activation = QuantType.QUInt8 if act == "u8" else QuantType.QInt8
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "quantised.onnx")
        onnx.save(float_model, src)
        quantize_static(src, dst, Reader(), quant_format=quant_format, per_channel=per_channel,
                        activation_type=activation, weight_type=QuantType.QInt8, reduce_range=True)
        return onnx.load(dst)


def qop_cnn(name, seed, act, per_channel):
    """A classifier with float weights quantised by quantize_static in
    QOperator form (uint8 or int8 activations, int8 weights per channel or
    per tensor): conv 3x3 (3 -> 8) - relu - maxpool 2 - two convs 3x3 (8 ->
    8) on the pooled tensor (fan-out) - add - relu - averagepool 3x3 pad 1 -
    global average pool - flatten - gemm (-> 10) - softmax; 10 seeded
    inputs. The quantiser writes QLinearConv, MaxPool on integers, and the
    com.microsoft operators QLinearAdd (the Relu after it dropped: its
    output range is clipped at 0), QLinearAveragePool,
    QLinearGlobalAveragePool, QGemm and QLinearSoftmax."""
    from onnxruntime.quantization import QuantFormat

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, relu=True):
        y = c.node("Conv", [x, weight((cout, cin, 3, 3)), weight((cout,), 0.1)], "conv", pads=[1, 1, 1, 1])
        return c.node("Relu", [y], "relu") if relu else y

    in_shape = [1, 3, 8, 8]
    y = c.node("MaxPool", [conv("x", 3, 8)], "pool", kernel_shape=[2, 2], strides=[2, 2])
    y = c.node("Relu", [c.node("Add", [conv(y, 8, 8, False), conv(y, 8, 8, False)], "add")], "relu")
    y = c.node("AveragePool", [y], "avgpool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    y = c.node("Flatten", [c.node("GlobalAveragePool", [y], "gap")], "flat")
    y = c.node("Gemm", [y, weight((10, 8), 0.15), weight((10,), 0.1)], "fc", transB=1)
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    model = quantise_static(c, float_model, in_shape, QuantFormat.QOperator, act, per_channel)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def sum_cnn(name, seed, act, per_channel, form):
    """conv 3x3 (3 -> 8) - relu - two convs 3x3 (8 -> 8) on it (fan-out) -
    Sum - relu - conv 3x3 (8 -> 8) - relu - global average pool - flatten -
    gemm (-> 10) - softmax,
    quantised by quantize_static (QDQ or QOperator): the quantiser leaves
    `DQ, DQ -> Sum -> Relu -> Q` (it has no QLinear Sum), and ONNX Runtime
    drops the Relu (the zero point is the type's minimum) and runs the Sum
    unfused, in float32; 10 seeded inputs."""
    from onnxruntime.quantization import QuantFormat

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, relu=True):
        y = c.node("Conv", [x, weight((cout, cin, 3, 3)), weight((cout,), 0.1)], "conv", pads=[1, 1, 1, 1])
        return c.node("Relu", [y], "relu") if relu else y

    in_shape = [1, 3, 8, 8]
    y = conv("x", 3, 8)
    y = c.node("Relu", [c.node("Sum", [conv(y, 8, 8, False), conv(y, 8, 8, False)], "sum")], "relu")
    y = c.node("Flatten", [c.node("GlobalAveragePool", [conv(y, 8, 8)], "gap")], "flat")
    y = c.node("Gemm", [y, weight((10, 8), 0.15), weight((10,), 0.1)], "fc", transB=1)
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    fmt = QuantFormat.QDQ if form == "qdq" else QuantFormat.QOperator
    model = quantise_static(c, float_model, in_shape, fmt, act, per_channel)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def shuffle_cnn(name, seed, act, per_channel, form):
    """conv 3x3 (3 -> 12) - relu - channel shuffle in 3 groups (Reshape to
    [1, 3, 4, 8, 8], Transpose perm [0, 2, 1, 3, 4], Reshape to [1, 12, 8,
    8]) - grouped conv 3x3 (12 -> 12, 3 groups) - relu - global average pool
    - flatten - gemm (-> 10) - softmax, quantised by quantize_static (QDQ or
    QOperator); ONNX Runtime moves the integers through the Reshapes and
    the Transpose; 10 seeded inputs."""
    from onnxruntime.quantization import QuantFormat

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, groups=1):
        y = c.node("Conv", [x, weight((cout, cin // groups, 3, 3)), weight((cout,), 0.1)], "conv",
                   pads=[1, 1, 1, 1], group=groups)
        return c.node("Relu", [y], "relu")

    in_shape = [1, 3, 8, 8]
    y = conv("x", 3, 12)
    y = c.node("Reshape", [y, c.const(np.array([1, 3, 4, 8, 8], np.int64), "shape")], "grouped")
    y = c.node("Transpose", [y], "shuffle", perm=[0, 2, 1, 3, 4])
    y = c.node("Reshape", [y, c.const(np.array([1, 12, 8, 8], np.int64), "shape")], "shuffled")
    y = c.node("Flatten", [c.node("GlobalAveragePool", [conv(y, 12, 12, 3)], "gap")], "flat")
    y = c.node("Gemm", [y, weight((10, 12), 0.15), weight((10,), 0.1)], "fc", transB=1)
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    fmt = QuantFormat.QDQ if form == "qdq" else QuantFormat.QOperator
    model = quantise_static(c, float_model, in_shape, fmt, act, per_channel)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def branchy_cnn(name, seed, act, per_channel, form, body):
    """conv 3x3 (3 -> 8) - relu - `body` - global average pool - flatten -
    gemm (-> 10) - softmax, quantised by quantize_static (QDQ or QOperator,
    reduce_range); 10 seeded inputs. `body(c, conv, y)` returns the tensor
    and its channel count."""
    from onnxruntime.quantization import QuantFormat

    c = Case(name, seed)

    def weight(shape, spread=0.3):
        return c.const((c.rng.standard_normal(shape) * spread).astype(np.float32), "w")

    def conv(x, cin, cout, k=3, relu=True):
        p = k // 2
        y = c.node("Conv", [x, weight((cout, cin, k, k)), weight((cout,), 0.1)], "conv", pads=[p, p, p, p])
        return c.node("Relu", [y], "relu") if relu else y

    in_shape = [1, 3, 8, 8]
    y, ch = body(c, conv, conv("x", 3, 8))
    y = c.node("Flatten", [c.node("GlobalAveragePool", [y], "gap")], "flat")
    y = c.node("Gemm", [y, weight((10, ch), 0.15), weight((10,), 0.1)], "fc", transB=1)
    y = c.node("Softmax", [y], "softmax", axis=1)
    float_model = c.model("x", y, T.FLOAT, in_shape, T.FLOAT, [1, 10])
    fmt = QuantFormat.QDQ if form == "qdq" else QuantFormat.QOperator
    model = quantise_static(c, float_model, in_shape, fmt, act, per_channel)
    inputs = np.stack([float_input(c.rng, tuple(in_shape)) for _ in range(SOFTMAX_INPUTS)])
    return model, {"x": inputs[0], "inputs": inputs}


def concat_body(c, conv, y):
    """GoogLeNet's inception block in small: a 1x1 conv (8 -> 4), a 3x3 conv
    (8 -> 6) and a 3x3 max pool (stride 1, pad 1) of the same tensor,
    concatenated along the channels (18), then a 3x3 conv (18 -> 8)."""
    pooled = c.node("MaxPool", [y], "pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    cat = c.node("Concat", [conv(y, 8, 4, k=1), conv(y, 8, 6), pooled], "concat", axis=1)
    return conv(cat, 18, 8), 8


def lrn_body(c, conv, y):
    """AlexNet's LRN (size 5, alpha 1e-4 scaled up to 1e-1 so that it
    matters at these magnitudes, beta 0.75, bias 1), then max pool 2 and a
    3x3 conv (8 -> 8)."""
    y = c.node("LRN", [y], "lrn", size=5, alpha=0.1, beta=0.75, bias=1.0)
    y = c.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
    return conv(y, 8, 8), 8


def lrn_branch_body(c, conv, y):
    """GoogLeNet's stem in small: LRN (size 5), max pool 2, then a 1x1
    conv (8 -> 4) of the pooled tensor and a 3x3 max pool (stride 1, pad 1)
    of it followed by a 1x1 conv (8 -> 4), concatenated (8). In QOperator
    form the quantiser quantises the pooled LRN output twice (for the conv,
    and after the second pool at another scale)."""
    y = c.node("LRN", [y], "lrn", size=5, alpha=0.1, beta=0.75, bias=1.0)
    y = c.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
    z = c.node("MaxPool", [y], "pool", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    return c.node("Concat", [conv(y, 8, 4, k=1), conv(z, 8, 4, k=1)], "concat", axis=1), 8


def activations_body(c, conv, y):
    """A 3x3 conv (8 -> 8) - LeakyRelu (alpha 0.1) - 3x3 conv (8 -> 8) -
    Sigmoid: ONNX Runtime's table-driven QLinearLeakyRelu and
    QLinearSigmoid."""
    y = c.node("LeakyRelu", [conv(y, 8, 8, relu=False)], "leaky", alpha=0.1)
    return c.node("Sigmoid", [conv(y, 8, 8, relu=False)], "sigmoid"), 8


def sum3_body(c, conv, y):
    """Three 3x3 convs (8 -> 8) of one tensor summed by one Sum (float32,
    left to right), then relu and a 3x3 conv (8 -> 8)."""
    s = c.node("Sum", [conv(y, 8, 8, relu=False), conv(y, 8, 8, relu=False), conv(y, 8, 8, relu=False)], "sum")
    return conv(c.node("Relu", [s], "relu"), 8, 8), 8


def dense_body(c, conv, y):
    """DenseNet-121's dense layer in small: the tensor and a 3x3 conv of it
    (8 -> 4) concatenated (12), BatchNormalization (epsilon 1e-5), a Mul
    and an Add by `[12, 1, 1]` constants (the zoo model's scale layer),
    relu, then a 3x3 conv (12 -> 8)."""
    ch = 12
    cat = c.node("Concat", [y, conv(y, 8, 4)], "concat", axis=1)
    bn = c.node("BatchNormalization", [
        cat,
        c.const(c.rng.uniform(0.5, 1.5, ch).astype(np.float32), "bn_scale"),
        c.const((c.rng.standard_normal(ch) * 0.2).astype(np.float32), "bn_bias"),
        c.const((c.rng.standard_normal(ch) * 0.2).astype(np.float32), "bn_mean"),
        c.const(c.rng.uniform(0.5, 1.5, ch).astype(np.float32), "bn_var"),
    ], "bn", epsilon=1e-5)
    m = c.node("Mul", [bn, c.const(c.rng.uniform(0.5, 1.5, (ch, 1, 1)).astype(np.float32), "mul")], "mul")
    a = c.node("Add", [m, c.const((c.rng.standard_normal((ch, 1, 1)) * 0.2).astype(np.float32), "add")], "add")
    return conv(c.node("Relu", [a], "relu"), ch, 8), 8


def resnet_fanout(name, seed):
    """Two residual blocks, the first on the graph input (8x32x32), a
    stride-2 conv between them, then GAP and FC; float weights quantised by
    ONNX Runtime's quantize_static (QDQ, uint8 activations, int8 weights,
    MinMax calibration on 8 seeded inputs).

    reduce_range=True (7-bit weights), as ONNX Runtime advises for x86
    without VNNI: there its uint8 x int8 kernels add pairs of products in
    saturating 16-bit lanes (vpmaddubsw), so full-range weights give
    results that depend on the CPU the goldens were made on."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    c = Case(name, seed)

    def weight(shape):
        return c.const((c.rng.standard_normal(shape) * 0.25).astype(np.float32), "w")

    def conv(x, cin, cout, relu=True, stride=1):
        y = c.node("Conv", [x, weight((cout, cin, 3, 3)), weight((cout,))], "conv",
                   pads=[1, 1, 1, 1], strides=[stride, stride])
        return c.node("Relu", [y], "relu") if relu else y

    def block(x, ch):
        y = conv(conv(x, ch, ch), ch, ch, relu=False)
        return c.node("Relu", [c.node("Add", [x, y], "add")], "relu")

    y = block("x", 8)
    y = block(conv(y, 8, 16, stride=2), 16)
    y = c.node("GlobalAveragePool", [conv(y, 16, 16, stride=2)], "gap")
    y = c.node("Flatten", [y], "flat")
    y = c.node("Gemm", [y, weight((10, 16)), weight((10,))], "fc", transB=1)
    float_model = c.model("x", y, T.FLOAT, [1, 8, 32, 32], T.FLOAT, [1, 10])
    calibration = [{"x": float_input(c.rng, (1, 8, 32, 32))} for _ in range(8)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(calibration)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "float.onnx"), os.path.join(d, "qdq.onnx")
        onnx.save(float_model, src)
        quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=True)
        model = onnx.load(dst)
    return model, {"x": float_input(c.rng, (1, 8, 32, 32))}


def optimized_ops(model):
    """Op types ONNX Runtime runs after its default graph optimisations."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "opt.onnx")
        so.optimized_model_filepath = path
        # Level EXTENDED shows the QDQ fusions without the hardware-specific layout transforms of ALL.
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(path).graph.node]


def run(model, feeds):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def generate(out_dir, only=None):
    os.makedirs(out_dir, exist_ok=True)
    index = {}
    if only:
        # Keep the other cases' records: only the named ones are rebuilt.
        with open(os.path.join(out_dir, "cases.json")) as f:
            index = json.load(f)["cases"]
    for name, fn in cases():
        if only and name not in only:
            continue
        model, feeds = fn(name)
        x = feeds["x"]
        y = run(model, {"x": x})
        onnx.save(model, os.path.join(out_dir, f"{name}.onnx"))
        np.save(os.path.join(out_dir, f"{name}.input.npy"), x)
        np.save(os.path.join(out_dir, f"{name}.output.npy"), y)
        if "inputs" in feeds:
            xs = feeds["inputs"]
            ys = np.stack([run(model, {"x": xi}) for xi in xs])
            np.save(os.path.join(out_dir, f"{name}.inputs.npy"), xs)
            np.save(os.path.join(out_dir, f"{name}.outputs.npy"), ys)
        index[name] = {
            "ort_ops": optimized_ops(model),
            "input": [str(x.dtype), list(x.shape)],
            "output": [str(y.dtype), list(y.shape)],
        }
    meta = {
        "generator": "scripts/onnx_cases.py",
        "onnxruntime": ort.__version__,
        "onnx": onnx.__version__,
        "session": "default options (ORT_ENABLE_ALL), CPUExecutionProvider, 1 intra-op thread",
        "cases": index,
    }
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
        f.write("\n")
    return index


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="regenerate in a temp dir and compare goldens")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--cases", help="comma-separated case names: rebuild only these (cases.json keeps the others)")
    args = ap.parse_args()
    if not args.check:
        only = set(args.cases.split(",")) if args.cases else None
        index = generate(args.out, only)
        print(f"wrote {len(index)} cases to {os.path.normpath(args.out)}")
        return 0
    with tempfile.TemporaryDirectory() as d:
        index = generate(d)
        bad = []
        for name in index:
            parts = ["input", "output"]
            if os.path.exists(os.path.join(d, f"{name}.inputs.npy")):
                parts += ["inputs", "outputs"]
            for part in parts:
                a = np.load(os.path.join(d, f"{name}.{part}.npy"))
                p = os.path.join(args.out, f"{name}.{part}.npy")
                if not os.path.exists(p) or not np.array_equal(a, np.load(p)) or a.dtype != np.load(p).dtype:
                    bad.append(f"{name}.{part}")
        if bad:
            print("goldens differ from this ONNX Runtime:", ", ".join(bad))
            return 1
        print(f"{len(index)} ONNX goldens reproduced by onnxruntime {ort.__version__}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
