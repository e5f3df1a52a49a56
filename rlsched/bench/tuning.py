"""Fair tuning of the baselines: Optuna studies with equal budgets, scored on mean final validation loss.

Every baseline gets its own study with the same number of trials and the same seeded TPE sampler, searches
the LR log-uniformly over one range and its other settings over the ranges of `search_space`, and is scored
on the same tuning seeds (rlsched.env.seeds) with the test set switched off. Each baseline's study lives in Optuna's
journal storage (`study.log` in the run folder, one study per baseline) with its sampler's state beside it
(`sampler-<baseline>.pkl`, as Optuna's FAQ recommends for reproducible resumption), so a re-run with the same
settings resumes where it stopped and draws what an uninterrupted run would have drawn; a baseline with all its
trials is skipped. Every trial is also written to `trials.csv` (the readable record) as soon as it ends; each
baseline's winner is merged into `conf/tuned/<task>_<hash>.yaml`, which the harness reads. A folder from before the
journal (trials.csv only) is imported into it once.
"""

from __future__ import annotations

import json
import math
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from omegaconf import OmegaConf

from rlsched.bench.harness import run_episode
from rlsched.config import PROJECT_ROOT, TASK_RECORD, check_tuned_record, task_key, task_record, to_dict, tuned_file
from rlsched.control import BASELINES, make_controller
from rlsched.env.config import TRAINING_FIELDS
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.seeds import check_disjoint, seed_block
from rlsched.identity import differing_keys
from rlsched.io import atomic_write_bytes, atomic_write_text
from rlsched.tracking import Tracker, format_duration

STUDY_FILE = "study.log"  # Optuna's journal: every baseline's study
TRIALS_FILE = "trials.csv"
BEST_FILE = "best.csv"
SETTINGS_FILE = "settings.json"
EDGE_TOL = 0.02  # a winner this close to a range end (as a share of the range, log space for log ranges) warns
# Searched as a share of the LR, so that the floor scales with the rate it anneals from.
ETA_MIN_FRAC = "eta_min_frac"


@dataclass(frozen=True)
class Range:
    """A numeric search range. `limits`: ends that are natural bounds (gamma=1: no decay), not a search choice,
    so a winner there is no cue to widen the range."""

    low: float
    high: float
    log: bool = False
    integer: bool = False
    limits: tuple[str, ...] = ()

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]

    def distribution(self) -> optuna.distributions.BaseDistribution:
        return optuna.distributions.CategoricalDistribution(self.options)


Space = dict[str, Range | Choice]


def search_space(kind: str, episode_steps: int, lr_range: Sequence[float]) -> Space:
    """What a study of baseline `kind` searches on an episode of `episode_steps` actions."""
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline kind {kind!r}; allowed: {sorted(BASELINES)}")
    t = int(episode_steps)
    if t < 3:
        raise ValueError(f"tuning needs episodes of at least 3 actions (warm-up schedules), got {t}")
    lr = Range(float(lr_range[0]), float(lr_range[1]), log=True)
    # one_cycle's warm-up must last more than one action (OneCycleLR divides by pct_start*T - 1).
    pct_low = max(0.05, 1.1 / t)
    spaces: dict[str, Space] = {
        "constant": {"lr": lr},
        "step_decay": {
            "lr": lr,
            "gamma": Range(0.1, 0.95),
            "step_size": Range(1, t - 1, integer=True, limits=("low", "high")),
        },
        "exponential": {"lr": lr, "gamma": Range(0.8, 1.0, limits=("high",))},
        "cosine": {"lr": lr, ETA_MIN_FRAC: Range(0.0, 0.5, limits=("low",))},
        "plateau": {
            "lr": lr,
            "factor": Range(0.1, 0.9),
            "patience": Range(0, 5, integer=True, limits=("low",)),
            "threshold": Range(1e-5, 1e-1, log=True),
        },
        "one_cycle": {
            "lr": lr,
            "pct_start": Range(pct_low, max(0.5, pct_low)),
            "div_factor": Range(1.0, 100.0, log=True, limits=("low",)),
            "final_div_factor": Range(1.0, 1e4, log=True, limits=("low",)),
            "anneal_strategy": Choice(("cos", "linear")),
        },
        "warmup_cosine": {
            "lr": lr,
            "warmup_frac": Range(0.02, 0.5),
            "start_factor": Range(0.01, 1.0, log=True, limits=("high",)),
            ETA_MIN_FRAC: Range(0.0, 0.5, limits=("low",)),
        },
    }
    return spaces[kind]


