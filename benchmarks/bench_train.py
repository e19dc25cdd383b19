"""One epoch of the default ``minicnn train`` beside the same model and loop in PyTorch.

    python benchmarks/bench_train.py [--rounds 3] [--device cpu|cuda] [--quick]

Each framework trains the default small residual CNN (``minicnn.models.small_resnet``,
rebuilt layer for layer in PyTorch below) for one epoch on the digits training set
(1,437 images, batch 64, Adam + OneCycle), in its own fresh process so that peak memory
(max RSS) is measured separately. Rounds alternate minicnn / PyTorch; the table gives
medians of images/s, their ratio, and the peak-memory ratio. Results go to
``benchmarks/results/<device>-train.json``.

The images are prepared once by this script and handed to both workers in a file, so the
PyTorch worker never imports minicnn: ``import minicnn`` changes process-wide settings
(glibc's malloc thresholds, see ``minicnn/host_memory.py``), and PyTorch is timed as its
users run it.
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
# The environment as the user started the script (before this process imports minicnn,
# which sets thread-pool defaults in os.environ): the workers start from it.
USER_ENV = dict(os.environ)


def save_data(quick: bool, path: Path) -> None:
    """The digits training images, standardized, and labels -> ``path`` (.npz)."""
    import numpy as np

    from minicnn.data import digits

    train = digits(True)
    n = 256 if quick else len(train)
    x = train.images[:n]
    x = (x - x.mean()) / x.std()
    np.savez(path, x=x.astype("float32"), y=train.labels[:n])


def _data(path: str):
    import numpy as np

    with np.load(path, allow_pickle=False) as arrays:
        return arrays["x"], arrays["y"]


def worker_minicnn(device: str, data: str, batch: int) -> dict:
    import minicnn  # noqa: I001  (first, as a user should: it sets OpenBLAS's thread timeout)
    import numpy as np

    import minicnn.nn.functional as F
    from minicnn import optim
    from minicnn.backend import numba_threads
    from minicnn.models import small_resnet

    x, y = _data(data)
    minicnn.manual_seed(0)
    model = small_resnet().to(device)
    opt = optim.Adam(model.parameters(), lr=0.01)
    steps = len(x) // batch
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps + 1)
    order = np.random.default_rng(0).permutation(len(x))
    # warm-up step (Numba compiles or loads its cache; CuPy builds kernels)
    loss = F.cross_entropy(
        model(minicnn.tensor(x[:batch], device=device)), minicnn.tensor(y[:batch], device=device)
    )
    loss.backward()
    opt.zero_grad()
    start = time.perf_counter()
    for s in range(steps):
        idx = order[s * batch : (s + 1) * batch]
        xb, yb = minicnn.tensor(x[idx], device=device), minicnn.tensor(y[idx], device=device)
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
    loss.item()
    if device == "cuda":
        import cupy

        cupy.cuda.Device().synchronize()
    seconds = time.perf_counter() - start
    return {
        "images_per_s": steps * batch / seconds,
        "seconds": seconds,
        "backend": minicnn.current_backend().name if device == "cpu" else "cupy",
        "numba_threading_layer": numba_threads.threading_layer(),
    }


def worker_torch(device: str, data: str, batch: int) -> dict:
    import numpy as np
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    w = 16
    model = nn.Sequential(
        nn.Conv2d(1, w, 3, 1, 1, bias=False),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        Block(w, w, 1),
        Block(w, 2 * w, 2),
        Block(2 * w, 4 * w, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, 10),
    ).to(device)
    x, y = _data(data)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    steps = len(x) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=steps + 1)
    order = np.random.default_rng(0).permutation(len(x))
    loss = nn.functional.cross_entropy(
        model(torch.tensor(x[:batch], device=device)), torch.tensor(y[:batch], device=device)
    )
    loss.backward()
    opt.zero_grad()
    start = time.perf_counter()
    for s in range(steps):
        idx = order[s * batch : (s + 1) * batch]
        xb, yb = torch.tensor(x[idx], device=device), torch.tensor(y[idx], device=device)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        sched.step()
    loss.item()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "images_per_s": steps * batch / seconds,
        "seconds": seconds,
        "threads": torch.get_num_threads(),
    }


def run_worker(framework: str, device: str, data: Path, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", framework, "--device", device,
           "--batch", str(batch), "--data", str(data)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=USER_ENV)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="256 images, 1 round: a smoke run")
    parser.add_argument("--worker", choices=("minicnn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        fn = worker_minicnn if args.worker == "minicnn" else worker_torch
        result = fn(args.device, args.data, args.batch)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    rounds = 1 if args.quick else args.rounds
    runs = {"minicnn": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits.npz"
        save_data(args.quick, data)
        for r in range(rounds):
            for fw in ("minicnn", "torch"):
                runs[fw].append(run_worker(fw, args.device, data, args.batch))
                print(
                    f"round {r + 1}/{rounds} {fw:8s} {runs[fw][-1]['images_per_s']:8.1f} "
                    f"img/s, peak RSS {runs[fw][-1]['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    med = {
        fw: {k: statistics.median(r[k] for r in rs) for k in ("images_per_s", "peak_rss_mib")}
        for fw, rs in runs.items()
    }
    speed = med["minicnn"]["images_per_s"] / med["torch"]["images_per_s"]
    memory = med["minicnn"]["peak_rss_mib"] / med["torch"]["peak_rss_mib"]
    print()
    print(f"{'':10s} {'images/s':>10s} {'peak RSS MiB':>13s}")
    for fw in ("minicnn", "torch"):
        print(f"{fw:10s} {med[fw]['images_per_s']:10.1f} {med[fw]['peak_rss_mib']:13.0f}")
    print(f"ratio minicnn/PyTorch: speed {speed:.2f}x, peak memory {memory:.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{args.device}-train.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "train",
                "device": args.device,
                "machine": platform.processor() or platform.machine(),
                "date": time.strftime("%Y-%m-%d"),
                "quick": args.quick,
                "batch": args.batch,
                "rounds": rounds,
                "median": med,
                "speed_ratio": speed,
                "memory_ratio": memory,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
