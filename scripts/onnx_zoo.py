#!/usr/bin/env python3
"""Where the nine model-zoo CNNs stand: built, quantised, checked against ONNX Runtime.

Run on demand (not in CI; a full run takes long, docs/onnx.md):

    pip install numpy onnx onnxruntime
    cargo build --release
    python3 scripts/onnx_zoo.py                          # all models, all formats
    python3 scripts/onnx_zoo.py --models vgg19 --formats qdq_u8s8_pc --inputs 3
    python3 scripts/onnx_zoo.py --models vgg19 --no-softmax   # the variant accepted today

The `onnx` package ships copies of nine classic CNNs from the ONNX model zoo
(`onnx/backend/test/data/light/light_*.onnx`) whose weights are
`ConstantOfShape` placeholders. For each model the script

1. replaces every placeholder and float initializer with seeded random
   values (He-normal convolution and Gemm weights, small biases, batch-norm
   statistics near 1 and 0), converts the model to opset 13 and runs ONNX
   Runtime's `quant_pre_process`, as a user preparing a model would;
2. quantises it in the four ways of issue 14 with ONNX Runtime's quantiser
   (calibrated on 4 seeded random inputs, MinMax): `qdq_u8s8_pc` (QDQ, uint8
   activations, int8 weights per channel), `qdq_s8s8_pt` (QDQ, int8/int8 per
   tensor), `qop_u8s8_pc` (QOperator, uint8/int8 per channel) and
   `dynamic_u8` (`quantize_dynamic`, uint8 weights);
3. runs `accsim check` on each quantised model and, when it is accepted,
   `accsim run --input x.npy --dump DIR` on N seeded random inputs, and
   compares accsim's last tensor with ONNX Runtime's output bit for bit (a
   float output through its DequantizeLinear, as tests/onnx_ort.rs does);
4. prints the table: model x format, accepted (or the refusal: its first
   line, and for unsupported operators each type with its count and first node),
   bit-exact inputs, load s (`accsim check`, wall), run s (mean `accsim run`
   wall per input, the cycle-level engine included) and the peak RSS of the
   `accsim check` and `accsim run` child processes (from `/usr/bin/time`).

`accsim run` is given `--no-check`: the comparison here is with ONNX
Runtime, not between accsim's engine and its reference executor.

The models go to `--out` (default `out/zoo/`, which git ignores: VGG-19 is
548 MB as float). A model already there is reused; `--rebuild` makes it
again. Quantisation uses `reduce_range = True` by default: ONNX Runtime's
uint8 x int8 kernels saturate pairs of products to int16 on x86-64 CPUs
without VNNI, which `reduce_range` avoids (ONNX Runtime's own advice);
`--no-reduce-range` quantises as the quantiser's defaults do.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper as nh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_cases import float_input, run as ort_run  # noqa: E402  (the goldens' ONNX Runtime session)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")

MODELS = {
    "alexnet": "light_bvlc_alexnet.onnx",
    "zfnet512": "light_zfnet512.onnx",
    "vgg19": "light_vgg19.onnx",
    "googlenet": "light_inception_v1.onnx",
    "inception_v2": "light_inception_v2.onnx",
    "resnet50": "light_resnet50.onnx",
    "squeezenet": "light_squeezenet.onnx",
    "shufflenet": "light_shufflenet.onnx",
    "densenet121": "light_densenet121.onnx",
}
FORMATS = ["qdq_u8s8_pc", "qdq_s8s8_pt", "qop_u8s8_pc", "dynamic_u8"]
CALIBRATION_INPUTS = 4


# ---------------------------------------------------------------------------
# The float model: placeholders replaced by seeded random weights
# ---------------------------------------------------------------------------


def consumers(graph):
    """name -> [(node, input index)] for every node input."""
    out = {}
    for n in graph.node:
        for i, name in enumerate(n.input):
            out.setdefault(name, []).append((n, i))
    return out


def role_values(rng, shape, name, readers):
    """Random float32 values for a weight of `shape`, by the node that reads it."""
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(shape)) if shape else 1
    node, index = (readers.get(name) or [(None, -1)])[0]
    op = node.op_type if node is not None else ""
    if op == "Unsqueeze":
        # DenseNet and Inception v2 spell batch norm as Unsqueeze -> Mul / Add.
        node, index = (readers.get(node.output[0]) or [(node, index)])[0]
        op = node.op_type
    if op == "Conv" and index == 1:
        v = rng.normal(0.0, np.sqrt(2.0 / max(size // shape[0], 1)), size)
    elif op == "Gemm" and index == 1:
        trans_b = any(a.name == "transB" and a.i == 1 for a in node.attribute)
        v = rng.normal(0.0, np.sqrt(2.0 / shape[1 if trans_b else 0]), size)
    elif op == "BatchNormalization":
        v = rng.uniform(0.5, 1.5, size) if index in (1, 4) else rng.normal(0.0, 0.1, size)
    elif op == "Mul":
        v = rng.uniform(0.5, 1.5, size)
    else:
        v = rng.normal(0.0, 0.05, size)
    return v.astype(np.float32).reshape(shape)


def randomised(path, seed):
    """The light model with seeded random weights, opset 13, no initializer inputs."""
    m = onnx.load(path)
    g = m.graph
    rng = np.random.default_rng(seed)
    readers = consumers(g)
    inits = {t.name: t for t in g.initializer}
    new_inits = []
    keep = []
    for n in g.node:
        if n.op_type == "ConstantOfShape":
            shape = nh.to_array(inits[n.input[0]]) if n.input[0] in inits else []
            v = role_values(rng, shape, n.output[0], readers)
            new_inits.append(nh.from_array(v, n.output[0]))
        else:
            keep.append(n)
    for t in g.initializer:
        a = nh.to_array(t)
        if a.dtype == np.float32 and a.size > 1:
            a = role_values(rng, a.shape, t.name, readers)
        if any(t.name in n.input for n in keep):
            new_inits.append(nh.from_array(a, t.name))
    del g.node[:]
    g.node.extend(keep)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    names = {t.name for t in new_inits} | set(inits)
    data = [i for i in g.input if i.name not in names]
    del g.input[:]
    g.input.extend(data)
    m.ir_version = max(m.ir_version, 7)  # initializers need not be graph inputs
    m = onnx.version_converter.convert_version(m, 13)
    return m


def strip_softmax(m):
    """The model without its final Softmax (its input becomes the output)."""
    g = m.graph
    last = g.node[-1]
    if last.op_type != "Softmax" or last.output[0] != g.output[0].name:
        return m
    g.node.remove(last)
    out = onnx.helper.make_tensor_value_info(last.input[0], onnx.TensorProto.FLOAT, None)
    del g.output[:]
    g.output.extend([out])
    return m


# ---------------------------------------------------------------------------
# Quantisation with ONNX Runtime's quantiser
# ---------------------------------------------------------------------------


def input_info(model_path):
    m = onnx.load(model_path, load_external_data=False)
    i = m.graph.input[0]
    return i.name, [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]


class Reader:
    """Seeded random calibration inputs for quantize_static."""

    def __init__(self, name, shape, seed):
        rng = np.random.default_rng(seed)
        self.feeds = iter([{name: float_input(rng, shape)} for _ in range(CALIBRATION_INPUTS)])

    def get_next(self):
        return next(self.feeds, None)


def quantise(float_path, fmt, dst, seed, reduce_range):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    if fmt == "dynamic_u8":
        quantize_dynamic(float_path, dst, weight_type=QuantType.QUInt8, reduce_range=reduce_range)
        return
    name, shape = input_info(float_path)
    activation = QuantType.QInt8 if fmt == "qdq_s8s8_pt" else QuantType.QUInt8
    quantize_static(
        float_path,
        dst,
        Reader(name, shape, seed),
        quant_format=QuantFormat.QOperator if fmt.startswith("qop") else QuantFormat.QDQ,
        per_channel=fmt.endswith("_pc"),
        reduce_range=reduce_range,
        activation_type=activation,
        weight_type=QuantType.QInt8,
    )


def build(model, out_dir, formats, seed, rebuild, no_softmax, reduce_range):
    """Writes the float and quantised models; returns {format: path}."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    stem = model + ("_nosoftmax" if no_softmax else "")
    float_path = os.path.join(out_dir, f"{stem}.float.onnx")
    if rebuild or not os.path.exists(float_path):
        m = randomised(os.path.join(LIGHT, MODELS[model]), seed)
        if no_softmax:
            m = strip_softmax(m)
        raw = os.path.join(out_dir, f".{stem}.raw.onnx")
        onnx.save(m, raw)
        quant_pre_process(raw, float_path)
        os.remove(raw)
    paths = {}
    for fmt in formats:
        dst = os.path.join(out_dir, f"{stem}.{fmt}.onnx")
        if rebuild or not os.path.exists(dst):
            quantise(float_path, fmt, dst, seed, reduce_range)
        paths[fmt] = dst
    return float_path, paths


