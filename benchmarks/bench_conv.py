"""Convolution speed: minicnn (every available backend) beside PyTorch, same device, same run.

    python benchmarks/bench_conv.py                 # CPU: numpy and numba backends vs torch
    python benchmarks/bench_conv.py --quick         # a fast smoke run (tiny batch, few rounds)
    python benchmarks/bench_conv.py --device cuda   # GPU: the cupy backend vs torch on CUDA

Each case times forward and forward+backward (input, weight and bias gradients, as for
a layer in the middle of a network) at batch 32. The implementations run in interleaved
rounds (A B C, A B C, ...) so that a noisy neighbour slows them all alike, and the table
reports medians, the ratio minicnn / PyTorch and the achieved GFLOP/s (forward:
2 * multiply-adds, forward+backward: three times that). Results go to
``benchmarks/results/<device>-conv.json``.

The cases are data: a list of dicts with a name, the multiply-adds of one forward pass,
and two builders that return ``(forward, forward_backward)`` callables for minicnn and
for PyTorch. Other benchmarks (pooling, batch norm) add rows by appending to ``CASES``
with :func:`layer_case`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import minicnn  # first: it sets the thread-pool defaults before NumPy, Numba and torch load

# isort: split
import numpy as np
import torch
import torch.nn.functional as TF

import minicnn.nn.functional as F
from minicnn.nn.functional.conv import set_conv_algorithm

RESULTS = Path(__file__).resolve().parent / "results"
Builder = Callable[[str, int], tuple[Callable[[], object], Callable[[], object]]]


# ---------------------------------------------------------------- cases as data


def _conv_macs(n, c_in, c_out, h_out, w_out, k, groups=1) -> int:
    return n * c_out * h_out * w_out * (c_in // groups) * k * k


def layer_case(name: str, macs: Callable[[int], int], minicnn_fn: Callable, torch_fn: Callable,
               shapes: Callable[[int], dict]) -> dict:
    """A benchmark row: ``fn(x, **params) -> y`` run on inputs made from ``shapes(batch)``.

    ``shapes(batch)`` returns ``{"x": (N, C, H, W), "weight": ..., ...}``: the first entry
    is the input, every other one a parameter (all require grad). ``macs(batch)`` counts
    the multiply-adds of one forward pass (0 when the op has none, e.g. pooling).
    """

    def build(framework: str):
        def builder(device: str, batch: int):
            rng = np.random.default_rng(0)
            arrays = {k: rng.standard_normal(s).astype(np.float32) * 0.1
                      for k, s in shapes(batch).items()}
            if framework == "minicnn":
                ts = {k: minicnn.tensor(a, device=device, requires_grad=True)
                      for k, a in arrays.items()}
                fn, sync = minicnn_fn, _minicnn_sync(device)
            else:
                ts = {k: torch.tensor(a, device=device, requires_grad=True)
                      for k, a in arrays.items()}
                fn, sync = torch_fn, _torch_sync(device)
            with (minicnn.no_grad() if framework == "minicnn" else torch.no_grad()):
                out_shape = tuple(fn(**ts).shape)
            grad = rng.standard_normal(out_shape).astype(np.float32)
            grad = (minicnn.tensor(grad, device=device) if framework == "minicnn"
                    else torch.tensor(grad, device=device))

            def forward():
                ctx = minicnn.no_grad() if framework == "minicnn" else torch.no_grad()
                with ctx:
                    fn(**ts)
                sync()

            def forward_backward():
                for t in ts.values():
                    t.grad = None
                fn(**ts).backward(grad)
                sync()

            return forward, forward_backward

        return builder

    return {"name": name, "macs": macs, "minicnn": build("minicnn"), "torch": build("torch")}


def conv_case(name, c_in, c_out, hw, k, stride=1, groups=1) -> dict:
    pad = k // 2
    h_out = (hw + 2 * pad - k) // stride + 1

    def shapes(n):
        return {"x": (n, c_in, hw, hw), "weight": (c_out, c_in // groups, k, k),
                "bias": (c_out,)}

    def mini(x, weight, bias):
        return F.conv2d(x, weight, bias, stride=stride, padding=pad, groups=groups)

    def tor(x, weight, bias):
        return TF.conv2d(x, weight, bias, stride=stride, padding=pad, groups=groups)

    return layer_case(name, lambda n: _conv_macs(n, c_in, c_out, h_out, h_out, k, groups),
                      mini, tor, shapes)


CASES: list[dict] = [
    conv_case("conv3x3 64->64 32x32", 64, 64, 32, 3),
    conv_case("conv3x3 128->128 16x16", 128, 128, 16, 3),
    conv_case("conv3x3 256->256 8x8", 256, 256, 8, 3),
    conv_case("conv1x1 256->64 16x16", 256, 64, 16, 1),
    conv_case("depthwise3x3 256 16x16", 256, 256, 16, 3, groups=256),
    conv_case("grouped3x3 128 g32 16x16", 128, 128, 16, 3, groups=32),
]


# ---------------------------------------------------------------- timing


def _minicnn_sync(device: str) -> Callable[[], None]:
    if device == "cuda":
        import cupy

        return cupy.cuda.Device().synchronize
    return lambda: None


def _torch_sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def _implementations(device: str) -> list[tuple[str, str | None]]:
    """(label, minicnn backend or None for torch) to compare on ``device``."""
    if device == "cuda":
        return [("minicnn-cupy", "cupy"), ("torch", None)]
    names = ["numpy"]
    try:
        minicnn.get_backend("numba")
        names.append("numba")
    except RuntimeError:
        pass
    return [*((f"minicnn-{b}", b) for b in names), ("torch", None)]


# Pause before each timed call. After a call, PyTorch's OpenMP threads keep spinning for a
# few milliseconds, and whatever runs next on the same 2 cores loses them: measured, a minicnn
# forward right after a torch call took 17.9 ms instead of 11.4 ms; a 10 ms pause removes it.
SETTLE_S = 0.01


def _settle(seconds: float) -> None:
    """Wait ``seconds`` busily: a sleeping process lets the (virtual) CPU go idle, and waking
    it up again costs more than the spinning threads we are waiting for (measured)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _run(fn: Callable[[], object], backend: str | None) -> float:
    """Seconds for one call of ``fn`` on a minicnn CPU backend (or torch / cupy)."""
    _settle(SETTLE_S)
    if backend in ("numpy", "numba"):
        with minicnn.use_backend(backend):
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_case(case: dict, device: str, batch: int, rounds: int, warmup: int,
               skip: set[str]) -> dict:
    impls = [(label, b) for label, b in _implementations(device) if label not in skip]
    fns = {}
    for label, b in impls:
        builder = case["torch"] if b is None else case["minicnn"]
        fns[label] = builder(device, batch)
    times: dict[str, dict[str, list[float]]] = {label: {"forward": [], "forward_backward": []}
                                                for label, _ in impls}
    for r in range(warmup + rounds):
        for label, b in impls:  # interleaved: every implementation once per round
            fwd, fwd_bwd = fns[label]
            tf = _run(fwd, b)
            tfb = _run(fwd_bwd, b)
            if r >= warmup:
                times[label]["forward"].append(tf)
                times[label]["forward_backward"].append(tfb)
    macs = case["macs"](batch)
    rows = {}
    for label, _ in impls:
        med_f = statistics.median(times[label]["forward"])
        med_fb = statistics.median(times[label]["forward_backward"])
        rows[label] = {
            "forward_ms": med_f * 1e3, "forward_backward_ms": med_fb * 1e3,
            "forward_min_ms": min(times[label]["forward"]) * 1e3,
            "forward_backward_min_ms": min(times[label]["forward_backward"]) * 1e3,
            "forward_gflops": 2 * macs / med_f / 1e9 if macs else None,
            "forward_backward_gflops": 6 * macs / med_fb / 1e9 if macs else None,
        }
    torch_row = rows.get("torch")
    for label, row in rows.items():
        if torch_row and label != "torch":
            row["forward_ratio"] = row["forward_ms"] / torch_row["forward_ms"]
            row["forward_backward_ratio"] = row["forward_backward_ms"] / torch_row[
                "forward_backward_ms"]
    return {"name": case["name"], "batch": batch, "macs": macs, "load_average": _load(),
            "results": rows}


