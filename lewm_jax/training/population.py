"""Population training: several runs trained together in one compiled program.

Runs whose configs differ only in values that change no shape and not the shared loop
(:data:`POPULATION_FIELDS`: seed, SIGReg weight, EMA decay, learning rate, weight decay;
and the planning section, used after training) are trained as one population, as in
purejaxrl's ``jit(vmap(train))``: the members' train states are stacked on a leading member
axis M, the train step is vmapped over it with the differing hyperparameters as traced
arrays, and the batch axis stays data-parallel over the devices as in a single run.

Every member keeps its own run directory (config, action statistics, checkpoints,
metrics, TensorBoard events), written exactly as a run of its config alone writes it, so
a member and a separate run are interchangeable for planning, analysis and reports, and
either can be resumed by the other. Members with the same seed read the same batches
(one copy, broadcast); other seeds read their own.
"""

import jax
import jax.numpy as jnp
import numpy as np

from lewm_jax.data.clips import iterate_batches
from lewm_jax.training import run_dir, sharding
from lewm_jax.training.optim import make_optimizer
from lewm_jax.training.step import collapse_metrics, make_eval_step, make_train_step
from lewm_jax.training.train import Program, open_member, run_loop

# Dotted config keys that members of one population may differ in.
POPULATION_FIELDS = (
    "seed",
    "loss.sigreg_weight",
    "loss.ema_decay",
    "optim.lr",
    "optim.weight_decay",
)
# Sections used only after training (each member is planned on its own).
FREE_SECTIONS = ("planning",)


def check_population(configs) -> list[str]:
    """The :data:`POPULATION_FIELDS` the members differ in, in that order.

    Raises a one-line ValueError for no member, or for members that differ in any other
    field (a shape, the data, the schedule of the shared loop).
    """
    if not configs:
        raise ValueError("a population needs at least one member")
    flats = [run_dir.flatten(c.to_dict()) for c in configs]
    varying = []
    for key in dict.fromkeys(k for f in flats for k in f):
        values = [f.get(key) for f in flats]
        other = next((v for v in values if v != values[0]), values[0])
        if other == values[0] or key.split(".")[0] in FREE_SECTIONS:
            continue
        if key not in POPULATION_FIELDS:
            raise ValueError(
                f"population members differ in {key} ({values[0]!r} vs {other!r}); only "
                f"{', '.join(POPULATION_FIELDS)} (and planning.*) may differ within a population"
            )
        varying.append(key)
    return [k for k in POPULATION_FIELDS if k in varying]


class _Overlay:
    """A read-only view of a config section with some fields replaced by traced values."""

    def __init__(self, base, values: dict):
        self.__dict__.update(_base=base, _values=values)

    def __getattr__(self, name):
        values = self.__dict__["_values"]
        return values[name] if name in values else getattr(self.__dict__["_base"], name)

    __getitem__ = __getattr__


def _section(config, hps: dict, section: str):
    values = {k.split(".", 1)[1]: v for k, v in hps.items() if k.startswith(section + ".")}
    return _Overlay(config[section], values) if values else config[section]


class _StackedBatches:
    """``step -> batch`` of every distinct source, stacked on a leading axis (picklable,
    so grain workers can read it); one source's batch as it is."""

    def __init__(self, sources):
        self.sources = sources

    def __call__(self, step: int) -> dict:
        if len(self.sources) == 1:
            return self.sources[0].batch(step)
        batches = [s.batch(step) for s in self.sources]
        return {k: np.stack([b[k] for b in batches]) for k in batches[0]}


