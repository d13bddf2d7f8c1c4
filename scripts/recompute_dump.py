#!/usr/bin/env python3
"""Independent bit-exact re-computation of an accsim dump.

Usage: recompute_dump.py DUMP_DIR [--verbose]

For every layer in DUMP_DIR/manifest.json this script recomputes the layer's
output from the dumped input tensors, weights and bias and the parameters in
the manifest, following docs/numerics.md and docs/report.md ("Dump"), and
compares it with the dumped output bit for bit. It uses only the dump: every
choice (TFLite's multiplier path, the clamp's origin, the add and average-pool
kernels, rounding rules) is read from the manifest, never inferred from how
accsim's code happens to decide it.

Derived quantities in the manifest (TFLite multipliers and shifts, float
requantisation scales, fixed-point shifts, activation clamp ranges, output
shapes) are recomputed here from the quantisation parameters and the rule the
manifest names, compared with the manifest (a disagreement is a failure), and
the script's own values are then used.

It also checks that every layer's dumped inputs equal the dumped outputs of
the layers named in `inputs` (or input.npy for "input").

Prints one line per layer and exits with status 1 on any mismatch or failed
check, 0 otherwise. Only numpy and the standard library are used.
"""

import argparse
import json
import math
import os
import sys
from fractions import Fraction

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

DTYPE_RANGE = {
    "uint8": (0, 255),
    "int8": (-128, 127),
    "int16": (-32768, 32767),
}


class CheckError(Exception):
    """A derived parameter or structural property disagrees with the manifest."""


class NotRecomputed(Exception):
    """A layer whose rule this checker does not reproduce (said, not failed)."""


# --------------------------------------------------------------------------
# float32 parsing (decimal string -> nearest float32, ties to even, exactly)
# --------------------------------------------------------------------------

def f32_from_decimal(text):
    """Correctly rounded decimal -> float32 (no double rounding via float64)."""
    return f32_from_fraction(Fraction(text))


def f32_from_fraction(exact):
    """Correctly rounded exact rational -> float32, ties to even."""
    guess = np.float32(float(exact))
    best = None
    cands = [np.nextafter(guess, np.float32(-np.inf)), guess,
             np.nextafter(guess, np.float32(np.inf))]
    for c in cands:
        if not np.isfinite(c):
            continue
        d = abs(Fraction(float(c)) - exact)
        key = (d, int(np.frombuffer(np.float32(c).tobytes(), np.uint32)[0]) & 1)
        if best is None or key < best[0]:
            best = (key, np.float32(c))
    return best[1]


def f32(value):
    """A JSON number (kept as its decimal text) -> np.float32."""
    if isinstance(value, str):
        return f32_from_decimal(value)
    if isinstance(value, int):
        return f32_from_decimal(str(value))
    return np.float32(value)


def load_manifest(path):
    # Keep floats as their decimal text so float32 values parse exactly.
    with open(path) as fh:
        return json.load(fh, parse_float=str)


def as_int(v):
    return int(v)


# --------------------------------------------------------------------------
# Integer rounding helpers (exact; vectorised over int64 numpy arrays)
# --------------------------------------------------------------------------