# ---------------------------------------------------------------------------
# accsim against ONNX Runtime
# ---------------------------------------------------------------------------


def accsim_bin():
    # ACCSIM_BIN: a copy of the binary, so that a long run is not changed by a rebuild.
    path = os.environ.get("ACCSIM_BIN") or os.path.join(ROOT, "target", "release", "accsim")
    if not os.path.exists(path):
        sys.exit(f"{path} is missing; run `cargo build --release` first")
    return path


def run_child(cmd):
    """Runs cmd under /usr/bin/time: (code, stdout, stderr, wall s, peak MB).

    The child's own peak RSS comes from /usr/bin/time, not from wait4 here:
    a child forked from this Python process (which holds ONNX Runtime and
    the model) would be charged the parent's pages until its exec.
    """
    start = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "ACCSIM_ZOO_RSS_KB %M", *cmd], capture_output=True, text=True)
    wall = time.monotonic() - start
    lines = p.stderr.splitlines()
    marks = [line for line in lines if line.startswith("ACCSIM_ZOO_RSS_KB ")]
    peak_mb = int(marks[-1].split()[1]) / 1024 if marks else float("nan")
    ours = ("ACCSIM_ZOO_RSS_KB ", "Command exited with non-zero status", "Command terminated by signal")
    err = "\n".join(line for line in lines if not line.startswith(ours))
    return p.returncode, p.stdout, err, wall, peak_mb


