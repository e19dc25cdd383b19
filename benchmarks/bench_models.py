"""Whole models: minicnn beside the same PyTorch model with the same weights.

    python benchmarks/bench_models.py [--rounds 2] [--steps 3] [--device cpu|cuda]
                                      [--only resnet20,resnet50 [--merge]] [--quick]

For each case (a model, an input size and a batch) the script builds the minicnn model
once, saves its weights to a temporary ``.npz`` file, and then, in fresh worker processes
(one per framework and round, alternating minicnn / PyTorch), loads those weights into

* minicnn: the ``minicnn.models`` constructor and ``load_state_dict``;
* PyTorch: the torchvision model of the same name (``resnet18``, ``mobilenet_v2``,
  ``efficientnet_b0``), or for the CIFAR ResNets of He et al. (not in torchvision) the
  small re-implementation below, with the same ``state_dict`` keys;

and times

* **forward**: ``model.eval()`` under ``no_grad``, one batch;
* **train step**: ``model.train()``, forward, cross-entropy, backward, SGD step
  (lr 0.01, momentum 0.9).

On ``--device cuda`` the cases add ResNet-50 at 224x224, batch 32 (``CUDA_CASES``).

One warm-up call of each is not timed (Numba loads or compiles its kernels, CuPy builds
its RawKernels); then the median of ``--steps`` calls. Each worker reports its **peak
resident memory** (``ru_maxrss``: interpreter + libraries + model + the steps) and its
*working* memory, peak RSS minus the RSS just before the first step (activations,
gradients, optimizer state, workspace: what the steps add on top of the model). The
training step runs after the forward passes, so both memory figures are those of
training. The logits of a forward pass of the freshly loaded model (eval mode: deterministic)
are compared between the two frameworks as a check that the same network was timed.

The table gives medians over rounds and the ratios minicnn / PyTorch (lower is better);
``benchmarks/results/<device>-models.json`` gets everything (``--quick``: a smoke run of two
small cases, not written unless ``--write``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
# The environment as the user started the script: this process imports minicnn (to save the
# weights), which sets thread-pool defaults in os.environ; the workers start from this
# copy, so PyTorch runs as its users run it (the minicnn worker sets them again itself).
USER_ENV = dict(os.environ)

# name: (minicnn.models constructor, torch model, input size, batch, num_classes)
CASES = {
    "resnet20-32": ("resnet20", "cifar_resnet20", 32, 32, 10),
    "resnet56-32": ("resnet56", "cifar_resnet56", 32, 32, 10),
    "resnet18-32": ("resnet18", "resnet18", 32, 32, 10),
    "resnet18-224": ("resnet18", "resnet18", 224, 8, 1000),
    "mobilenet_v2-224": ("mobilenet_v2", "mobilenet_v2", 224, 8, 1000),
    "efficientnet_b0-224": ("efficientnet_b0", "efficientnet_b0", 224, 8, 1000),
}
# On a GPU also the ResNet-50 training step at ImageNet size (too slow for 2 CPU cores).
CUDA_CASES = {
    "resnet50-224": ("resnet50", "resnet50", 224, 32, 1000),
}
QUICK_CASES = {
    "resnet20-32": ("resnet20", "cifar_resnet20", 32, 4, 10),
    "mobilenet_v2-64": ("mobilenet_v2", "mobilenet_v2", 64, 2, 1000),
}


def _rss_mib() -> float:
    """The current resident set size (Linux /proc), else the peak so far."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _batch(spec: dict):
    import numpy as np

    rng = np.random.default_rng(0)
    r, n = spec["size"], spec["batch"]
    x = rng.standard_normal((n, 3, r, r)).astype(np.float32)
    y = rng.integers(0, spec["num_classes"], n)
    return x, y


def _time_steps(step, sync, steps: int) -> list[float]:
    step()  # warm-up, not timed
    sync()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    return times


