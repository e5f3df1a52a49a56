"""Give a tuned-settings file written before tuned keys were hashed (an older rlsched) its hashed name and its
task record, for the task of an env config (a JSON file: an artifact's env_config.json, or a run's).

python scripts/migrate_tuned_file.py conf/tuned/taskset_mlp_train_adam_K5.yaml results/taskset/.../env_config.json

Only for a file you know was tuned on exactly that task: the record is what later loads check against.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from rlsched.config import TASK_RECORD, task_config, tuned_file


def main(old: Path, env_json: Path) -> None:
    env_kw = json.loads(env_json.read_text())
    new = tuned_file(env_kw, old.parent)
    text = old.read_text()
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    data = yaml.safe_load(text) or {}
    if TASK_RECORD in data:
        raise SystemExit(f"{old} already records its task")
    body = yaml.safe_dump({TASK_RECORD: task_config(env_kw), **data}, sort_keys=False)
    new.write_text(header + body)
    if new != old:
        subprocess.run(["git", "mv", "-f", str(old), str(new)], check=False, capture_output=True)
        if old.exists():
            old.unlink()
    print(f"{old} -> {new}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