def round_div(x, n, rule):
    """x / n rounded by `rule`; x an int64 array, n a positive int or an int64
    array broadcastable to x. Exact integer arithmetic."""
    x = np.asarray(x, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    if np.any(n <= 0):
        raise CheckError("round_div by a non-positive count")
    q = np.floor_divide(x, n)          # floor
    r = x - q * n                      # 0 <= r < n
    if rule == "floor":
        return q
    twice_r = 2 * r
    above = twice_r > n
    tie = twice_r == n
    if rule == "half_up":
        # ties towards +infinity
        return q + (above | tie).astype(np.int64)
    if rule == "half_even":
        odd = (q & 1) == 1
        return q + (above | (tie & odd)).astype(np.int64)
    if rule == "half_away_from_zero":
        # A tie x/n = q + 1/2: away from zero means q+1 if the value is
        # positive (q >= 0), q if negative (q < 0, value = q + 0.5 <= -0.5).
        pos = q >= 0
        return q + (above | (tie & pos)).astype(np.int64)
    raise CheckError("unknown rounding rule %r" % (rule,))


def round_div_scalar(x, n, rule):
    """Pure-Python reference of round_div (used for self-tests)."""
    fr = Fraction(x, n)
    fl = fr.numerator // fr.denominator
    rem = fr - fl
    if rule == "floor":
        return fl
    if rem > Fraction(1, 2):
        return fl + 1
    if rem < Fraction(1, 2):
        return fl
    if rule == "half_up":
        return fl + 1
    if rule == "half_even":
        return fl + (fl % 2)
    if rule == "half_away_from_zero":
        return fl + 1 if fr > 0 else fl
    raise ValueError(rule)


def round_half_away_float(x):
    """std::round on a float value (float32 or double), exact."""
    x = float(x)
    if x != x or math.isinf(x):
        raise CheckError("cannot round non-finite %r" % x)
    a = abs(x)
    fl = math.floor(a)
    frac = a - fl  # exact for doubles
    r = fl + 1 if frac >= 0.5 else fl
    return int(r) if x >= 0 else -int(r)


# --------------------------------------------------------------------------
# TFLite requantisation
# --------------------------------------------------------------------------

def quantize_multiplier(m_double):
    """TFLite QuantizeMultiplier(double) -> (int32 multiplier, shift)."""
    if m_double == 0.0:
        return 0, 0
    q, e = math.frexp(m_double)
    q_fixed = round_half_away_float(q * float(1 << 31))  # q*2^31 is exact
    if q_fixed > (1 << 31):
        raise CheckError("QuantizeMultiplier: q_fixed out of range")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        e += 1
    if e < -31:
        e = 0
        q_fixed = 0
    if q_fixed > INT32_MAX:
        raise CheckError("QuantizeMultiplier: multiplier exceeds int32")
    return int(q_fixed), int(e)


def wrap_int32(v):
    v = np.asarray(v, dtype=np.int64)
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul on int32 values held in int64 arrays."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    p = a * b                          # |p| <= 2^62: exact in int64
    nudge = np.where(p >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = p + nudge
    # trunc(s / 2^31): division truncating towards zero
    t = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where(overflow, np.int64(INT32_MAX), t)


def rounding_divide_by_pot(v, right):
    v = np.asarray(v, dtype=np.int64)
    right = np.asarray(right, dtype=np.int64)
    mask = (np.int64(1) << right) - 1
    remainder = v & mask
    threshold = (mask >> 1) + (v < 0).astype(np.int64)
    return (v >> right) + (remainder > threshold).astype(np.int64)


def multiply_by_quantized_multiplier(acc, m, e):
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    e = np.asarray(e, dtype=np.int64)
    left = np.maximum(e, 0)
    right = np.maximum(-e, 0)
    if np.any(acc < INT32_MIN) or np.any(acc > INT32_MAX):
        raise CheckError("tflite requant: accumulator outside int32")
    a = wrap_int32(acc << left)        # int32 multiply, wraps like the C++
    return rounding_divide_by_pot(srdhm(a, m), right)


# scalar pure-Python versions, for self-tests of the vectorised ones
def _srdhm_py(a, b):
    if a == b == INT32_MIN:
        return INT32_MAX
    p = a * b
    nudge = (1 << 30) if p >= 0 else 1 - (1 << 30)
    s = p + nudge
    return s // (1 << 31) if s >= 0 else -((-s) // (1 << 31))


def _rdbpot_py(v, right):
    mask = (1 << right) - 1
    remainder = v & mask
    threshold = (mask >> 1) + (1 if v < 0 else 0)
    return (v >> right) + (1 if remainder > threshold else 0)


def _mbqm_py(acc, m, e):
    left, right = max(e, 0), max(-e, 0)
    a = acc * (1 << left)
    a = ((a + (1 << 31)) % (1 << 32)) - (1 << 31)
    return _rdbpot_py(_srdhm_py(a, m), right)


def self_test():
    rng = np.random.default_rng(1234)
    # rounding helpers against Fractions
    xs = np.concatenate([np.arange(-40, 41), rng.integers(-10**9, 10**9, 300)])
    for n in (1, 2, 3, 4, 5, 8, 9, 16, 49, 1 << 20):
        for rule in ("floor", "half_up", "half_even", "half_away_from_zero"):
            got = round_div(xs, n, rule)
            for x, g in zip(xs.tolist(), got.tolist()):
                if g != round_div_scalar(x, n, rule):
                    raise AssertionError("round_div self-test %d/%d %s" % (x, n, rule))
    # doc examples
    assert round_div_scalar(5, 2, "half_up") == 3 and round_div_scalar(-5, 2, "half_up") == -2
    assert round_div_scalar(5, 2, "half_even") == 2 and round_div_scalar(7, 2, "half_even") == 4
    assert round_div_scalar(-5, 2, "half_away_from_zero") == -3
    # SRDHM tie behaviour from the doc: ties towards +infinity
    # a*m / 2^31 = 1.5 -> 2 ; -1.5 -> -1
    assert _srdhm_py(3, 1 << 29) == 1  # 3*2^29/2^31 = 0.75 -> 1
    assert int(srdhm(3 << 29, 1)) == _srdhm_py(3 << 29, 1) == 1  # 0.75
    assert _srdhm_py(3, 1 << 30) == 2       # 3*2^30/2^31 = 1.5 -> 2
    assert _srdhm_py(-3, 1 << 30) == -1     # -1.5 -> -1
    assert int(srdhm(-3, 1 << 30)) == -1 and int(srdhm(3, 1 << 30)) == 2
    assert _rdbpot_py(5, 1) == 3 and _rdbpot_py(-5, 1) == -3  # ties away from zero
    assert int(srdhm(INT32_MIN, INT32_MIN)) == INT32_MAX
    # vectorised MBQM against the scalar one
    accs = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 2000, dtype=np.int64),
                           np.array([INT32_MIN, INT32_MAX, 0, 1, -1], dtype=np.int64)])
    for m, e in ((1381758887, -6), (1 << 30, 0), (INT32_MAX, -31), (1717986918, 3),
                 (1073741824, 1), (1500000000, -20), (0, 0)):
        got = multiply_by_quantized_multiplier(accs, m, e)
        for a, g in zip(accs.tolist()[:400] + accs.tolist()[-5:], got.tolist()[:400] + got.tolist()[-5:]):
            if g != _mbqm_py(a, m, e):
                raise AssertionError("MBQM self-test acc=%d m=%d e=%d" % (a, m, e))
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    assert f32_from_decimal("0.1") == np.float32(0.1)


# --------------------------------------------------------------------------
# Quantisation helpers
# --------------------------------------------------------------------------

def storage_dtype(quant):
    if quant["mode"] == "affine":
        return quant["dtype"]
    bits = as_int(quant["bits"])
    if bits == 8:
        return "int8"
    if bits == 16:
        return "int16"
    raise CheckError("unsupported fixed-point width %d" % bits)


