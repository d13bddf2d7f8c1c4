#!/usr/bin/env python3
"""ONNX Runtime's float32 LRN reproduced bit for bit (docs/onnx.md, the LRN
item). Run on demand: `pip install numpy onnx onnxruntime`.

ONNX Runtime's CPU kernel (`core/providers/cpu/nn/lrn.cc`) computes, in
float32, with one intra-op thread:
- `scale = bias` everywhere; the padded squares `x * x`;
- channel 0's scale `+= alpha_over_size * sq[j]` for the first `size`
  padded squares (`alpha_over_size = alpha / size`, a float32 division; each
  product rounded, then the sum: no fused multiply-add);
- channel c >= 1: the previous channel's scale, `+= a * sq` of the square
  entering the window, then `+= (-a) * sq` of the one leaving it;
- `y = x * scale.pow(-beta)` over the whole flattened tensor with Eigen's
  `ArrayBase::pow(scalar)` (`scalar_unary_pow_op`), vectorised with 4-wide
  SSE2 packets and no fused multiply-add: every whole packet of four
  (counted from element 0; ONNX Runtime's buffers are 64-byte aligned) goes
  through Eigen's packet pow, the last `N mod 4` elements through
  `std::pow` (glibc `powf`).
Eigen's packet pow for a non-integer exponent is `generic_pow_impl` (frexp,
mantissa into [sqrt(1/2), sqrt(2)), log2 by a degree-8 polynomial finished in
double-word arithmetic, the product with the exponent in double words, a
split into integer and fraction, `exp2` of the fraction by `pexp` of its
double-word product with ln 2, `ldexp`), then the non-finite cases of
`handle_nonint_nonint_errors`; for an integer exponent in [-3, 7],
repeated squaring of `1 / x` (negative) or `x`; other integer exponents
take `generic_pow` with its special cases. The emulation below is written
from that description with numpy float32 operations (each rounded once, as
SSE2's are); Veltkamp splitting stands in for the missing fused
multiply-add in the double-word products.

Prints, per group of random cases (shapes, sizes, alphas, betas, biases,
magnitudes from zoo-like activations to zeros, tiny and huge values; ONNX
Runtime refuses an even size, alpha <= 0 and beta <= 0), the
outputs that differ from ONNX Runtime's, and for comparison how many differ
with `powf` on every element. `--goldens tests/data/ort_dynamic` writes
tests/ort_dynamic.rs's LRN files: `lrn_pow.{scale,exponent,y}.npy`, ONNX
Runtime's powers of exact scales (each from an LRN whose centre input is 1.0,
so that its output is the power itself), and two whole LRNs
(`lrn_googlenet`, `lrn_wide`: inputs and ONNX Runtime's outputs; their
attributes are in LRN_CASES and in the test).
"""
import argparse
import ctypes

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h

F32 = np.float32
LIBM = ctypes.CDLL("libm.so.6")
LIBM.powf.restype = ctypes.c_float
LIBM.powf.argtypes = [ctypes.c_float, ctypes.c_float]


def powf(x, e):
    return np.array([LIBM.powf(float(v), float(e)) for v in np.ravel(x)], F32).reshape(np.shape(x))


def add(a, b):
    return np.add(a, b, dtype=F32)


def sub(a, b):
    return np.subtract(a, b, dtype=F32)


def mul(a, b):
    return np.multiply(a, b, dtype=F32)


def madd(a, b, c):
    """SSE2 `pmadd`: a product rounded, then the sum rounded."""
    return add(mul(a, b), c)


def split(x):
    """Veltkamp splitting by 2^12 + 1."""
    g = mul(F32(4097.0), x)
    hi = add(sub(x, g), g)
    return hi, sub(x, hi)


def two_prod(x, y):
    """Dekker's product without a fused multiply-add: x * y = hi + lo."""
    xh, xl = split(x)
    yh, yl = split(y)
    hi = mul(x, y)
    lo = madd(xh, yh, -hi)
    lo = madd(xh, yl, lo)
    lo = madd(xl, yh, lo)
    return hi, madd(xl, yl, lo)


def fast_two_sum(x, y):
    s = add(x, y)
    return s, sub(y, sub(s, x))


def dw_add(xh, xl, yh, yl):
    """Double word + double word, |x| >= |y|."""
    rh, rl = fast_two_sum(xh, yh)
    return fast_two_sum(rh, add(add(yl, rl), xl))


def dw_mul(xh, xl, y):
    """Double word times a float."""
    ch, cl1 = two_prod(xh, y)
    th, tl1 = fast_two_sum(ch, mul(xl, y))
    return fast_two_sum(th, add(tl1, cl1))


