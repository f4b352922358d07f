"""The documentation holds together: docs/index.md lists every page, and every relative link
(file and #anchor) in the docs, the README, CONTRIBUTING.md and the plugins' READMEs resolves."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.MULTILINE)


def _pages() -> list[Path]:
    return sorted(
        [*DOCS.rglob("*.md"), ROOT / "README.md", ROOT / "CONTRIBUTING.md", *ROOT.glob("plugins/*/README.md")]
    )


def _prose(path: Path) -> str:
    return FENCE.sub("", path.read_text())


def anchors(path: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    out = set()
    for title in HEADING.findall(_prose(path)):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_the_index_lists_every_page() -> None:
    index = DOCS / "index.md"
    linked = {(index.parent / target.split("#")[0]).resolve() for target in LINK.findall(_prose(index))}
    missing = [str(p.relative_to(ROOT)) for p in sorted(DOCS.rglob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs/index.md does not link to {missing}"


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in _pages():
        for target in LINK.findall(_prose(page)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            where = f"{page.relative_to(ROOT)}: {target}"
            if not dest.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def _sections(path: Path) -> list[str]:
    """Each heading with the prose under it (to the next heading), fenced code left out."""
    text = _prose(path)
    starts = [m.start() for m in HEADING.finditer(text)] + [len(text)]
    return [text[a:b].strip() for a, b in itertools.pairwise(starts)]


def test_no_page_holds_a_section_twice() -> None:
    """Two branches landing the same section each leave a copy (three provider pages had some)."""
    repeated = []
    for page in _pages():
        seen: set[str] = set()
        for section in _sections(page):
            if section in seen:
                repeated.append(f"{page.relative_to(ROOT)}: {section.splitlines()[0]}")
            seen.add(section)
    assert not repeated, "sections written twice (merge them):\n" + "\n".join(repeated)