def quant_range(quant):
    if quant["mode"] == "affine":
        return DTYPE_RANGE[quant["dtype"]]
    bits = as_int(quant["bits"])
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def quant_zero(quant):
    return as_int(quant["zero_point"]) if quant["mode"] == "affine" else 0


def quant_equal(a, b):
    if a["mode"] != b["mode"]:
        return False
    if a["mode"] == "affine":
        return (a["dtype"] == b["dtype"] and f32(a["scale"]) == f32(b["scale"])
                and as_int(a["zero_point"]) == as_int(b["zero_point"]))
    return as_int(a["bits"]) == as_int(b["bits"]) and as_int(a["frac_len"]) == as_int(b["frac_len"])


def activation_range(act, quant):
    """(act_min, act_max) per docs/numerics.md, "Activations"."""
    qmin, qmax = quant_range(quant)
    if act == "none":
        return qmin, qmax
    if quant["mode"] == "affine":
        zp = as_int(quant["zero_point"])
        lo = max(qmin, zp)
        hi = qmax
        if act == "relu6":
            scale = f32(quant["scale"])
            six_over = np.float32(np.float32(6.0) / scale)   # float32 division
            hi = min(qmax, zp + round_half_away_float(six_over))
        elif act != "relu":
            raise CheckError("unknown activation %r" % act)
        return lo, hi
    # fixed point
    lo = max(qmin, 0)
    hi = qmax
    if act == "relu6":
        fl = as_int(quant["frac_len"])
        six = Fraction(6) * (Fraction(2) ** fl)          # exact 6 * 2^FL
        fl_part = six.numerator // six.denominator
        r = fl_part + 1 if six - fl_part >= Fraction(1, 2) else fl_part  # half away (positive)
        hi = min(qmax, r)
    elif act != "relu":
        raise CheckError("unknown activation %r" % act)
    return lo, hi


def clamp_range(layer, st, out_q):
    """[lo, hi] of the output stage, by the manifest's `clamp_rule`."""
    rule = layer["clamp_rule"]
    man = (as_int(st["clamp_min"]), as_int(st["clamp_max"]))
    if rule == "activation":
        lo, hi = activation_range(layer["activation"], out_q)
        if man != (lo, hi):
            raise CheckError("clamp range: manifest [%d, %d], recomputed [%d, %d] (activation %s)"
                             % (man + (lo, hi, layer["activation"])))
        return lo, hi
    if rule == "clip":
        # An ONNX Relu/Clip: the integers are the rule; they must lie in the
        # output type's range and be ordered (min > max became max, max).
        qmin, qmax = quant_range(out_q)
        if not qmin <= man[0] <= man[1] <= qmax:
            raise CheckError("clip clamp [%d, %d] outside [%d, %d] or unordered"
                             % (man + (qmin, qmax)))
        return man
    raise CheckError("unknown clamp_rule %r" % (rule,))


# --------------------------------------------------------------------------
# Layer computations
# --------------------------------------------------------------------------

def out_len_floor(n, pb, pa, k, s):
    return (n + pb + pa - k) // s + 1


