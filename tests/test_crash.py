"""A bounded number of crash-injection trials (the harness runs hundreds by hand)."""

import random

import pytest

import crash_harness


@pytest.mark.parametrize("seed", [11, 12, 13, 14, 15, 16])
def test_a_killed_sweep_leaves_a_sound_root(tmp_path, seed):
    outcome = crash_harness.trial(random.Random(seed), str(tmp_path))
    assert outcome["integrity"] == "ok", outcome
    assert outcome["wrong_results"] == 0, outcome
    assert outcome["reran_only_missing"], outcome
    assert outcome["complete_after"], outcome


def test_the_harness_command_counts_trials(capsys):
    assert crash_harness.main(["--trials", "2", "--seed", "3"]) == 0
    assert "2 trials" in capsys.readouterr().out