def round_away(a):
    """`pround`: to nearest, halves away from zero."""
    fl = np.floor(np.abs(a))
    r = np.where(sub(np.abs(a), fl) >= F32(0.5), fl + F32(1), fl).astype(F32)
    return np.copysign(r, a).astype(F32)


def frexp(a):
    """`pfrexp_generic` for finite a: mantissa in [0.5, 1), exponent."""
    den = np.abs(a) < np.finfo(F32).tiny
    na = np.where(den, mul(a, F32(2.0**24)), a)
    e = (np.abs(na).view(np.uint32) >> 23).astype(F32)
    e = add(e, np.where(den, F32(-150), F32(-126)))
    m = ((na.view(np.uint32) & np.uint32(0x807FFFFF)) | np.uint32(0x3F000000)).view(F32)
    zero = a == 0
    return np.where(zero, a, m), np.where(zero, F32(0), e)


def pow2(n):
    return ((n.astype(np.int32) + 127).astype(np.uint32) << 23).view(F32)


def ldexp(a, n):
    """`pldexp_fast` when |n| <= 126, else `pldexp_generic`."""
    fast = mul(a, pow2(np.clip(n, -127, 128)))
    e = np.clip(n, -278, 278).astype(np.int32)
    b = e >> 2
    slow = mul(mul(mul(mul(a, pow2(b)), pow2(b)), pow2(b)), pow2(e - 3 * b))
    return np.where(np.abs(n) > 126, slow, fast)


LOG2_POLY = [9.7010828554630279541015625e-02, -1.6896486282348632812500000e-01,
             1.7200836539268493652343750e-01, -1.7892272770404815673828125e-01,
             2.0505344867706298828125000e-01, -2.4046677350997924804687500e-01,
             2.8857553005218505859375000e-01, -3.6067414283752441406250000e-01,
             4.8089790344238281250000000e-01]
LOG2_C0 = 1.442695041742110273474963832995854318141937255859375
LOG2_C1 = -7.2134751588268664068692714863573201000690460205078125e-01


def log2_dw(z):
    """log2(z) for z in [sqrt(1/2), sqrt(2)) as a double word."""
    x = sub(z, F32(1))
    p = np.full_like(x, F32(LOG2_POLY[0]))
    for c in LOG2_POLY[1:]:
        p = madd(p, x, F32(c))
    c1h = F32(LOG2_C1)
    c0h = F32(LOG2_C0)
    ph, pl = two_prod(x, p)
    ph, pl = dw_add(c1h, F32(LOG2_C1 - float(c1h)), ph, pl)
    ph, pl = dw_mul(ph, pl, x)
    ph, pl = dw_add(c0h, F32(LOG2_C0 - float(c0h)), ph, pl)
    return dw_mul(ph, pl, x)


def exp_small(x):
    """Eigen's `pexp_float` for |x| <= 87."""
    m = np.floor(madd(x, F32(1.44269504088896341), F32(0.5))).astype(F32)
    r = madd(m, F32(-0.693359375), x)
    r = madd(m, F32(2.12194440e-4), r)
    r2 = mul(r, r)
    even = madd(r2, F32(1.37449637986719608306884765625e-3), F32(4.166965186595916748046875e-2))
    odd = madd(r2, F32(8.36894474923610687255859375e-3), F32(0.16666518151760101318359375))
    even = madd(r2, even, F32(0.49999988079071044921875))
    y = madd(r2, madd(r, odd, even), add(r, F32(1)))
    return np.maximum(mul(y, pow2(m)), x)


def pow_impl(x, y):
    """`generic_pow_impl` (x > 0 finite)."""
    m, e = frexp(x)
    low = m < F32(0.70710678118654752440)
    m = np.where(low, mul(F32(2), m), m)
    e = np.where(low, sub(e, F32(1)), e)
    rh, rl = log2_dw(m)
    yy = np.full_like(x, y)
    f1h, f1l = two_prod(e, yy)
    f2h, f2l = dw_mul(rh, rl, yy)
    fh, fl = dw_add(f1h, f1l, f2h, f2l)
    n = round_away(fh)
    r = add(sub(fh, n), fl)
    nr = round_away(r)
    r, n = sub(r, nr), add(n, nr)
    ph, pl = two_prod(np.full_like(r, F32(np.log(2.0))), r)
    return ldexp(mul(exp_small(ph), add(F32(1), pl)), n)