def out_len_ceil(n, pb, pa, k, s):
    num = n + pb + pa - k
    out = -((-num) // s) + 1
    if (out - 1) * s >= n + pb:
        out -= 1
    return out


def tap_range(out_len, in_len, stride, offset):
    """Output indices o in [0, out_len) with 0 <= o*stride + offset < in_len.
    Returns (o_first, count, i_first)."""
    # smallest o >= 0 with o*stride + offset >= 0: ceil(-offset / stride)
    o0 = 0 if offset >= 0 else -(offset // stride)
    # largest o with o*stride + offset <= in_len - 1
    last = in_len - 1 - offset
    if last < 0:
        return 0, 0, 0
    o1 = min(out_len - 1, last // stride)
    if o1 < o0:
        return 0, 0, 0
    return o0, o1 - o0 + 1, o0 * stride + offset


def conv_accumulate(x, zx, w, zw, bias, stride, pad, groups, out_hw):
    """Exact int64 accumulators [C_out, OH, OW] of a (grouped) convolution.

    Structure: one pass per kernel tap (ky, kx); for each tap the output
    positions whose input sample lies inside the input are selected by slicing
    (no padded copy of the input is made: padding contributes x - zx = 0), and
    a batched per-group matrix product adds that tap's contribution."""
    cin, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    sy, sx = stride
    pt, pl = pad
    oh, ow = out_hw
    if cin % groups or cout % groups or cin // groups != cin_g:
        raise CheckError("group structure: C_in=%d C_out=%d groups=%d w=%s"
                         % (cin, cout, groups, w.shape))
    cout_g = cout // groups
    xd = x.astype(np.int64) - zx                        # [cin, h, w]
    wdlt = w.astype(np.int64) - zw                      # [cout, cin_g, kh, kw]
    # exactness guard for int64
    bound = int(np.abs(xd).max(initial=0)) * int(np.abs(wdlt).reshape(cout, -1).sum(axis=1).max(initial=0)) \
        + int(np.abs(bias).max(initial=0))
    if bound >= (1 << 62):
        raise CheckError("accumulator bound too large for int64 exact sum")
    xg = xd.reshape(groups, cin_g, h, wd)
    wg = wdlt.reshape(groups, cout_g, cin_g, kh, kw)
    acc = np.zeros((groups, cout_g, oh, ow), dtype=np.int64)
    for ky in range(kh):
        oy0, ny, iy0 = tap_range(oh, h, sy, ky - pt)
        if ny == 0:
            continue
        for kx in range(kw):
            ox0, nx, ix0 = tap_range(ow, wd, sx, kx - pl)
            if nx == 0:
                continue
            xs = xg[:, :, iy0:iy0 + (ny - 1) * sy + 1:sy, ix0:ix0 + (nx - 1) * sx + 1:sx]
            xs = xs.reshape(groups, cin_g, ny * nx)
            wt = wg[:, :, :, ky, kx]                    # [G, cout_g, cin_g]
            if cin_g == 1:
                contrib = wt * xs                        # broadcast [G, cout_g, ny*nx]
            else:
                contrib = np.matmul(wt, xs)              # [G, cout_g, ny*nx]
            acc[:, :, oy0:oy0 + ny, ox0:ox0 + nx] += contrib.reshape(groups, cout_g, ny, nx)
    acc = acc.reshape(cout, oh, ow)
    acc += bias.astype(np.int64).reshape(cout, 1, 1)
    return acc


def fc_accumulate(x, zx, w, zw, bias):
    v = x.reshape(-1).astype(np.int64) - zx              # C-order flatten
    if w.shape[1] != v.shape[0]:
        raise CheckError("fc: weights %s vs flattened input %d" % (w.shape, v.shape[0]))
    wd = w.astype(np.int64) - zw
    bound = int(np.abs(v).max(initial=0)) * int(np.abs(wd).sum(axis=1).max(initial=0)) \
        + int(np.abs(bias).max(initial=0))
    if bound >= (1 << 62):
        raise CheckError("accumulator bound too large for int64 exact sum")
    acc = wd @ v + bias.astype(np.int64).reshape(-1)
    return acc.reshape(-1, 1, 1)


def saturating_int(r):
    """Rounded float values -> int64 as a saturating cast does: NaN -> 0,
    values beyond the int64 range -> its ends (the clamp follows)."""
    r = np.asarray(r, dtype=np.float64)
    r = np.where(np.isnan(r), 0.0, r)
    r = np.clip(r, -2.0 ** 62, 2.0 ** 62)
    return r.astype(np.int64)


def saturate(acc, bits):
    lo = -(1 << (bits - 1))
    hi = (1 << (bits - 1)) - 1
    if bits >= 64:
        return acc  # int64 already; exact sum was checked to fit
    return np.clip(acc, lo, hi)


def per_channel(values, n, what):
    vals = list(values)
    if len(vals) == 1:
        return vals * n
    if len(vals) != n:
        raise CheckError("%s: %d values for %d channels" % (what, len(vals), n))
    return vals


def output_stage(layer, acc, in_q, w_q, out_q, notes):
    """Requantise, add zero point, clamp; returns int64 array. Derived values
    are recomputed and compared with the manifest."""
    st = layer["output_stage"]
    req = st["requant"]
    cout = acc.shape[0]
    rule = req["rule"]

    lo, hi = clamp_range(layer, st, out_q)
    zp_out = quant_zero(out_q)
    if as_int(st["zero_point"]) != zp_out:
        raise CheckError("output_stage.zero_point %s != output quant zero point %d"
                         % (st["zero_point"], zp_out))

    shape_c = (cout,) + (1,) * (acc.ndim - 1)
    if rule == "tflite":
        if in_q["mode"] != "affine":
            raise CheckError("tflite rule on a non-affine layer")
        s_in = float(f32(in_q["scale"]))
        s_out = float(f32(out_q["scale"]))
        s_w = [float(f32(s)) for s in per_channel(w_q["scales"], cout, "weight scales")]
        # The manifest names TFLite's path: `legacy` multiplies s_in * s_w in
        # float32 before going to double, `per_channel` is all double.
        path = layer["tflite_path"]
        if path not in ("legacy", "per_channel"):
            raise CheckError("unknown tflite_path %r" % (path,))
        notes.setdefault("tflite_paths", set()).add(path)
        if path == "legacy":
            mine = [quantize_multiplier(float(np.float32(np.float32(s_in) * np.float32(sw))) / s_out) for sw in s_w]
        else:
            mine = [quantize_multiplier(s_in * sw / s_out) for sw in s_w]   # double precision
        man_m = [as_int(v) for v in per_channel(req["multipliers"], cout, "multipliers")]
        man_e = [as_int(v) for v in per_channel(req["shifts"], cout, "shifts")]
        for c, ((m, e), mm, me) in enumerate(zip(mine, man_m, man_e)):
            if (m, e) != (mm, me):
                raise CheckError(
                    "tflite multiplier ch %d: manifest (m=%d, shift=%d), recomputed (m=%d, shift=%d) "
                    "from s_in=%r s_w=%r s_out=%r (M=%r)"
                    % (c, mm, me, m, e, s_in, s_w[c], s_out, s_in * s_w[c] / s_out))
        m_arr = np.array([m for m, _ in mine], dtype=np.int64).reshape(shape_c)
        e_arr = np.array([e for _, e in mine], dtype=np.int64).reshape(shape_c)
        v = multiply_by_quantized_multiplier(acc, m_arr, e_arr)
        v = v + zp_out
    elif rule == "float":
        if in_q["mode"] != "affine":
            raise CheckError("float rule on a non-affine layer")
        s_in = f32(in_q["scale"])
        s_out = f32(out_q["scale"])
        s_w = [f32(s) for s in per_channel(w_q["scales"], cout, "weight scales")]
        with np.errstate(all="raise"):
            mine = [np.float32(np.float32(s_in * sw) / s_out) for sw in s_w]
        man = [f32(v) for v in per_channel(req["scales"], cout, "scales")]
        for c, (a, b) in enumerate(zip(mine, man)):
            if a.tobytes() != b.tobytes():
                raise CheckError("float scale ch %d: manifest %r, recomputed %r (s_in=%r s_w=%r s_out=%r)"
                                 % (c, float(b), float(a), float(s_in), float(s_w[c]), float(s_out)))
        if np.any(np.abs(acc) >= (1 << 53)):
            raise CheckError("float rule: accumulator beyond 2^53")
        accf = acc.astype(np.float64).astype(np.float32)   # exact, then one RNE rounding
        sc = np.array(mine, dtype=np.float32).reshape(shape_c)
        prod = (accf * sc).astype(np.float32)
        if prod.dtype != np.float32:
            raise CheckError("internal: float32 product promoted")
        r = np.rint(prod)                                    # ties to even
        if not np.all(np.isfinite(r)) or np.any(np.abs(r) >= 2.0 ** 62):
            raise CheckError("float rule: product out of range")
        v = r.astype(np.int64) + zp_out
    elif rule == "float_chain":
        if out_q["mode"] != "affine":
            raise CheckError("float_chain rule on a non-affine output")
        s_out = f32(req["output_scale"])
        if s_out.tobytes() != f32(out_q["scale"]).tobytes():
            raise CheckError("float_chain output_scale %r != output scale %r"
                             % (req["output_scale"], out_q["scale"]))
        m = np.array([f32(v) for v in per_channel(req["scales"], cout, "scales")],
                     dtype=np.float32).reshape(shape_c)
        b = np.array([f32(v) for v in per_channel(req["offsets"], cout, "offsets")],
                     dtype=np.float32).reshape(shape_c)
        accf = acc.astype(np.float64).astype(np.float32)   # |acc| < 2^31: one rounding
        with np.errstate(over="ignore", invalid="ignore"):
            v = ((accf * m).astype(np.float32) + b).astype(np.float32)
            v = (v / s_out).astype(np.float32)
        if v.dtype != np.float32:
            raise CheckError("internal: float32 chain promoted")
        v = saturating_int(np.rint(v)) + zp_out
    elif rule == "shift":
        if in_q["mode"] != "fixed" or w_q["mode"] != "fixed" or out_q["mode"] != "fixed":
            raise CheckError("shift rule on a non-fixed layer")
        shift = as_int(in_q["frac_len"]) + as_int(w_q["frac_len"]) - as_int(out_q["frac_len"])
        if as_int(req["shift"]) != shift:
            raise CheckError("fixed shift: manifest %s, recomputed FL_in+FL_w-FL_out = %d"
                             % (req["shift"], shift))
        rounding = req["rounding"]
        notes.setdefault("fixed_roundings", set()).add(rounding)
        if shift > 0:
            if shift >= 62:
                raise CheckError("shift >= 62 not supported by this checker")
            v = round_div(acc, 1 << shift, rounding)
        else:
            k = -shift
            # exact multiply, saturating at the int64 range (Python ints)
            obj = acc.astype(object) * (1 << k)
            obj = np.minimum(np.maximum(obj, INT64_MIN), INT64_MAX)
            v = obj.astype(np.int64)
    elif rule == "float_sum":
        # MLAS's float32 SGEMM order (fused multiply-adds in K-blocks,
        # docs/onnx.md item 6): not reproduced here; tests/onnx_ort.rs
        # checks these layers against ONNX Runtime.
        raise NotRecomputed("requant rule 'float_sum' (MLAS's float32 order) is not recomputed here")
    else:
        raise CheckError("unknown requant rule %r" % rule)
    return np.clip(v, lo, hi)


def pool(layer, x, notes):
    op = layer["op"]
    c, h, w = x.shape
    if op == "global_avg_pool":
        kh, kw, sy, sx, pt, pl, pb, pr, ceil_mode = h, w, 1, 1, 0, 0, 0, 0, False
    else:
        p = layer["pool"]
        kh, kw = (as_int(v) for v in p["kernel"])
        sy, sx = (as_int(v) for v in p["stride"])
        pad = p["padding"]
        pt, pl, pb, pr = (as_int(pad[k]) for k in ("top", "left", "bottom", "right"))
        ceil_mode = bool(p["ceil_mode"])
    lenf = out_len_ceil if ceil_mode else out_len_floor
    oh = lenf(h, pt, pb, kh, sy)
    ow = lenf(w, pl, pr, kw, sx)
    # window bounds per output position, clipped to the input
    ys = np.arange(oh) * sy - pt
    xs = np.arange(ow) * sx - pl
    y0 = np.clip(ys, 0, h)
    y1 = np.clip(ys + kh, 0, h)
    x0 = np.clip(xs, 0, w)
    x1 = np.clip(xs + kw, 0, w)
    if np.any(y1 <= y0) or np.any(x1 <= x0):
        raise CheckError("pool window with no in-input element")
    xi = x.astype(np.int64)
    if op == "max_pool":
        out = np.empty((c, oh, ow), dtype=np.int64)
        for i in range(oh):
            for j in range(ow):
                out[:, i, j] = xi[:, y0[i]:y1[i], x0[j]:x1[j]].reshape(c, -1).max(axis=1)
        return out
    rule = layer["average_rounding"]
    notes.setdefault("average_roundings", set()).add(rule)
    # summed-area table for window sums
    sat = np.zeros((c, h + 1, w + 1), dtype=np.int64)
    sat[:, 1:, 1:] = xi.cumsum(axis=1).cumsum(axis=2)
    Y0, X0 = np.meshgrid(y0, x0, indexing="ij")
    Y1, X1 = np.meshgrid(y1, x1, indexing="ij")
    sums = sat[:, Y1, X1] - sat[:, Y0, X1] - sat[:, Y1, X0] + sat[:, Y0, X0]
    counts = ((Y1 - Y0) * (X1 - X0)).astype(np.int64)
    return round_div(sums, counts[None, :, :], rule)


# --------------------------------------------------------------------------
# ONNX Runtime's float32 operators: add and requantising average pools
# --------------------------------------------------------------------------

def affine_params(quant, what):
    if quant["mode"] != "affine":
        raise CheckError("%s: affine quantisation expected, got %r" % (what, quant))
    return f32(quant["scale"]), as_int(quant["zero_point"])


def fma32(a, b, c):
    """float32 fused multiply-add (one rounding), element by element, exact."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float32), np.asarray(b, np.float32),
                                  np.asarray(c, np.float32))
    out = np.empty(a.shape, dtype=np.float32)
    cache = {}
    for idx in np.ndindex(a.shape):
        key = (float(a[idx]), float(b[idx]), float(c[idx]))
        if key not in cache:
            exact = Fraction(key[0]) * Fraction(key[1]) + Fraction(key[2])
            cache[key] = f32_from_fraction(exact)
        out[idx] = cache[key]
    return out


def round_saturate(v, quant):
    """Round half to even and saturate to the storage type."""
    qmin, qmax = quant_range(quant)
    return np.clip(saturating_int(np.rint(v)), qmin, qmax)


def add(layer, a, b, qa, qb, qc):
    """docs/numerics.md, "Add": `add_rule` qlinear_add or float."""
    (sa, za), (sb, zb), (sc, zc) = (affine_params(qa, "first input"),
                                    affine_params(qb, "second input"),
                                    affine_params(qc, "output"))
    fa = a.astype(np.float32)
    fb = b.astype(np.float32)
    rule = layer["add_rule"]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if rule == "qlinear_add":
            ra = np.float32(sa / sc)
            rb = np.float32(sb / sc)
            fixed = np.float32(np.float32(zc) - fma32(ra, np.float32(za),
                                                      np.float32(rb * np.float32(zb)))[()])
            v = fma32(fa, ra, fma32(fb, rb, fixed))
            return round_saturate(v, qc)
        if rule == "float":
            da = ((a.astype(np.int64) - za).astype(np.float32) * sa).astype(np.float32)
            db = ((b.astype(np.int64) - zb).astype(np.float32) * sb).astype(np.float32)
            v = ((da + db).astype(np.float32) / sc).astype(np.float32)
            r = np.rint(v).astype(np.float32) + np.float32(zc)
            return round_saturate(r.astype(np.float32), qc)
    raise CheckError("unknown add_rule %r" % (rule,))


def qlinear_avg_pool(layer, x, in_q, out_q):
    """docs/numerics.md, "Requantising average pools": `average_rule`
    global (exact integer sum), window (float32 sums in row order, the zero
    point added before rounding), window_uint8 (the same, on int8 tensors
    ONNX Runtime rewrote to uint8: `zy + 128` added before rounding, 128
    taken off after) or unfused_float (the same sums, rounded before the
    zero point is added: QuantizeLinear)."""
    (sx, zx), (sy, zy) = affine_params(in_q, "input"), affine_params(out_q, "output")
    c, h, w = x.shape
    p = layer["pool"]
    kh, kw = (as_int(v) for v in p["kernel"])
    sty, stx = (as_int(v) for v in p["stride"])
    pad = p["padding"]
    pt, pl, pb, pr = (as_int(pad[k]) for k in ("top", "left", "bottom", "right"))
    rule = layer["average_rule"]
    if rule == "global":
        if (kh, kw) != (h, w) or (pt, pl, pb, pr) != (0, 0, 0, 0):
            raise CheckError("average_rule global but the window is not the unpadded plane")
        n = h * w
        centred = x.astype(np.int64).reshape(c, -1).sum(axis=1) - zx * n
        centred = wrap_int32(centred).astype(np.float64).astype(np.float32)
        scale = np.float32(np.float32(sx / np.float32(n)) / sy)
        v = np.rint((centred * scale).astype(np.float32)).astype(np.float32) + np.float32(zy)
        return round_saturate(v.astype(np.float32), out_q).reshape(c, 1, 1)
    if rule not in ("window", "window_uint8", "unfused_float"):
        raise CheckError("unknown average_rule %r" % (rule,))
    lenf = out_len_ceil if p["ceil_mode"] else out_len_floor
    oh, ow = lenf(h, pt, pb, kh, sty), lenf(w, pl, pr, kw, stx)
    deq = (sx * (x.astype(np.int64) - zx).astype(np.float32)).astype(np.float32)
    total = np.zeros((c, oh, ow), dtype=np.float32)
    ys = np.arange(oh) * sty - pt
    xs = np.arange(ow) * stx - pl
    for ky in range(kh):            # row order: top row first, left to right
        for kx in range(kw):
            yy, xx = ys + ky, xs + kx
            inside = ((yy >= 0) & (yy < h))[:, None] & ((xx >= 0) & (xx < w))[None, :]
            vals = deq[:, np.clip(yy, 0, h - 1)][:, :, np.clip(xx, 0, w - 1)]
            # adding +0.0 for outside elements leaves a float32 sum unchanged
            total = (total + np.where(inside[None], vals, np.float32(0))).astype(np.float32)
    if layer["count_include_pad"]:
        count = np.full((oh, ow), kh * kw, dtype=np.int64)
    else:
        cy = np.clip(ys + kh, 0, h) - np.clip(ys, 0, h)
        cx = np.clip(xs + kw, 0, w) - np.clip(xs, 0, w)
        count = np.maximum(cy[:, None] * cx[None, :], 1)
    avg = (total / count.astype(np.float32)[None]).astype(np.float32)
    if rule == "unfused_float":
        v = (np.rint((avg / sy).astype(np.float32)) + np.float32(zy)).astype(np.float32)
        return round_saturate(v, out_q)
    if rule == "window_uint8":
        v = ((avg / sy).astype(np.float32) + np.float32(zy + 128)).astype(np.float32)
        return round_saturate((np.rint(v) - np.float32(128)).astype(np.float32), out_q)
    v = ((avg / sy).astype(np.float32) + np.float32(zy)).astype(np.float32)
    return round_saturate(v, out_q)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def load_npy(d, name):
    return np.load(os.path.join(d, name), allow_pickle=False)


def first_diff(a, b):
    diff = np.argwhere(a != b)
    idx = tuple(int(i) for i in diff[0])
    return len(diff), idx, a[idx], b[idx]


def check_tensor(t, entry, what):
    shape = [as_int(s) for s in entry["shape"]]
    if list(t.shape) != shape:
        raise CheckError("%s: .npy shape %s != manifest shape %s" % (what, list(t.shape), shape))
    dt = storage_dtype(entry["quant"])
    if t.dtype != np.dtype(dt):
        raise CheckError("%s: .npy dtype %s != storage dtype %s" % (what, t.dtype, dt))


def quantize_float_input(xf, quant, rule):
    """The manifest's `float_input_rule` (docs/report.md, "Dump")."""
    qmin, qmax = quant_range(quant)
    if rule == "quantize_linear_float32":
        xf = xf.astype(np.float32)          # float64 values rounded to float32 first
        q = np.rint((xf / f32(quant["scale"])).astype(np.float32)).astype(np.float64) + as_int(quant["zero_point"])
    elif rule == "fixed_point_float64":
        q = np.rint(xf.astype(np.float64) * 2.0 ** as_int(quant["frac_len"]))
    else:
        raise CheckError("unknown float_input_rule %r" % (rule,))
    return np.clip(q, qmin, qmax).astype(np.int64)


def link_problems(src, t, quant, produced, produced_q):
    """A layer input must be its producer's dumped output, same quantisation."""
    if src not in produced:
        return ["input %r not produced by an earlier layer" % src]
    p = produced[src]
    if p.shape != t.shape or p.dtype != t.dtype:
        return ["input link: %r has shape %s %s, layer input %s %s"
                % (src, p.shape, p.dtype, t.shape, t.dtype)]
    problems = []
    if not np.array_equal(p, t):
        n, idx, a, b = first_diff(t, p)
        problems.append("input link: %d elements differ from %r's output, first at %s: %s vs %s"
                        % (n, src, idx, a, b))
    if not quant_equal(produced_q[src], quant):
        problems.append("input link: quant %r != producer's %r" % (quant, produced_q[src]))
    return problems


def run(dump_dir, verbose=False):
    man = load_manifest(os.path.join(dump_dir, "manifest.json"))
    numerics = man.get("numerics", "")
    if man.get("schema_version") != 2:
        print("%s: manifest schema_version %r; this script reads version 2 (docs/report.md, \"Dump\")"
              % (dump_dir, man.get("schema_version")))
        return 1
    failures = 0
    not_recomputed = 0
    notes = {}
    print("dump %s: network %s, variant %s, numerics %s"
          % (dump_dir, man.get("network"), man.get("variant"), numerics))

    # the network input
    produced = {}
    produced_q = {}
    net_in = load_npy(dump_dir, man["input"]["file"])
    in_entry = man["input"]
    if np.issubdtype(net_in.dtype, np.floating):
        net_in = quantize_float_input(net_in, in_entry["quant"], man["float_input_rule"]) \
            .astype(storage_dtype(in_entry["quant"]))
    try:
        check_tensor(net_in, in_entry, "input")
    except CheckError as e:
        print("  input: CHECK FAILED: %s" % e)
        failures += 1
    produced["input"] = net_in
    produced_q["input"] = in_entry["quant"]

    for layer in man["layers"]:
        name, op = layer["name"], layer["op"]
        tag = "%3s %-28s %-17s" % (layer.get("index", ""), name, op)
        problems = []
        try:
            x = load_npy(dump_dir, layer["input"]["file"])
            y_dump = load_npy(dump_dir, layer["output"]["file"])
            check_tensor(x, layer["input"], "input")
            check_tensor(y_dump, layer["output"], "output")
            in_q = layer["input"]["quant"]
            out_q = layer["output"]["quant"]

            # --- input linkage
            srcs = layer["inputs"]
            entries = [layer["input"]] + ([layer["second_input"]] if op == "add" else [])
            if len(srcs) != len(entries):
                raise CheckError("%s reads %d inputs, the manifest lists %r" % (op, len(entries), srcs))
            tensors = [x]
            for k, (src, entry) in enumerate(zip(srcs, entries)):
                t = x if k == 0 else load_npy(dump_dir, entry["file"])
                if k:
                    check_tensor(t, entry, "second input")
                    tensors.append(t)
                problems += link_problems(src, t, entry["quant"], produced, produced_q)

            # --- recompute
            if op in ("conv2d", "depthwise_conv2d", "fc"):
                w = load_npy(dump_dir, layer["weights"]["file"])
                w_entry = layer["weights"]
                w_q = w_entry["quant"]
                if list(w.shape) != [as_int(s) for s in w_entry["shape"]]:
                    raise CheckError("weights shape %s != manifest %s" % (w.shape, w_entry["shape"]))
                bias = load_npy(dump_dir, layer["bias_file"])
                if bias.dtype != np.int64:
                    raise CheckError("bias dtype %s, expected int64" % bias.dtype)
                zx = quant_zero(in_q)
                zw = as_int(w_q.get("zero_point", 0)) if w_q["mode"] == "affine" else 0
                if w_q["mode"] == "affine":
                    wlo, whi = DTYPE_RANGE[w_q["dtype"]]
                    if w.dtype != np.dtype(w_q["dtype"]):
                        raise CheckError("weights dtype %s != %s" % (w.dtype, w_q["dtype"]))
                else:
                    wlo, whi = quant_range(w_q)
                    if w.dtype != np.dtype(storage_dtype(w_q)):
                        raise CheckError("weights dtype %s != %s" % (w.dtype, storage_dtype(w_q)))
                if op == "fc":
                    acc = fc_accumulate(x, zx, w, zw, bias)
                else:
                    cv = layer["conv"]
                    kh, kw = (as_int(v) for v in cv["kernel"])
                    sy, sx = (as_int(v) for v in cv["stride"])
                    pd = cv["padding"]
                    pt, pl, pb, pr = (as_int(pd[k]) for k in ("top", "left", "bottom", "right"))
                    groups = as_int(cv["groups"])
                    if (kh, kw) != w.shape[2:]:
                        raise CheckError("kernel %s vs weights %s" % ((kh, kw), w.shape))
                    if op == "depthwise_conv2d" and groups != x.shape[0]:
                        problems.append("depthwise_conv2d with groups %d != C_in %d" % (groups, x.shape[0]))
                    oh = out_len_floor(x.shape[1], pt, pb, kh, sy)
                    ow = out_len_floor(x.shape[2], pl, pr, kw, sx)
                    acc = conv_accumulate(x, zx, w, zw, bias, (sy, sx), (pt, pl), groups, (oh, ow))
                bits = as_int(layer["output_stage"]["accumulator_bits"])
                acc = saturate(acc, bits)
                y = output_stage(layer, acc, in_q, w_q, out_q, notes)
            elif op == "add":
                if tensors[0].shape != tensors[1].shape:
                    raise CheckError("add of shapes %s and %s" % (tensors[0].shape, tensors[1].shape))
                y = add(layer, tensors[0], tensors[1], in_q, layer["second_input"]["quant"], out_q)
            elif op == "qlinear_avg_pool":
                y = qlinear_avg_pool(layer, x, in_q, out_q)
            elif op in ("max_pool", "avg_pool", "global_avg_pool"):
                if not quant_equal(in_q, out_q):
                    problems.append("pool changes quantisation: %r -> %r" % (in_q, out_q))
                y = pool(layer, x, notes)
            elif op == "flatten":
                if not quant_equal(in_q, out_q):
                    problems.append("flatten changes quantisation")
                y = x.reshape(-1, 1, 1).astype(np.int64)
                if list(y_dump.shape) != list(y.shape) and y_dump.size == y.size:
                    y = y.reshape(y_dump.shape)
            else:
                raise CheckError("unknown op %r" % op)

            # --- compare
            if tuple(y.shape) != tuple(y_dump.shape):
                raise CheckError("output shape: recomputed %s, dumped %s" % (y.shape, y_dump.shape))
            qmin, qmax = quant_range(out_q)
            if y.min(initial=qmin) < qmin or y.max(initial=qmax) > qmax:
                raise CheckError("recomputed values outside storage range (internal)")
            yd = y_dump.astype(np.int64)
            if np.array_equal(y, yd):
                status = "OK"
            else:
                n, idx, a, b = first_diff(y, yd)
                status = "MISMATCH %d of %d differ, first at %s: recomputed %d, dumped %d" % (
                    n, y.size, list(idx), a, b)
                failures += 1
            produced[name] = y_dump
            produced_q[name] = out_q
        except NotRecomputed as e:
            status = "NOT RECOMPUTED: %s" % e
            not_recomputed += 1
            produced[name] = y_dump
            produced_q[name] = out_q
        except CheckError as e:
            status = "CHECK FAILED: %s" % e
            failures += 1
            try:
                produced[name] = load_npy(dump_dir, layer["output"]["file"])
                produced_q[name] = layer["output"]["quant"]
            except Exception:
                pass
        if problems:
            failures += 1
            status += " | " + "; ".join(problems)
        print("  %s %s" % (tag, status))

    rs = notes.get("fixed_roundings")
    if rs and len(rs) > 1:
        print("  note: several fixed-point rounding rules in one network: %s" % sorted(rs))
    for key in ("tflite_paths", "average_roundings"):
        if notes.get(key):
            print("  note: %s: %s" % (key.replace("_", " "), ", ".join(sorted(notes[key]))))
    verdict = "ALL OK" if failures == 0 else "%d FAILURE(S)" % failures
    if not_recomputed:
        verdict += " (%d layer(s) not recomputed)" % not_recomputed
    print("%s: %s" % (dump_dir, verdict))
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dump_dir", nargs="+", help="dump directory (accsim run --dump DIR)")
    ap.add_argument("--no-self-test", action="store_true", help="skip the helper self-tests")
    args = ap.parse_args()
    if not args.no_self_test:
        self_test()
    total = 0
    for d in args.dump_dir:
        total += run(d)
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
