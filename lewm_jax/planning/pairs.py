"""Start/goal pairs of a planning evaluation: the episodes they are drawn from, and the
one line that says where those came from."""

from lewm_jax.data import datasets
from lewm_jax.planning.checks import eval_seeds, plan_field


def pair_episodes(config, plan_config, seed: int):
    """The episodes evaluation seed ``seed`` draws its start/goal pairs from.

    ``pairs="heldout"``: ``dataset_episodes`` episodes generated with ``seed`` (never
    trained on), collected by ``pair_policy`` (``""``: the training data's ``data.policy``).
    ``"train"``: a generated dataset's training episodes (``config.seed``,
    ``data.num_episodes``), or a file dataset's first ``dataset_episodes`` episodes.
    """
    if plan_field(plan_config, "pairs") == "heldout":
        data, policy = config.data, plan_field(plan_config, "pair_policy")
        if policy:
            data = data.copy_and_resolve_references()
            with data.unlocked():
                data.policy = policy
        return datasets.load_episodes(data, seed, num_episodes=plan_config.dataset_episodes)
    if config.data.name in datasets.FILE_DATASETS:
        return datasets.load_episodes(
            config.data, config.seed, num_episodes=plan_config.dataset_episodes
        )
    return datasets.load_episodes(config.data, config.seed)


def describe_pairs(config, plan_config, num_source: int) -> str:
    """One line saying where the start/goal pairs came from (``num_source`` episodes)."""
    seeds = eval_seeds(plan_config)
    if plan_field(plan_config, "pairs") == "heldout":
        which = (
            f"seed {seeds[0]}"
            if len(seeds) == 1
            else f"each evaluation seed ({seeds[0]}-{seeds[-1]})"
        )
        policy = plan_field(plan_config, "pair_policy") or datasets.data_policy(config.data)
        return (
            f"heldout: {num_source} episodes generated with {which} by policy {policy}; "
            f"training used seed {config.seed}"
        )
    if config.data.name in datasets.FILE_DATASETS:
        return (
            f"train: the first {num_source} episodes of {config.data.name} dataset "
            f"{config.data.path} (every episode contributed training clips)"
        )
    return f"train: the {num_source} training episodes (generated with seed {config.seed})"