def controller_params(sampled: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's sampled values as controller parameters (eta_min_frac becomes eta_min = frac * lr)."""
    params = dict(sampled)
    if ETA_MIN_FRAC in params:
        params["eta_min"] = params.pop(ETA_MIN_FRAC) * params["lr"]
    return params


def at_range_edge(sampled: Mapping[str, Any], space: Space, tol: float = EDGE_TOL) -> list[str]:
    """Searched numeric settings whose value lies within `tol` of a range end that is not a natural bound."""
    edges = []
    for name, dim in space.items():
        if not isinstance(dim, Range) or dim.high <= dim.low:
            continue
        v, lo, hi = float(sampled[name]), dim.low, dim.high
        pos = (math.log(v / lo) / math.log(hi / lo)) if dim.log else (v - lo) / (hi - lo)
        if (pos <= tol and "low" not in dim.limits) or (pos >= 1 - tol and "high" not in dim.limits):
            edges.append(name)
    return edges


def check_lr_range(lr_range: Sequence[float], env_kw: Mapping[str, Any]) -> tuple[float, float]:
    """The LR range as a pair inside the env's [lr_min, lr_max] (outside it the env would clip silently)."""
    if len(lr_range) != 2 or not 0 < lr_range[0] < lr_range[1]:
        raise ValueError(f"lr_range must be [low, high] with 0 < low < high, got {list(lr_range)}")
    cfg = EnvConfig.coerce(env_kw)
    if lr_range[0] < cfg.lr_min or lr_range[1] > cfg.lr_max:
        raise ValueError(
            f"lr_range {list(lr_range)} leaves the env's LR bounds [{cfg.lr_min}, {cfg.lr_max}], where it clips; "
            f"narrow lr_range or set env.lr_min/env.lr_max"
        )
    return float(lr_range[0]), float(lr_range[1])


def tuning_seeds(seeds: Sequence[int] | None, n_seeds: int) -> list[int]:
    """The listed seeds (checked to be tuning seeds) or the first `n_seeds` of the tuning set."""
    if seeds is None:
        return seed_block("tuning", 0, int(n_seeds))
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"tuning seeds must be a non-empty list without repeats, got {seeds}")
    check_disjoint({"tuning": seeds})
    return seeds


def score_setting(
    env_kw: Mapping[str, Any],
    baseline: str,
    params: Mapping[str, Any],
    seeds: Sequence[int],
    env: LRControlEnv | None = None,
) -> dict:
    """Mean final validation loss of one baseline setting. The test set is switched off, not just unused."""
    kw = {**env_kw, "test_eval": False, "final_val_eval": True}
    params = dict(params)
    kind = params.pop("kind", baseline)
    ctrl = make_controller(kind, name=baseline, **params)
    env = env or LRControlEnv(**kw)
    if env.cfg.test_eval or not env.cfg.final_val_eval:
        raise ValueError("score_setting needs an env with test_eval=False and final_val_eval=True")
    losses = []
    for s in seeds:
        final = run_episode(env, ctrl, int(s)).final
        # A diverged run scores its final validation loss, which is poor or non-finite: never a winner.
        v = final["final_val_loss"]
        losses.append(v if math.isfinite(v) else float("inf"))
    return {
        "task": task_key(env_kw),
        "baseline": baseline,
        "params": {"kind": kind, **params},
        "seeds": [int(s) for s in seeds],
        "val_losses": losses,
        "score": sum(losses) / len(losses),
    }


