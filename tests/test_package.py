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


def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False)
    assert result.attempted > 20
    assert result.failed == 0


def test_basic_example_runs_and_reuses_on_the_second_run(tmp_path):
    command = [sys.executable, str(ROOT / "examples" / "basic.py")]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "first run: executed 4 of 4 chunks, reused 0" in first.stdout
    assert (tmp_path / ".chunk_memo" / "catalog.sqlite").is_file()
    second = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "first run: executed 0 of 4 chunks, reused 4" in second.stdout
    assert "after adding s=5, 6: executed 0 of 4 chunks, reused 4" in second.stdout
