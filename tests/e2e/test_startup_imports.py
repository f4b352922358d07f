"""Start-up imports only what the configuration uses: a plugin's heavy library waits for its provider."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Discovery imports every installed plugin in every modelmux process (serve, plugins, config ...).
HEAVY = ("google.auth", "botocore", "redis", "azure.identity", "rich", "diskcache")

SCRIPT = """
import json, sys
from modelmux.app import create_app
from modelmux.config import load_config
from modelmux.plugins import load_plugins
plugins = load_plugins()
config = load_config(sys.argv[1], plugins.registry)
create_app(config, plugins)
print(json.dumps({"modules": sorted(sys.modules), "errors": [p.name for p in plugins.infos if p.error]}))
"""


def test_an_echo_server_imports_no_plugin_library(tmp_path: Path) -> None:
    config = tmp_path / "modelmux.toml"
    config.write_text('[state]\nbackend = "memory"\n\n[providers.echo]\ntype = "echo"\n')
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(config)], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["errors"] == []  # every plugin of this repository was discovered and loaded
    assert [m for m in HEAVY if m in result["modules"]] == []