@dataclass
class TuneSettings:
    """Everything that makes two studies of a baseline comparable (n_trials aside: more trials extend one)."""

    n_trials: int
    seeds: list[int]
    lr_range: tuple[float, float]
    sampler_seed: int = 0

    def __post_init__(self) -> None:
        if self.n_trials != int(self.n_trials) or self.n_trials < 1:
            raise ValueError(f"n_trials must be an integer >= 1, got {self.n_trials}")
        self.n_trials = int(self.n_trials)

    def identity(
        self, env_kw: Mapping[str, Any], baseline: str, spec: Mapping[str, Any], space: Space
    ) -> dict[str, Any]:
        """What logged trials must share to be resumed: the trainee's training setup, the baseline's fixed
        settings (its searched ones are the trials' own), the search space, seeds and sampler."""
        searched = set(controller_params(dict.fromkeys(space, 1.0)))
        cfg = EnvConfig.coerce(env_kw)  # built once: task_key takes the built config
        env = cfg.to_dict()
        return _json_normal(  # through JSON, so that it compares equal to the copy read back from settings.json
            {
                "task": task_key(cfg),
                "training": {k: env.get(k) for k in TRAINING_FIELDS}
                | ({"tasks": env["tasks"]} if env.get("tasks") else {}),
                "baseline": baseline,
                "fixed": {k: v for k, v in spec.items() if k not in searched},
                "space": {k: asdict(v) for k, v in space.items()},
                "seeds": list(self.seeds),
                "lr_range": list(self.lr_range),
                "sampler_seed": self.sampler_seed,
            }
        )


def _json_normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


@dataclass
class TrialLog:
    """trials.csv and settings.json of a run folder: every trial of every baseline, rewritten after each."""

    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, dict] = field(default_factory=dict)

    @classmethod
    def open(cls, out_dir: str | Path) -> TrialLog:
        out = Path(out_dir)
        log = cls(out)
        if (out / TRIALS_FILE).is_file():
            # Read as text and parsed by float(), which restores every logged value exactly (for the journal import).
            df = pd.read_csv(out / TRIALS_FILE, dtype=str, keep_default_na=False)
            log.rows = [{k: _parse(v) for k, v in r.items() if v != ""} for r in df.to_dict("records")]
        if (out / SETTINGS_FILE).is_file():
            log.settings = json.loads((out / SETTINGS_FILE).read_text())
        return log

    def trials_of(self, baseline: str, identity: dict[str, Any]) -> list[dict[str, Any]]:
        """The logged trials of `baseline`, refusing them if they were run with other settings."""
        rows = [r for r in self.rows if r["baseline"] == baseline]
        old = self.settings.get(baseline)
        if rows and old != identity:
            diff = differing_keys(old or {}, identity)
            changed = "; ".join(f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in diff.items())
            raise ValueError(
                f"{self.out_dir / TRIALS_FILE} holds {len(rows)} trials of {baseline!r} run with other settings "
                f"(differing keys, logged -> now: {changed}); choose another out_dir=, or delete that folder to "
                "start over"
            )
        self.settings[baseline] = identity
        return sorted(rows, key=lambda r: int(r["trial"]))

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.save()

    def save(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / SETTINGS_FILE).write_text(json.dumps(self.settings, indent=2))
        order = list(dict.fromkeys(r["baseline"] for r in self.rows))  # each baseline's trials together
        df = pd.DataFrame(sorted(self.rows, key=lambda r: (order.index(r["baseline"]), int(r["trial"]))))
        df["trial"] = df["trial"].astype(int)
        first = ["baseline", "trial"]
        last = ["score", *sorted(c for c in df.columns if c.startswith("val_loss_")), "seconds"]
        middle = [c for c in df.columns if c not in first and c not in last]
        df[first + middle + [c for c in last if c in df.columns]].to_csv(self.out_dir / TRIALS_FILE, index=False)


