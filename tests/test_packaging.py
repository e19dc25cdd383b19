"""The package metadata: the version is written once, in ``minicnn/__init__.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

import minicnn

ROOT = Path(__file__).resolve().parents[1]


def test_version_has_one_source():
    """pyproject.toml declares the version dynamic and setuptools reads minicnn.__version__
    (without importing minicnn), so a release changes one line."""
    pyprojecttoml = pytest.importorskip("setuptools.config.pyprojecttoml")
    path = ROOT / "pyproject.toml"
    raw = pyprojecttoml.read_configuration(path, expand=False)
    assert "version" not in raw["project"], "pyproject.toml writes the version a second time"
    assert "version" in raw["project"]["dynamic"]
    assert raw["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "minicnn.__version__"}
    built = pyprojecttoml.read_configuration(path, expand=True)["project"]["version"]
    assert built == minicnn.__version__
    assert isinstance(minicnn.__version__, str) and minicnn.__version__.count(".") == 2
