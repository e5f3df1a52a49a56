"""Upload every offline W&B run under one or more folders: `wandb sync` on each `offline-run-*` folder found.

python scripts/sync_wandb.py outputs multirun            # or: make sync-wandb DIRS="outputs multirun"
python scripts/sync_wandb.py results/demo --dry-run      # list the commands only

A training run writes two offline runs (training, then its benchmark in `benchmark/wandb/`), a sweep one per job:
`wandb sync <folder>` uploads only the runs directly inside the folder it is given, so this walks the tree.
A run already uploaded (wandb leaves a `run-*.wandb.synced` marker next to its file) is skipped unless
`--include-synced`, so re-running after new runs uploads only those.
`WANDB` names the executable (default: `wandb` next to this Python, else on PATH).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path


def is_synced(run: Path) -> bool:
    return any(run.glob("*.wandb.synced"))


def offline_runs(roots: Iterable[str | Path], include_synced: bool = False) -> list[Path]:
    """Every `offline-run-*` folder under `roots`, sorted (a root that is itself one counts); those already
    uploaded only with `include_synced`."""
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a folder")
        if root.name.startswith("offline-run-"):
            found.add(root)
        found.update(p for p in root.rglob("offline-run-*") if p.is_dir())
    return sorted(r for r in found if include_synced or not is_synced(r))


def wandb_executable() -> str:
    exe = os.environ.get("WANDB")
    if exe:
        return exe
    beside = Path(sys.executable).with_name("wandb")
    return str(beside) if beside.is_file() else shutil.which("wandb") or "wandb"


def sync_commands(runs: Sequence[Path], extra: Sequence[str] = ()) -> list[list[str]]:
    exe = wandb_executable()
    return [[exe, "sync", *extra, str(run)] for run in runs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", help="folders to search for offline-run-* folders")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--include-synced", action="store_true", help="upload runs already uploaded again")
    parser.add_argument("--project", help="upload into this W&B project (wandb sync --project)")
    parser.add_argument("--entity", help="upload under this W&B entity (wandb sync --entity)")
    args = parser.parse_args(argv)
    runs = offline_runs(args.folders, args.include_synced)
    if not runs:
        print(f"no offline-run-* folders under {args.folders}")
        return 0
    extra = [
        *(["--project", args.project] if args.project else []),
        *(["--entity", args.entity] if args.entity else []),
    ]
    failed = []
    for cmd in sync_commands(runs, extra):
        print(" ".join(cmd), flush=True)
        if not args.dry_run and subprocess.run(cmd).returncode != 0:
            failed.append(cmd[-1])
    print(f"{len(runs) - len(failed)}/{len(runs)} offline run(s) {'listed' if args.dry_run else 'synced'}")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
