"""Every relative link in README.md and docs/*.md points at something that exists.

A link `[text](path)` must name an existing file or folder (relative to the Markdown file); `path#anchor` into a
Markdown file, or `#anchor` alone, must name a heading of that file under GitHub's slug rules (lower case,
punctuation other than `-` and `_` dropped, spaces to `-`, repeats numbered `-1`, `-2`, ...). External links
(`https:`, `mailto:`) are not checked: the machines here have no internet. A small scanner is enough for this
repository's Markdown (no nested brackets in link texts), so the test needs no Markdown library.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the target may be wrapped in <...>.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # the text, with at most one level of [nested] brackets
    r"\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)"  # the target, with balanced (parentheses)
    r"(?:\s+[\"'(].*?[\"')])?\s*\)"  # an optional title
)
REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")  # http:, https:, mailto:, ...


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    out, in_fence, fence = [], False, ""
    for n, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m and (not in_fence or line.strip().startswith(fence)):
            in_fence, fence = (not in_fence), m.group(1)
            continue
        if not in_fence:
            out.append((n, CODE_SPAN.sub(lambda s: " " * len(s.group(0)), line)))
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, without punctuation but `-` and `_`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*+)(.+?)\1", r"\2", text)  # *emphasis*, **strong**
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: its headings' slugs (repeats numbered) and explicit HTML anchors."""
    text = path.read_text(encoding="utf-8")
    seen: dict[str, int] = {}
    found: set[str] = set(HTML_ANCHOR.findall(text))
    in_fence, fence = False, ""
    for line in text.splitlines():
        m = FENCE.match(line)
        if m and (not in_fence or line.strip().startswith(fence)):
            in_fence, fence = (not in_fence), m.group(1)
            continue
        h = None if in_fence else HEADING.match(line)
        if h:
            slug = github_slug(h.group(2))
            k = seen.get(slug, 0)
            seen[slug] = k + 1
            found.add(slug if k == 0 else f"{slug}-{k}")
    return found


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every inline link, image and reference definition outside code."""
    found = []
    for n, line in _prose_lines(path.read_text(encoding="utf-8")):
        found += [(n, m.group(1)) for m in INLINE_LINK.finditer(line)]
        found += [(n, m.group(1)) for m in REFERENCE_DEF.finditer(line)]
    return found


def broken_links(path: Path) -> list[str]:
    """Messages for the relative links of `path` that do not resolve, each naming file, line and target."""
    problems = []
    for n, raw in links(path):
        target = raw[1:-1] if raw.startswith("<") else raw
        if not target or EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / unquote(file_part)).resolve() if file_part else path
        where = f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{n}"
        if not dest.exists():
            problems.append(f"{where}: link target {target!r} does not exist ({dest})")
        elif anchor and dest.suffix.lower() == ".md" and unquote(anchor).lower() not in anchors(dest):
            problems.append(f"{where}: {target!r}: no heading with anchor #{anchor} in {dest.name}")
    return problems


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    assert path.is_file(), f"{path} is missing"
    problems = broken_links(path)
    assert not problems, "broken links (fix the path or the heading):\n" + "\n".join(problems)


def test_docs_index_lists_every_docs_file() -> None:
    """docs/README.md is the index of docs/: a new page must be linked from it."""
    index = ROOT / "docs" / "README.md"
    listed = {(index.parent / t.partition("#")[0]).resolve() for _, t in links(index)}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.name != "README.md" and p not in listed]
    assert not missing, f"docs/README.md does not link {missing}; add a line for each"


def test_github_slug_rules() -> None:
    assert github_slug("Research questions (issue 7 protocol)") == "research-questions-issue-7-protocol"
    assert (
        github_slug("Many trainees at once: the batched vector env (`agent.vec_env=batched`)")
        == "many-trainees-at-once-the-batched-vector-env-agentvec_envbatched"
    )
    slug = github_slug("Using a trained controller: `rlsched.LearnedLR`")
    assert slug == "using-a-trained-controller-rlschedlearnedlr"
    assert github_slug("RQ1 vs **tuned** [plateau](x.md)") == "rq1-vs-tuned-plateau"


def test_checker_catches_broken_links(tmp_path: Path) -> None:
    """The checker must fail on a missing file, a missing anchor (here and in another file), and must not be
    fooled by links inside code; good links pass."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section: with `code`\n\n## Repeat\n## Repeat\n")
    (tmp_path / "docs" / "data.csv").write_text("a\n1\n")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Title\n\n"
        "Good: [other](other.md), [section](other.md#a-section-with-code), [second](other.md#repeat-1),\n"
        "[self](#title), [csv](data.csv), [folder](../docs), [web](https://example.org/x.md#nowhere).\n"
        "Bad: [gone](missing.md), [no anchor](other.md#no-such-heading), [self bad](#nope).\n"
        "![img](missing.png)\n"
        "`[in code](ignored.md)`\n\n"
        "```\n[in a fence](also_ignored.md)\n```\n"
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    for bad in ("missing.md", "#no-such-heading", "#nope", "missing.png"):
        assert any(bad in p for p in problems), (bad, problems)
    assert not any("ignored" in p for p in problems)
    assert broken_links(tmp_path / "docs" / "other.md") == []
