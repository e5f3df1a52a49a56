"""rlsched.bench.tuning: search spaces every baseline can run, edge warnings, seeds, and resumable studies."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd
import pytest

from rlsched.bench.tuning import (
    STUDY_FILE,
    Choice,
    Range,
    TuneSettings,
    at_range_edge,
    check_lr_range,
    controller_params,
    journal_storage,
    search_space,
    tune_baselines,
    tuning_seeds,
)
from rlsched.control import BASELINES, make_controller

OBS = np.zeros(9, dtype=np.float32)


@dataclass
class FakeCfg:
    episode_steps: int


@dataclass
class FakeEnv:
    cfg: FakeCfg
    steps_per_epoch: float = 7.0
    info: dict = field(default_factory=lambda: {"val_loss": 1.0})


def corners(space: dict) -> list[dict]:
    """Every range at its low end, at its high end, and in the middle (choices cycled)."""
    out = []
    for k, where in enumerate((0.0, 1.0, 0.5)):
        point = {}
        for name, dim in space.items():
            if isinstance(dim, Choice):
                point[name] = dim.options[k % len(dim.options)]
            else:
                v = dim.low * (dim.high / dim.low) ** where if dim.log else dim.low + where * (dim.high - dim.low)
                point[name] = round(v) if dim.integer else v
        out.append(point)
    return out


@pytest.mark.parametrize("steps", [3, 5, 30])
@pytest.mark.parametrize("kind", sorted(BASELINES))
def test_every_point_of_every_space_runs_a_whole_episode(kind: str, steps: int) -> None:
    space = search_space(kind, steps, (0.001, 0.06))
    assert space["lr"] == Range(0.001, 0.06, log=True)  # the LR is always searched, log-uniformly
    env = FakeEnv(FakeCfg(steps))
    for point in corners(space):
        ctrl = make_controller(kind, **controller_params(point))
        ctrl.reset(env, OBS, env.info)
        lrs = [ctrl.act(OBS, env.info) for _ in range(steps)]
        assert all(lr > 0 for lr in lrs), (point, lrs)


def test_search_space_refuses_what_it_cannot_tune() -> None:
    with pytest.raises(ValueError, match="unknown baseline kind 'sgdr'"):
        search_space("sgdr", 30, (0.001, 0.06))
    with pytest.raises(ValueError, match="at least 3 actions"):
        search_space("one_cycle", 2, (0.001, 0.06))


def test_eta_min_is_searched_as_a_share_of_the_lr() -> None:
    assert controller_params({"lr": 0.02, "eta_min_frac": 0.25}) == {"lr": 0.02, "eta_min": 0.005}
    assert controller_params({"lr": 0.02, "gamma": 0.9}) == {"lr": 0.02, "gamma": 0.9}


def test_edge_warning_in_log_space_and_not_at_natural_limits() -> None:
    space = search_space("exponential", 30, (0.001, 0.1))  # lr spans two decades
    assert at_range_edge({"lr": 0.001 * 100**0.01, "gamma": 0.9}, space) == ["lr"]  # 1% of the log range
    assert at_range_edge({"lr": 0.001 * 100**0.05, "gamma": 0.9}, space) == []  # 5%: inside
    assert at_range_edge({"lr": 0.099, "gamma": 0.9}, space) == ["lr"]
    assert at_range_edge({"lr": 0.01, "gamma": 0.801}, space) == ["gamma"]
    assert at_range_edge({"lr": 0.01, "gamma": 1.0}, space) == []  # gamma = 1 (no decay) is a natural bound
    plateau = search_space("plateau", 30, (0.001, 0.1))
    assert at_range_edge({"lr": 0.01, "factor": 0.5, "patience": 5, "threshold": 1e-3}, plateau) == ["patience"]
    assert at_range_edge({"lr": 0.01, "factor": 0.5, "patience": 0, "threshold": 1e-3}, plateau) == []


def test_tuning_seeds_come_from_the_tuning_set() -> None:
    assert tuning_seeds(None, 2) == [20_000, 20_001]
    assert tuning_seeds([20_005, 20_007], 2) == [20_005, 20_007]
    with pytest.raises(ValueError, match="lie outside the tuning range"):
        tuning_seeds([100, 101], 2)
    with pytest.raises(ValueError, match="without repeats"):
        tuning_seeds([20_000, 20_000], 2)


def test_lr_range_must_lie_inside_the_env_bounds() -> None:
    assert check_lr_range([0.001, 0.06], {}) == (0.001, 0.06)
    with pytest.raises(ValueError, match=r"leaves the env's LR bounds \[1e-05, 0.1\]"):
        check_lr_range([0.001, 0.5], {})
    with pytest.raises(ValueError, match="0 < low < high"):
        check_lr_range([0.06, 0.001], {})
    with pytest.raises(ValueError, match="n_trials must be an integer >= 1"):
        TuneSettings(n_trials=0, seeds=[20_000], lr_range=(0.001, 0.06))


@pytest.fixture
def tiny3(tiny_env_kwargs: dict) -> dict:
    return {**tiny_env_kwargs, "episode_steps": 3, "train_size": 1000, "val_probe": 100}


def _tune(env_kw: dict, out, n_trials: int, seeds: list[int], baselines: list[str], lr0: float = 0.01) -> list:
    specs = {"constant": {"kind": "constant", "lr": lr0}, "one_cycle": {"kind": "one_cycle", "lr": lr0}}
    settings = TuneSettings(n_trials=n_trials, seeds=seeds, lr_range=(0.001, 0.06))
    return tune_baselines(env_kw, baselines, specs, settings, out, tuned_dir=out / "tuned")


def test_a_resumed_study_equals_an_uninterrupted_one(tiny3: dict, tmp_path, capsys) -> None:
    whole = _tune(tiny3, tmp_path / "whole", 4, [20_000], ["constant", "one_cycle"])
    _tune(tiny3, tmp_path / "split", 2, [20_000], ["constant", "one_cycle"])
    split = _tune(tiny3, tmp_path / "split", 4, [20_000], ["constant", "one_cycle"])
    assert "resuming after 2/4 logged trials" in capsys.readouterr().out
    a, b = (pd.read_csv(tmp_path / d / "trials.csv").drop(columns="seconds") for d in ("whole", "split"))
    pd.testing.assert_frame_equal(a, b)
    # The replayed sampler draws new points after the logged ones, not those again.
    assert a.groupby("baseline")["lr"].nunique().tolist() == [4, 4]
    assert [w.params for w in whole] == [w.params for w in split]


def test_logged_trials_with_other_settings_are_refused(tiny3: dict, tmp_path, capsys) -> None:
    _tune(tiny3, tmp_path, 1, [20_000], ["constant"])
    _tune(tiny3, tmp_path, 1, [20_000], ["constant"], lr0=0.003)  # a searched default does not matter
    assert "all 1 trials logged; nothing to run" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"differing keys, logged -> now: training\.val_probe: \d+ -> 200\)"):
        _tune({**tiny3, "val_probe": 200}, tmp_path, 1, [20_000], ["constant"])
    with pytest.raises(
        ValueError, match=r"holds 1 trials of 'constant' run with other settings \(.*seeds: \[20000\] -> \[20001\]\)"
    ):
        _tune(tiny3, tmp_path, 1, [20_001], ["constant"])


def test_the_study_resumes_from_optunas_journal(tiny3: dict, tmp_path, capsys) -> None:
    """The journal (study.log), not trials.csv, is what a re-run resumes from; Optuna reads it back as is."""
    whole = _tune(tiny3, tmp_path / "whole", 4, [20_000], ["constant"])
    _tune(tiny3, tmp_path / "split", 2, [20_000], ["constant"])
    (tmp_path / "split" / "trials.csv").unlink()  # the readable record only: the study lives in the journal
    (tmp_path / "split" / "settings.json").unlink()
    split = _tune(tiny3, tmp_path / "split", 4, [20_000], ["constant"])
    out = capsys.readouterr().out
    assert "resuming after 2/4 logged trials" in out
    assert re.search(r"ETA \d+s", out)  # the one duration format (rlsched.tracking.format_duration)
    assert [w.params for w in whole] == [w.params for w in split] and whole[0].score == split[0].score
    study = optuna.load_study(study_name="constant", storage=journal_storage(tmp_path / "whole" / STUDY_FILE))
    trials = pd.read_csv(tmp_path / "whole" / "trials.csv")
    assert [t.value for t in study.trials] == trials["score"].tolist()
    assert [t.params["lr"] for t in study.trials] == trials["lr"].tolist()
    (tmp_path / "whole" / "trials.csv").unlink()
    (tmp_path / "whole" / "settings.json").unlink()
    with pytest.raises(
        ValueError, match=r"study.log holds 4 trials of 'constant' run with other settings \(\['seeds'\]"
    ):
        _tune(tiny3, tmp_path / "whole", 4, [20_001], ["constant"])  # the journal knows its settings


def test_a_folder_from_before_the_journal_is_imported(tiny3: dict, tmp_path, capsys) -> None:
    first = _tune(tiny3, tmp_path, 2, [20_000], ["constant"])
    for f in (tmp_path / STUDY_FILE, tmp_path / "sampler-constant.pkl"):
        f.unlink()  # what a tuning folder written before the journal holds: trials.csv and settings.json
    again = _tune(tiny3, tmp_path, 2, [20_000], ["constant"])
    assert "all 2 trials logged; nothing to run" in capsys.readouterr().out
    assert [w.params for w in again] == [w.params for w in first]
    more = _tune(tiny3, tmp_path, 3, [20_000], ["constant"])  # extended: the sampler state is gone, seeded anew
    assert "seeded anew" in capsys.readouterr().out and more[0].n_trials == 3
    assert pd.read_csv(tmp_path / "trials.csv")["lr"].nunique() == 3


def test_a_trial_missing_from_trials_csv_is_restored_from_the_journal(tiny3: dict, tmp_path) -> None:
    _tune(tiny3, tmp_path, 2, [20_000], ["constant"])
    full = pd.read_csv(tmp_path / "trials.csv")
    full.iloc[:1].to_csv(tmp_path / "trials.csv", index=False)  # as if killed after the journal's record
    _tune(tiny3, tmp_path, 2, [20_000], ["constant"])
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "trials.csv"), full)
