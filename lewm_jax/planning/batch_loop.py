"""Closed-loop planning over an episode batch: the environment steps outside, planning compiled.

The protocol of :mod:`lewm_jax.planning.closed_loop` (start and goal from a dataset
episode, budget, receding horizon, success per the environment's own criterion at any
step, episodes already solved at the start), for any
:class:`~lewm_jax.envs.batch.EpisodeBatch`: the host environments' simulators
(:class:`~lewm_jax.envs.host.HostBatch`), or a pure-JAX environment stepped call by call
(:class:`~lewm_jax.envs.batch.JaxBatch`; its fast path is the compiled closed loop). The
N episodes step together; at every replanning step their plans are one batched, compiled
planner call (the same planning step as the pure-JAX loop, vmapped over episodes), and the
loop only steps the batch. The goal latent is encoded from the goal state as the batch
renders it. Timings split the wall time into planning, the batch's simulation and
rendering, and the rest. Shape letters: N episodes, P physical state, A action dim.
"""

import time

import jax
import numpy as np

from lewm_jax.envs import is_host_env
from lewm_jax.envs.episodes import POLICIES, start_success, track_success
from lewm_jax.planning.closed_loop import check_protocol, make_replan


class BatchLoop:
    """``loop(key, variables, start_state (N, P), goal_state (N, P), goal_frame=None)`` runs
    N episodes in an :class:`~lewm_jax.envs.batch.EpisodeBatch` and returns the results of
    :func:`lewm_jax.planning.closed_loop.make_closed_loop` (as NumPy arrays).

    ``goal_frame`` is ignored: the goal is encoded from the batch's own render of the goal
    state. ``planner`` may also be a policy of ``POLICIES`` (``"random"``: uniform actions;
    ``"expert"``: the environments' scripted oracles), which needs no model and reports a
    NaN cost, as :func:`lewm_jax.planning.baselines.make_policy_loop`. ``timing``
    accumulates ``plan_s`` (planner calls, including the first call's compilation) and
    ``encode_s``; :meth:`timings` adds the batch's own ``timing``.
    """

    def __init__(self, batch, model, *, budget: int = 50, keep_frames: bool = True, **replan):
        """``batch``: an :class:`~lewm_jax.envs.batch.EpisodeBatch`; ``model``: the JEPA (None
        for a policy); ``replan``: the keyword arguments of
        :func:`~lewm_jax.planning.closed_loop.make_replan` (planner, planner_settings, cost,
        action_mean, action_std, horizon, receding, frameskip)."""
        horizon, receding = replan.get("horizon", 5), replan.get("receding", 5)
        frameskip, planner = replan.get("frameskip", 5), replan.get("planner", "cem")
        check_protocol(budget=budget, horizon=horizon, receding=receding, frameskip=frameskip)
        self.batch, self.budget, self.keep_frames = batch, budget, keep_frames
        self.policy = planner if planner in POLICIES else None
        self.steps_per_plan = receding * frameskip
        self.timing = {"plan_s": 0.0, "encode_s": 0.0}
        a_model = int(np.shape(replan["action_mean"])[0])
        if batch.action_dim != a_model:
            kind = "host environment" if is_host_env(batch.env_id) else "environment"
            raise ValueError(
                f"{kind} {batch.env_id!r} takes {batch.action_dim}-D actions but "
                f"the model was trained on {a_model}-D actions"
            )
        if self.policy:
            return
        encode, replan = make_replan(model, **replan)
        self._encode = jax.jit(jax.vmap(encode, in_axes=(None, 0)))
        self._plan = jax.jit(
            lambda key, variables, obs, z_goal: jax.vmap(replan, in_axes=(0, None, 0, 0))(
                jax.random.split(key, obs.shape[0]), variables, obs, z_goal
            )
        )

    def __call__(self, key, variables, start_state, goal_state, goal_frame=None):
        del goal_frame
        batch, budget = self.batch, self.budget
        rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
        seed = int(rng.integers(2**31 - batch.num_envs))  # the oracles' noise
        obs, info = batch.reset(np.asarray(start_state), np.asarray(goal_state), seed=seed)
        if self.policy is None:
            t0 = time.perf_counter()
            z_goal = jax.block_until_ready(self._encode(variables, info["goal_frame"]))
            self.timing["encode_s"] += time.perf_counter() - t0
        at_start = info["success"].copy()
        success, first = at_start.copy(), start_success(at_start, budget)
        costs = np.full(batch.num_envs, np.nan, np.float32)
        frames, t = [obs], 0
        while t < budget:
            if self.policy is None:
                t0 = time.perf_counter()
                k = jax.random.fold_in(key, t)
                raw, costs = jax.device_get(self._plan(k, variables, obs, z_goal))
                self.timing["plan_s"] += time.perf_counter() - t0
            else:
                raw = batch.policy_actions(self.policy, rng)[:, None]  # one step at a time
            for j in range(min(raw.shape[1], budget - t)):
                obs, hit, _ = batch.step(raw[:, j])
                success, first = track_success(success, first, hit, t)
                t += 1
                if self.keep_frames:
                    frames.append(obs)
        out = {
            "success": success,
            "first_success": first,
            "solved_at_start": at_start,
            "final_cost": np.asarray(costs),
            "goal_frames": info["goal_frame"],
        }
        if self.keep_frames:
            out["frames"] = np.stack(frames, axis=1)
        return out

    def timings(self) -> dict:
        """Seconds so far: planning, goal encoding, and the batch's simulation, rendering
        and host-loop wall time."""
        return {**self.timing, **self.batch.timing}