def _parse(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _row_params(row: Mapping[str, Any], space: Space) -> dict[str, Any]:
    """A logged trial's sampled values, typed as its distributions expect."""
    out = {}
    for name, dim in space.items():
        v = row[name]
        out[name] = v if isinstance(dim, Choice) else int(v) if dim.integer else float(v)
    return out


def _fmt(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


@dataclass
class Winner:
    baseline: str
    trial: int
    n_trials: int
    score: float
    sampled: dict[str, Any]
    params: dict[str, Any]  # the controller's full settings (spec + winner), as written to the tuned file
    at_edge: list[str]
    seconds: float


def journal_storage(path: str | Path) -> optuna.storages.JournalStorage:
    """An Optuna storage in one append-only file: no database server, safe for several processes."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def _sampler_path(out_dir: Path, baseline: str) -> Path:
    return out_dir / f"sampler-{baseline}.pkl"


def _save_sampler(path: Path, n_done: int, sampler: optuna.samplers.BaseSampler) -> None:
    atomic_write_bytes(path, pickle.dumps({"n_done": n_done, "sampler": sampler}))  # a kill leaves the old whole


def _resumed_sampler(path: Path, n_done: int, seed: int, baseline: str) -> optuna.samplers.BaseSampler:
    """The sampler as it was after `n_done` trials (pickled by this module after each), so that the study goes on
    as an uninterrupted one would; without that state (a folder from before the journal, or a kill between a
    trial's end and the save), a sampler seeded by (seed, n_done): new points, not the first ones again."""
    if n_done == 0:
        return optuna.samplers.TPESampler(seed=seed)
    if path.is_file():
        saved = pickle.loads(path.read_bytes())  # written by _save_sampler in this run folder
        if saved["n_done"] == n_done:
            return saved["sampler"]
    print(f"[tune] {baseline}: no sampler state after {n_done} trials; continuing with a sampler seeded anew")
    return optuna.samplers.TPESampler(seed=seed + 1_000_003 * n_done)


def _import_logged(study: optuna.Study, rows: Sequence[Mapping[str, Any]], dists: dict, space: Space) -> None:
    """Trials logged in trials.csv before the journal existed, added to the study as they were."""
    for row in rows:
        study.add_trial(
            optuna.trial.create_trial(
                params=_row_params(row, space),
                distributions=dists,
                value=float(row["score"]),
                user_attrs={"seconds": float(row.get("seconds", 0.0))},
            )
        )


def _check_study_identity(study: optuna.Study, identity: dict[str, Any], out_dir: Path, baseline: str) -> None:
    old = study.user_attrs.get("identity")
    n = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    if old is not None and old != identity and n:
        changed = sorted(k for k in identity if old.get(k) != identity[k])
        raise ValueError(
            f"{out_dir / STUDY_FILE} holds {n} trials of {baseline!r} run with other settings ({changed} differ); "
            "choose another out_dir=, or delete that folder to start over"
        )
    study.set_user_attr("identity", identity)


def _trial_row(baseline: str, i: int, trial: optuna.trial.FrozenTrial, seeds: Sequence[int]) -> dict[str, Any]:
    """A finished trial as its trials.csv row (the sampled values, the controller's derived ones, scores)."""
    params = trial.params
    return {
        "baseline": baseline,
        "trial": i,
        **params,
        **{k: v for k, v in controller_params(params).items() if k not in params},
        "score": trial.value,
        **{f"val_loss_{s}": v for s, v in zip(seeds, trial.user_attrs["val_losses"], strict=True)},
        "seconds": trial.user_attrs["seconds"],
    }


def tune_baseline(
    env: LRControlEnv,
    env_kw: Mapping[str, Any],
    baseline: str,
    spec: Mapping[str, Any],
    settings: TuneSettings,
    log: TrialLog,
    on_trial: Callable[[int, float, float], None] | None = None,
    eta_after: Callable[[float], float] | None = None,
) -> Winner:
    """Run (or finish) the study of one baseline; trials stored in the run folder's journal are not re-run."""
    spec = dict(spec)
    kind = spec.pop("kind", baseline)
    space = search_space(kind, env.cfg.episode_steps, settings.lr_range)
    if spec.get("unit", "step") != "step":
        raise ValueError(f"{baseline}: tuning searches step_size in env steps; set unit: step in its spec")
    identity = settings.identity(env_kw, baseline, {"kind": kind, **spec}, space)
    logged = log.trials_of(baseline, identity)  # trials.csv: refused here if run with other settings
    dists = {k: d.distribution() for k, d in space.items()}
    study = optuna.create_study(
        study_name=baseline, storage=journal_storage(log.out_dir / STUDY_FILE), direction="minimize",
        load_if_exists=True,
    )  # fmt: skip
    _check_study_identity(study, identity, log.out_dir, baseline)
    complete = optuna.trial.TrialState.COMPLETE
    if not study.get_trials(states=(complete,)) and logged:
        _import_logged(study, logged, dists, space)
    trials = study.get_trials(states=(complete,))
    done = trials[: settings.n_trials]
    sampler_file = _sampler_path(log.out_dir, baseline)
    study.sampler = _resumed_sampler(sampler_file, len(trials), settings.sampler_seed, baseline)
    if len(trials) > settings.n_trials:
        print(f"[tune] {baseline}: {len(trials)} trials logged, using the first {settings.n_trials} (equal budgets)")
    elif len(done) == settings.n_trials:
        print(f"[tune] {baseline}: all {settings.n_trials} trials logged; nothing to run")
    elif done:
        print(f"[tune] {baseline}: resuming after {len(done)}/{settings.n_trials} logged trials")
    logged_numbers = {int(r["trial"]) for r in logged}
    for i, t in enumerate(done):  # killed between the journal's record and trials.csv's: the row from the journal
        if i not in logged_numbers and "val_losses" in t.user_attrs:
            log.add(_trial_row(baseline, i, t, settings.seeds))
    scores = [float(t.value) for t in done]
    t_start = time.perf_counter()
    for i in range(len(done), settings.n_trials):
        t0 = time.perf_counter()
        trial = study.ask(dists)
        result = score_setting(
            env_kw, baseline, {"kind": kind, **spec, **controller_params(trial.params)}, settings.seeds, env
        )
        seconds = time.perf_counter() - t0
        trial.set_user_attr("seconds", seconds)
        trial.set_user_attr("val_losses", result["val_losses"])
        study.tell(trial, result["score"])
        _save_sampler(sampler_file, i + 1, study.sampler)
        scores.append(result["score"])
        best = min(range(len(scores)), key=scores.__getitem__)
        log.add(_trial_row(baseline, i, study.trials[trial.number], settings.seeds))
        if on_trial:
            on_trial(i, result["score"], scores[best])
        per = (time.perf_counter() - t_start) / (i + 1 - len(done))
        left = per * (settings.n_trials - i - 1)
        eta = f"ETA {format_duration(left)}" + (f", all {format_duration(left + eta_after(per))}" if eta_after else "")
        print(
            f"[tune] {baseline} trial {i + 1}/{settings.n_trials}: score {result['score']:.4f} ({_fmt(trial.params)})"
            f" | best {scores[best]:.4f} (trial {best + 1}) | {per:.1f} s/trial, {eta}",
            flush=True,
        )
    trials = study.get_trials(states=(complete,))[: settings.n_trials]
    best_i = min(range(len(trials)), key=lambda k: trials[k].value)  # ties: the first, as min() keeps
    sampled = dict(trials[best_i].params)
    return Winner(
        baseline=baseline,
        trial=best_i,
        n_trials=len(trials),
        score=float(trials[best_i].value),
        sampled=sampled,
        params={**spec, **controller_params(sampled)},
        at_edge=at_range_edge(sampled, space),
        seconds=float(sum(t.user_attrs.get("seconds", 0.0) for t in trials)),
    )


def write_tuned(
    path: str | Path,
    winner: Winner,
    seeds: Sequence[int],
    settings: TuneSettings,
    source: str,
    env_kw: Mapping[str, Any] | None = None,
) -> None:
    """Merge one baseline's winner into a tuned file, keeping the other baselines and their header lines.

    With `env_kw` the file records its task (`_task`) and a file that records another task is refused."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    current = to_dict(OmegaConf.load(path)) if path.is_file() else {}
    if env_kw is not None:
        if path.is_file():
            check_tuned_record(path, current.get(TASK_RECORD), env_kw)
        current = {TASK_RECORD: task_record(env_kw), **{k: v for k, v in current.items() if k != TASK_RECORD}}
    current[winner.baseline] = winner.params
    lo, hi = settings.lr_range
    header = (
        "# Tuned on mean final validation loss (never test). Written by rlsched.bench.tuning.\n"
        f"# {winner.baseline}: best of {winner.n_trials} trials (Optuna TPE, sampler seed {settings.sampler_seed}, "
        f"lr log-uniform in [{lo:g}, {hi:g}]), score {winner.score:.4f} on tuning seeds {list(seeds)} "
        f"(trial {winner.trial + 1}; {source}).\n"
    )
    old_header = (
        [
            line
            for line in path.read_text().splitlines()
            if line.startswith("# ") and not line.startswith(f"# {winner.baseline}:") and "Written by" not in line
        ]
        if path.is_file()
        else []
    )
    atomic_write_text(path, header + "".join(f"{line}\n" for line in old_header) + OmegaConf.to_yaml(current))


def tune_baselines(
    env_kw: Mapping[str, Any],
    baselines: Sequence[str],
    specs: Mapping[str, Mapping[str, Any]],
    settings: TuneSettings,
    out_dir: str | Path,
    tuned_dir: str | Path | None = None,
    tracker_for: Callable[[str], Tracker] | None = None,
) -> list[Winner]:
    """Tune each listed baseline in turn on one task; winners -> `<tuned_dir>/<task>.yaml` and best.csv."""
    specs = dict(to_dict(specs))
    unknown = [b for b in baselines if b not in specs]
    if unknown or not baselines or len(set(baselines)) != len(baselines):
        raise ValueError(f"baselines must be distinct names from the configured {sorted(specs)}, got {list(baselines)}")
    task = task_key(env_kw)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial gets its own progress line below
    env = LRControlEnv(**{**env_kw, "test_eval": False, "final_val_eval": True})
    for b in baselines:  # every search space and spec fails here, before any training
        spec = dict(specs[b])
        search_space(spec.get("kind", b), env.cfg.episode_steps, settings.lr_range)
    log = TrialLog.open(out_dir)
    tuned = tuned_file(env_kw, tuned_dir)
    if tuned.is_file():  # a file of another task is refused now, not after hours of trials
        check_tuned_record(tuned, to_dict(OmegaConf.load(tuned)).get(TASK_RECORD), env_kw)
    print(
        f"[tune] task {task}: {list(baselines)}, {settings.n_trials} trials each on tuning seeds {settings.seeds}, "
        f"lr in {list(settings.lr_range)}; trials -> {_shown(Path(out_dir) / TRIALS_FILE)}",
        flush=True,
    )
    winners: list[Winner] = []
    for k, b in enumerate(baselines):
        tracker = tracker_for(b) if tracker_for else Tracker(backend="none")
        left = len(baselines) - k - 1
        try:
            w = tune_baseline(
                env,
                env_kw,
                b,
                specs[b],
                settings,
                log,
                on_trial=lambda i, score, best, tracker=tracker: tracker.log(
                    {"tune/score": score, "tune/best": best}, step=i
                ),
                eta_after=lambda per, left=left: per * settings.n_trials * left,
            )
            tracker.summary({"tune/best_score": w.score, "tune/best_trial": w.trial, "tune/n_trials": w.n_trials})
        finally:
            tracker.finish()
        write_tuned(tuned, w, settings.seeds, settings, _shown(Path(out_dir) / TRIALS_FILE), env_kw)
        winners.append(w)
        print(f"[tune] {b}: best of {w.n_trials} trials, score {w.score:.4f} with {_fmt(w.params)} -> {tuned}")
        if w.at_edge:
            print(f"[tune] WARNING {b}: the best {w.at_edge} lie at the edge of the search range; widen it")
    _write_best(Path(out_dir), winners)
    return winners


def _shown(path: Path) -> str:
    """A path as written into a committed file: relative to the project where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def _write_best(out_dir: Path, winners: Sequence[Winner]) -> None:
    """best.csv: one row per baseline tuned by this call (merged with rows of earlier calls for others)."""
    path = out_dir / BEST_FILE
    rows = {r["baseline"]: r for r in (pd.read_csv(path).to_dict("records") if path.is_file() else [])}
    for w in winners:
        rows[w.baseline] = {
            "baseline": w.baseline,
            "n_trials": w.n_trials,
            "best_trial": w.trial + 1,
            "score": w.score,
            "params": json.dumps(w.params),
            "at_edge": " ".join(w.at_edge),
            "tuning_seconds": round(w.seconds, 1),
        }
    pd.DataFrame(list(rows.values())).to_csv(path, index=False)
