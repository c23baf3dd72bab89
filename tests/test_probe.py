"""Physical-probe tests: NumPy references, nonlinear fits, targets, splits, one end-to-end run."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs.lewm import get_config
from lewm_jax.analysis import probe
from lewm_jax.data.collect import collect_episodes
from lewm_jax.data.episodes import Episodes
from lewm_jax.envs import make
from lewm_jax.models import build_model


def _linear_data(n=400, d=12, p=3, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, d) + rng.normal(size=d)
    w, b = rng.normal(size=(d, p)), rng.normal(size=p)
    return x.astype(np.float32), (x @ w + b + noise * rng.normal(size=(n, p))).astype(np.float32)


def _episodes(lengths, state_dim=2):
    n = int(sum(lengths))
    ep_len = np.asarray(lengths, np.int64)
    return Episodes(
        pixels=np.zeros((n, 4, 4, 3), np.uint8),
        actions=np.zeros((n, 2), np.float32),
        ep_offset=np.concatenate([[0], np.cumsum(ep_len)[:-1]]).astype(np.int64),
        ep_len=ep_len,
        state=np.arange(n * state_dim, dtype=np.float32).reshape(n, state_dim),
    )


def test_ridge_matches_numpy():
    x, y = _linear_data()
    l2 = 0.05
    params = probe.ridge_probe_fit(x, y, l2=l2)
    # Reference: augmented least squares on standardised inputs, bias column unpenalised.
    xs = (x - x.mean(0)) / x.std(0)
    n, d = xs.shape
    a = np.concatenate([np.c_[xs, np.ones(n)], np.c_[np.sqrt(n * l2) * np.eye(d), np.zeros(d)]])
    ref = np.linalg.lstsq(a, np.concatenate([y, np.zeros((d, y.shape[1]))]), rcond=None)[0]
    np.testing.assert_allclose(params["w"], ref[:d], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(params["b"], ref[d], rtol=1e-4, atol=1e-4)
    # With a vanishing penalty it is ordinary least squares on the raw inputs.
    ols = np.linalg.lstsq(np.c_[x, np.ones(n)], y, rcond=None)[0]
    pred = probe.ridge_probe_predict(probe.ridge_probe_fit(x, y, l2=0.0), x)
    np.testing.assert_allclose(pred, np.c_[x, np.ones(n)] @ ols, atol=2e-3)


def test_mlp_beats_ridge_on_nonlinear_target():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1200, 8)).astype(np.float32)
    u = x @ rng.normal(size=(8, 2)) / np.sqrt(8)
    y = np.sin(1.5 * u).astype(np.float32)
    train, test = slice(0, 1000), slice(1000, None)
    ridge = probe.ridge_probe_fit(x[train], y[train])
    mlp = probe.mlp_probe_fit(jax.random.key(0), x[train], y[train], steps=500, lr=1e-2, batch=128)
    mse_ridge = np.mean(np.square(probe.ridge_probe_predict(ridge, x[test]) - y[test]))
    mse_mlp = np.mean(np.square(probe.mlp_probe_predict(mlp, x[test]) - y[test]))
    assert mse_mlp < 0.3 * mse_ridge, (mse_mlp, mse_ridge)


def test_metrics_match_numpy():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(50, 3))
    pred = y + rng.normal(size=(50, 3)) * np.array([0.1, 1.0, 3.0])
    out = probe.probe_metrics(pred, y, ["a", "b", "c"])
    for j, name in enumerate("abc"):
        assert out[name]["mse"] == pytest.approx(np.mean((pred[:, j] - y[:, j]) ** 2))
        assert out[name]["pearson_r"] == pytest.approx(np.corrcoef(pred[:, j], y[:, j])[0, 1])
    assert np.isnan(probe.probe_metrics(np.ones((4, 1)), y[:4, :1], ["a"])["a"]["pearson_r"])


def test_physical_targets():
    two_room = np.array([[10.0, 20.0], [30.0, 40.0]])
    y, names = probe.physical_targets("TwoRoom-v0", two_room)
    assert names == ["agent_x", "agent_y"] and y.dtype == np.float32
    np.testing.assert_array_equal(y, two_room)
    assert probe.physical_targets("two_room", two_room)[1] == names

    push_t = np.array([[1.0, 2.0, 3.0, 4.0, np.pi / 2, 9.0, 9.0]])
    y, names = probe.physical_targets("PushT-v0", push_t)
    assert names == ["agent_x", "agent_y", "block_x", "block_y"] + [
        "block_angle_sin",
        "block_angle_cos",
    ]
    np.testing.assert_allclose(y, [[1.0, 2.0, 3.0, 4.0, 1.0, 0.0]], atol=1e-6)

    reacher = np.array([[np.pi, -np.pi / 2, 0.3, 0.4]])
    y, names = probe.physical_targets("reacher", reacher)
    assert names == ["shoulder_sin", "shoulder_cos", "wrist_sin", "wrist_cos"]
    np.testing.assert_allclose(y, [[0.0, -1.0, -1.0, 0.0]], atol=1e-6)


def test_physical_targets_of_host_environments_read_their_named_columns():
    state = np.arange(2 * 41, dtype=np.float32).reshape(2, 41)  # the Cube's qpos then qvel
    y, names = probe.physical_targets("lewm/CubeOGB-v0", state)
    assert names == ["cube_x", "cube_y", "cube_z", "gripper"]
    np.testing.assert_array_equal(y, state[:, [14, 15, 16, 6]])
    with pytest.raises(ValueError, match=r"P > 16"):
        probe.physical_targets("cube", state[:, :16])
    reacher = np.array([[np.pi, -np.pi / 2, 0.3, 0.4]])  # dm_control's: leading columns
    y, names = probe.physical_targets("lewm/ReacherDMC-v0", reacher)
    assert names == ["shoulder_sin", "shoulder_cos", "wrist_sin", "wrist_cos"]
    np.testing.assert_allclose(y, [[0.0, -1.0, -1.0, 0.0]], atol=1e-6)


def test_split_never_shares_an_episode():
    episodes = _episodes([5, 0, 7, 3, 9, 4, 6, 2, 8, 1])
    train, test = probe.split_by_episode(jax.random.key(3), episodes, train_fraction=0.7)
    ep_of_frame = np.repeat(np.arange(10), episodes.ep_len)
    assert not set(ep_of_frame[train]) & set(ep_of_frame[test])
    np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(45))
    assert len(set(ep_of_frame[test])) in (2, 3)  # the empty episode has no frames
    again = probe.split_by_episode(jax.random.key(3), episodes, train_fraction=0.7)
    np.testing.assert_array_equal(again[0], train)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: probe.ridge_probe_fit(np.zeros((5, 3)), np.zeros((4, 2))), r"\(N=5, P\)"),
        (lambda: probe.ridge_probe_fit(np.zeros(5), np.zeros((5, 2))), r"x must have shape"),
        (lambda: probe.ridge_probe_fit(np.zeros((1, 3)), np.zeros((1, 2))), "at least 2"),
        (lambda: probe.ridge_probe_fit(np.ones((4, 3)), np.ones((4, 2)), l2=-1.0), "l2"),
        (
            lambda: probe.mlp_probe_fit(jax.random.key(0), np.ones((4, 3)), np.ones(4)),
            r"y must have shape",
        ),
        (
            lambda: probe.mlp_probe_fit(
                jax.random.key(0), np.ones((4, 3)), np.ones((4, 1)), steps=0
            ),
            "steps",
        ),
        (lambda: probe.physical_targets("CartPole-v1", np.zeros((3, 2))), "unknown env_name"),
        (lambda: probe.physical_targets("PushT-v0", np.zeros((3, 2))), r"P > 4"),
        (lambda: probe.probe_metrics(np.zeros((3, 2)), np.zeros((3, 1)), ["a"]), "pred"),
        (lambda: probe.probe_metrics(np.zeros((3, 2)), np.zeros((3, 2)), ["a"]), "Q=2"),
        (lambda: probe.split_by_episode(jax.random.key(0), _episodes([4])), "2 episodes"),
        (
            lambda: probe.split_by_episode(jax.random.key(0), _episodes([4, 4]), train_fraction=1),
            "train_fraction",
        ),
    ],
)
def test_bad_inputs_raise_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_predict_checks_width():
    params = probe.ridge_probe_fit(*_linear_data(n=20, d=4))
    with pytest.raises(ValueError, match=r"\(N, D=4\)"):
        probe.ridge_probe_predict(params, np.zeros((3, 5)))


def test_run_probes_end_to_end():
    config = get_config("test")
    side = 32
    model = build_model(config.model, image_size=side)
    pixels, actions = jnp.zeros((1, 4, side, side, 3), jnp.uint8), jnp.zeros((1, 4, 2))
    variables = jax.jit(model.init)(jax.random.key(0, impl="rbg"), pixels, actions)
    env, env_params = make("TwoRoom-v0", image_size=side)
    episodes = collect_episodes(
        env, env_params, env.expert_policy, jax.random.key(1), num_episodes=6, max_steps=20
    )
    report = probe.run_probes(
        model,
        variables,
        episodes,
        "two_room",
        key=jax.random.key(2),
        mlp_settings=dict(steps=50, hidden=32, batch=32),
        encode_batch=32,
    )
    assert report["env"] == "TwoRoom-v0" and report["names"] == ["agent_x", "agent_y"]
    assert report["train_episodes"] + report["test_episodes"] == 6
    assert report["train_frames"] + report["test_frames"] == len(episodes.pixels)
    for kind in ("linear", "mlp"):
        for name in report["names"]:
            assert np.isfinite(report[kind][name]["mse"])
            assert -1.0 <= report[kind][name]["pearson_r"] <= 1.0
    with pytest.raises(ValueError, match="state"):
        probe.run_probes(
            model,
            variables,
            dataclasses.replace(episodes, state=None),
            "two_room",
            key=jax.random.key(0),
        )