def refusal(text, model_path):
    """accsim's message without the path: its first line and, for unsupported
    operators, one `Op: N nodes, ...` entry per type (not the valid list)."""
    lines = [line for line in text.splitlines() if line.strip()]
    first = lines[0].removeprefix("error: ").removeprefix(model_path + ": ") if lines else ""
    types = [line.strip() for line in lines[1:] if not line.strip().startswith("valid:")]
    return " ".join([first] + ["; ".join(types)]) if types else first


def last_output(dump_dir):
    """The last layer's output from an accsim dump, and its quantisation."""
    with open(os.path.join(dump_dir, "manifest.json")) as f:
        manifest = json.load(f)
    last = manifest["layers"][-1]["output"]
    return np.load(os.path.join(dump_dir, last["file"])), last["quant"]


def float32_words(q):
    """The float32 values of a tensor stored as words ([2C, H, W]: channel 2c
    the high half of channel c's bits, 2c + 1 the low half), as accsim's
    float32 tensors are (a dynamic model's output)."""
    hi = q[0::2].astype(np.uint16).astype(np.uint32)
    lo = q[1::2].astype(np.uint16).astype(np.uint32)
    return ((hi << 16) | lo).view(np.float32)


def bit_exact(q, quant, golden):
    """accsim's integers against ONNX Runtime's output, as tests/onnx_ort.rs compares."""
    golden = np.asarray(golden)
    float32 = quant["dtype"] == "int16" and quant["scale"] == 1.0 and quant["zero_point"] == 0
    if golden.dtype == np.float32 and float32 and q.size == 2 * golden.size:
        mine = float32_words(q.astype(np.int16)).reshape(-1)
        return np.array_equal(mine.view(np.uint32), golden.reshape(-1).view(np.uint32))
    q = q.reshape(-1)
    golden = golden.reshape(-1)
    if q.size != golden.size:
        return False
    if golden.dtype == np.float32:
        scale = np.float32(quant["scale"])
        mine = ((q.astype(np.int32) - quant["zero_point"]).astype(np.float32) * scale).astype(np.float32)
        return np.array_equal(mine.view(np.uint32), golden.view(np.uint32))
    return np.array_equal(q.astype(np.int64), golden.astype(np.int64))


