#!/usr/bin/env python3
"""Issue 17 item 2: move the flat `rlsched/` modules and the top-level `envs/` package into one package laid out by
its parts, and rewrite every reference to them.

    python scripts/dev/relayout.py --check   # dry run: the move plan, the files it would rewrite, what it cannot do
    python scripts/dev/relayout.py           # git mv + rewrite + `ruff check --fix --select I` on the rewritten files

Rules, not a list of edits, so that it can run on whatever the tree holds when it runs:

- a module goes where the first matching rule of MOVES says (a rule names a module or a package; the longest
  matching prefix wins, segment by segment, so `rlsched.data` never matches `rlsched.data_dir`); a module that no
  rule places and that is not already inside a target package is an error: the script stops before changing
  anything and lists them (add a rule to MOVES, or pass `--rule old=new` for one run);
- every reference is rewritten by the same mapping: imports through the AST (`from rlsched import stats` ->
  `from rlsched.bench import stats`, relative imports made absolute), then dotted names anywhere in the text
  (strings for monkeypatch, gym entry points, `-m` commands, comments, Markdown) and file paths
  (`rlsched/harness.py` -> `rlsched/bench/harness.py`). `envs` is also a common variable name, so a bare `envs` is
  rewritten only where it is the package: in an import, as `envs.<one of its modules>`, `envs:` (Gymnasium's
  `module:id`), `envs/`, or as a name in a file that did `import envs`;
- what would still name the old layout after the rewrite (a string "envs", a module name built with an f-string)
  stops the run before anything changes, with the lines;
- running it again on a moved tree finds nothing to do and exits 0.

The new `rlsched/env/__init__.py` (the old `envs/__init__.py`) keeps the registration but loads its classes on first
use (PEP 562), and `rlsched/__init__.py` imports it, so `import rlsched` registers the envs without importing torch.
"""

from __future__ import annotations

import argparse
import ast
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The script and its test name the old layout on purpose.
SKIP_FILES = ("scripts/dev/relayout.py", "tests/test_relayout.py")

