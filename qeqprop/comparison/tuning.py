"""Equal hyperparameter search for every (system, task): search spaces and the Optuna study.

Every (system, task) gets the same budget: ``trials`` trials of ``epochs`` epochs each (on the tasks
of ``MULTI_FIDELITY``: of up to ``epochs`` epochs, below), sampled by
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

Multi-fidelity (the tasks of ``MULTI_FIDELITY``: digits64). Five-epoch trials misrank settings
that a 15-epoch retraining ranks otherwise: on digits64 the searches of fixed 5-epoch trials chose
small networks at high rates that peak early (Hopfield 106 hidden, validation 0.968 after 5 epochs,
test 0.958 [0.951, 0.966] after 15) over the issue-19 presets (Hopfield 256 hidden: validation
0.937 after 5 epochs, 0.956 after 15). There a trial trains up to the retraining's epochs, reports
its validation accuracy after every epoch, and Optuna's ``HyperbandPruner`` (Li et al., JMLR 18
(2018); successive halving in brackets: first rung after ``HYPERBAND["min_resource"]`` epoch, one
trial in ``reduction_factor`` promoted per rung) stops the trials that trail at a rung, so the
chosen trial is the best at the epochs it will be retrained for (measured on digits64, 20 trials of
up to 15 epochs: 94 to 194 epochs per search, against 100 for 20 fixed trials of 5). The pruner
draws each trial's bracket from a hash of the study name and trial number, and the study is named
by system, task and seed, so the search still reruns identically.

Start (``START_PRESETS``): on digits64 the search of every system with a published digits preset
(hopfield-digits, oscillators-digits, ising-digits, freqprop-digits for the resistive network,
digits-tfim for the TFIM) evaluates that setting first (``start_setting``: the preset's rate,
beta, estimator, batch size, schedule, scaling and searched options, init scale 1, its hidden size
within the cap; ``optuna.Study.enqueue_trial``), then ``trials - 1`` sampled ones: the same number
of trials for every system, and a search never chooses a setting that scores below the preset on
validation (the first trial of the study completes: it is alone at every rung of its bracket).
The qho and the elastic network have no digits preset and start from a sampled trial.

A long search resumes trial by trial: after every trial ``tune`` hands ``checkpoint`` its state
(the finished trials' records and the sampler, pickled as Optuna's FAQ recommends for resuming a
seeded sampler); ``tune(..., resume=state)`` re-enters those trials into a fresh study
(``optuna.trial.create_trial``, with their per-epoch reports and the pruner's rung records in a
multi-fidelity search) with that sampler and runs the rest, so an interrupted search gives the same
history as a straight one (timings aside).
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
# tasks searched multi-fidelity (module docstring, "Multi-fidelity"): trials up to the retraining's epochs, Hyperband
MULTI_FIDELITY = ("digits64",)
PRUNERS = (None, "hyperband")
HYPERBAND = {"min_resource": 1, "reduction_factor": 3}  # epochs of the first rung; trials kept per rung: 1 in 3
# per task, the published setting each system's search evaluates first (module docstring, "Start"): a preset name
START_PRESETS = {"digits64": {"hopfield": "hopfield-digits", "phase_oscillators": "oscillators-digits",
                              "ising": "ising-digits", "resistive": "freqprop-digits", "tfim": "digits-tfim"}}
# the systems' defaults of the searched options, where a preset leaves one unset (tests check them against the systems)
OPTION_DEFAULTS = {"tfim": {"gamma": 1.0}, "ising": {"temperature": 1.0},
                   "phase_oscillators": {"input_scale": 0.5}}


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
    """A finished trial as JSON: its params, state, validation accuracy (a pruned trial's: at its last
    epoch) and user attributes; in a multi-fidelity search also the validation accuracy after every
    epoch ("curve") and the pruner's rung records ("rungs"), which a resumed search needs."""
    record = {"number": trial.number, "params": dict(trial.params), "state": trial.state.name,
              "val_accuracy": trial.value, **trial.user_attrs}
    if trial.intermediate_values:
        record["curve"] = [trial.intermediate_values[step] for step in sorted(trial.intermediate_values)]
        record["rungs"] = {key: value for key, value in trial.system_attrs.items() if key.startswith("completed_rung_")}
    return record


RECORD_KEYS = ("number", "params", "state", "val_accuracy", "curve", "rungs")  # _trial_record's keys that are not user attributes


def _restored_trial(record: dict, space: list[Dimension]) -> optuna.trial.FrozenTrial:
    """A finished trial's record (``_trial_record``) as an Optuna trial to add to a fresh study."""
    state = optuna.trial.TrialState[record["state"]]
    attrs = {k: v for k, v in record.items() if k not in RECORD_KEYS}
    distributions = {dim.name: dim.distribution() for dim in space if dim.name in record["params"]}
    finished = state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return optuna.trial.create_trial(params=record["params"], distributions=distributions, user_attrs=attrs, state=state,
                                     value=record["val_accuracy"] if finished else None,
                                     intermediate_values=dict(enumerate(record.get("curve", []), start=1)),
                                     system_attrs=record.get("rungs", {}))