def evaluate(model_path, n_inputs, seed, work, arch=None):
    """check + run on n inputs; returns a row of the table."""
    exe = accsim_bin()
    code, out, err, load_s, check_mb = run_child([exe, "check", model_path] + (["--arch", arch] if arch else []))
    row = {"accepted": code == 0, "load_s": load_s, "check_mb": check_mb, "run_mb": None, "exact": None,
           "run_s": None}
    if code != 0:
        row["refusal"] = refusal(err or out, model_path)
        return row
    name, shape = input_info(model_path)
    mb = onnx.load(model_path)
    rng = np.random.default_rng(seed + 1)
    exact, walls = 0, []
    for k in range(n_inputs):
        x = float_input(rng, shape)
        golden = ort_run(mb, {name: x})
        xpath = os.path.join(work, "x.npy")
        np.save(xpath, x)
        dump = os.path.join(work, "dump")
        cmd = [exe, "run", "-q", "--no-check", "--workload", model_path, "--input", xpath, "--dump", dump]
        if arch:
            cmd += ["--arch", arch]
        code, out, err, wall, mb_peak = run_child(cmd)
        row["run_mb"] = max(row["run_mb"] or 0, mb_peak)
        if code != 0:
            row["refusal"] = "run: " + refusal(err or out, model_path)
            break
        walls.append(wall)
        q, quant = last_output(dump)
        exact += bit_exact(q, quant, golden)
    row["exact"] = f"{exact}/{n_inputs}"
    row["run_s"] = sum(walls) / len(walls) if walls else None
    return row


def table(rows):
    head = "| model | format | accepted | bit-exact | load s | run s | peak RSS MB (check, run) |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for (model, fmt), r in rows:
        accepted = "yes" if r["accepted"] else f"no: {r.get('refusal', '')}"
        if r["accepted"] and r.get("refusal"):
            accepted = f"yes; {r['refusal']}"
        run_s = f"{r['run_s']:.2f}" if r["run_s"] is not None else ""
        peak = f"{r['check_mb']:.0f}" + (f", {r['run_mb']:.0f}" if r["run_mb"] else "")
        lines.append(
            f"| {model} | {fmt} | {accepted} | {r['exact'] or ''} | {r['load_s']:.2f} | {run_s} | {peak} |"
        )
    return "\n".join(lines)


def main():
    ort.set_default_logger_severity(3)  # errors only: the quantiser's warnings are noise here
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=os.path.join(ROOT, "out", "zoo"), help="model directory")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of: {', '.join(MODELS)}")
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of: {', '.join(FORMATS)}")
    ap.add_argument("--inputs", type=int, default=10, help="seeded random inputs per model (default 10)")
    ap.add_argument("--seed", type=int, default=14, help="seed of weights, calibration and inputs")
    ap.add_argument("--no-softmax", action="store_true", help="remove each model's final Softmax")
    ap.add_argument("--no-reduce-range", action="store_true", help="quantise without reduce_range")
    ap.add_argument("--build-only", action="store_true", help="write the models, run nothing")
    ap.add_argument("--rebuild", action="store_true", help="rebuild models already in the directory")
    ap.add_argument("--arch", help="accsim architecture for the runs (default: accsim's, lu22_fixed)")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 unless every model and format is accepted and bit-exact on every input (CI)")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    formats = [f for f in args.formats.split(",") if f]
    bad = [m for m in models if m not in MODELS] + [f for f in formats if f not in FORMATS]
    if bad or args.inputs < 1:
        ap.error(f"unknown {', '.join(bad) or '--inputs'}; valid models: {', '.join(MODELS)}; "
                 f"formats: {', '.join(FORMATS)}; --inputs at least 1")
    os.makedirs(args.out, exist_ok=True)
    rows = []
    started = time.monotonic()
    for model in models:
        t = time.monotonic()
        _, paths = build(model, args.out, formats, args.seed, args.rebuild, args.no_softmax,
                         not args.no_reduce_range)
        print(f"{model}: built in {time.monotonic() - t:.0f} s", file=sys.stderr)
        if args.build_only:
            continue
        for fmt in formats:
            work = os.path.join(args.out, ".work")
            os.makedirs(work, exist_ok=True)
            row = evaluate(paths[fmt], args.inputs, args.seed, work, args.arch)
            rows.append(((model + (" (no Softmax)" if args.no_softmax else ""), fmt), row))
            print(f"  {fmt}: {'accepted' if row['accepted'] else row.get('refusal', '')}", file=sys.stderr)
    if rows:
        print(table(rows))
    print(f"total {time.monotonic() - started:.0f} s", file=sys.stderr)
    failed = [f"{m} {f}" for (m, f), r in rows if r["exact"] != f"{args.inputs}/{args.inputs}"]
    if args.strict and failed:
        print(f"not accepted or not bit-exact on every input: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