def worker_minicnn(spec: dict) -> dict:
    import minicnn  # noqa: I001  (first, as a user should: it sets OpenBLAS's thread timeout)
    import numpy as np

    import minicnn.nn.functional as F
    from minicnn import optim
    from minicnn.backend import numba_threads
    from minicnn.models import MODELS
    from minicnn.serialization import load_arrays

    device = spec["device"]
    model = MODELS[spec["minicnn"]](num_classes=spec["num_classes"])
    model.load_state_dict(load_arrays(spec["weights"]))
    model = model.to(device)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_np, y_np = _batch(spec)
    x, y = minicnn.tensor(x_np, device=device), minicnn.tensor(y_np, device=device)
    if device == "cuda":
        import cupy

        def sync():
            cupy.cuda.Device().synchronize()
    else:
        def sync():
            pass

    model.eval()  # the check: logits of the freshly loaded model (running stats untouched)
    with minicnn.no_grad():
        logits = model(x).numpy()[0]
    # load every kernel first (Numba compiles per dtype and rank, not per shape) on two
    # images, without an optimizer step, so that the working memory is only the steps'
    model.train()
    F.cross_entropy(model(x[:2]), y[:2]).backward()
    opt.zero_grad()
    rss_before = _rss_mib()
    model.eval()

    def forward():
        with minicnn.no_grad():
            model(x)

    def train_step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    fwd = _time_steps(forward, sync, spec["steps"])
    model.train()
    train = _time_steps(train_step, sync, spec["steps"])
    return {
        "forward_s": statistics.median(fwd),
        "train_step_s": statistics.median(train),
        "rss_before_mib": rss_before,
        "logits": np.asarray(logits, dtype=float).tolist(),
        "backend": minicnn.current_backend().name if device == "cpu" else "cupy",
        "numba_threading_layer": numba_threads.threading_layer(),
    }


