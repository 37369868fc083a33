"""Equal hyperparameter search for every (system, task): search spaces and the Optuna study.

Every (system, task) gets the same budget: ``trials`` trials of ``epochs`` epochs each, sampled by
Optuna's Tree-structured Parzen Estimator (Bergstra et al. 2011; ``optuna.samplers.TPESampler``,
seeded, its first ``startup_trials(trials)`` trials at random), one trial after another so the
search reruns identically. A trial trains on the fitting part of the training split and is
scored on the validation part (``tasks.validation_split``: stratified, seeded); the test split
is never seen. Each system searches its own space (``search_space``):

    learning_rate   log-uniform [1e-3, 0.3]        (Adam)
    beta            log-uniform [1e-2, 1]          (EP nudge)
    estimator       {"centered", "positive"}       (EP estimator: O(beta^2) bias or two phases fewer)
    init_scale      log-uniform [0.25, 4]          (systems.scale_init; not where every entry is softplus-raw)
    hidden          integer [1, max_hidden]        (within the task's parameter budget and the system's hidden cap,
                                                    comparison.systems.hidden_cap; not for fixed sizes)
    + OPTION_RANGES[system]                         (physics knobs: transverse field, temperature, ...)
    + TASK_CHOICES[task]                            (training settings a task searches, below)
    + scaling       tasks.SCALINGS[task]            (feature scaling, where a task has several)

On ``digits64`` each system runs at the architecture of its issue-19 preset, and the presets train
with different batch sizes (16 freqprop-digits, 20 hopfield-digits, 32 oscillators-digits and
ising-digits), learning-rate schedules (cosine: oscillators-digits) and pixel scalings ("unit":
hopfield-digits), and they reach their numbers with their own (seed 0, 15 epochs of the comparison's
training at the preset's size, learning rate, beta and estimator: the Ising machine 0.978 at batch
32, 0.970 at batch 16; the Hopfield network 0.981 at "unit" and batch 20, 0.965 at "standard" and
batch 16). So there the batch size, the schedule (train.fit's lr_schedule, over the run's epochs)
and the scaling are searched too, the same choices for every system. Elsewhere the batch size is
the caller's and the rate constant.

Every study uses the same sampler seed, so systems whose spaces share dimensions are offered the
same candidate values for them (common random numbers: their scores differ by the system, not by
the draw). On ``digits64`` these ranges hold every issue-19 digits preset's setting (learning rate,
beta, centered estimator, init scale 1, its hidden size up to the TFIM's cap, its physics knobs,
batch size, schedule and scaling), and the architecture options of those presets are fixed
(comparison.systems.TASK_SETTINGS). The chosen setting is the completed trial with the highest validation accuracy, ties broken by
the lower validation loss, then by the earlier trial. A trial whose equilibrium fails (ValueError,
e.g. a solver that did not converge) is recorded with its message and scored as failed (Optuna's
TPE leaves it out).

A long search resumes trial by trial: after every trial ``tune`` hands ``checkpoint`` its state
(the finished trials' records and the sampler, pickled as Optuna's FAQ recommends for resuming a
seeded sampler); ``tune(..., resume=state)`` re-enters those trials into a fresh study
(``optuna.trial.create_trial``) with that sampler and runs the rest, so an interrupted search gives
the same history as a straight one (timings aside).
"""

from __future__ import annotations

import base64
import logging
import math
import pickle
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import optuna

from ..datasets import Dataset
from ..estimators import as_estimator
from ..train import LR_SCHEDULES, fit
from .systems import SIZES, configure, fit_options, max_hidden
from .tasks import SCALINGS, VALIDATION_FRACTION, validation_split

ESTIMATORS = ("centered", "positive")
COMMON = {"learning_rate": (1e-3, 0.3), "beta": (1e-2, 1.0), "init_scale": (0.25, 4.0)}  # log-uniform
OPTION_RANGES = {  # registry options searched per system (log-uniform)
    "tfim": {"gamma": (0.25, 4.0)},
    "xxz": {"gamma": (0.25, 4.0)},
    "ising": {"temperature": (0.25, 4.0)},
    "phase_oscillators": {"input_scale": (0.1, 2.0)},
}
# training settings searched per task (choices; module docstring): on digits64 its presets' batch sizes and schedules
TASK_CHOICES = {"digits64": {"batch_size": (16, 20, 32), "lr_schedule": LR_SCHEDULES}}


@dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a log-uniform float in [low, high], an integer in [low, high],
    or one of ``choices``."""

    name: str
    kind: str  # "log", "int" or "choice"
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None

    def suggest(self, trial: optuna.Trial):
        if self.kind == "log":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high))
        return trial.suggest_categorical(self.name, list(self.choices))

    def distribution(self) -> optuna.distributions.BaseDistribution:
        """The Optuna distribution ``suggest`` draws from (to re-enter a finished trial)."""
        if self.kind == "log":
            return optuna.distributions.FloatDistribution(self.low, self.high, log=True)
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high))
        return optuna.distributions.CategoricalDistribution(list(self.choices))


def search_space(name: str, task: str, n_inputs: int, n_classes: int) -> list[Dimension]:
    """The dimensions searched for system ``name`` on ``task`` (module docstring)."""
    space = [Dimension("learning_rate", "log", *COMMON["learning_rate"]), Dimension("beta", "log", *COMMON["beta"]),
             Dimension("estimator", "choice", choices=ESTIMATORS)]
    _, _, params = configure(name, task, n_inputs, n_classes, {}, 0)
    if any(not key.endswith("_raw") for key in params):
        space.append(Dimension("init_scale", "log", *COMMON["init_scale"]))
    largest = max_hidden(name, task, n_inputs, n_classes)
    if name not in SIZES and largest > 1:
        space.append(Dimension("hidden", "int", 1, largest))
    space += [Dimension(option, "log", low, high) for option, (low, high) in OPTION_RANGES.get(name, {}).items()]
    space += [Dimension(key, "choice", choices=tuple(choices)) for key, choices in TASK_CHOICES.get(task, {}).items()]
    if task in SCALINGS:
        space.append(Dimension("scaling", "choice", choices=SCALINGS[task]))
    return space


def startup_trials(trials: int) -> int:
    """Trials TPE samples at random before it models the history: max(2, trials // 3)."""
    return max(2, trials // 3)


def equilibrations(estimator: str, beta: float, epochs: int, n_train: int, n_evaluated: int) -> int:
    """Equilibrium solves (sample-phases) of ``fit``: per epoch every training sample's free and nudged
    phases, and one free phase per evaluated sample at the epoch's record."""
    phases = 1 + len(as_estimator(estimator, beta).nudged_betas)
    return int(epochs * (n_train * phases + n_evaluated))


def _trial_record(trial: optuna.trial.FrozenTrial) -> dict:
    return {"number": trial.number, "params": dict(trial.params), "state": trial.state.name,
            "val_accuracy": trial.value, **trial.user_attrs}


def _restored_trial(record: dict, space: list[Dimension]) -> optuna.trial.FrozenTrial:
    """A finished trial's record (``_trial_record``) as an Optuna trial to add to a fresh study."""
    state = optuna.trial.TrialState[record["state"]]
    attrs = {k: v for k, v in record.items() if k not in ("number", "params", "state", "val_accuracy")}
    distributions = {dim.name: dim.distribution() for dim in space if dim.name in record["params"]}
    return optuna.trial.create_trial(params=record["params"], distributions=distributions, user_attrs=attrs, state=state,
                                     value=record["val_accuracy"] if state == optuna.trial.TrialState.COMPLETE else None)


def _sampler_text(sampler: optuna.samplers.BaseSampler) -> str:
    return base64.b64encode(pickle.dumps(sampler)).decode("ascii")


def best_trial(history: list[dict]) -> dict | None:
    """The chosen trial of a search history: highest val_accuracy, then lowest val_loss, then earliest."""
    complete = [t for t in history if t["state"] == "COMPLETE"]
    if not complete:
        return None
    return min(complete, key=lambda t: (-t["val_accuracy"], t["val_loss"], t["number"]))


def tune(name: str, task: str, data: Dataset, *, trials: int, epochs: int, batch_size: int = 16, seed: int = 0,
         fraction: float = VALIDATION_FRACTION, scaled: Callable[[str], Dataset] | None = None,
         resume: dict | None = None, checkpoint: Callable[[dict], None] | None = None) -> dict:
    """Search system ``name``'s space on ``task`` (module docstring) with ``trials`` trials of ``epochs``
    epochs; ``seed`` seeds the sampler, the validation split, every trial's init and shuffling.
    ``batch_size``: the minibatch size where the space does not search it. ``scaled(scaling)``: the
    task's data (the split of ``data``) at that scaling, needed where the space searches "scaling".
    ``checkpoint(state)`` is called after every trial; ``resume=state`` (the latest such state of an
    interrupted search with the same arguments) continues it (module docstring).

    Returns:
        {"space": [Dimension as dict], "trials": [{"number", "params", "state", "val_accuracy",
        "val_loss", "n_params", "seconds", "equilibrations", "error" (failed trials)}], "best": the
        chosen trial's number (None if every trial failed), "setting": its params, "seconds",
        "equilibrations" (sums over the trials)}.
    """
    for argument, value in (("trials", trials), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{argument} must be an integer >= 1, got {value!r}")
    space = search_space(name, task, data.n_features, data.n_classes)
    scalings = next((dim.choices for dim in space if dim.name == "scaling"), None)
    if scalings is not None and scaled is None:
        raise ValueError(f"scaled must give {task}'s data at each of its scalings {scalings}: the search chooses one")
    # the same training rows at every scaling, split with one seed: the same fitting and validation samples
    splits = {scaling: validation_split(data if scaling is None else scaled(scaling), fraction, seed)
              for scaling in scalings or (None,)}

    def objective(trial: optuna.Trial) -> float:
        setting = {dim.name: dim.suggest(trial) for dim in space}
        (x_fit, y_fit), validation = splits[setting.get("scaling")]
        start = time.perf_counter()
        try:
            system, n_params, params = configure(name, task, data.n_features, data.n_classes, setting, seed)
            trial.set_user_attr("n_params", n_params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit(system, (x_fit, y_fit), params, validation=validation, epochs=int(epochs), seed=seed,
                             progress=False, **fit_options(setting, batch_size))
        except ValueError as exc:  # an equilibrium that failed: recorded, scored as a failed trial
            trial.set_user_attr("error", str(exc)[:300])
            return math.nan
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - start)
        final = result.history[-1]
        trial.set_user_attr("val_loss", final["val_loss"])
        trial.set_user_attr("equilibrations", equilibrations(setting["estimator"], setting["beta"], int(epochs),
                                                             len(x_fit), len(x_fit) + len(validation[0])))
        return final["val_accuracy"]

    def save(study: optuna.Study, _trial) -> None:
        checkpoint({"trials": [_trial_record(t) for t in study.trials], "sampler": _sampler_text(study.sampler)})

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)  # a failed (NaN) trial is recorded in the history, not logged
    try:
        if resume is None:
            sampler, done = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(int(trials))), []
        else:
            sampler, done = pickle.loads(base64.b64decode(resume["sampler"])), resume["trials"]
            if len(done) > trials:
                raise ValueError(f"resume holds {len(done)} finished trials, more than trials={trials}")
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for record in done:
            study.add_trial(_restored_trial(record, space))
        study.optimize(objective, n_trials=int(trials) - len(done), callbacks=[save] if checkpoint else None)
    finally:
        optuna.logging.set_verbosity(verbosity)
    history = [_trial_record(t) for t in study.trials]
    chosen = best_trial(history)
    return {"space": [asdict(dim) for dim in space], "trials": history,
            "best": None if chosen is None else chosen["number"], "setting": None if chosen is None else chosen["params"],
            "seconds": float(sum(t["seconds"] for t in history)),
            "equilibrations": int(sum(t.get("equilibrations", 0) for t in history))}
