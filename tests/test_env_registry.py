"""The environment registry: the base contract of every registered env, and a fourth env.

``Dot`` below is defined and registered in this file only (one ``register`` line); the
rest of the test collects a dataset in it, trains on it, plans in it and probes it through
the ordinary entry points, none of which names it.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment

from experiments.configs.lewm import get_config
from lewm_jax import envs
from lewm_jax.analysis import probe
from lewm_jax.data import datasets
from lewm_jax.envs import base, render
from lewm_jax.planning.evaluate import evaluate_planning
from lewm_jax.run import train_and_evaluate
from lewm_jax.training import run_dir

SIZE = 32


@struct.dataclass
class DotState(environment.EnvState):
    pos: jax.Array  # (2,) in the unit square
    goal: jax.Array  # (2,)
    time: int


@struct.dataclass
class DotParams(base.EnvParams):
    max_steps_in_episode: int = 40
    terminate_on_success: bool = False  # full-length episodes, so every clip fits
    speed: float = 0.05
    success_radius: float = 0.1
    expert_noise: float = 0.5


class Dot(base.PixelEnv):
    """A black dot moved by ``speed * a`` in the unit square, towards a goal position."""

    env_id = "Dot-v0"
    probe_targets = ("x", "y")

    def __init__(self, image_size: int = 64):
        super().__init__(image_size)
        self._xs, self._ys, self._edge = render.pixel_grid(image_size, 0.0, 1.0)

    @property
    def default_params(self) -> DotParams:
        return DotParams()

    def physical_state(self, state: DotState) -> jax.Array:
        return state.pos.astype(jnp.float32)

    def render_physical(self, physical_state: jax.Array) -> jax.Array:
        sdf = render.disc_sdf(self._xs, self._ys, physical_state[:2], 0.12)
        img = jnp.full(self.obs_shape, 255.0, jnp.float32)
        return render.to_uint8(render.composite(img, render.coverage(sdf, self._edge), 0.0))

    def is_success(self, physical_state, goal_state, params: DotParams) -> jax.Array:
        return jnp.linalg.norm(physical_state[:2] - goal_state[:2]) < params.success_radius

    def reset_to_state(self, key, physical_state, goal_state, params: DotParams):
        del key
        pos, goal = (jnp.asarray(v, jnp.float32)[:2] for v in (physical_state, goal_state))
        state = DotState(pos=pos, goal=goal, time=0)
        return self.get_obs(state), state

    def reset_env(self, key, params: DotParams):
        start, goal = jax.random.uniform(key, (2, 2), minval=0.1, maxval=0.9)
        return self.reset_to_state(key, start, goal, params)

    def step_env(self, key, state: DotState, action, params: DotParams):
        del key
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        pos = jnp.clip(state.pos + params.speed * action, 0.0, 1.0)
        state = state.replace(pos=pos, time=state.time + 1)
        return self.transition(state, -jnp.linalg.norm(pos - state.goal), params)

    def expert_policy(self, key, state: DotState, params: DotParams) -> jax.Array:
        to = state.goal - state.pos
        direction = to / jnp.maximum(jnp.linalg.norm(to), 1e-6)
        noise = params.expert_noise * jax.random.normal(key, (2,))
        return jnp.clip(direction + noise, -1.0, 1.0)


envs.register("dot", "Dot-v0", Dot)


def test_registry_lookups_and_idempotent_register():
    assert envs.env_ids()[:3] == ("TwoRoom-v0", "PushT-v0", "Reacher-v0")
    assert envs.dataset_names()[:3] == ("two_room", "push_t", "reacher")
    assert "Dot-v0" in envs.env_ids() and envs.env_id("dot") == "Dot-v0"
    assert envs.dataset_name("Dot-v0") == "dot" and envs.env_class("dot") is Dot
    assert envs.env_class("two_room").__name__ == "TwoRoom"
    assert envs.register("dot", "Dot-v0", Dot) == envs.spec("Dot-v0")  # the same entry again
    # Everything that lists datasets or environments reads the registry when called.
    assert datasets.ENVS["dot"] == "Dot-v0" and "dot" in datasets.dataset_names()
    assert get_config("test,env=dot").planning.enabled
    env, params = envs.make("dot", image_size=SIZE)
    assert isinstance(env, Dot) and isinstance(params, DotParams)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: envs.register("dot", "Dot-v1", Dot), "conflicts with registered"),
        (lambda: envs.register("dots", "Dot-v0", Dot), "conflicts with registered"),
        (lambda: envs.register("x", "X-v0", "no_colon"), "module:Class"),
        (lambda: envs.make("Nope-v0"), "unknown environment 'Nope-v0'"),
        (lambda: envs.env_id("marble"), "unknown environment 'marble'"),
        (lambda: get_config("test,env=marble"), "unknown env 'marble'"),
    ],
)
def test_bad_registrations_and_lookups_give_one_line_errors(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    assert "Dot-v1" not in envs.env_ids() and "dots" not in envs.dataset_names()


def test_one_registry_holds_both_kinds_of_environment():
    from lewm_jax.envs.base import PixelEnv
    from lewm_jax.envs.host_env import HostEnv

    host = ("lewm/ReacherDMC-v0", "lewm/CubeOGB-v0")
    assert envs.env_ids("host") == host and not set(host) & set(envs.env_ids())
    assert set(envs.env_ids(None)) == set(envs.env_ids()) | set(host)
    assert envs.is_host_env("cube") and envs.is_host_env("lewm/CubeOGB-v0")
    assert not envs.is_host_env("push_t") and envs.is_host_env("ns/Unregistered-v0")
    for spec in envs.specs("host"):
        cls = envs.env_class(spec.env_id)  # imports the wrapper, not its simulator
        assert issubclass(cls, HostEnv) and cls.env_id == spec.env_id
        # The method names of the JAX contract.
        for name in ("physical_state", "is_success", "expert_policy", "render"):
            assert callable(getattr(cls, name)) and callable(getattr(PixelEnv, name))
    # The config's file datasets of host environments come from the registry.
    c = get_config("test,env=reacher_dmc")
    assert (c.data.name, c.data.env, c.data.action_dim) == ("hdf5", "lewm/ReacherDMC-v0", 2)
    c = get_config("test,env=cube")
    assert (c.data.name, c.data.env, c.data.action_dim) == ("hdf5", "lewm/CubeOGB-v0", 5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="gpu"), "unknown environment kind 'gpu'"),
        (dict(kind="host", action_dim=2), "host ids are namespaced"),
        (dict(kind="host"), "needs action_dim >= 1, got None"),
    ],
)
def test_bad_host_registrations_fail_in_one_line(kwargs, match):
    env_id = "ns/Bad-v0" if kwargs == dict(kind="host") else "Bad-v0"
    with pytest.raises(ValueError, match=match) as info:
        envs.register("bad", env_id, "m:C", **kwargs)
    assert "\n" not in str(info.value) and "bad" not in envs.dataset_names(None)


def test_a_host_environment_is_not_made_as_a_jax_one():
    with pytest.raises(ValueError, match="'cube' is a host environment; step it with"):
        envs.make("cube")


@pytest.fixture(scope="module", params=envs.env_ids())
def registered(request):
    env, params = envs.make(request.param, image_size=SIZE)
    return request.param, env, params


def test_base_contract(registered):
    name, env, params = registered
    assert isinstance(env, base.PixelEnv) and env.name == name == type(env).env_id
    assert envs.env_id(envs.dataset_name(name)) == name
    a = env.action_dim
    assert env.num_actions == a and env.action_space(params).shape == (a,)
    space = env.observation_space(params)
    assert space.shape == env.obs_shape == (SIZE, SIZE, 3) and space.dtype == jnp.uint8
    obs, state = jax.jit(env.reset)(jax.random.key(0), params)
    physical, goal = env.physical_state(state), env.goal_state(state)
    assert physical.dtype == goal.dtype == jnp.float32 and physical.shape == goal.shape
    goal_frame = env.render_goal(state, params)
    assert goal_frame.shape == obs.shape == (SIZE, SIZE, 3)
    assert goal_frame.dtype == obs.dtype == jnp.uint8
    np.testing.assert_array_equal(goal_frame, env.render_physical(goal))
    # The success accessor: a state meets itself as goal, and the flags agree with it.
    success = env.is_success(physical, goal, params)
    assert bool(env.is_success(goal, goal, params)) and success.shape == ()
    assert env.is_terminated(state, params) == (success & params.terminate_on_success)
    assert isinstance(params.terminate_on_success, bool)
    for policy in (env.random_policy, env.expert_policy):
        action = policy(jax.random.key(1), state, params)
        assert action.shape == (a,) and bool(jnp.all(jnp.abs(action) <= 1.0))
    # Probe targets name leading physical columns; angles are among them.
    assert 0 < len(env.probe_targets) <= physical.shape[0]
    assert set(env.angle_targets) <= set(env.probe_targets)
    if not env.recolourable:
        with pytest.raises(ValueError, match="cannot recolour"):
            env.render(state, params, colour=(0.0, 0.0, 255.0))


def test_jits_once_with_contract_shapes(registered):
    # Moved here from test_envs.py and test_push_t.py, for every registered env.
    _, env, params = registered
    chex.clear_trace_counter()  # the counter is keyed by code location, shared by all envs

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, action):
        return env.step(key, state, action, params)

    obs, state = env.reset(jax.random.key(0), params)
    p = env.physical_state(state).shape[0]
    assert obs.shape == (SIZE, SIZE, 3) and obs.dtype == jnp.uint8
    assert env.action_space(params).shape == (2,)
    assert env.observation_space(params).shape == (SIZE, SIZE, 3)
    for i in range(3):
        obs, state, reward, terminated, truncated, info = step(
            jax.random.key(i), state, jnp.array([0.3, -0.2])
        )
    assert obs.shape == (SIZE, SIZE, 3) and obs.dtype == jnp.uint8
    assert reward.shape == () and reward.dtype == jnp.float32
    assert terminated.dtype == jnp.bool_ and truncated.dtype == jnp.bool_
    assert info["physical_state"].shape == (p,) and info["physical_state"].dtype == jnp.float32
    assert info["success"].shape == () and info["success"].dtype == jnp.bool_
    assert env.goal_state(state).shape == (p,)
    np.testing.assert_array_equal(obs, env.render(state, params))
    assert env.render_goal(state, params).shape == (SIZE, SIZE, 3)
    assert env.expert_policy(jax.random.key(0), state, params).shape == (2,)
    assert bool(jnp.all(jnp.isfinite(env.physical_state(state))))


def test_deterministic_per_key(registered):
    # Moved here from test_envs.py and test_push_t.py, for every registered env.
    _, env, params = registered
    reset, step = jax.jit(env.reset_env), jax.jit(env.step_env)
    (o1, s1), (o2, s2) = reset(jax.random.key(3), params), reset(jax.random.key(3), params)
    chex.assert_trees_all_equal(s1, s2)
    np.testing.assert_array_equal(o1, o2)
    a = env.expert_policy(jax.random.key(5), s1, params)
    chex.assert_trees_all_equal(a, env.expert_policy(jax.random.key(5), s2, params))
    chex.assert_trees_all_equal(
        step(jax.random.key(1), s1, a, params), step(jax.random.key(1), s2, a, params)
    )
    _, s3 = reset(jax.random.key(4), params)
    assert not np.allclose(env.physical_state(s1), env.physical_state(s3))


def test_truncation_auto_resets(registered):
    _, env, params = registered
    params = params.replace(max_steps_in_episode=2)
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    truncated = []
    for i in range(2):
        _, state, _, _, trunc, info = step(jax.random.key(i), state, jnp.zeros(2), params)
        truncated.append(bool(trunc))
    assert truncated == [False, True] and int(state.time) == 0
    assert info["final_observation"].shape == (SIZE, SIZE, 3)


def test_new_env_collects_trains_plans_and_probes(tmp_path):
    config = get_config("test,env=dot")
    assert config.data.name == "dot" and config.planning.enabled
    eps = datasets.load_episodes(config.data, config.seed)
    assert eps.pixels.shape == (12 * 40, SIZE, SIZE, 3) and eps.pixels.dtype == np.uint8
    assert eps.state.shape == (12 * 40, 2) and (eps.pixels < 255).any()

    workdir = tmp_path / "run"
    config.total_steps = 2
    out = train_and_evaluate(config, str(workdir))
    assert out["steps_run"] == 2 and np.isfinite(out["loss"])
    report = evaluate_planning(str(workdir), config.planning, config=config, progress=False)
    assert report["env"] == "dot" and report["episodes"] == config.planning.num_episodes
    assert 0.0 <= report["success_rate"] <= 1.0

    y, names = probe.physical_targets("dot", eps.state)
    assert names == ["x", "y"] and y.shape == (len(eps.state), 2)
    run = run_dir.load_run(str(workdir))
    tiny_mlp = dict(steps=20, hidden=16, batch=32)
    result = probe.run_probes(
        run.model, run.variables, eps, "dot", key=jax.random.key(0), mlp_settings=tiny_mlp
    )
    assert result["env"] == "Dot-v0" and result["names"] == ["x", "y"]
    assert all(np.isfinite(result["linear"][n]["mse"]) for n in names)
