"""``modelmux config init --preset vertex``: a configuration pre-filled from this machine.

Detection reads files and environment variables only (gcloud's configuration, the
ADC file, GCE's DMI product name): no network call that could hang.
"""

from __future__ import annotations

import configparser
import json
import os
from pathlib import Path
from typing import Any

DEFAULT_REGION = "us-east5"


def gcloud_dir() -> Path:
    return Path(os.environ.get("CLOUDSDK_CONFIG") or "~/.config/gcloud").expanduser()


def gcloud_project() -> str | None:
    """The project of gcloud's active configuration (``gcloud config get project``)."""
    root = gcloud_dir()
    try:
        active = (root / "active_config").read_text().strip() or "default"
    except OSError:
        active = "default"
    parser = configparser.ConfigParser()
    try:
        parser.read(root / "configurations" / f"config_{active}")
    except configparser.Error:
        return None
    return parser.get("core", "project", fallback=None) or None


def adc_file() -> Path | None:
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    path = Path(env).expanduser() if env else gcloud_dir() / "application_default_credentials.json"
    return path if path.is_file() else None


def on_gce() -> bool:
    """Running on Google Cloud (the metadata server is there), by the DMI product name."""
    try:
        return Path("/sys/class/dmi/id/product_name").read_text().strip().startswith("Google")
    except OSError:
        return False


def detect(environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    adc = adc_file()
    adc_project = None
    if adc is not None:
        found["adc"] = str(adc)
        try:
            data = json.loads(adc.read_text())
            adc_project = data.get("project_id") or data.get("quota_project_id")
            found["adc_type"] = data.get("type")
        except (OSError, ValueError):
            pass
    found["gce"] = on_gce()
    for origin, value in (
        ("GOOGLE_CLOUD_PROJECT", env.get("GOOGLE_CLOUD_PROJECT")),
        ("CLOUDSDK_CORE_PROJECT", env.get("CLOUDSDK_CORE_PROJECT")),
        ("gcloud config", gcloud_project()),
        ("ADC file", adc_project),
    ):
        if value:
            found["project"], found["project_source"] = value, origin
            break
    return found


def render(detected: dict[str, Any]) -> str:
    found = detect()
    project = found.get("project")
    region = DEFAULT_REGION
    if detected.get("interactive"):
        from rich.prompt import Prompt

        project = Prompt.ask("GCP project", default=project) or project
        region = Prompt.ask("Vertex AI region (or global)", default=region)
    if found.get("adc"):
        creds = f"# credentials: Application Default Credentials found at {found['adc']} ({found.get('adc_type')})"
    elif found.get("gce"):
        creds = "# credentials: the GCP metadata server (this machine runs on Google Cloud)"
    else:
        creds = "# credentials: none found. Run `gcloud auth application-default login`, or set credentials_file below"
    project_line = (
        f'project = "{project}"            # from {found.get("project_source", "your answer")}'
        if project
        else '# project = "my-gcp-project"   # not detected: set it, or set GOOGLE_CLOUD_PROJECT'
    )
    return f"""\
# ModelMux configuration: Claude on Vertex AI.
# Check it with: modelmux doctor
[server]
host = "127.0.0.1"
port = 3000

[state]
backend = "disk"

{creds}
[providers.claude]
type = "vertex"
{project_line}
region = "{region}"             # or "global"
# credentials_file = "/secrets/sa.json"   # a service-account key; ADC when absent
timeout_seconds = 120
max_retries = 2

[models.claude-sonnet]
provider = "claude"
model = "claude-sonnet-4-5@20250929"

[models.claude-haiku]
provider = "claude"
model = "claude-haiku-4-5@20251001"
"""
