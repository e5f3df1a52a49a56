"""The learned controller: a trained PPO (or RecurrentPPO) artifact behind the shared Controller interface."""

from __future__ import annotations

import hashlib
from pathlib import Path

from rlsched.control.artifact import Artifact, load_artifact
from rlsched.control.base import Controller


class LearnedController(Controller):
    sets_lr = False

    def __init__(self, path: str | Path, name: str | None = None, deterministic: bool = True):
        self.artifact: Artifact = load_artifact(path)
        self.name = name or f"learned:{Path(path).name}"
        self.deterministic = deterministic
        self._state = None  # LSTM state of a recurrent policy
        self._start = True

    def identity(self) -> str:
        h = hashlib.sha1()
        # vecnormalize.pkl and .json hold the same statistics (written together); hashing the .pkl where there is
        # one keeps the identities, and so the benchmark rows, of artifacts made before the .json existed.
        stats = "vecnormalize.pkl" if (self.artifact.path / "vecnormalize.pkl").is_file() else "vecnormalize.json"
        for f in ("model.zip", stats):
            h.update((self.artifact.path / f).read_bytes())
        return f"learned:{h.hexdigest()[:16]}:deterministic={self.deterministic}"

    def reset(self, env, obs, info) -> None:
        self.artifact.check_compatible(env)
        self._state = None
        self._start = True

    def act(self, obs, info):
        action, self._state = self.artifact.predict(obs, self._state, self._start, self.deterministic)
        self._start = False
        return action