def _load() -> float | None:
    """The 1-minute load average: how busy the machine was (benchmarks want it near 0)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def print_table(results: list[dict]) -> None:
    head = (f"{'layer':26s} {'impl':14s} {'fwd ms':>8s} {'ratio':>6s} {'GFLOP/s':>8s} "
            f"{'f+b ms':>8s} {'ratio':>6s} {'GFLOP/s':>8s}")
    print(head)
    print("-" * len(head))
    for res in results:
        for label, row in res["results"].items():
            print(f"{res['name']:26s} {label:14s} {row['forward_ms']:8.2f} "
                  f"{_fmt(row.get('forward_ratio'), '6.2f'):>6s} "
                  f"{_fmt(row['forward_gflops'], '8.1f'):>8s} "
                  f"{row['forward_backward_ms']:8.2f} "
                  f"{_fmt(row.get('forward_backward_ratio'), '6.2f'):>6s} "
                  f"{_fmt(row['forward_backward_gflops'], '8.1f'):>8s}")
    print("ratio = minicnn / PyTorch (lower is better; 1.0 = as fast as PyTorch)")
    loads = [r["load_average"] for r in results if r.get("load_average") is not None]
    if loads:
        print(f"1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f} "
              f"(on {os.cpu_count()} cores; above ~0.5 other programs disturb the timings)")


def environment(device: str) -> dict:
    env = {
        "device": device, "python": platform.python_version(), "numpy": np.__version__,
        "torch": torch.__version__, "minicnn": minicnn.__version__,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    }
    try:
        import numba

        env["numba"] = numba.__version__
        from minicnn.backend.numba_threads import threading_layer

        env["numba_threading_layer"] = threading_layer()
    except ImportError:
        pass
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def main(argv: list[str] | None = None, cases: list[dict] | None = None,
         name: str = "conv") -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: batch 4, 2 rounds, no JSON written")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--skip", default="", help="comma-separated implementations to skip, "
                        "e.g. minicnn-numpy")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other cases already in the JSON file (with --only)")
    parser.add_argument("--conv-algorithm", default="auto",
                        choices=["auto", "im2col", "winograd", "direct"],
                        help="how minicnn computes ungrouped convolutions (see "
                        "set_conv_algorithm); other than auto, the JSON name gets a suffix")
    args = parser.parse_args(argv)
    set_conv_algorithm(args.conv_algorithm)
    if args.conv_algorithm != "auto":
        name = f"{name}-{args.conv_algorithm}"
    batch, rounds, warmup = (4, 2, 1) if args.quick else (args.batch, args.rounds, 2)
    skip = {s for s in args.skip.split(",") if s}
    selected = [c for c in (cases or CASES) if args.only in c["name"]]
    results = []
    for case in selected:
        results.append(bench_case(case, args.device, batch, rounds, warmup, skip))
        print(f"done: {case['name']}", file=sys.stderr, flush=True)
    print_table(results)
    if not args.quick:
        write_results(RESULTS / f"{args.device}-{name}.json", results,
                      [c["name"] for c in (cases or CASES)], args.merge,
                      environment=environment(args.device), rounds=rounds,
                      conv_algorithm=args.conv_algorithm)
    return results


def write_results(path: Path, results: list[dict], order: list[str], merge: bool,
                  **fields) -> None:
    """Write ``{**fields, "cases": results}`` to ``path`` atomically. With ``merge``, the
    stored cases not run now are kept, everything in the ``order`` of the case names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = results
    if merge and path.exists():  # earlier results of the cases not run now
        ran = {r["name"] for r in results}
        kept = [r for r in json.loads(path.read_text())["cases"] if r["name"] not in ran]
        stored = sorted(kept + results, key=lambda r: order.index(r["name"])
                        if r["name"] in order else len(order))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**fields, "cases": stored}, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
