"""scripts/dev/relayout.py: references rewritten by rule (segment by segment, `envs` only where it is the package),
a tiny repository moved, registered on `import rlsched`, idempotent, and an unknown module stops the run unchanged."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def relayout():
    spec = importlib.util.spec_from_file_location("relayout", REPO / "scripts" / "dev" / "relayout.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["relayout"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def mapping(relayout):
    m = relayout.Mapping(dict(relayout.MOVES))
    m.known_modules.update([*relayout.MOVES, "envs.lr_control", "envs.vector", "rlsched.controllers.base"])
    m.env_submodules = {"lr_control", "vector"}
    return m


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rlsched.data.load and rlsched.data_dir", "rlsched.env.data.load and rlsched.data_dir"),
        ('monkeypatch.setattr("rlsched.harness.run", f)', 'monkeypatch.setattr("rlsched.bench.harness.run", f)'),
        (
            "envs.vector.LRControlVecEnv; envs.append(e); self.envs.step()",
            "rlsched.env.vector.LRControlVecEnv; envs.append(e); self.envs.step()",
        ),
        ('entry_point="envs.lr_control:LRControlEnv"', 'entry_point="rlsched.env.lr_control:LRControlEnv"'),
        ('gym.make("envs:rlsched/LRControl-v0")', 'gym.make("rlsched.env:rlsched/LRControl-v0")'),
        ("see envs/seed_pool.py and rlsched/harness.py", "see rlsched/env/seed_pool.py and rlsched/bench/harness.py"),
        ("~/.cache/rlsched/data and rlsched/LRControl-v0", "~/.cache/rlsched/data and rlsched/LRControl-v0"),
        (r'match="import rlsched\.reference"', r'match="import rlsched\.control\.reference"'),
        (
            "rlsched.controllers.make_controller, rlsched.LearnedLR",
            "rlsched.control.make_controller, rlsched.LearnedLR",
        ),
        ("python -m rlsched.tuning", "python -m rlsched.bench.tuning"),
    ],
)
def test_text_references_are_rewritten_by_segment(relayout, mapping, text, expected):
    assert relayout.rewrite_text(text, mapping) == expected
    assert relayout.rewrite_text(expected, mapping) == expected  # a second pass changes nothing


def test_imports_are_regrouped_and_relative_ones_made_absolute(relayout, mapping):
    src = (
        "import envs\n"
        "from envs import reference, ENV_ID\n"
        "from rlsched import harness, config, LearnedLR  # why\n"
        "def f():\n"
        "    from .base import Controller\n"
        "    return envs.ENV_ID\n"
    )
    out = relayout.rewrite_python(src, mapping, "rlsched.controllers.baselines", False, "x.py")
    assert out == (
        "import rlsched.env\n"
        "from rlsched.env import reference, ENV_ID\n"
        "from rlsched.bench import harness\n"
        "from rlsched import config, LearnedLR  # why\n"
        "def f():\n"
        "    from rlsched.control.base import Controller\n"
        "    return rlsched.env.ENV_ID\n"
    )


def test_a_docstring_line_pushed_over_the_limit_is_reflowed(relayout):
    long = "x" * 100
    src = f'def f():\n    """{long} rlsched.env.lr_control.EnvConfig\n    more words."""\n'
    out = relayout.reflow_long_prose(src)
    assert out == f'def f():\n    """{long}\n    rlsched.env.lr_control.EnvConfig more words."""\n'
    assert max(map(len, out.splitlines())) <= relayout.LINE_LIMIT


def test_a_page_that_copies_a_reflowed_docstring_follows_it(relayout):
    """docs/env_spec.md is rendered from the env's docstring and a test compares them: both must change alike."""
    words = "w " * 50
    src = f'class E:\n    """Spec.\n\n    {words}rlsched.env.actions and\n      the reward.\n    more."""\n'
    reflows = []
    out = relayout.reflow_long_prose(src, reflows)
    page = f"# E\n\nSpec.\n\n{words}rlsched.env.actions and\n  the reward.\nmore.\n"
    doc = out.split('"""')[1]
    assert relayout.follow_reflows(page, reflows).endswith(inspect.cleandoc(doc) + "\n")
    assert relayout.follow_reflows(page, reflows) != page


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def test_a_tiny_repository_is_moved_registered_and_left_alone_the_second_time(relayout, tmp_path, monkeypatch, capsys):
    _write(
        tmp_path,
        {
            "envs/__init__.py": '"""Envs. `import envs` registers them."""\n\nimport gymnasium as gym\n\n'
            "from envs.lr_control import LRControlEnv\n\nENV_ID = 'rlsched/Tiny-v0'\n\n\n"
            "def register_envs() -> None:\n    if ENV_ID not in gym.registry:\n"
            "        gym.register(id=ENV_ID, entry_point='envs.lr_control:LRControlEnv')\n\n\n"
            'register_envs()\n\n__all__ = ["ENV_ID", "LRControlEnv", "register_envs"]\n',
            "envs/lr_control.py": "from rlsched.tasks import TASKS_DIR\n\n\nclass LRControlEnv:\n    dir = TASKS_DIR\n",
            "rlsched/__init__.py": '"""Top."""\n\nfrom __future__ import annotations\n',
            "rlsched/tasks.py": "from pathlib import Path\n\nTASKS_DIR = Path(__file__).resolve().parents[1]\n",
            "rlsched/harness.py": "from envs import LRControlEnv\nfrom rlsched import tasks\n\n"
            "X = LRControlEnv, tasks\n",
            "tests/test_h.py": "def test(monkeypatch):\n    monkeypatch.setattr('rlsched.harness.X', 1)\n",
            "README.md": "```python\nimport envs  # registers\nfrom rlsched.harness import X\n```\nSee `envs/`.\n",
            "pyproject.toml": '[tool.setuptools.packages.find]\ninclude = ["rlsched*", "envs*"]\n',
        },
    )
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "old layout")
    monkeypatch.setattr(relayout, "ROOT", tmp_path)

    assert relayout.main(["--check"]) == 0
    assert not _git(tmp_path, "status", "--porcelain")  # the dry run changed nothing
    assert relayout.main([]) == 0
    assert not (tmp_path / "envs").exists()
    assert (tmp_path / "rlsched/bench/harness.py").read_text().startswith("from rlsched.env import LRControlEnv, tasks")
    assert "parents[2]" in (tmp_path / "rlsched/env/tasks.py").read_text()
    assert "'rlsched.bench.harness.X'" in (tmp_path / "tests/test_h.py").read_text()
    assert (tmp_path / "README.md").read_text() == (
        "```python\nimport rlsched  # registers\nfrom rlsched.bench.harness import X\n```\nSee `rlsched/env/`.\n"
    )
    assert 'include = ["rlsched*"]' in (tmp_path / "pyproject.toml").read_text()
    # `import rlsched` registers the env without loading its module, which loads on first use from its new place
    code = (
        "import sys, gymnasium as gym, rlsched\n"
        "assert 'rlsched.env.lr_control' not in sys.modules\n"
        "from rlsched.env import LRControlEnv\n"
        "print(gym.spec('rlsched/Tiny-v0').entry_point, LRControlEnv.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["rlsched.env.lr_control:LRControlEnv", "rlsched.env.lr_control"]

    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "moved")
    capsys.readouterr()
    assert relayout.main([]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert not _git(tmp_path, "status", "--porcelain")

    (tmp_path / "rlsched/identity.py").write_text("X = 1\n")
    with pytest.raises(SystemExit, match=r"rlsched\.identity"):
        relayout.main([])
    assert _git(tmp_path, "status", "--porcelain").strip() == "?? rlsched/identity.py"  # stopped before any change
    assert relayout.main(["--rule", "rlsched.identity=rlsched.bench.identity"]) == 0
    assert (tmp_path / "rlsched/bench/identity.py").exists()


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ('files = ROOT / "rlsched" / "harness.py"', True),
        ('PACKAGES = ("rlsched", "envs")', True),
        ("importlib.import_module(f'rlsched.{name}')", True),
        ('CACHE = Path.home() / ".cache" / "rlsched" / "data"', False),
        ("envs.append(make_env()); n_envs = len(envs)", False),  # a variable, not the package
    ],
)
def test_old_layout_text_the_rules_cannot_rewrite_is_reported(relayout, line, flagged):
    assert bool(relayout.leftovers(line, Path("x.py"))) == flagged
