"""TFDS builder of episodes collected in lewm_jax's pure-JAX environments.

One example per episode: ``pixels`` uint8 ``(L, H, W, 3)`` (zlib-compressed), ``action``
float32 ``(L, A)`` (NaN after the last frame), ``state`` float32 ``(L, P)`` (the physical
state), ``episode_idx`` and ``step_idx`` ``(L,)``. Stored as array_record, read back with
``tfds.data_source`` (random access, no TensorFlow). Builder configs are named
``<env>_<size>px_<episodes>x<max_steps>_seed<seed>`` and are deterministic in their seed.

  python -m data.build --env=two_room --image_size=64 --episodes=1000
"""

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from lewm_jax import envs

# Dataset name -> env id: a live view of the registry, so a registered env can be built.
ENVS = envs.DATASET_ENV_IDS


@dataclasses.dataclass
class EpisodesConfig(tfds.core.BuilderConfig):
    """Which environment, frame size, number of episodes, steps per episode and seed."""

    env: str = "two_room"
    image_size: int = 64
    num_episodes: int = 1000
    max_steps: int = 100
    seed: int = 0


def config_name(env: str, image_size: int, num_episodes: int, max_steps: int, seed: int) -> str:
    """The builder-config name of a dataset (every field, so two datasets never collide)."""
    return f"{env}_{image_size}px_{num_episodes}x{max_steps}_seed{seed}"


def make_config(env, image_size, num_episodes, max_steps=100, seed=0) -> EpisodesConfig:
    """A builder config of a registered env's dataset name; one-line errors for bad input."""
    if env not in ENVS:
        raise ValueError(f"unknown env {env!r}; expected one of {sorted(ENVS)}")
    for name, v in (
        ("image_size", image_size),
        ("num_episodes", num_episodes),
        ("max_steps", max_steps),
    ):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    return EpisodesConfig(
        name=config_name(env, image_size, num_episodes, max_steps, seed),
        env=env,
        image_size=image_size,
        num_episodes=num_episodes,
        max_steps=max_steps,
        seed=seed,
    )