# Old module or package -> new one. Edit here when the tree grows a module the script does not know.
MOVES: dict[str, str] = {
    # the env and its parts
    "envs": "rlsched.env",
    "rlsched.trainee": "rlsched.env.trainee",
    "rlsched.population": "rlsched.env.population",
    "rlsched.data": "rlsched.env.data",
    "rlsched.models": "rlsched.env.models",
    "rlsched.features": "rlsched.env.features",
    "rlsched.precision": "rlsched.env.precision",
    "rlsched.tasks": "rlsched.env.tasks",
    # the four disjoint episode-seed ranges: the lowest layer that both training and the benchmark import
    "rlsched.seeds": "rlsched.env.seeds",
    # who chooses the learning rate, and the one episode loop that runs a chooser on the env
    "rlsched.controllers": "rlsched.control",
    "rlsched.learned_lr": "rlsched.control.learned_lr",
    "rlsched.artifact": "rlsched.control.artifact",
    "rlsched.reference": "rlsched.control.reference",
    # control.reference (the paired reward's baseline run), train.selection and bench.harness all run it
    "rlsched.rollout": "rlsched.control.rollout",
    "rlsched.lightning": "rlsched.control.lightning",  # LearnedLR's Lightning callback, beside LearnedLR
    # PPO training
    "rlsched.agent": "rlsched.train.agent",
    "rlsched.callbacks": "rlsched.train.callbacks",
    "rlsched.checkpoints": "rlsched.train.checkpoints",
    "rlsched.selection": "rlsched.train.selection",
    # the benchmark: runs, tuning, protocols, statistics, reports
    "rlsched.harness": "rlsched.bench.harness",
    "rlsched.tuning": "rlsched.bench.tuning",
    "rlsched.protocol": "rlsched.bench.protocol",
    "rlsched.protocol_plots": "rlsched.bench.protocol_plots",
    "rlsched.taskset_protocol": "rlsched.bench.taskset_protocol",
    "rlsched.stats": "rlsched.bench.stats",
    "rlsched.report": "rlsched.bench.report",
    "rlsched.plots": "rlsched.bench.plots",
    "rlsched.evaluate": "rlsched.bench.evaluate",
}
# Modules that stay where they are (a new `rlsched.foo` is not placed by these; a package stays with its modules).
# `io` (atomic writes, locks) is imported by every part, so it sits below them all; `schema` holds the typed configs
# typed config, beside `config`, which registers it.
STAY = {"rlsched", "rlsched.config", "rlsched.schema", "rlsched.entry", "rlsched.tracking", "rlsched.io"}
# The new packages, with the docstring of the `__init__.py` the script writes when the package has none.
PACKAGES = {
    "rlsched.env": "The Gymnasium env and its parts: data, trainee(s), features, actions, observations, rewards.",
    "rlsched.control": "Who chooses the learning rate (baselines, a trained policy, `LearnedLR`) and the episode loop.",
    "rlsched.train": "PPO training of a controller: the run, its callbacks, checkpoints and checkpoint selection.",
    "rlsched.bench": "The benchmark: controllers x seeds, tuning, protocols, paired statistics, reports and plots.",
}
# Where references are rewritten (relative to the repository root); the tree's own files, never results.
SCAN_DIRS = ("rlsched", "envs", "tests", "experiments", "scripts", "examples", "docs", "conf")
SCAN_FILES = ("README.md", "Makefile", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".cfg", ".ini"}
SKIP_PREFIXES = ("docs/results/",)  # committed outputs and their logs: provenance, not code
# Literal edits no naming rule can make: (file after the move, old text, new text), applied where `old` occurs.
LITERAL_EDITS: list[tuple[str, str, str]] = [
    ("pyproject.toml", 'include = ["rlsched*", "envs*"]', 'include = ["rlsched*"]'),
    ("tests/test_import_graph.py", 'PACKAGES = ("rlsched", "envs")', 'PACKAGES = ("rlsched",)'),
    (
        "tests/test_import_graph.py",
        'for env_module in (m for m in graph if m.split(".")[0] == "envs"):',
        'env_modules = [m for m in graph if m == "rlsched.env" or m.startswith("rlsched.env.")]\n'
        '    assert env_modules, "no rlsched.env modules found: update this test to the package\'s layout"\n'
        "    for env_module in env_modules:",
    ),
]
# Text that still names the old layout after the rewrite: each hit stops the run (unless --allow-leftovers).
LEFTOVERS = [
    re.compile(r"(?<![\w.])envs(?=[:/][A-Za-z_{])"),  # not `envs.x`: in code that is a variable
    re.compile(r"""["']envs\*?["']"""),
    re.compile(r"(?<![\w.])(?:import|from) envs\b"),
    re.compile(r"""rlsched[./]\{"""),
    re.compile(r"""["']controllers["']"""),
    re.compile(r"""["'](?:rlsched|envs)["']\s*[/,]\s*["']\w+\.py["']"""),  # a path from parts: "rlsched" / "harness.py"
]
INIT_MARK = "from rlsched import env  # noqa: F401"
INIT_LINE = INIT_MARK + "  (registers the Gymnasium envs; cheap: their classes load on first use)\n"


class RelayoutError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"relayout: {message}")


# ----- modules and the mapping -----------------------------------------------------------------------------------


