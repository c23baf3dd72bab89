"""Supervised read-out of an encoder (lewm_jax.analysis.readout, experiments.readout)."""

import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs.common import load_config
from lewm_jax.analysis.probe import split_by_episode
from lewm_jax.analysis.readout import fit_readout
from lewm_jax.data.collect import collect_episodes
from lewm_jax.envs import make

MODEL = load_config("experiments/configs/lewm.py:test").model


@pytest.fixture(scope="module")
def two_room():
    env, params = make("two_room", image_size=32)
    return collect_episodes(env, params, env.expert_policy, jax.random.key(0), 40, 40)


def mean_r(report):
    return np.mean([report["readout"][n]["pearson_r"] for n in report["names"]])


def test_a_trained_read_out_finds_the_agent_and_an_untrained_one_does_not(two_room):
    key = jax.random.key(1)
    trained = fit_readout(two_room, "two_room", model_config=MODEL, key=key, steps=150, batch=32)
    assert trained["names"] == ["agent_x", "agent_y"] and trained["encoder"] == "Mu/8"
    # Scored on the held-out episodes of the probes' split under the same key.
    _, test = split_by_episode(jax.random.split(key)[0], two_room)
    assert trained["test_frames"] == len(test) and trained["test_episodes"] == 8
    barely = fit_readout(two_room, "two_room", model_config=MODEL, key=key, steps=1, batch=32)
    assert mean_r(trained) > 0.85 and mean_r(barely) < 0.6


def test_bad_input_is_one_line(two_room, tmp_path):
    with pytest.raises(ValueError, match="steps and batch must be >= 1, got 0 and 32"):
        fit_readout(
            two_room, "two_room", model_config=MODEL, key=jax.random.key(0), steps=0, batch=32
        )
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    cmd = [sys.executable, "-m", "experiments.readout", "--config=experiments/configs/lewm.py:test"]
    done = subprocess.run([*cmd, f"--out={existing}"], capture_output=True, text=True)
    assert done.returncode != 0 and "expected a .json path that does not exist" in done.stderr
    assert existing.read_text() == "{}"
    done = subprocess.run(
        [*cmd, "--config.model.encoder=Mu/5", f"--out={tmp_path / 'x.json'}"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "not a multiple of the patch size 5" in done.stderr