def start_setting(name: str, task: str, space: list[Dimension]) -> dict | None:
    """The setting of system ``name``'s published preset on ``task`` (START_PRESETS) in the terms of
    its search space, or None where it has none: the preset's learning rate, beta, estimator
    (default centered), batch size, schedule (default constant), scaling (default standard) and the
    searched options of its option table (else the system's default, OPTION_DEFAULTS); init scale 1;
    its hidden size capped at the space's. ValueError if a value lies outside the space."""
    from ..cli_config import read_preset

    preset_name = START_PRESETS.get(task, {}).get(name)
    if preset_name is None:
        return None
    preset = read_preset(preset_name)
    options = {**OPTION_DEFAULTS.get(name, {}), **preset.get("option", {})}
    known = {"learning_rate": preset["lr"], "beta": preset["beta"], "estimator": preset.get("estimator", "centered"),
             "init_scale": 1.0, "batch_size": preset.get("batch-size"), "lr_schedule": preset.get("lr-schedule", "constant"),
             "scaling": preset.get("scaling", "standard"), **options}
    setting = {}
    for dim in space:
        value = min(int(preset["hidden"]), int(dim.high)) if dim.name == "hidden" else known.get(dim.name)
        inside = (value in dim.choices) if dim.kind == "choice" else value is not None and dim.low <= value <= dim.high
        if not inside:
            raise ValueError(f"preset {preset_name!r} sets {dim.name}={value!r}, outside {name}'s search space on {task} "
                             f"({dim}): widen the space or drop the preset from START_PRESETS")
        setting[dim.name] = value
    return setting


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
         pruner: str | None = None, start: dict | None = None,
         resume: dict | None = None, checkpoint: Callable[[dict], None] | None = None) -> dict:
    """Search system ``name``'s space on ``task`` (module docstring) with ``trials`` trials of ``epochs``
    epochs; ``seed`` seeds the sampler, the validation split, every trial's init and shuffling.
    ``batch_size``: the minibatch size where the space does not search it. ``scaled(scaling)``: the
    task's data (the split of ``data``) at that scaling, needed where the space searches "scaling".
    ``pruner`` "hyperband": a multi-fidelity search, trials of up to ``epochs`` epochs stopped early by
    Hyperband on their per-epoch validation accuracy (module docstring); None: every trial runs
    ``epochs`` epochs. ``start``: a setting (``start_setting``) evaluated as the first trial.
    ``checkpoint(state)`` is called after every trial; ``resume=state`` (the latest such state of an
    interrupted search with the same arguments) continues it (module docstring).

    Returns:
        {"space": [Dimension as dict], "trials": [{"number", "params", "state", "val_accuracy",
        "val_loss", "n_params", "seconds", "equilibrations", "error" (failed trials); with a pruner also
        "epochs" (trained), "curve" and "rungs" (``_trial_record``)}], "best": the chosen trial's number
        (None if every trial failed), "setting": its params, "seconds", "equilibrations" (sums over the
        trials)}.
    """
    for argument, value in (("trials", trials), ("epochs", epochs)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{argument} must be an integer >= 1, got {value!r}")
    if pruner not in PRUNERS:
        raise ValueError(f"pruner must be one of {PRUNERS} (None: every trial runs all its epochs), got {pruner!r}")
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
        clock = time.perf_counter()

        def count(trained: int) -> None:
            trial.set_user_attr("equilibrations", equilibrations(setting["estimator"], setting["beta"], trained,
                                                                 len(x_fit), len(x_fit) + len(validation[0])))

        def epoch_done(epoch: int, record: dict, _params) -> None:  # multi-fidelity: report, maybe stop here
            trial.set_user_attr("epochs", epoch)
            trial.set_user_attr("val_loss", record["val_loss"])
            trial.report(record["val_accuracy"], epoch)
            if epoch < epochs and trial.should_prune():  # a trial that trained every epoch completes
                raise optuna.TrialPruned()

        try:
            system, n_params, params = configure(name, task, data.n_features, data.n_classes, setting, seed)
            trial.set_user_attr("n_params", n_params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit(system, (x_fit, y_fit), params, validation=validation, epochs=int(epochs), seed=seed,
                             progress=False, callback=None if pruner is None else epoch_done,
                             **fit_options(setting, batch_size))
        except ValueError as exc:  # an equilibrium that failed: recorded, scored as a failed trial
            trial.set_user_attr("error", str(exc)[:300])
            return math.nan
        except optuna.TrialPruned:
            count(trial.user_attrs["epochs"])
            raise
        finally:
            trial.set_user_attr("seconds", time.perf_counter() - clock)
        count(int(epochs))
        final = result.history[-1]
        trial.set_user_attr("val_loss", final["val_loss"])
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
        # the study's name seeds Hyperband's bracket of each trial (a hash of name and trial number)
        study = optuna.create_study(direction="maximize", sampler=sampler, study_name=f"{name}-{task}-{seed}",
                                    pruner=None if pruner is None else optuna.pruners.HyperbandPruner(
                                        max_resource=int(epochs), **HYPERBAND))
        for record in done:
            study.add_trial(_restored_trial(record, space))
        if start is not None and not done:
            study.enqueue_trial(start)
        study.optimize(objective, n_trials=int(trials) - len(done), callbacks=[save] if checkpoint else None)
    finally:
        optuna.logging.set_verbosity(verbosity)
    history = [_trial_record(t) for t in study.trials]
    chosen = best_trial(history)
    return {"space": [asdict(dim) for dim in space], "trials": history,
            "best": None if chosen is None else chosen["number"], "setting": None if chosen is None else chosen["params"],
            "seconds": float(sum(t["seconds"] for t in history)),
            "equilibrations": int(sum(t.get("equilibrations", 0) for t in history))}