class PopulationProgram(Program):
    """Steps the members of a population together (see the module docstring)."""

    def __init__(self, members, model, mesh):
        configs = [m.config for m in members]
        config, total, self.mesh = configs[0], members[0].total, mesh
        hp_keys = [k for k in check_population(configs) if k != "seed"]
        flats = [run_dir.flatten(c.to_dict()) for c in configs]
        hps_np = {k: np.asarray([f[k] for f in flats], np.float32) for k in hp_keys}
        # One batch source per distinct (data, seed); members index into them.
        keys = [(m.config.data.to_json(), m.config.seed) for m in members]
        distinct = list(dict.fromkeys(keys))
        first = {k: members[keys.index(k)] for k in distinct}
        self.val_sources = [first[k].val_src for k in distinct]
        self.batch = _StackedBatches([first[k].train_src for k in distinct])
        self.shared = len(distinct) == 1
        self.batch_axis = 0 if self.shared else 1
        self.source_np = np.asarray([distinct.index(k) for k in keys], np.int32)
        self.eval_batches = [m.config.eval_batches for m in members]
        self.num_members = len(members)
        # The state's layout: every member's optimizer (train_fn) has the same one.
        self.tx = make_optimizer(config.optim, total)

        def for_member(step_fn_of):
            """vmaps ``step_fn_of(hp)(state, batch, key)`` over the member axis; the collapse
            metrics of each member's latents are computed outside the vmap (see
            :func:`~lewm_jax.training.step.make_train_step`'s ``return_latents``)."""

            def run(states, batches, keys, hps, source):
                def one(state, key, hp, i):
                    batch = batches if self.shared else jax.tree.map(lambda x: x[i], batches)
                    return step_fn_of(hp)(state, batch, key)

                *out, z = jax.vmap(one)(states, keys, hps, source)
                per_member = [collapse_metrics(z[m]) for m in range(self.num_members)]
                extra = jax.tree.map(lambda *x: jnp.stack(x), *per_member)
                metrics = {**out[-1], **extra}
                return (*out[:-1], metrics) if len(out) > 1 else metrics

            return run

        def train_fn(hp):
            tx = make_optimizer(_section(config, hp, "optim"), total)
            return make_train_step(model, tx, _section(config, hp, "loss"), return_latents=True)

        def eval_fn(hp):
            return make_eval_step(model, _section(config, hp, "loss"), return_latents=True)

        repl = sharding.replicated(mesh)
        data = sharding.data_sharded(mesh, self.batch_axis)
        self.train_step = jax.jit(
            for_member(train_fn),
            in_shardings=(repl, data, repl, repl, repl),
            out_shardings=(repl, repl),
            donate_argnums=0,
        )
        self.eval_step = jax.jit(for_member(eval_fn), in_shardings=(repl, data, repl, repl, repl))
        seeds = np.asarray([c.seed for c in configs], np.uint32)

        def constants():
            # Each member's keys are exactly those of its run alone.
            base = [jax.random.key(s) for s in seeds]
            stack = lambda ks: jax.random.wrap_key_data(  # noqa: E731
                jnp.stack([jax.random.key_data(k) for k in ks])
            )
            train = stack([jax.random.fold_in(k, 1) for k in base])
            evals = stack([jax.random.fold_in(k, 2) for k in base])
            return train, evals, jax.tree.map(jnp.asarray, hps_np), jnp.asarray(self.source_np)

        # Made inside jit: device_put cannot place an array on other hosts' devices.
        out = jax.jit(constants, out_shardings=repl)()
        self.train_keys, self.eval_keys, self.hps, self.source = out
        self._stack = jax.jit(
            lambda states: jax.tree.map(lambda *x: jnp.stack(x), *states), out_shardings=repl
        )
        self._unstack = jax.jit(
            lambda s: [jax.tree.map(lambda x, i=i: x[i], s) for i in range(self.num_members)],
            out_shardings=repl,
        )

    def iterate(self, start: int, stop: int, **kwargs):
        return iterate_batches(self.batch, start, stop, **kwargs)

    def resume_step(self, ckpts) -> int | None:
        """None when every member's latest checkpoint is the same step (or none has one);
        else the newest step all of them hold (0: none), so that a population killed
        between two members' saves resumes together."""
        latest = {c.latest_step() for c in ckpts}
        if len(latest) == 1:
            return None
        shared = set.intersection(*(set(c.all_steps()) for c in ckpts))
        return max(shared, default=0)

    def stack(self, states: list):
        return self._stack(states)

    def unstack(self, state) -> list:
        return self._unstack(state)

    def step(self, state, batch: dict):
        batch = sharding.to_global(batch, self.mesh, self.batch_axis)
        with jax.transfer_guard("disallow"):
            return self.train_step(state, batch, self.train_keys, self.hps, self.source)

    def member_metrics(self, fetched: dict) -> list[dict]:
        return [{k: v[i] for k, v in fetched.items()} for i in range(self.num_members)]

    def evaluate(self, state) -> list[dict]:
        # Each member averages the validation batches its run alone evaluates.
        counts = [
            max(1, min(e, self.val_sources[s].steps_per_epoch))
            for e, s in zip(self.eval_batches, self.source_np, strict=True)
        ]
        val = _StackedBatches(self.val_sources)
        outs = []
        for i in range(max(counts)):
            keys = jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(self.eval_keys)
            batch = sharding.to_global(val(i), self.mesh, self.batch_axis)
            outs.append(self.eval_step(state, batch, keys, self.hps, self.source))
        outs = jax.device_get(outs)
        return [
            {f"val_{k}": float(np.mean([o[k][m] for o in outs[:n]])) for k in outs[0]}
            for m, n in enumerate(counts)
        ]


def train_population(configs, workdirs) -> list[dict]:
    """Trains the runs ``configs`` (never mutated) into ``workdirs`` as one population.

    Args:
        configs: run configs that differ only in :data:`POPULATION_FIELDS` (and planning).
        workdirs: one run directory per config, all different.

    Returns:
        One summary per member, as :func:`lewm_jax.run.train_and_evaluate`
        returns it.
    """
    if len(configs) != len(workdirs):
        raise ValueError(f"{len(configs)} configs but {len(workdirs)} workdirs")
    if len({str(w) for w in workdirs}) != len(workdirs):
        raise ValueError(f"population workdirs must differ, got {[str(w) for w in workdirs]}")
    check_population(configs)
    mesh, stores = sharding.make_mesh(), {}
    members = [open_member(c, w, mesh, stores) for c, w in zip(configs, workdirs, strict=True)]
    totals = sorted({m.total for m in members})
    if len(totals) > 1:
        raise ValueError(
            f"population members would train {totals} steps; set total_steps so they agree"
        )
    return run_loop(members, PopulationProgram)


__all__ = ["POPULATION_FIELDS", "check_population", "train_population"]