def packet_pow(x, y):
    """Eigen's `unary_pow_impl` on packets, float32 base, float exponent y."""
    x = np.asarray(x, F32)
    with np.errstate(all="ignore"):
        if np.isfinite(y) and np.round(y) == y:
            if -3 <= y <= 7:
                return int_pow(x, int(y))
            return generic_pow(x, y)
        p = pow_impl(np.where(x > 0, x, F32(1)), y)
        p = np.where(x > 0, p, F32(np.nan))
        p = np.where(x == 0, F32(np.inf) if y < 0 else F32(0), p)
        p = np.where(np.isinf(x), F32(0) if y < 0 else F32(np.inf), p)
        return np.where(x == 1, F32(1), p)


def int_pow(x, n):
    if n == 0:
        return np.ones_like(x)
    r = np.divide(F32(1), x, dtype=F32) if n < 0 else x
    acc = np.ones_like(x)
    m = abs(n)
    while m > 1:
        if m % 2:
            acc = mul(acc, r)
        r = mul(r, r)
        m //= 2
    return mul(acc, r)


def generic_pow(x, y):
    """`generic_pow` for an integer y outside [-3, 7] (x of any sign)."""
    ax = np.abs(x)
    p = pow_impl(np.where((ax > 0) & np.isfinite(ax), ax, F32(1)), y)
    odd = (y % 2) == 1
    p = np.where((x < 0) & odd, -p, p)
    zero = F32(np.inf) if y < 0 else F32(0)
    zero = np.copysign(zero, x) if odd else zero  # the sign of -0 kept for odd y
    p = np.where(x == 0, zero, p)
    big = F32(0) if y < 0 else F32(np.inf)
    p = np.where(np.isinf(x), np.copysign(big, x) if odd else big, p)
    p = np.where(np.isnan(x), x, p)
    return np.where(x == 1, F32(1), p)


def scale_of(x, size, alpha, bias):
    """The kernel's float32 scale, [C, H*W], in its order."""
    c = x.shape[0]
    hw = x[0].size
    pre = (size - 1) // 2
    sq = np.zeros((c + size - 1, hw), F32)
    sq[pre:pre + c] = mul(x.reshape(c, hw), x.reshape(c, hw))
    a = F32(F32(alpha) / F32(size))
    s = np.full((c, hw), F32(bias), F32)
    for j in range(size):
        s[0] = add(s[0], mul(sq[j], a))
    for ch in range(1, c):
        s[ch] = add(s[ch - 1], mul(sq[ch + size - 1], a))
        s[ch] = add(s[ch], mul(sq[ch - 1], -a))
    return s.reshape(-1)


def lrn_emulated(x, size, alpha, beta, bias, all_powf=False):
    s = scale_of(x, size, alpha, bias)
    y = F32(-F32(beta))
    whole = s.size - s.size % 4
    p = powf(s, y) if all_powf else np.concatenate([packet_pow(s[:whole], y), powf(s[whole:], y)])
    return mul(x.reshape(-1), p).reshape(x.shape)


def ort_lrn(x, size, alpha, beta, bias):
    g = h.make_graph([h.make_node("LRN", ["x"], ["y"], size=size, alpha=alpha, beta=beta, bias=bias)], "g",
                     [h.make_tensor_value_info("x", T.FLOAT, [1, *x.shape])],
                     [h.make_tensor_value_info("y", T.FLOAT, [1, *x.shape])])
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 13)])
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x[None]})[0][0]


def same(a, b):
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


def magnitude(rng, kind, shape):
    base = rng.standard_normal(shape)
    if kind == "zoo":
        return (base * rng.choice([0.5, 5, 20, 60, 200])).astype(F32)
    if kind == "relu":
        return np.maximum(base * 30, 0).astype(F32)
    if kind == "zeros":
        return np.where(rng.random(shape) < 0.7, 0, base * 10).astype(F32)
    if kind == "tiny":
        return (base * 1e-20).astype(F32)
    if kind == "huge":
        return (base * rng.choice([1e4, 1e12, 1e18])).astype(F32)
    return (base * 10.0 ** rng.uniform(-6, 6, shape)).astype(F32)


GROUPS = [
    ("zoo", [0.75], [1.0, 2.0], [5]),
    ("relu", [0.75, 0.5], [1.0], [3, 5]),
    ("wide", [0.75, 0.6, 0.33], [1.0, 0.5, 2.0], [1, 3, 5, 7, 9]),
    ("zeros", [0.75], [1.0, 0.0], [3, 5, 11]),
    ("tiny", [0.75], [1.0, 1e-30], [5]),
    ("huge", [0.75, 0.9], [1.0], [5, 9]),
    ("wide", [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0], [3, 5]),
]


