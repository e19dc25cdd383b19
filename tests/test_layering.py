"""The package's import layering: every import inside ``minicnn/`` points down the layers.

minicnn is built in layers, each a folder (or a module) with one job. A module may import
modules of its own layer or of a lower one, never of a higher one: when a change seems to
need an upward arrow, the code belongs in another place. The table, bottom to top:

====  ===========================================================  ==========================
rank  modules                                                      extra rule
====  ===========================================================  ==========================
0     ``minicnn.random`` (the one generator)                       imports nothing of minicnn
0     ``minicnn.errors`` (``DataFileError``, for every reader)     imports nothing of minicnn
0     ``minicnn.host_memory`` (glibc's malloc thresholds)          imports nothing of minicnn
0     ``minicnn.backend`` (registry, kernels, geometry)            imports only ``backend``
1     ``minicnn.data`` (datasets, transforms, DataLoader: NumPy)   never ``autograd``
1     ``minicnn.autograd``, ``minicnn.serialization``,
      ``minicnn.cuda`` (device queries)
2     ``minicnn.nn.functional`` (differentiable ops)
3     ``minicnn.nn`` (its ``__init__``, ``init``), ``nn.modules``,
      ``minicnn.optim``, ``minicnn.ops``
4     ``minicnn.models`` (one file per family)                     no other family's ``_names``
5     ``minicnn.metrics``, ``train``, ``viz``, ``compress``,
      ``summary``
5.5   ``minicnn.utils`` (PyTorch's ``torch.utils`` names: a shim
      over ``data`` and ``autograd`` for users)
6     ``minicnn.homework``, ``minicnn.cli``, ``minicnn.__main__``
====  ===========================================================  ==========================

and for every module:

* the package face ``minicnn`` (``minicnn/__init__.py``: what users import) is imported by
  nothing inside the package: ``import minicnn`` and ``from minicnn import <name>`` where
  ``<name>`` is not a subpackage or module are errors (``from minicnn import nn`` imports
  the layer ``minicnn.nn`` and is fine);
* outside ``minicnn.backend``, only the backend's neutral modules are imported: the
  registry ``minicnn.backend``, ``backend.geometry`` and ``backend.xp``, never one backend's
  kernels (``reference``, ``numba_cpu``, ``cupy_gpu``): kernels are reached through the
  registry, so every backend serves every op.

Imports anywhere in a module count (inside functions too), and so does
``importlib.import_module("minicnn....")`` with a literal name. A module missing from the
table is an error too: add new modules to ``LAYERS`` with their rank.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minicnn"

# module-name prefix -> rank; the longest matching prefix decides
LAYERS: dict[str, float] = {
    "minicnn.random": 0,
    "minicnn.errors": 0,
    "minicnn.host_memory": 0,
    "minicnn.backend": 0,
    "minicnn.data": 1,
    "minicnn.autograd": 1,
    "minicnn.serialization": 1,
    "minicnn.cuda": 1,
    "minicnn.nn.functional": 2,
    "minicnn.nn": 3,
    "minicnn.nn.modules": 3,
    "minicnn.optim": 3,
    "minicnn.ops": 3,
    "minicnn.models": 4,
    "minicnn.metrics": 5,
    "minicnn.train": 5,
    "minicnn.viz": 5,
    "minicnn.compress": 5,
    "minicnn.summary": 5,
    "minicnn.baselines": 5,
    "minicnn.utils": 5.5,
    "minicnn.homework": 6,
    "minicnn.cli": 6,
    "minicnn.__main__": 6,
}
FACE = "minicnn"
NEUTRAL_BACKEND = {"minicnn.backend", "minicnn.backend.geometry", "minicnn.backend.xp"}


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rank_of(module: str) -> float | None:
    """The rank of ``module`` (a dotted name in minicnn), or None if the table lacks it."""
    matches = [p for p in LAYERS if _within(module, p)]
    return LAYERS[max(matches, key=len)] if matches else None


def _is_module(name: str, package_dir: Path = PACKAGE) -> bool:
    """Whether the dotted ``name`` (``minicnn.x.y``) is a module or package on disk."""
    path = package_dir.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(module: str, is_package: bool, tree: ast.AST, package_dir: Path):
    """``(line, text, target)`` for every minicnn import in ``tree``; ``target`` is the
    imported module's dotted name, ``FACE`` for a name taken from the package face."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, FACE):
                    yield node.lineno, f"import {alias.name}", alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            if not _within(base, FACE):
                continue
            for alias in node.names:
                text = f"from {'.' * node.level}{node.module or ''} import {alias.name}"
                sub = f"{base}.{alias.name}"
                yield node.lineno, text, sub if _is_module(sub, package_dir) else base
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args
              and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str) and _within(node.args[0].value, FACE)):
            name = node.args[0].value
            yield node.lineno, f"importlib.import_module({name!r})", name


def _private_names(node_text: str) -> list[str]:
    names = node_text.rpartition(" import ")[2]
    return [n for n in names.split(",") if n.strip().startswith("_")]