def module_of(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def path_of(module: str, is_pkg: bool) -> Path:
    base = Path(*module.split("."))
    return base / "__init__.py" if is_pkg else base.with_suffix(".py")


def listed_files() -> list[Path]:
    """Tracked files and new ones git does not ignore, relative to the root."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return sorted({Path(line) for line in out.splitlines() if line and (ROOT / line).exists()})


@dataclass
class Mapping:
    moves: dict[str, str]
    known_modules: set[str] = field(default_factory=set)  # old names that are modules (for `from pkg import mod`)
    env_submodules: set[str] = field(default_factory=set)  # `envs.<these>` is the package, not a variable

    def target(self, dotted: str, bare_envs: bool = True) -> str | None:
        """The new name of `dotted` (a module or an attribute path through one), or None if it does not move."""
        parts = dotted.split(".")
        if parts[0] == "envs" and not bare_envs and (len(parts) < 2 or parts[1] not in self.env_submodules):
            return None
        for i in range(len(parts), 0, -1):
            head = ".".join(parts[:i])
            if head in self.moves:
                return ".".join([self.moves[head], *parts[i:]])
        return None


def check_rules(moves: dict[str, str]) -> None:
    """No target may start with a rule's name: that makes a second run a no-op (idempotent)."""
    for new in moves.values():
        parts = new.split(".")
        for i in range(1, len(parts) + 1):
            if ".".join(parts[:i]) in moves:
                raise RelayoutError(f"rule target {new} starts with the moved name {'.'.join(parts[:i])}")


@dataclass
class Plan:
    moves: list[tuple[Path, Path]]  # (old file, new file), relative
    new_inits: list[tuple[Path, str]]
    unknown: list[str]
    collisions: list[str]


def _imported(path: Path) -> set[str]:
    try:
        tree = ast.parse(path.read_text())
    except SyntaxError:
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.update([node.module, *(f"{node.module}.{a.name}" for a in node.names)])
    return out


def neighbours(module: str, files: list[Path], mapping: Mapping) -> str:
    """Where the module's package imports point, after the move: a hint for the rule to add."""

    def place(name: str) -> str | None:
        new = mapping.target(name) or name
        parts = new.split(".")
        if parts[0] != "rlsched" or len(parts) < 2:
            return None
        return ".".join(parts[:2]) if parts[1] in {p.split(".")[1] for p in PACKAGES} else new

    mods = mapping.known_modules | {
        module_of(f) for f in files if f.suffix == ".py" and f.parts[0] in ("rlsched", "envs")
    }
    imports, importers = set(), set()
    for rel in files:
        if rel.suffix != ".py" or rel.parts[0] not in ("rlsched", "envs", "tests", "experiments", "scripts"):
            continue
        names = _imported(ROOT / rel) & mods
        if module_of(rel) == module:
            imports = {p for n in names if (p := place(n)) and p != module}
        elif module in names or any(n.startswith(module + ".") for n in names):
            importers.add(place(module_of(rel)) or str(rel))
    return f"imports from: {', '.join(sorted(imports)) or '-'}; imported by: {', '.join(sorted(importers)) or '-'}"


def make_plan(files: list[Path], mapping: Mapping) -> Plan:
    moves, unknown, collisions = [], [], []
    py_roots = [f for f in files if f.suffix == ".py" and f.parts[0] in ("rlsched", "envs")]
    for rel in py_roots:
        mod = module_of(rel)
        stays = mod in STAY or any(mod.startswith(s + ".") for s in STAY if s != "rlsched")  # a package stays whole
        if stays or any(mod == p or mod.startswith(p + ".") for p in PACKAGES):
            continue
        new = mapping.target(mod)
        if new is None:
            unknown.append(f"{mod} ({rel})")
            continue
        moves.append((rel, path_of(new, rel.name == "__init__.py")))
    # non-Python files inside a moved package travel with it
    pkg_dirs = {Path(*k.split(".")): Path(*v.split(".")) for k, v in mapping.moves.items()}
    for rel in files:
        if rel.suffix == ".py" or "__pycache__" in rel.parts:
            continue
        for old_dir, new_dir in pkg_dirs.items():
            if rel.parts[: len(old_dir.parts)] == old_dir.parts and (ROOT / old_dir).is_dir():
                moves.append((rel, new_dir / rel.relative_to(old_dir)))
    seen: dict[Path, Path] = {}
    for old, new in moves:
        if new in seen:
            collisions.append(f"{old} and {seen[new]} both go to {new}")
        elif (ROOT / new).exists():
            collisions.append(f"{old} goes to {new}, which exists already")
        seen[new] = old
    new_inits = []
    targets = {new for _, new in moves}
    for pkg, doc in PACKAGES.items():
        init = path_of(pkg, True)
        if init not in targets and not (ROOT / init).exists():
            new_inits.append((init, f'"""{doc}"""\n'))
    return Plan(moves, new_inits, sorted(unknown), collisions)


# ----- rewriting ---------------------------------------------------------------------------------------------------

DOTTED = re.compile(r"(?<![\w.])((?:rlsched|envs)(?:\.[A-Za-z_]\w*)+)")
ESCAPED_DOTTED = re.compile(r"(?<![\w.])((?:rlsched|envs)(?:\\{1,2}\.[A-Za-z_]\w*)+)")
ENTRY_ENVS = re.compile(r"(?<![\w.])envs:(?=[\w{'\"/])")  # gym.make("envs:rlsched/LRControl-v0")
PROSE_IMPORT = re.compile(r"(?<![\w.])import envs\b(?!\.)")
PROSE_FROM = re.compile(r"(?<![\w.])from envs\b(?=\s+import)")
QUOTED_ENVS = re.compile(r"`envs`")  # the package named in prose
PATH = re.compile(r"(?<![\w./-])((?:rlsched|envs)(?:/[A-Za-z_]\w*)*)(\.py\b|/)")
PARENTS = re.compile(r"(Path\(__file__\)(?:\.resolve\(\))?\.parents\[)(\d+)(\])")


def rewrite_text(text: str, mapping: Mapping) -> str:
    def dotted(m: re.Match[str]) -> str:
        return mapping.target(m.group(1), bare_envs=False) or m.group(1)

    def path(m: re.Match[str]) -> str:
        name = m.group(1).replace("/", ".")
        new = mapping.target(name)  # `envs/...` is the folder, never a variable
        return new.replace(".", "/") + m.group(2) if new else m.group(0)

    def escaped(m: re.Match[str]) -> str:  # in a regex: rlsched\.reference (or "rlsched\\.reference")
        sep = re.search(r"\\+\.", m.group(1)).group(0)
        new = mapping.target(m.group(1).replace(sep, "."), bare_envs=False)
        return new.replace(".", sep) if new else m.group(1)

    text = DOTTED.sub(dotted, text)
    text = ESCAPED_DOTTED.sub(escaped, text)
    text = ENTRY_ENVS.sub("rlsched.env:", text)
    text = PROSE_IMPORT.sub("import rlsched", text)
    text = PROSE_FROM.sub("from rlsched.env", text)
    text = QUOTED_ENVS.sub("`rlsched.env`", text)
    return PATH.sub(path, text)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _alias(alias: ast.alias) -> str:
    return alias.name + (f" as {alias.asname}" if alias.asname else "")


def rewrite_python(src: str, mapping: Mapping, module: str | None, is_pkg: bool, where: str) -> str:
    """Imports through the AST (by byte spans, so comments and layout around them stay), then the text rules."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return rewrite_text(src, mapping)
    data = src.encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def span(node: ast.AST) -> tuple[int, int]:
        return starts[node.lineno - 1] + node.col_offset, starts[node.end_lineno - 1] + node.end_col_offset

    edits: list[tuple[int, int, str]] = []
    binds_envs = False
    reads_envs = any(isinstance(n, ast.Name) and n.id == "envs" for n in ast.walk(tree))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = []
            for alias in node.names:
                if alias.asname is None and alias.name.split(".")[0] == "envs":
                    binds_envs = True
                new = mapping.target(alias.name) or alias.name
                if alias.name == "envs" and alias.asname is None and not reads_envs:
                    new = "rlsched"  # imported only to register the envs, which `import rlsched` does
                names.append(new + (f" as {alias.asname}" if alias.asname else ""))
            if names != [_alias(a) for a in node.names]:
                edits.append((*span(node), "import " + ", ".join(names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                if module is None:
                    continue
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            groups: dict[str, list[str]] = defaultdict(list)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if alias.name != "*" and full in mapping.known_modules:
                    frm, name = (mapping.target(full) or full).rsplit(".", 1)
                else:
                    frm, name = mapping.target(base) or base, alias.name
                groups[frm].append(name + (f" as {alias.asname}" if alias.asname else ""))
            if not node.level and dict(groups) == {base: [_alias(a) for a in node.names]}:
                continue
            start, end = span(node)
            line_start = data.rfind(b"\n", 0, start) + 1
            indent = data[line_start:start].decode()
            if indent.strip():
                raise RelayoutError(f"{where}:{node.lineno}: an import that shares its line; split it by hand")
            lines = [f"from {frm} import {', '.join(names)}" for frm, names in groups.items()]
            edits.append((start, end, ("\n" + indent).join(lines)))
    if binds_envs:  # `import envs` ... `envs.ENV_ID`: the name is the package wherever it is read
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "envs":
                if not isinstance(node.ctx, ast.Load):
                    raise RelayoutError(f"{where}:{node.lineno}: assigns `envs` and imports the package `envs`")
                edits.append((*span(node), "rlsched.env"))
    for start, end, new in sorted(edits, reverse=True):
        data = data[:start] + new.encode() + data[end:]
    return rewrite_text(data.decode(), mapping)


LINE_LIMIT = 120  # ruff's line-length (pyproject.toml)
NOT_PROSE = ("-", "*", "|", ">>>", "```", '"""')


def _prose_regions(src: str) -> list[tuple[int, int, str]]:
    """(first, last line index, continuation mark) of each docstring and each run of full-line comments."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            doc = body[0].value
            if isinstance(doc, ast.Constant) and isinstance(doc.value, str):
                out.append((doc.lineno - 1, doc.end_lineno - 1, ""))
    lines = src.splitlines()
    i = 0
    while i < len(lines):
        if m := re.match(r"(\s*# )", lines[i]):
            j = i
            while j + 1 < len(lines) and lines[j + 1].startswith(m.group(1)):
                j += 1
            out.append((i, j, "# "))
            i = j
        i += 1
    return out


Reflow = tuple[list[str], list[str]]  # (old lines, new lines), without their indentation


def reflow_long_prose(src: str, record: list[Reflow] | None = None) -> str:
    """A docstring or comment line that a longer name pushed over the limit gives its last words to the next line
    of its paragraph (or to a new line). Prose only: a long code line is left to the linter's report. Each step
    is appended to `record`, so that a copy of the docstring elsewhere (a page rendered from it) can follow."""
    lines = src.splitlines()
    if all(len(line) <= LINE_LIMIT for line in lines):
        return src
    for first, last, mark in sorted(_prose_regions(src), reverse=True):
        i = first
        while i <= last:
            line = lines[i]
            indent = re.match(r"\s*", line).group(0)
            cut = line.rfind(" ", len(indent) + len(mark) + 1, LINE_LIMIT + 1) if len(line) > LINE_LIMIT else -1
            if cut < 0:
                i += 1
                continue
            lines[i], tail = line[:cut], line[cut + 1 :]
            nxt = lines[i + 1] if i + 1 <= last else ""
            body = nxt[len(indent) + len(mark) :]
            if (
                nxt.startswith(indent + mark)
                and body.strip()
                and not body[0].isspace()
                and not body.startswith(NOT_PROSE)
            ):
                lines[i + 1] = indent + mark + tail + " " + body
                old, new = [line, nxt], [lines[i], lines[i + 1]]
            else:
                lines.insert(i + 1, indent + mark + tail)
                last += 1
                old, new = [line], [lines[i], lines[i + 1]]
            if record is not None and not mark:
                record.append(([x[len(indent) :] for x in old], [x[len(indent) :] for x in new]))
            i += 1
    return "\n".join(lines) + ("\n" if src.endswith("\n") else "")


def follow_reflows(text: str, reflows: list[Reflow]) -> str:
    """Apply the docstring reflows to lines of `text` that copy the docstring (at any one indentation)."""
    lines = text.splitlines()
    for old, new in reflows:
        for k in range(len(lines) - len(old) + 1):
            pad = re.match(r"\s*", lines[k]).group(0)
            if lines[k : k + len(old)] == [pad + x for x in old]:
                lines[k : k + len(old)] = [pad + x for x in new]
                break
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


FENCE = re.compile(r"(^[ \t]*```(?:python|py)[ \t]*\n)(.*?)(^[ \t]*```)", re.S | re.M)


def rewrite_markdown(text: str, mapping: Mapping, where: str) -> str:
    def block(m: re.Match[str]) -> str:
        return m.group(1) + rewrite_python(m.group(2), mapping, None, False, where) + m.group(3)

    return rewrite_text(FENCE.sub(block, text), mapping)


def make_env_init_lazy(src: str, where: str) -> str:
    """Module-level `from rlsched.X import names` of rlsched/env/__init__.py become attributes loaded on first use,
    so that importing the package (to register the envs) costs no torch import."""
    tree = ast.parse(src)
    eager = [
        n
        for n in tree.body
        if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("rlsched.") and not n.level
    ]
    if not eager:
        return src
    if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body):
        raise RelayoutError(f"{where} defines __getattr__ and imports eagerly: make it lazy by hand")
    lazy = {(a.asname or a.name): (n.module, a.name) for n in eager for a in n.names}
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} & set(lazy)
    if used:
        raise RelayoutError(
            f"{where} uses {sorted(used)} itself, so they cannot load on first use and `import rlsched` would import"
            " torch: import them inside the function that uses them (or give gym.register a string entry point),"
            " then run the script again"
        )
    lines = src.splitlines(keepends=True)
    for n in sorted(eager, key=lambda n: n.lineno, reverse=True):
        del lines[n.lineno - 1 : n.end_lineno]
    checking = "".join(f"    {ast.unparse(n)}\n" for n in eager)
    table = "".join(f'    "{name}": ("{mod}", "{attr}"),\n' for name, (mod, attr) in sorted(lazy.items()))
    imports = "import importlib\nfrom typing import TYPE_CHECKING, Any\n\nif TYPE_CHECKING:\n" + checking + "\n"
    body = re.sub(r"\n{4,}", "\n\n\n", _insert_after_imports("".join(lines), imports))
    return (
        body.rstrip("\n")
        + "\n\n# The env classes load on first use (PEP 562): `import rlsched` registers the envs without torch.\n"
        + "_LAZY: dict[str, tuple[str, str]] = {\n"
        + table
        + "}\n\n\n"
        + "def __getattr__(name: str) -> Any:\n"
        + "    if name in _LAZY:\n"
        + "        module, attr = _LAZY[name]\n"
        + "        return getattr(importlib.import_module(module), attr)\n"
        + "    raise AttributeError(f\"module 'rlsched.env' has no attribute {name!r}\")\n"
    )


def _insert_after_imports(src: str, text: str) -> str:
    """`text` after the last top-level import (else after the docstring); ruff's isort then orders the block."""
    tree = ast.parse(src)
    last = max((n.end_lineno for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)), default=0)
    if not last and tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        last = tree.body[0].end_lineno
        text = "\n" + text
    lines = src.splitlines(keepends=True)
    return "".join([*lines[:last], text, *lines[last:]])