class LewmEpisodes(tfds.core.GeneratorBasedBuilder):
    """Episodes of scripted-expert play in a pure-JAX environment."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    # The published datasets; any other make_config (any registered env) builds as well.
    BUILDER_CONFIGS = [
        make_config("two_room", 64, 1000),
        make_config("two_room", 224, 10000),
        make_config("push_t", 64, 1000, max_steps=200),
        make_config("reacher", 64, 1000, max_steps=200),
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        c = self.builder_config
        env, params = envs.make(c.env, image_size=c.image_size)
        obs, state = env.reset(_key(0), params)
        p = env.physical_state(state).shape[0]
        a = env.action_space(params).shape[0]
        s = c.image_size
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "pixels": tfds.features.Tensor(
                        shape=(None, s, s, 3), dtype=np.uint8, encoding="zlib"
                    ),
                    "action": tfds.features.Tensor(shape=(None, a), dtype=np.float32),
                    "state": tfds.features.Tensor(shape=(None, p), dtype=np.float32),
                    "episode_idx": np.int64,
                    "step_idx": tfds.features.Tensor(shape=(None,), dtype=np.int64),
                }
            ),
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        from lewm_jax.data.collect import collect_episodes

        c = self.builder_config
        env, params = envs.make(c.env, image_size=c.image_size)
        eps = collect_episodes(
            env,
            params,
            env.expert_policy,
            _key(c.seed),
            num_episodes=c.num_episodes,
            max_steps=c.max_steps,
        )
        for e, (off, n) in enumerate(zip(eps.ep_offset, eps.ep_len, strict=True)):
            rows = slice(int(off), int(off + n))
            yield (
                e,
                {
                    "pixels": np.asarray(eps.pixels[rows]),
                    "action": np.asarray(eps.actions[rows], np.float32),
                    "state": np.asarray(eps.state[rows], np.float32),
                    "episode_idx": e,
                    "step_idx": np.arange(n, dtype=np.int64),
                },
            )


def _key(seed):
    import jax

    return jax.random.key(seed)


def builder(config: EpisodesConfig, data_dir: str) -> LewmEpisodes:
    """The array_record builder of ``config`` under ``data_dir``."""
    registered = {c.name: c for c in LewmEpisodes.BUILDER_CONFIGS}
    # TFDS refuses a config object that shadows a registered one: pass its name instead.
    chosen = config.name if registered.get(config.name) == config else config
    return LewmEpisodes(config=chosen, data_dir=data_dir, file_format="array_record")


def read_episodes(config: EpisodesConfig, data_dir: str):
    """Reads a built dataset back as :class:`lewm_jax.data.episodes.Episodes`.

    The stored layout (``features.json``) must be the one ``config`` describes, and every
    episode record must decode field by field. A truncated, corrupt or differently laid
    out dataset raises a one-line ValueError naming the file and the field (or the record,
    when the file is too damaged to get at its fields).
    """
    from lewm_jax.data.episodes import Episodes

    b = builder(config, data_dir)
    if not b.is_prepared():
        raise FileNotFoundError(
            f"dataset {config.name!r} is not built in {data_dir!r}; run: python -m data.build "
            f"--env={config.env} --image_size={config.image_size} "
            f"--episodes={config.num_episodes} --data_dir={data_dir}"
        )
    _check_stored_features(b)
    eps = _read_records(b, "train")
    eps.sort(key=lambda e: int(e["episode_idx"]))
    lens = np.array([len(e["step_idx"]) for e in eps], np.int64)
    return Episodes(
        pixels=np.concatenate([e["pixels"] for e in eps]),
        actions=np.concatenate([e["action"] for e in eps]),
        ep_offset=np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64),
        ep_len=lens,
        state=np.concatenate([e["state"] for e in eps]),
    )


def _spec(feature) -> str:
    return f"{np.dtype(feature.np_dtype).name} {tuple(feature.shape)}"


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__


def _check_stored_features(b: LewmEpisodes) -> None:
    """The layout the data was written with must be the one its builder config describes."""
    path = f"{b.data_dir}/features.json"
    try:
        stored = tfds.features.FeatureConnector.from_config(b.data_dir)
    except Exception as e:  # missing or unparsable: either way the layout is unknown
        raise ValueError(f"{path}: unreadable ({_first_line(e)})") from None
    for name, want in b.info.features.items():
        if name not in stored.keys():
            raise ValueError(f"{path}: field {name!r} is missing; expected {_spec(want)}")
        if _spec(stored[name]) != _spec(want):
            raise ValueError(
                f"{path}: field {name!r} is {_spec(stored[name])}, expected {_spec(want)} "
                f"for {b.builder_config.name}"
            )


def _read_records(b: LewmEpisodes, split: str) -> list[dict]:
    """Decodes every record of ``split`` field by field, naming the shard file on failure."""
    from tensorflow_datasets.core import example_parser

    info = b.info.splits[split]
    files = [str(f) for f in info.filepaths]
    shard_of = np.repeat(np.arange(len(files)), info.shard_lengths)
    features = b.info.features
    parser = example_parser.ExampleParserNp(features.get_serialized_info())
    source = b.as_data_source(split=split)
    eps = []
    for i in range(len(source)):
        where = f"{files[shard_of[i]]}: episode record {i}"
        try:
            parsed = parser.parse_example(source.data_source[i])
        except Exception as e:  # array_record/riegeli and protobuf errors have no common base
            raise ValueError(
                f"{where} is unreadable ({_first_line(e)}); the file is truncated or corrupt"
            ) from None
        ep = {}
        for name, feature in features.items():
            if parsed.get(name) is None:
                raise ValueError(
                    f"{where} has no field {name!r} (expected {_spec(feature)}); the file is "
                    "truncated or was written with another layout"
                )
            try:
                ep[name] = feature.decode_example_np(parsed[name])
            except Exception as e:
                raise ValueError(
                    f"{where}: field {name!r} does not decode as {_spec(feature)} "
                    f"({_first_line(e)})"
                ) from None
        for name in ("action", "state", "step_idx"):
            if len(ep[name]) != len(ep["pixels"]):
                raise ValueError(
                    f"{where}: field {name!r} has {len(ep[name])} rows, 'pixels' has "
                    f"{len(ep['pixels'])}"
                )
        eps.append(ep)
    return eps
