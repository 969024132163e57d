"""The package as a user gets it: a compiled core, a README whose examples run."""

import doctest
import importlib.machinery
import subprocess
import sys
from pathlib import Path

import chunk_memo._core

ROOT = Path(__file__).resolve().parent.parent


def test_core_is_a_compiled_extension():
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert chunk_memo._core.__file__.endswith(suffixes)


def test_readme_examples_run():
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_basic_example_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "basic.py")],
                         capture_output=True, text=True, check=True).stdout
    assert "8 points in 4 chunks" in out
    assert "reads chunk 0 at positions [1, 2]" in out