def register_on_import(src: str) -> str:
    """rlsched/__init__.py imports rlsched.env (which registers the envs) after its last top-level import."""
    if INIT_MARK in src or "import rlsched.env\n" in src:
        return src
    return _insert_after_imports(src, INIT_LINE)


def fix_parents(src: str, old: Path, new: Path, where: str) -> str:
    """`Path(__file__).resolve().parents[N]` in a file that moves down a folder: N follows the depth."""
    delta = len(new.parts) - len(old.parts)
    if not delta or "__file__" not in src:
        return src
    out = PARENTS.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + delta}{m.group(3)}", src)
    rest = [i + 1 for i, line in enumerate(out.splitlines()) if "__file__" in line and not PARENTS.search(line)]
    if rest:
        raise RelayoutError(f"{where}: __file__ used on lines {rest} in a way the depth fix does not know")
    if re.search(r"config_path\s*=\s*[\"']\.\.", out):
        raise RelayoutError(f"{where}: a relative Hydra config_path in a module that moves: fix by hand")
    return out


# ----- the run -----------------------------------------------------------------------------------------------------


def scanned(files: list[Path]) -> list[Path]:
    out = []
    for rel in files:
        if str(rel) in SKIP_FILES or "__pycache__" in rel.parts:
            continue
        if str(rel).startswith(SKIP_PREFIXES):
            continue
        in_scope = rel.parts[0] in SCAN_DIRS or str(rel) in SCAN_FILES
        if in_scope and (rel.suffix in TEXT_SUFFIXES or rel.name == "Makefile" or rel.suffix == ""):
            if rel.suffix == "" and rel.name != "Makefile":
                head = (ROOT / rel).read_bytes()[:64]
                if not head.startswith(b"#!"):
                    continue
            out.append(rel)
    return out


