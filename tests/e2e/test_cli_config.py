"""`modelmux config validate` run as a user runs it: every problem of a file in one run, with
"did you mean" for misspelled keys, provider types, backends and names, and never an install
command made from a misspelling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODELMUX = str(Path(sys.executable).parent / "modelmux")

SIX_MISTAKES = """
[server]
prot = 3000
log_level = "loud"

[providers.up]
type = "vlm"
base_url = "http://127.0.0.1:8000/v1"

[providers.e]
type = "echo"
dely_ms = 5

[models.a]
provider = "ee"
model = "x"
fallbacks = ["bb"]

[models.b]
provider = "e"
model = "${MODELMUX_TEST_UNSET_VARIABLE}"

[state]
backend = "memroy"
"""


def validate(tmp_path: Path, text: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "modelmux.toml"
    path.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELMUX_") and k != "COLUMNS"}
    return subprocess.run(
        [MODELMUX, "config", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        env={**env, "HOME": str(tmp_path), **extra_env},
        cwd=tmp_path,
        timeout=60,
    )


def test_every_problem_in_one_run_with_did_you_mean(tmp_path: Path) -> None:
    result = validate(tmp_path, SIX_MISTAKES)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("config error:")]
    text = "\n".join(lines)
    expected = {
        "server.prot": "Did you mean 'port'?",
        "server.log_level": "(got 'loud')",
        "providers.up.type": "Did you mean 'vllm'?",
        "providers.e.dely_ms": "Did you mean 'delay_ms'?",
        "models.a.provider": "Did you mean 'e'?",
        "models.a.fallbacks": "Did you mean 'b'?",
        "models.b.model": "MODELMUX_TEST_UNSET_VARIABLE",
        "state.backend": "Did you mean 'memory'?",
    }
    for key, hint in expected.items():
        line = next((line for line in lines if line.startswith(f"config error: {key}: ")), None)
        assert line is not None, f"{key} not reported:\n{text}"
        assert hint in line, line
    assert len(lines) == len(expected), text  # each problem once
    assert "pip install" not in result.stderr  # no package named after a misspelling


def test_an_unknown_name_never_becomes_an_install_command(tmp_path: Path) -> None:
    made_up = validate(tmp_path, '[providers.x]\ntype = "qwertyuiop"\n')
    assert made_up.returncode == 2
    assert "providers.x.type: unknown provider type 'qwertyuiop'" in made_up.stderr
    assert "pip install" not in made_up.stderr and "docs/plugins.md" in made_up.stderr
    # ModelMux's own plugin packages are named as they are: the type names a real package.
    missing = validate(tmp_path, '[providers.b]\ntype = "bedrock"\n', MODELMUX_DISABLE_PLUGINS="bedrock")
    assert missing.returncode == 2
    assert "pip install modelmux-provider-bedrock" in missing.stderr
    misspelled = validate(tmp_path, '[providers.b]\ntype = "bedrok"\n', MODELMUX_DISABLE_PLUGINS="bedrock")
    assert (
        "Did you mean 'bedrock'?" in misspelled.stderr and "pip install modelmux-provider-bedrock" in misspelled.stderr
    )
    assert "modelmux-provider-bedrok" not in misspelled.stderr


def test_a_misspelled_secret_setting_is_not_printed(tmp_path: Path) -> None:
    result = validate(tmp_path, '[providers.e]\ntype = "echo"\napi_kye = "sk-misspelled-secret-1234"\n')
    assert result.returncode == 2
    assert "providers.e.api_kye: unknown setting" in result.stderr
    assert "sk-misspelled-secret-1234" not in result.stderr + result.stdout