def probe(cases):
    rng = np.random.default_rng(20)
    for kind, betas, biases, sizes in GROUPS:
        diff = diff_powf = total = 0
        for _ in range(cases):
            shape = (int(rng.integers(1, 70)), int(rng.integers(1, 9)), int(rng.integers(1, 9)))
            size = int(rng.choice(sizes))
            alpha = float(rng.choice([1e-4, 1e-2, 0.1, 1.0]))
            beta = float(rng.choice(betas))
            bias = float(rng.choice(biases))
            x = magnitude(rng, kind, shape)
            want = ort_lrn(x, size, alpha, beta, bias)
            with np.errstate(all="ignore"):
                diff += int(np.sum(~same(lrn_emulated(x, size, alpha, beta, bias), want)))
                diff_powf += int(np.sum(~same(lrn_emulated(x, size, alpha, beta, bias, True), want)))
            total += want.size
        print(f"{kind:5} betas {betas} biases {biases} sizes {sizes}: {diff} of {total} outputs differ "
              f"(powf on every element: {diff_powf})")


def zoo_probe():
    """The lead's probe: C=64, 56x56, size 5, alpha 1e-4, beta 0.75, bias 1."""
    x = (np.random.default_rng(1).standard_normal((64, 56, 56)) * 20).astype(F32)
    want = ort_lrn(x, 5, 1e-4, 0.75, 1.0)
    got = lrn_emulated(x, 5, 1e-4, 0.75, 1.0)
    print(f"64x56x56 (GoogLeNet's first LRN's shape): {int(np.sum(~same(got, want)))} of {want.size} differ")


def pow_table(count):
    """(scale, exponent, ONNX Runtime's power) rows: an LRN of size 3 with
    alpha / size = 2^-k, whose scale bias + 2^-k (x[c-1]^2 + 1 + x[c+1]^2) is
    exact, read at the channels whose input is 1 (the odd ones hold random
    integers), in whole packets only."""
    rng = np.random.default_rng(14)
    rows = []
    for beta, bias, k in [(0.75, 1.0, 20), (0.75, 0.5, 6), (0.5, 1.0, 10), (0.6, 3.0, 0),
                          (1.0, 1.0, 8), (2.0, 1.0, 8), (4.0, 1.0, 8), (0.75, 1.0, -12)]:
        n = count // 8
        x = np.ones(2 * n + 1, F32)
        x[1::2] = rng.integers(0, 64, n).astype(F32)
        a = 2.0 ** -k
        y = ort_lrn(x.reshape(-1, 1, 1), 3, 3 * a, beta, bias).reshape(-1)
        s = scale_of(x.reshape(-1, 1, 1), 3, 3 * a, bias)
        near = np.r_[0, x[:-1]].astype(np.float64) ** 2 + 1 + np.r_[x[1:], 0].astype(np.float64) ** 2
        ok = s.astype(np.float64) == bias + a * near
        whole = x.size - x.size % 4
        rows += [(s[i], F32(-F32(beta)), y[i]) for i in range(0, whole, 2) if ok[i]]
    return np.array(rows, F32).T


LRN_CASES = [  # name, shape, size, alpha, beta, bias, input magnitude
    ("lrn_googlenet", (37, 5, 7), 5, 1e-4, 0.75, 1.0, 40.0),
    ("lrn_wide", (9, 3, 3), 3, 0.1, 0.6, 2.0, 3.0),
]


def goldens(out, count):
    """tests/data/ort_dynamic/: the pow table and two whole LRNs."""
    scale, exponent, power = pow_table(count)
    for name, v in (("scale", scale), ("exponent", exponent), ("y", power)):
        np.save(f"{out}/lrn_pow.{name}.npy", v)
    got = np.concatenate([packet_pow(scale[exponent == v], v) for v in np.unique(exponent)])
    order = np.concatenate([np.nonzero(exponent == v)[0] for v in np.unique(exponent)])
    print(f"pow table: {scale.size} rows, emulation differs in {int(np.sum(~same(got, power[order])))}")
    rng = np.random.default_rng(2014)
    for name, shape, size, alpha, beta, bias, mag in LRN_CASES:
        x = (rng.standard_normal(shape) * mag).astype(F32)
        y = ort_lrn(x, size, alpha, beta, bias)
        np.save(f"{out}/{name}.x.npy", x)
        np.save(f"{out}/{name}.y.npy", y)
        bad = int(np.sum(~same(lrn_emulated(x, size, alpha, beta, bias), y)))
        print(f"{name} {shape}: emulation differs in {bad} of {y.size}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=40, help="random cases per group")
    ap.add_argument("--goldens", help="write tests/data/ort_dynamic's LRN files into this directory")
    ap.add_argument("--table-rows", type=int, default=2400)
    args = ap.parse_args()
    print(f"onnxruntime {ort.__version__}")
    zoo_probe()
    probe(args.cases)
    if args.goldens:
        goldens(args.goldens, args.table_rows)


if __name__ == "__main__":
    main()
