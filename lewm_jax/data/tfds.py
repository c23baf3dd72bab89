"""TFDS dataset of episodes collected in lewm_jax's pure-JAX environments: builder and reader.

One example per episode: ``pixels`` uint8 ``(L, H, W, 3)`` (zlib-compressed), ``action``
float32 ``(L, A)`` (NaN after the last frame), ``state`` float32 ``(L, P)`` (the physical
state), ``episode_idx`` and ``step_idx`` ``(L,)``. Stored as array_record, read back with
``tfds.data_source`` (random access, no TensorFlow). Builder configs are named
``<env>_<size>px_<episodes>x<max_steps>_seed<seed>`` (then the collecting policy, when it is
not the scripted expert: ``_random``, ``_expert0.5-random0.5``, with the noisy share's
probability: ``_noisy-p0.3``) and are deterministic in their seed. Episodes are collected and
written a chunk at a time, so a dataset may be larger than memory (224 px paper-size data).

  python -m data.build --env=two_room --image_size=64 --episodes=1000
"""

import dataclasses

from lewm_jax._deps import require

require("lewm_jax.data.tfds", "data", "tensorflow_datasets", "array_record", "importlib_resources")

import numpy as np  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from lewm_jax import envs  # noqa: E402
from lewm_jax.data.episodes import episode_offsets  # noqa: E402
from lewm_jax.data.policies import check_env_policies, parse_mix  # noqa: E402
from lewm_jax.data.stores import action_rows  # noqa: E402
from lewm_jax.frames import resize_frames  # noqa: E402

# Dataset name -> env id: a live view of the registry, so a registered env can be built.
ENVS = envs.DATASET_ENV_IDS


@dataclasses.dataclass
class EpisodesConfig(tfds.core.BuilderConfig):
    """Which environment, frame size, number of episodes, steps per episode, seed and
    collecting policy (``config.data.policy``, :mod:`lewm_jax.data.policies`)."""

    env: str = "two_room"
    image_size: int = 64
    num_episodes: int = 1000
    max_steps: int = 100
    seed: int = 0
    policy: str = "expert"
    noisy_prob: float = 0.3


def config_name(
    env: str,
    image_size: int,
    num_episodes: int,
    max_steps: int,
    seed: int,
    policy: str = "expert",
    noisy_prob: float = 0.3,
) -> str:
    """The builder-config name of a dataset (every field, so two datasets never collide;
    the scripted expert's datasets keep the names they had before policies were named)."""
    name = f"{env}_{image_size}px_{num_episodes}x{max_steps}_seed{seed}"
    parts = parse_mix(policy)
    if parts != [("expert", 1.0)]:
        name += "_" + "-".join(n if f == 1.0 else f"{n}{f:g}" for n, f in parts)
        if any(n == "noisy" for n, _ in parts):
            name += f"-p{noisy_prob:g}"
    return name


def make_config(
    env, image_size, num_episodes, max_steps=100, seed=0, policy="expert", noisy_prob=0.3
) -> EpisodesConfig:
    """A builder config of a registered env's dataset name; one-line errors for bad input."""
    if env not in ENVS:
        raise ValueError(f"unknown env {env!r}; expected one of {sorted(ENVS)}")
    check_env_policies(envs.env_class(ENVS[env]), parse_mix(policy, field="policy"))
    if not 0.0 <= noisy_prob <= 1.0:
        raise ValueError(f"noisy_prob must be in [0, 1], got {noisy_prob}")
    for name, v in (
        ("image_size", image_size),
        ("num_episodes", num_episodes),
        ("max_steps", max_steps),
    ):
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    return EpisodesConfig(
        name=config_name(env, image_size, num_episodes, max_steps, seed, policy, noisy_prob),
        env=env,
        image_size=image_size,
        num_episodes=num_episodes,
        max_steps=max_steps,
        seed=seed,
        policy=policy,
        noisy_prob=noisy_prob,
    )


class LewmEpisodes(tfds.core.GeneratorBasedBuilder):
    """Episodes of scripted-expert (or random, or mixed) play in a pure-JAX environment."""

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
        from lewm_jax.data.policies import iter_mix

        c = self.builder_config
        env, params = envs.make(c.env, image_size=c.image_size)
        chunks = iter_mix(
            env,
            params,
            c.policy,
            _key(c.seed),
            c.num_episodes,
            c.max_steps,
            noisy_prob=c.noisy_prob,
        )
        e = 0
        for eps in chunks:
            for off, n in zip(eps.ep_offset, eps.ep_len, strict=True):
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
                e += 1


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
    return TFDSStore(config, data_dir).to_episodes()


def build_command(config: EpisodesConfig, data_dir: str) -> str:
    """The ``python -m data.build`` command that builds ``config`` under ``data_dir``."""
    cmd = (
        f"python -m data.build --env={config.env} --image_size={config.image_size} "
        f"--episodes={config.num_episodes} --max_steps={config.max_steps} --seed={config.seed}"
    )
    parts = parse_mix(config.policy)
    if parts != [("expert", 1.0)]:
        cmd += f" --policy={config.policy}"
    if any(n == "noisy" for n, _ in parts):
        cmd += f" --noisy_prob={config.noisy_prob:g}"
    return f"{cmd} --data_dir={data_dir}"


