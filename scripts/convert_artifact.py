"""Give a controller artifact written before policy.json existed the files that load it without pickle.

python scripts/convert_artifact.py docs/results/demo_controller [more folders...]

Loads each folder once with SB3's loader and pickle (trust: run it only on artifacts you made yourself), writes
policy.json and vecnormalize.json beside the old files, then checks that the safe loader's policy answers exactly
as SB3's does on random observations. Nothing else in the folder changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rlsched.control.artifact import load_artifact, write_safe_files


def convert(path: Path, n_checks: int = 256) -> None:
    trusted = load_artifact(path, trust=True)
    write_safe_files(path, trusted.model, trusted.vecnormalize)
    safe = load_artifact(path)
    rng = np.random.default_rng(0)
    obs = rng.normal(scale=3.0, size=(n_checks, *trusted.meta["obs_shape"])).astype(np.float32)
    for o in obs:
        a, _ = trusted.predict(o)
        b, _ = safe.predict(o)
        if not np.array_equal(a, b):
            raise SystemExit(f"{path}: the converted policy answers {b} where SB3's answers {a}; files left as written")
    print(f"{path}: wrote policy.json and vecnormalize.json; {n_checks} observations answered identically")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="artifact folders (each with meta.json)")
    for folder in ap.parse_args().folders:
        if not (folder / "meta.json").is_file():
            raise SystemExit(f"{folder} is not a controller artifact (no meta.json); pass the controller/ folder")
        convert(folder)
