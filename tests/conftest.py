"""Shared fixtures: a fresh root per test, and a recording exec_fn."""

import pytest


class Recorder:
    """A chunk-level exec_fn that records every chunk it computes."""

    def __init__(self):
        self.calls = []

    def __call__(self, params, **axes):
        self.calls.append({name: list(values) for name, values in axes.items()})
        names = sorted(axes)
        out = [{}]
        for name in names:
            out = [{**point, name: v} for point in out for v in axes[name]]
        return [{"alpha": params.get("alpha"), **point} for point in out]

    @property
    def points(self):
        total = 0
        for call in self.calls:
            n = 1
            for values in call.values():
                n *= len(values)
            total += n
        return total


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def recorder():
    return Recorder()