def _prepared(config: EpisodesConfig, data_dir: str) -> LewmEpisodes:
    """The builder of a dataset that is built and laid out as ``config`` says."""
    b = builder(config, data_dir)
    if not b.is_prepared():
        run = build_command(config, data_dir)
        raise FileNotFoundError(f"dataset {config.name!r} is not built in {data_dir!r}; run: {run}")
    _check_stored_features(b)
    return b


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


class _Records:
    """Random access to the episode records of one split, decoded field by field.

    Every failure names the shard file and the record (and the field, when the record
    parses). Picklable: the data source reopens in each process.
    """

    def __init__(self, b: LewmEpisodes, split: str):
        info = b.info.splits[split]
        self.files = [str(f) for f in info.filepaths]
        self.shard_of = np.repeat(np.arange(len(self.files)), info.shard_lengths)
        self.features = b.info.features
        self.b, self.split, self._source, self._parser = b, split, None, None

    def __getstate__(self):
        return {**self.__dict__, "_source": None, "_parser": None}

    def __len__(self) -> int:
        return len(self.shard_of)

    def decode(self, i: int, names) -> dict:
        """Fields ``names`` of record ``i`` as numpy arrays."""
        from tensorflow_datasets.core import example_parser

        if self._source is None:
            self._source = self.b.as_data_source(split=self.split).data_source
            self._parser = example_parser.ExampleParserNp(self.features.get_serialized_info())
        where = f"{self.files[self.shard_of[i]]}: episode record {i}"
        try:
            parsed = self._parser.parse_example(self._source[i])
        except Exception as e:  # array_record/riegeli and protobuf errors have no common base
            raise ValueError(
                f"{where} is unreadable ({_first_line(e)}); the file is truncated or corrupt"
            ) from None
        ep = {}
        for name in names:
            feature = self.features[name]
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
        for name in set(names) & {"action", "state", "pixels"}:
            if len(ep[name]) != len(ep.get("step_idx", ep[name])):
                raise ValueError(
                    f"{where}: field {name!r} has {len(ep[name])} rows, 'step_idx' has "
                    f"{len(ep['step_idx'])}"
                )
        return ep


class TFDSStore:
    """A :class:`~lewm_jax.data.stores.ClipStore` over a built dataset, read on demand.

    Opening makes one pass over the records decoding only their small fields (index,
    actions), which gives the episode table; a clip then decodes the pixels of its one
    episode record (TFDS stores one record per episode). Frames are resized on the fly.

    Args:
        config: the dataset's builder config.
        data_dir: where it was built.
        image_size: frame side of the clips (None: the stored size).
    """

    def __init__(self, config: EpisodesConfig, data_dir: str, *, image_size: int | None = None):
        b = _prepared(config, data_dir)
        self.records = _Records(b, "train")
        index, lens, actions = [], [], []
        for i in range(len(self.records)):
            ep = self.records.decode(i, ["episode_idx", "step_idx", "action"])
            index.append(int(ep["episode_idx"]))
            lens.append(len(ep["step_idx"]))
            actions.append(ep["action"])
        order = np.argsort(index, kind="stable")
        self.record_of = order  # episode e (in episode_idx order) lives in record order[e]
        self.ep_len = np.asarray(lens, np.int64)[order]
        self.ep_offset = episode_offsets(self.ep_len)
        self.actions = np.concatenate([actions[i] for i in order]).astype(np.float32)
        self.action_dim = self.actions.shape[1]
        self.size = image_size or config.image_size
        self.frame_shape = (self.size, self.size, 3)

    def read_clips(self, starts, num_frames, frameskip):
        starts = np.asarray(starts, np.int64)
        episode = np.searchsorted(self.ep_offset, starts, side="right") - 1
        pixels = np.empty((len(starts), num_frames, *self.frame_shape), np.uint8)
        # A record holds a whole episode: decode each episode of the batch once.
        for e in np.unique(episode).tolist():
            frames = self.records.decode(int(self.record_of[e]), ["step_idx", "pixels"])["pixels"]
            for i in np.flatnonzero(episode == e):
                local = starts[i] - self.ep_offset[e] + frameskip * np.arange(num_frames)
                pixels[i] = resize_frames(frames[local], self.size)
        return pixels, self.actions[action_rows(starts, num_frames, frameskip)]

    def action_chunks(self):
        yield self.actions

    def to_episodes(self, max_episodes: int | None = None):
        from lewm_jax.data.episodes import Episodes

        kept = self.record_of[:max_episodes]
        eps = [self.records.decode(int(i), list(self.records.features)) for i in kept]
        lens = self.ep_len[: len(kept)]
        return Episodes(
            pixels=np.concatenate([resize_frames(e["pixels"], self.size) for e in eps]),
            actions=np.concatenate([e["action"] for e in eps]),
            ep_offset=self.ep_offset[: len(kept)].copy(),
            ep_len=lens.copy(),
            state=np.concatenate([e["state"] for e in eps]),
        )