def _torch_cifar_resnet(n: int, num_classes: int):
    """He et al.'s CIFAR ResNet (option A shortcuts), minicnn's ``state_dict`` keys."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
            shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride != 1 else x
            if self.extra:
                shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
            return torch.relu(out + shortcut)

    class CifarResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            cin = 16
            for i, (cout, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
                blocks = [Block(cin if j == 0 else cout, cout, stride if j == 0 else 1)
                          for j in range(n)]
                setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
                cin = cout
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean((2, 3)))

    return CifarResNet()


def worker_torch(spec: dict) -> dict:
    import numpy as np
    import torch
    import torchvision

    device = spec["device"]
    name = spec["torch"]
    if name.startswith("cifar_resnet"):
        depth = int(name.removeprefix("cifar_resnet"))
        model = _torch_cifar_resnet((depth - 2) // 6, spec["num_classes"])
    else:
        model = getattr(torchvision.models, name)(num_classes=spec["num_classes"])
    with np.load(spec["weights"], allow_pickle=False) as arrays:
        model.load_state_dict({k: torch.from_numpy(arrays[k]) for k in arrays.files})
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x_np, y_np = _batch(spec)
    x, y = torch.from_numpy(x_np).to(device), torch.from_numpy(y_np).to(device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    model.eval()
    with torch.no_grad():
        logits = model(x)[0].cpu().numpy()
    model.train()  # the same two-image warm-up as minicnn's
    torch.nn.functional.cross_entropy(model(x[:2]), y[:2]).backward()
    opt.zero_grad()
    rss_before = _rss_mib()
    model.eval()

    def forward():
        with torch.no_grad():
            model(x)

    def train_step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    fwd = _time_steps(forward, sync, spec["steps"])
    model.train()
    train = _time_steps(train_step, sync, spec["steps"])
    return {
        "forward_s": statistics.median(fwd),
        "train_step_s": statistics.median(train),
        "rss_before_mib": rss_before,
        "logits": logits.astype(float).tolist(),
        "threads": torch.get_num_threads(),
    }


def run_worker(framework: str, spec: dict) -> dict:
    cmd = [sys.executable, __file__, "--worker", framework, "--spec", json.dumps(spec)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=USER_ENV)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} worker for {spec} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["working_mib"] = result["peak_rss_mib"] - result["rss_before_mib"]
    return result


def save_weights(ctor: str, num_classes: int, path: Path) -> None:
    """Build the minicnn model (seed 0) and write its state_dict: both workers load it."""
    import minicnn
    from minicnn.models import MODELS
    from minicnn.serialization import save_arrays

    minicnn.manual_seed(0)
    model = MODELS[ctor](num_classes=num_classes)
    save_arrays({k: v for k, v in model.state_dict().items()}, path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed calls per worker")
    parser.add_argument("--only", default="",
                        help="only cases whose name contains this (or one of a,b,c)")
    parser.add_argument("--quick", action="store_true",
                        help="two small cases, 1 round, 1 step: a smoke run")
    parser.add_argument("--write", action="store_true", help="write the JSON with --quick too")
    parser.add_argument("--merge", action="store_true",
                        help="keep the other cases of an existing JSON (re-run some cases)")
    parser.add_argument("--worker", choices=("minicnn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        spec = json.loads(args.spec)
        result = (worker_minicnn if args.worker == "minicnn" else worker_torch)(spec)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    cases = QUICK_CASES if args.quick else {
        **CASES, **(CUDA_CASES if args.device == "cuda" else {})}
    wanted = args.only.split(",")
    cases = {k: v for k, v in cases.items() if any(w in k for w in wanted)}
    rounds, steps = (1, 1) if args.quick else (args.rounds, args.steps)
    runs = {case: {"minicnn": [], "torch": []} for case in cases}
    with tempfile.TemporaryDirectory() as tmp:
        specs = {}
        for case, (ctor, torch_name, size, batch, classes) in cases.items():
            weights = Path(tmp) / f"{case}.npz"
            save_weights(ctor, classes, weights)
            specs[case] = {"minicnn": ctor, "torch": torch_name, "size": size, "batch": batch,
                           "num_classes": classes, "device": args.device, "steps": steps,
                           "weights": str(weights)}
        for r in range(rounds):
            for case, spec in specs.items():
                for fw in ("minicnn", "torch"):
                    res = run_worker(fw, spec)
                    runs[case][fw].append(res)
                    print(f"round {r + 1}/{rounds} {case:20s} {fw:8s} forward "
                          f"{1e3 * res['forward_s']:8.1f} ms, train step "
                          f"{1e3 * res['train_step_s']:8.1f} ms, peak RSS "
                          f"{res['peak_rss_mib']:6.0f} MiB (working {res['working_mib']:5.0f})",
                          flush=True)

    keys = ("forward_s", "train_step_s", "peak_rss_mib", "working_mib")
    summary = {}
    print()
    print(f"{'case':20s} {'batch':>5s} | {'forward ms':>19s} {'ratio':>6s} | "
          f"{'train step ms':>19s} {'ratio':>6s} | {'peak RSS MiB':>13s} {'ratio':>6s} | "
          f"{'working MiB':>13s} {'ratio':>6s} | logits")
    print(f"{'':20s} {'':5s} | {'minicnn / torch':>19s} {'':6s} | {'minicnn / torch':>19s}")
    for case, fws in runs.items():
        med = {fw: {k: statistics.median(r[k] for r in rs) for k in keys}
               for fw, rs in fws.items()}
        ratio = {k: med["minicnn"][k] / med["torch"][k] for k in keys}
        a, b = fws["minicnn"][0]["logits"], fws["torch"][0]["logits"]
        scale = max(abs(v) for v in b) or 1.0
        logits_diff = max(abs(u - v) for u, v in zip(a, b, strict=True)) / scale
        summary[case] = {"batch": cases[case][3], "size": cases[case][2], "median": med,
                         "ratio": ratio, "logits_max_rel_diff": logits_diff}
        m, t = med["minicnn"], med["torch"]
        print(f"{case:20s} {cases[case][3]:5d} | {1e3 * m['forward_s']:9.1f} "
              f"{1e3 * t['forward_s']:9.1f} {ratio['forward_s']:5.2f}x | "
              f"{1e3 * m['train_step_s']:9.1f} {1e3 * t['train_step_s']:9.1f} "
              f"{ratio['train_step_s']:5.2f}x | {m['peak_rss_mib']:6.0f} {t['peak_rss_mib']:6.0f} "
              f"{ratio['peak_rss_mib']:5.2f}x | {m['working_mib']:6.0f} {t['working_mib']:6.0f} "
              f"{ratio['working_mib']:5.2f}x | {logits_diff:.1e}")
        if logits_diff > 1e-3:
            print(f"  WARNING: {case}: the logits differ by {logits_diff:.1e} (relative): "
                  f"not the same network?")
    if args.quick and not args.write:
        return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.device}-models.json"
    first = next(iter(runs.values()))
    if args.merge and out.exists():
        old = json.loads(out.read_text())
        summary = {**old.get("cases", {}), **summary}
        runs = {**old.get("runs", {}), **runs}
    out.write_text(json.dumps({
        "benchmark": "models",
        "device": args.device,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "rounds": rounds,
        "steps": steps,
        "backend": first["minicnn"][0]["backend"],
        "torch_threads": first["torch"][0]["threads"],
        "numba_threading_layer": first["minicnn"][0]["numba_threading_layer"],
        "memory": "peak_rss_mib: ru_maxrss of the worker process (whole process, after the "
                  "training steps); working_mib: peak RSS minus the RSS before the first step",
        "cases": summary,
        "runs": runs,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