def check_module(module: str, source: str, where: str = "<text>", is_package: bool = False,
                 package_dir: Path = PACKAGE) -> list[str]:
    """The layering rules ``source`` (the text of module ``module``) breaks, one line each:
    ``where:line: the import -- the rule``."""
    problems = []
    rank = rank_of(module)
    if rank is None and module != FACE:
        return [f"{where}: module {module} is not in the layer table LAYERS; add it with its "
                f"rank"]
    for line, text, target in _imports(module, is_package, ast.parse(source), package_dir):
        def fail(rule: str, line=line, text=text) -> None:
            problems.append(f"{where}:{line}: `{text}` -- {rule}")

        if module == FACE:  # the face may import any layer
            continue
        if target == FACE:
            fail("imports the package face `minicnn`; import the layer that defines the "
                 "name (e.g. `from minicnn.autograd.ops import cat`)")
            continue
        target_rank = rank_of(target)
        if target_rank is None:
            fail(f"{target} is not in the layer table LAYERS")
        elif target_rank > rank:
            fail(f"{module} (rank {rank}) imports {target} (rank {target_rank}): imports "
                 f"must point down the layers")
        if any(_within(module, m) for m in ("minicnn.random", "minicnn.errors",
                                             "minicnn.host_memory")):
            fail(f"{module} imports nothing of minicnn")
        elif _within(module, "minicnn.backend") and not _within(target, "minicnn.backend"):
            fail("minicnn.backend imports nothing of minicnn outside minicnn.backend")
        elif (not _within(module, "minicnn.backend") and _within(target, "minicnn.backend")
              and target not in NEUTRAL_BACKEND):
            fail(f"only the backend's neutral modules {sorted(NEUTRAL_BACKEND)} are imported "
                 f"outside minicnn.backend; reach kernels through the registry (backend_of)")
        if _within(module, "minicnn.data") and _within(target, "minicnn.autograd"):
            fail("minicnn.data never imports minicnn.autograd (NumPy only; tensors are made "
                 "at the loader's edge)")
        if (_within(module, "minicnn.models") and _within(target, "minicnn.models")
                and target != module and _private_names(text)):
            fail("a model file imports another module's private helper; shared blocks go "
                 "to nn.modules, ops or a shared models module")
    return problems


def _package_modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT)
        is_package = path.name == "__init__.py"
        parts = rel.with_suffix("").parts
        yield ".".join(parts[:-1] if is_package else parts), path, is_package


def test_every_import_points_down_the_layers():
    """Every module of the package, against the table and rules above."""
    problems = []
    modules = list(_package_modules())
    assert len(modules) > 50, f"found only {len(modules)} modules under {PACKAGE}"
    for module, path, is_package in modules:
        problems += check_module(module, path.read_text(encoding="utf-8"),
                                 str(path.relative_to(ROOT)), is_package)
    assert not problems, "layering broken:\n" + "\n".join(problems)


# ---------------------------------------------------------------- the checker itself


@pytest.mark.parametrize("module,source,rule", [
    ("minicnn.nn.functional.conv", "from minicnn.nn.modules.conv import Conv2d\n",
     "imports must point down"),
    ("minicnn.nn.functional.conv", "def f():\n    from minicnn import nn\n    return nn\n",
     "imports must point down"),
    ("minicnn.models.resnet", "import minicnn.train.trainer\n", "imports must point down"),
    ("minicnn.autograd.tensor", "from ..nn import functional\n", "imports must point down"),
    ("minicnn.models.densenet", "import minicnn\n", "package face"),
    ("minicnn.summary", "from minicnn import no_grad\n", "package face"),
    ("minicnn.nn.functional.conv", "from minicnn.backend.reference import im2col\n",
     "neutral modules"),
    ("minicnn.backend.reference", "from minicnn.random import generator\n",
     "outside minicnn.backend"),
    ("minicnn.random", "from minicnn.backend import xp\n", "imports nothing of minicnn"),
    ("minicnn.data.dataloader", "from minicnn.autograd.tensor import Tensor\n",
     "never imports minicnn.autograd"),
    ("minicnn.models.vgg", "from minicnn.models.resnet import _make_layer\n",
     "private helper"),
    ("minicnn.backend", "import importlib\nimportlib.import_module('minicnn.nn')\n",
     "imports must point down"),
    ("minicnn.newthing", "x = 1\n", "not in the layer table"),
])
def test_checker_fails_on_a_deliberate_violation(module, source, rule):
    problems = check_module(module, source, "synthetic.py")
    assert problems, f"no problem found in {source!r}"
    assert rule in problems[0], problems
    assert problems[0].startswith("synthetic.py:"), problems  # names the file and line


@pytest.mark.parametrize("module,source", [
    ("minicnn.models.densenet", "from minicnn import nn\nfrom minicnn.autograd.ops import cat\n"),
    ("minicnn.nn.functional.conv", "from minicnn.backend import backend_of\n"
                                   "from minicnn.backend.geometry import conv_output_size\n"),
    ("minicnn.nn.modules.conv", "from minicnn.nn import functional as F\n"),
    ("minicnn.backend", "import importlib\nimportlib.import_module('minicnn.backend.xp')\n"),
    ("minicnn.cli", "from minicnn.train import Trainer\nfrom minicnn import data\n"),
    ("minicnn", "from minicnn.summary import summary\nfrom minicnn.cli import main\n"),
])
def test_checker_accepts_downward_imports(module, source):
    assert check_module(module, source, "synthetic.py") == []


def test_checker_names_file_line_import_and_rule():
    [problem] = check_module("minicnn.models.resnet", "x = 1\nfrom minicnn.viz import plot\n",
                             "minicnn/models/resnet.py")
    assert problem.startswith("minicnn/models/resnet.py:2: `from minicnn.viz import plot` -- ")
    assert "minicnn.models (rank 4)" not in problem  # the module itself, not its prefix
    assert "minicnn.models.resnet (rank 4) imports minicnn.viz (rank 5)" in problem
