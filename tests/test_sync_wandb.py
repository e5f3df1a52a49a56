"""scripts/sync_wandb.py: one command uploads every offline W&B run under a folder tree."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> list[Path]:
    """A training run's layout: its own run and its benchmark's, plus a sweep job's, and a file that is no run."""
    runs = [
        root / "train" / "wandb" / "offline-run-20260101_000000-aaaa",
        root / "train" / "benchmark" / "wandb" / "offline-run-20260101_000100-bbbb",
        root / "multirun" / "0" / "wandb" / "offline-run-20260101_000200-cccc",
    ]
    for r in runs:
        r.mkdir(parents=True)
        (r / "run-x.wandb").write_bytes(b":W&B")
    (root / "train" / "wandb" / "latest-run").mkdir()
    (root / "train" / "wandb" / "offline-run-not-a-folder").write_text("")
    return runs


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "sync_wandb.py"), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_syncs_every_offline_run_in_the_tree_with_wandb_sync(tmp_path):
    runs = _tree(tmp_path / "out")
    log = tmp_path / "calls.txt"
    stub = tmp_path / "wandb"  # a stand-in executable that records its arguments
    stub.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    proc = _run([str(tmp_path / "out"), "--project", "p"], {"WANDB": str(stub)})
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == [f"sync --project p {r}" for r in sorted(runs)]
    assert "3/3 offline run(s) synced" in proc.stdout


def test_dry_run_lists_commands_and_a_failed_upload_fails_the_command(tmp_path):
    runs = _tree(tmp_path / "out")
    proc = _run([str(tmp_path / "out"), "--dry-run"], {"WANDB": "/nonexistent/wandb"})
    assert proc.returncode == 0 and proc.stdout.count("/nonexistent/wandb sync ") == 3
    assert all(str(r) in proc.stdout for r in runs)
    (runs[0] / "run-x.wandb.synced").write_text("")  # wandb's marker of an uploaded run: skipped from now on
    proc = _run([str(tmp_path / "out"), "--dry-run"], {"WANDB": "/nonexistent/wandb"})
    assert str(runs[0]) not in proc.stdout and proc.stdout.count(" sync ") == 2
    proc = _run([str(tmp_path / "out"), "--dry-run", "--include-synced"], {"WANDB": "/nonexistent/wandb"})
    assert str(runs[0]) in proc.stdout
    failing = tmp_path / "wandb"
    failing.write_text("#!/bin/sh\nexit 3\n")
    failing.chmod(failing.stat().st_mode | stat.S_IEXEC)
    proc = _run([str(tmp_path / "out" / "multirun")], {"WANDB": str(failing)})
    assert proc.returncode == 1 and "failed" in proc.stderr and "0/1" in proc.stdout
