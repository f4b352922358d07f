"""Fail unless a release tag (v1.2.3) matches the version of the host and of every plugin package.

    python .github/scripts/check_release_version.py v0.1.0
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(tag: str) -> int:
    expected = tag.removeprefix("v")
    wrong = []
    for pyproject in [ROOT / "pyproject.toml", *sorted(ROOT.glob("plugins/*/pyproject.toml"))]:
        project = tomllib.loads(pyproject.read_text())["project"]
        if project["version"] != expected:
            wrong.append(f"{pyproject.relative_to(ROOT)}: {project['name']} {project['version']}")
    if wrong:
        print(f"tag {tag} wants version {expected} everywhere; set it in:\n  " + "\n  ".join(wrong))
        return 1
    print(f"{tag}: every package is at {expected}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
