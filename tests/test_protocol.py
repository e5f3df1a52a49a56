"""The research protocol's statistics on synthetic results whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rlsched.bench import protocol


def synthetic_results(effects: dict[str, float], n_eval: int = 20, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """Baselines 'ref' (best on validation) and 'worse'; learned controllers offset from ref by `effects`."""
    rng = np.random.default_rng(seed)
    trainee = rng.normal(0.35, 0.02, size=n_eval)  # per-seed difficulty shared by every controller
    rows = []
    for ctrl, offset in {"ref": 0.0, "worse": 0.05, **effects}.items():
        for s in range(n_eval):
            loss = trainee[s] + offset + (0 if ctrl == "ref" else rng.normal(0, noise))
            rows.append(
                {"controller": ctrl, "seed": s, "test_loss": loss, "test_accuracy": 1 - loss, "final_val_loss": loss}
            )
    return pd.DataFrame(rows)


def test_per_seed_and_pooled_differences_recover_the_effects():
    effects = {f"a_s{k}": -0.02 + 0.002 * k for k in range(5)} | {f"b_s{k}": 0.0 for k in range(5)}
    results = synthetic_results(effects, noise=0.001)
    configs = {"a": {f"a_s{k}": k for k in range(5)}, "b": {f"b_s{k}": k for k in range(5)}}
    ref, summary, per_seed = protocol.protocol_tables(results, configs, ["worse", "ref"])
    assert ref == "ref"  # chosen on validation loss, not by order
    loss = summary[summary["metric"] == "test_loss"].set_index("configuration")
    a, b = loss.loc["a"], loss.loc["b"]
    assert a["n_ppo_seeds"] == 5 and a["n_eval_seeds"] == 20
    assert a["diff_mean"] == pytest.approx(-0.016, abs=0.006)
    assert a["t_ci_high"] < 0 and a["boot2_ci_high"] < 0 and a["ppo_seeds_better"] == 5
    assert b["t_ci_low"] < 0 < b["t_ci_high"] and b["boot2_ci_low"] < 0 < b["boot2_ci_high"]
    seeds_a = per_seed[(per_seed["configuration"] == "a") & (per_seed["metric"] == "test_loss")]
    assert seeds_a.sort_values("ppo_seed")["diff_mean"].is_monotonic_increasing  # the per-seed effects' order
    md = protocol.markdown(summary, per_seed)
    assert "| a | 5 x 20 |" in md and "ref" in md and "5/5" in md


def test_two_way_bootstrap_is_wider_than_eval_seed_noise_alone():
    rng = np.random.default_rng(1)
    # PPO seeds differ a lot (0.02 std); trainee noise is small: the interval must reflect the PPO seeds.
    d = rng.normal(0, 0.02, size=(5, 1)) + rng.normal(0, 0.002, size=(5, 20))
    lo, hi = protocol.two_way_bootstrap(d, n_resamples=2000)
    within = np.std(d - d.mean(axis=1, keepdims=True)) / np.sqrt(d.size)
    assert hi - lo > 8 * within
    assert protocol.two_way_bootstrap(d[:1]) == (pytest.approx(np.nan, nan_ok=True),) * 2


def test_missing_controller_is_a_clear_error():
    results = synthetic_results({"a_s0": 0.0})
    with pytest.raises(ValueError, match="no results for controller"):
        protocol.difference_matrix(results, ["a_s0", "a_s1"], "ref")