def leftovers(text: str, rel: Path) -> list[str]:
    hits = []
    for i, line in enumerate(text.splitlines(), 1):
        if any(p.search(line) for p in LEFTOVERS):
            hits.append(f"{rel}:{i}: {line.strip()}")
    return hits


def find_ruff() -> list[str]:
    exe = Path(sys.executable).with_name("ruff")
    if exe.exists():
        return [str(exe)]
    if found := shutil.which("ruff"):
        return [found]
    raise RelayoutError("ruff not found (pip install ruff): needed to sort the rewritten imports")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--check", action="store_true", help="dry run: print the plan and the files it would rewrite")
    ap.add_argument("--diff", action="store_true", help="with --check: also print the rewrites as a unified diff")
    ap.add_argument("--rule", action="append", default=[], metavar="OLD=NEW", help="an extra move rule for this run")
    ap.add_argument("--allow-leftovers", action="store_true", help="report old-layout text but do not stop on it")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    moves = dict(MOVES)
    for rule in args.rule:
        old, _, new = rule.partition("=")
        if not old or not new:
            raise RelayoutError(f"--rule {rule!r}: expected OLD=NEW, e.g. rlsched.identity=rlsched.env.identity")
        if old == new:
            STAY.add(old)
        else:
            moves[old] = new
    check_rules(moves)

    files = listed_files()
    mapping = Mapping(moves)
    for old, new in moves.items():
        for pkg in (old, new):
            d = ROOT / Path(*pkg.split("."))
            if d.is_dir():
                mapping.known_modules.update(f"{old}.{p.stem}" for p in d.glob("*.py") if p.stem != "__init__")
    mapping.known_modules.update(moves)
    mapping.env_submodules = {m.split(".")[1] for m in mapping.known_modules if m.startswith("envs.")}

    plan = make_plan(files, mapping)
    if plan.unknown:
        raise RelayoutError(
            "modules no rule places (add them to MOVES or STAY in scripts/dev/relayout.py, or pass --rule OLD=NEW):\n  "
            + "\n  ".join(f"{u}\n    {neighbours(u.split()[0], files, mapping)}" for u in plan.unknown)
        )
    if plan.collisions:
        raise RelayoutError("moves that would overwrite files:\n  " + "\n  ".join(plan.collisions))

    # Every rewrite in memory first (keyed by the file's path after the move), so a stop changes nothing.
    where_to = dict(plan.moves)
    new_text: dict[Path, str] = {}
    problems: list[str] = []
    reflows: list[Reflow] = []
    # Python first: its docstring reflows are followed by the pages that copy those docstrings.
    for rel in sorted(scanned(files), key=lambda r: r.suffix != ".py"):
        dest = where_to.get(rel, rel)
        text = (ROOT / rel).read_text()
        if rel.suffix == ".py":
            is_pkg = rel.name == "__init__.py"
            module = module_of(rel) if rel.parts[0] in ("rlsched", "envs") else None
            out = rewrite_python(text, mapping, module, is_pkg, str(rel))
            out = fix_parents(out, rel, dest, str(rel))
            out = reflow_long_prose(out, reflows)
        elif rel.suffix == ".md":
            out = follow_reflows(rewrite_markdown(text, mapping, str(rel)), reflows)
        else:
            out = rewrite_text(text, mapping)
        for path, old, new in LITERAL_EDITS:
            if str(dest) == path:
                out = out.replace(old, new)
        if dest == path_of("rlsched.env", True):
            out = make_env_init_lazy(out, str(dest))
        if dest == path_of("rlsched", True):
            out = register_on_import(out)
        problems += leftovers(out, dest)
        if out != text:
            new_text[dest] = out
    rewritten = sorted(new_text)

    print(f"move plan ({len(plan.moves)} files):")
    for old, new in plan.moves:
        print(f"  git mv {old} {new}")
    for init, _ in plan.new_inits:
        print(f"  new    {init}")
    print(f"files rewritten ({len(rewritten)}):")
    for p in rewritten:
        print(f"  {p}")
    if problems:
        print(f"old-layout text the rules do not rewrite ({len(problems)}):")
        for line in problems:
            print(f"  {line}")
        if not args.allow_leftovers:
            raise RelayoutError("stopped before changing anything: add a rule or a LITERAL_EDITS entry for the above")
    if args.check:
        if args.diff:
            _print_diff(new_text, plan)
        print(f"dry run: nothing changed ({time.perf_counter() - t0:.1f} s)")
        return 0
    if not plan.moves and not plan.new_inits and not rewritten:
        print(f"nothing to do: the tree is laid out already ({time.perf_counter() - t0:.1f} s)")
        return 0

    tracked = set(
        subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    )
    for old, new in plan.moves:
        (ROOT / new).parent.mkdir(parents=True, exist_ok=True)
        if str(old) in tracked:  # git mv, so that history follows
            subprocess.run(["git", "mv", str(old), str(new)], cwd=ROOT, check=True)
        else:
            (ROOT / old).rename(ROOT / new)
            new_text.setdefault(new, (ROOT / new).read_text())
    for init, text in plan.new_inits:
        (ROOT / init).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / init).write_text(text)
        new_text.setdefault(init, text)
    for dest, text in new_text.items():
        (ROOT / dest).write_text(text)
    subprocess.run(["git", "add", "--", *map(str, new_text)], cwd=ROOT, check=True)
    for old, _ in plan.moves:  # folders emptied by the moves (a leftover __pycache__ would make a namespace package)
        d = (ROOT / old).parent
        while (
            d != ROOT
            and d.exists()
            and not any(p for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        ):
            shutil.rmtree(d)
            d = d.parent

    py = [str(p) for p in new_text if p.suffix == ".py"]
    if py:
        ruff = find_ruff()
        subprocess.run([*ruff, "check", "--fix", "--select", "I", "--quiet", *py], cwd=ROOT, check=False)
        subprocess.run(["git", "add", "--", *py], cwd=ROOT, check=True)
        lint = subprocess.run([*ruff, "check", "--quiet", *py], cwd=ROOT, capture_output=True, text=True)
        if lint.returncode:
            print(lint.stdout + lint.stderr)
            print("relayout: moved and rewritten, but ruff reports the above in the rewritten files: fix by hand")
            return 1
    if problem := verify_registration():
        print(f"relayout: moved and rewritten, but {problem}")
        return 1
    print(f"done: {len(plan.moves)} files moved, {len(new_text)} written ({time.perf_counter() - t0:.1f} s)")
    return 0


VERIFY = """
import sys, gymnasium as gym, rlsched
ids = [k for k, spec in gym.registry.items() if str(spec.entry_point).startswith("rlsched.env.")]
assert ids, "`import rlsched` registered no env with an entry point in rlsched.env"
heavy = sorted({"torch", "stable_baselines3"} & set(sys.modules))
assert not heavy, f"`import rlsched` imports {heavy}"
print(" ".join(sorted(ids)))
"""


def verify_registration() -> str | None:
    """In a fresh process from the root: `import rlsched` registers the envs from their new place, cheaply."""
    out = subprocess.run([sys.executable, "-c", VERIFY], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if out.returncode:
        return "the registration check failed:\n" + out.stderr[-2000:]
    print(f"registered on `import rlsched`: {out.stdout.strip()}")
    return None


def _src(dest: Path, plan: Plan) -> Path:
    return {new: old for old, new in plan.moves}.get(dest, dest)


def _print_diff(new_text: dict[Path, str], plan: Plan) -> None:
    import difflib

    for dest, text in sorted(new_text.items()):
        src = _src(dest, plan)
        old = (ROOT / src).read_text() if (ROOT / src).exists() else ""
        sys.stdout.writelines(
            difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"a/{src}", f"b/{dest}")
        )


if __name__ == "__main__":
    sys.exit(main())
