"""Detection speed: minicnn's NMS and SSD forward beside torchvision's, same device, same run.

    python benchmarks/bench_detection.py                 # CPU: numpy and numba backends vs torch
    python benchmarks/bench_detection.py --quick         # a fast smoke run (no JSON written)
    python benchmarks/bench_detection.py --only nms      # only the cases whose name contains "nms"
    python benchmarks/bench_detection.py --device cuda   # GPU: the cupy backend vs torch on CUDA

NMS (IoU threshold 0.5) on 1,000 and 10,000 boxes in a 1000x1000 image, drawn two ways:
"uniform" (random places and sizes 10-100 px: most boxes survive, so the greedy pass
compares almost every pair) and "clustered" (the boxes jitter around 100 objects, like a
detector's raw output: most are suppressed early). minicnn's ``ops.nms`` runs on each
available backend (the numba kernel is the fast CPU one) beside ``torchvision.ops.nms``;
every implementation's kept indices are checked against torchvision's.

SSD: the eval forward (backbone, heads, decoding, per-class NMS) of
``minicnn.models.detection.ssd300_vgg16`` and ``ssdlite320_mobilenet_v3_large`` beside
torchvision's models of the same names, with torchvision's (random) weights copied into
minicnn's, on a batch of images of the model's size. Those rows are skipped, with a
message, where minicnn's detection models are missing.

The implementations run in interleaved rounds (A B C, A B C, ...) and the table reports
medians and the ratio minicnn / torchvision; the timing machinery is ``bench_conv.py``'s.
Results go to ``benchmarks/results/<device>-detection.json``.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import minicnn  # noqa: E402  (first: it sets the thread-pool defaults)

# isort: split
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from bench_conv import (  # noqa: E402
    RESULTS,
    _implementations,
    _load,
    _minicnn_sync,
    _run,
    _torch_sync,
    environment,
    write_results,
)

from minicnn import ops  # noqa: E402

IOU_THRESHOLD = 0.5
IMAGE = 1000.0  # boxes lie in an IMAGE x IMAGE picture


# ---------------------------------------------------------------- NMS cases


def uniform_boxes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` boxes anywhere in the image, sides 10-100 px, and their scores."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, IMAGE - 100, (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 100, (n, 2))], axis=1)
    return boxes.astype(np.float32), rng.random(n).astype(np.float32)


def clustered_boxes(n: int, seed: int = 0, objects: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """``n`` boxes jittered around ``objects`` objects (a detector's raw output), scores."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, IMAGE - 100, (objects, 2))
    centers = np.concatenate([xy, xy + rng.uniform(20, 100, (objects, 2))], axis=1)
    which = rng.integers(0, objects, n)
    size = np.tile(centers[which, 2:] - centers[which, :2], 2)
    boxes = centers[which] + rng.normal(0, 0.1, (n, 4)) * size
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes.astype(np.float32), rng.random(n).astype(np.float32)


def nms_case(name: str, make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> dict:
    """A row: ``ops.nms`` on each minicnn backend and ``torchvision.ops.nms``, same boxes."""

    def build(framework: str, device: str, batch: int):
        boxes, scores = make()
        expected = torchvision.ops.nms(torch.tensor(boxes), torch.tensor(scores),
                                       IOU_THRESHOLD).numpy()
        if framework == "torch":
            tb, ts = torch.tensor(boxes, device=device), torch.tensor(scores, device=device)
            sync = _torch_sync(device)

            def run():
                keep = torchvision.ops.nms(tb, ts, IOU_THRESHOLD)
                sync()
                return keep.cpu().numpy()
        else:
            mb, ms = (minicnn.tensor(boxes, device=device),
                      minicnn.tensor(scores, device=device))
            sync = _minicnn_sync(device)

            def run():
                keep = ops.nms(mb, ms, IOU_THRESHOLD)
                sync()
                return keep.numpy()  # copies from the GPU

        def check() -> dict:
            kept = run()
            if not np.array_equal(kept, expected):
                raise AssertionError(f"{name}: {framework} keeps other boxes than torchvision")
            return {"boxes": len(boxes), "kept": len(kept)}

        return run, check

    return {"name": name, "build": build}


# ---------------------------------------------------------------- SSD cases


def ssd_case(name: str, ctor: str, size: int) -> dict:
    """A row: the eval forward of the detection model ``ctor`` (torchvision's name) on
    ``batch`` random images of ``size`` x ``size``, torchvision's weights in both."""

    def build(framework: str, device: str, batch: int):
        torch.manual_seed(0)
        reference = getattr(torchvision.models.detection, ctor)(
            weights=None, weights_backbone=None, num_classes=91).eval()
        images = np.random.default_rng(0).random((batch, 3, size, size)).astype(np.float32)
        if framework == "torch":
            model = reference.to(device)
            inputs = [torch.tensor(im, device=device) for im in images]
            no_grad, sync = torch.no_grad, _torch_sync(device)
        else:
            from minicnn.models import detection

            model = getattr(detection, ctor)(num_classes=91)
            model.load_state_dict({k: v.detach().numpy()
                                   for k, v in reference.state_dict().items()})
            model = model.to(device).eval()
            inputs = [minicnn.tensor(im, device=device) for im in images]
            no_grad, sync = minicnn.no_grad, _minicnn_sync(device)

        def run():
            with no_grad():
                out = model(inputs)
            sync()
            return out

        def check() -> dict:
            return {"images": batch, "detections": [int(o["boxes"].shape[0]) for o in run()]}

        return run, check

    return {"name": name, "build": build, "needs": "minicnn.models.detection." + ctor}


# ---------------------------------------------------------------- RoI cases


def roi_inputs(n_boxes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FPN-like: features ``(2, 256, 50, 50)`` (stride 16 of two 800 x 800 images) and
    ``n_boxes`` rois ``(batch_index, x1, y1, x2, y2)`` of 32-400 px, some off the edges."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((2, 256, 50, 50)).astype(np.float32)
    xy = rng.uniform(-20, 780, (n_boxes, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(32, 400, (n_boxes, 2))], axis=1)
    batch = rng.integers(0, 2, (n_boxes, 1))
    return features, np.concatenate([batch, boxes], axis=1).astype(np.float32)


def roi_case(name: str, op: str, n_boxes: int, output_size: int, backward: bool,
             **kwargs) -> dict:
    """A row: ``ops.<op>`` (roi_align or roi_pool) forward, or forward and backward, beside
    ``torchvision.ops.<op>`` on the same features and boxes (spatial scale 1/16); the check
    compares the outputs and input gradients with torchvision's."""
    kwargs = {"output_size": output_size, "spatial_scale": 1 / 16, **kwargs}

    def build(framework: str, device: str, batch: int):
        features, rois = roi_inputs(n_boxes)
        grad = np.random.default_rng(1).standard_normal(
            (n_boxes, 256, output_size, output_size)).astype(np.float32)
        if framework == "torch":
            x = torch.tensor(features, device=device, requires_grad=backward)
            r, g = torch.tensor(rois, device=device), torch.tensor(grad, device=device)
            fn, sync = getattr(torchvision.ops, op), _torch_sync(device)
        else:
            x = minicnn.tensor(features, device=device, requires_grad=backward)
            r, g = minicnn.tensor(rois, device=device), minicnn.tensor(grad, device=device)
            fn, sync = getattr(ops, op), _minicnn_sync(device)

        def run():
            x.grad = None
            out = fn(x, r, **kwargs)
            if backward:
                out.backward(g)
            sync()
            return out

        def check() -> dict:
            out = run()
            tx = torch.tensor(features, requires_grad=True)
            expected = getattr(torchvision.ops, op)(tx, torch.tensor(rois), **kwargs)
            expected.backward(torch.tensor(grad))
            got = out.detach().cpu().numpy() if framework == "torch" else out.detach().numpy()
            info = {"boxes": n_boxes, "max_abs_err": float(np.abs(got - expected.detach()
                                                                  .numpy()).max())}
            if backward:
                dx = x.grad.cpu().numpy() if framework == "torch" else x.grad.numpy()
                info["grad_max_abs_err"] = float(np.abs(dx - tx.grad.numpy()).max())
            if max(info["max_abs_err"], info.get("grad_max_abs_err", 0.0)) > 1e-3:
                raise AssertionError(f"{name}: {framework} differs from torchvision: {info}")
            return info

        return run, check

    return {"name": name, "build": build}


CASES: list[dict] = [
    nms_case("nms 1k uniform", lambda: uniform_boxes(1_000)),
    nms_case("nms 10k uniform", lambda: uniform_boxes(10_000)),
    nms_case("nms 1k clustered", lambda: clustered_boxes(1_000)),
    nms_case("nms 10k clustered", lambda: clustered_boxes(10_000)),
    ssd_case("ssd300_vgg16 eval", "ssd300_vgg16", 300),
    roi_case("roi_align 7x7 sr2 fwd", "roi_align", 512, 7, False, sampling_ratio=2),
    roi_case("roi_align 7x7 sr2 fwd+bwd", "roi_align", 512, 7, True, sampling_ratio=2),
    roi_case("roi_align 7x7 adaptive fwd+bwd", "roi_align", 512, 7, True, sampling_ratio=-1),
    roi_case("roi_align 14x14 sr2 fwd+bwd (mask)", "roi_align", 256, 14, True,
             sampling_ratio=2, aligned=True),
    roi_case("roi_pool 7x7 fwd+bwd", "roi_pool", 512, 7, True),
    ssd_case("ssdlite320_mobilenet_v3_large eval", "ssdlite320_mobilenet_v3_large", 320),
]


def _missing(case: dict) -> str | None:
    """Why ``case`` cannot run here (minicnn lacks the model), or None."""
    if "needs" not in case:
        return None
    module, _, attr = case["needs"].rpartition(".")
    try:
        loaded = importlib.import_module(module)
    except ImportError as error:
        return f"{module} does not import ({error})"
    return None if hasattr(loaded, attr) else f"{case['needs']} does not exist yet"


# ---------------------------------------------------------------- running


def bench_case(case: dict, device: str, batch: int, rounds: int, warmup: int,
               skip: set[str]) -> dict:
    impls = [(label, b) for label, b in _implementations(device) if label not in skip]
    runs, checks = {}, {}
    for label, b in impls:
        if b is None:
            runs[label], check = case["build"]("torch", device, batch)
        else:
            with minicnn.use_backend(b):
                runs[label], check = case["build"]("minicnn", device, batch)
        checks[label] = check
    times: dict[str, list[float]] = {label: [] for label, _ in impls}
    for r in range(warmup + rounds):
        for label, b in impls:  # interleaved: every implementation once per round
            t = _run(runs[label], b)
            if r >= warmup:
                times[label].append(t)
    rows = {}
    for label, b in impls:
        if b in ("numpy", "numba"):
            with minicnn.use_backend(b):
                info = checks[label]()
        else:
            info = checks[label]()
        rows[label] = {"ms": statistics.median(times[label]) * 1e3,
                       "min_ms": min(times[label]) * 1e3, **info}
    torch_row = rows.get("torch")
    for label, row in rows.items():
        if torch_row and label != "torch":
            row["ratio"] = row["ms"] / torch_row["ms"]
    return {"name": case["name"], "batch": batch, "rounds": rounds, "load_average": _load(),
            "results": rows}


def print_table(results: list[dict]) -> None:
    head = f"{'case':36s} {'impl':14s} {'ms':>10s} {'ratio':>6s}  detail"
    print(head)
    print("-" * len(head))
    for res in results:
        for label, row in res["results"].items():
            detail = ", ".join(f"{k} {v}" for k, v in row.items()
                               if k not in ("ms", "min_ms", "ratio"))
            ratio = f"{row['ratio']:6.2f}" if "ratio" in row else "     -"
            print(f"{res['name']:36s} {label:14s} {row['ms']:10.2f} {ratio}  {detail}")
    print("ratio = minicnn / torchvision (lower is better; 1.0 = as fast as torchvision)")
    loads = [r["load_average"] for r in results if r.get("load_average") is not None]
    if loads:
        print(f"1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f}")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1 image, 2 rounds, no JSON written")
    parser.add_argument("--batch", type=int, default=2, help="images per SSD forward")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--skip", default="", help="comma-separated implementations to skip, "
                        "e.g. minicnn-numpy")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other cases already in the JSON file (with --only)")
    args = parser.parse_args(argv)
    batch, rounds, warmup = (1, 2, 1) if args.quick else (args.batch, args.rounds, 2)
    skip = {s for s in args.skip.split(",") if s}
    results = []
    for case in (c for c in CASES if args.only in c["name"]):
        why = _missing(case)
        if why:
            print(f"skipped: {case['name']}: {why}", flush=True)
            continue
        results.append(bench_case(case, args.device, batch, rounds, warmup, skip))
        print(f"done: {case['name']}", file=sys.stderr, flush=True)
    print_table(results)
    if not args.quick and results:
        write_results(RESULTS / f"{args.device}-detection.json", results,
                      [c["name"] for c in CASES], args.merge,
                      environment=environment(args.device), iou_threshold=IOU_THRESHOLD)
    return results


if __name__ == "__main__":
    main()
