"""Data-collection policies of the pure-JAX environments and mixes of them.

``config.data.policy`` names what collects a generated dataset: one policy, or a mix that
shares the episodes out by fraction, e.g. ``"expert"`` (the default), ``"random"`` or
``"expert:0.5,noisy:0.3,random:0.2"``. The policies:

- ``expert``: the environment's noisy scripted expert (``env.expert_policy``);
- ``noisy``: the expert with each action replaced, with probability ``data.noisy_prob``, by
  a uniform random one (more state coverage around the expert's paths);
- ``random``: uniform actions in [-1, 1]^A (``env.random_policy``);
- ``turning``: Push-T only, the expert chasing a goal a quarter turn ahead of the block, so
  the block keeps turning (``PushT.turning_policy``; data for reading the block angle).

Each part is collected with its own key folded from the dataset key, and the parts are
concatenated in the order written; a single ``expert`` is collected with the dataset key
itself, so the default data are what they were before mixes existed.
"""

import jax
import jax.numpy as jnp

from lewm_jax.data.episodes import concat_episodes

POLICIES = ("expert", "noisy", "random", "turning")


def parse_mix(spec: str, field: str = "data.policy") -> list[tuple[str, float]]:
    """``"expert:0.7,random:0.3"`` -> ``[("expert", 0.7), ("random", 0.3)]`` (a bare name is
    a fraction of 1); a one-line error naming ``field`` unless known names have fractions
    summing to 1."""
    parts = []
    for item in str(spec).split(","):
        name, _, frac = item.strip().partition(":")
        try:
            value = float(frac) if frac else 1.0
        except ValueError:
            value = float("nan")
        if name not in POLICIES or not 0.0 < value <= 1.0:
            raise ValueError(
                f"{field} {spec!r}: bad part {item.strip()!r}; expected name[:fraction] "
                f"with a name of {POLICIES} and a fraction in (0, 1]"
            )
        parts.append((name, value))
    names = [n for n, _ in parts]
    if len(set(names)) != len(names) or abs(sum(f for _, f in parts) - 1.0) > 1e-6:
        raise ValueError(
            f"{field} {spec!r}: each policy once, fractions summing to 1 (got "
            f"{sum(f for _, f in parts):g})"
        )
    return parts


def _method(name: str) -> str:
    """The environment method a policy part is collected with (``noisy`` mixes the expert's
    actions with uniform ones)."""
    return "expert_policy" if name == "noisy" else f"{name}_policy"


def check_env_policies(env_or_class, parts: list[tuple[str, float]]) -> None:
    """One-line error unless the environment (instance or class) has the method of every
    policy of ``parts`` (:func:`parse_mix`), e.g. ``turning_policy``, which only Push-T has."""
    for name, _ in parts:
        if not hasattr(env_or_class, _method(name)):
            env_id = getattr(env_or_class, "env_id", "") or env_or_class
            raise ValueError(
                f"policy {name!r} needs an environment with {_method(name)} (turning: "
                f"PushT-v0), not {env_id!r}"
            )


def make_policy(env, name: str, noisy_prob: float = 0.3):
    """The ``policy(key, env_state, env_params) -> (A,)`` called ``name`` (:data:`POLICIES`):
    the environment's ``<name>_policy`` method, or the ``noisy`` mix of expert and uniform."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {POLICIES}")
    check_env_policies(env, [(name, 1.0)])
    if name != "noisy":
        return getattr(env, _method(name))
    if not 0.0 <= noisy_prob <= 1.0:
        raise ValueError(f"data.noisy_prob must be in [0, 1], got {noisy_prob}")

    def noisy(key, state, params):
        k_coin, k_rand, k_exp = jax.random.split(key, 3)
        expert = env.expert_policy(k_exp, state, params)
        random = env.random_policy(k_rand, state, params)
        return jnp.where(jax.random.uniform(k_coin) < noisy_prob, random, expert)

    return noisy


def split_episodes(parts: list[tuple[str, float]], num_episodes: int) -> list[int]:
    """Episodes per part: rounded shares, the last part taking the remainder (each >= 1)."""
    counts = [max(1, int(round(f * num_episodes))) for _, f in parts[:-1]]
    counts.append(num_episodes - sum(counts))
    if min(counts) < 1:
        raise ValueError(f"{num_episodes} episodes cannot be shared out as {parts}")
    return counts


def collect_mix(env, env_params, spec: str, key, num_episodes: int, max_steps: int, **kw):
    """Episodes collected by the policy mix ``spec`` (see the module docstring).

    Args:
        env: an environment of :mod:`lewm_jax.envs`.
        env_params: its parameters.
        spec: ``config.data.policy``.
        key: the dataset's PRNG key.
        num_episodes: E, shared out by the mix's fractions.
        max_steps: longest episode, in frames.
        **kw: ``noisy_prob``.
    """
    return concat_episodes(
        list(iter_mix(env, env_params, spec, key, num_episodes, max_steps, **kw))
    )


def iter_mix(env, env_params, spec: str, key, num_episodes: int, max_steps: int, **kw):
    """The episodes of :func:`collect_mix` (same arguments) in order, a chunk at a time
    (:func:`lewm_jax.data.collect.iter_episodes`)."""
    from lewm_jax.data.collect import iter_episodes

    parts = parse_mix(spec)
    if parts == [("expert", 1.0)]:
        yield from iter_episodes(env, env_params, env.expert_policy, key, num_episodes, max_steps)
        return
    counts = split_episodes(parts, num_episodes)
    for i, ((name, _), n) in enumerate(zip(parts, counts, strict=True)):
        policy = make_policy(env, name, **kw)
        yield from iter_episodes(env, env_params, policy, jax.random.fold_in(key, i), n, max_steps)
