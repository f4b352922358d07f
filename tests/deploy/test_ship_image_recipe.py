"""The Dockerfile's recipe, run outside Docker (no Docker engine on these machines).

The test reads the Dockerfile and follows it: the build stage's COPY lines (filtered by
.dockerignore) make a build context, its RUN deploy/build-wheels.sh (with the ARG defaults) builds
the host, the default plugins and every dependency as wheels (dependency wheels downloaded from
PyPI, as in a `docker build`; uv is the one the Makefile installed); the runtime stage's RUN creates
a fresh virtual environment and installs into it with `uv pip install --no-index --find-links`
(offline: this proves the wheel set is complete). Container paths (/wheels, /opt/modelmux, /data,
/etc/modelmux) map to temporary directories. The server then starts with the image's ENV and CMD
(host and port overridden to a free loopback port), answers the health endpoints, the image's own
HEALTHCHECK command and a chat request from the official openai SDK, and `modelmux plugins` run
from that environment lists the default plugins, loaded.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from modelmux.testing import free_port

ROOT = Path(__file__).resolve().parents[2]

Instruction = tuple[str, str]
Stages = list[list[Instruction]]
Validate = Callable[[Path, Mapping[str, str]], str]  # the validate_config fixture


def arg_defaults(stage: list[Instruction]) -> dict[str, str]:
    defaults = {}
    for keyword, args in stage:
        if keyword == "ARG" and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = shlex.split(value)[0] if value else ""
    return defaults


def env_pairs(stage: list[Instruction]) -> list[tuple[str, str]]:
    pairs = []
    for keyword, args in stage:
        if keyword == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                pairs.append((name, value))
    return pairs


def dockerignore_regexes() -> list[re.Pattern[str]]:
    """.dockerignore patterns as regexes (Go filepath.Match plus `**`, as Docker reads them)."""
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "teach dockerignore_regexes() about exceptions"
        regex = ""
        i = 0
        while i < len(line):
            if line.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif line.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif line[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif line[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(line[i]), i + 1
        patterns.append(re.compile(regex.strip("/") + r"\Z"))
    return patterns


def ignored(relative: str, patterns: list[re.Pattern[str]]) -> bool:
    parts = relative.split("/")
    return any(p.match("/".join(parts[:n])) for n in range(1, len(parts) + 1) for p in patterns)


def copy_context(stage: list[Instruction], workdir: Path) -> None:
    """The build stage's COPY lines, from the repository as Docker's build context sees it."""
    patterns = dockerignore_regexes()
    for keyword, args in stage:
        if keyword != "COPY":
            continue
        *sources, dest = shlex.split(args)
        assert not any(s.startswith("--") for s in sources), f"teach copy_context() about: COPY {args}"
        target = workdir / dest
        for source in sources:
            assert not ignored(source, patterns), f".dockerignore excludes {source}, which the Dockerfile copies"
            origin = ROOT / source
            if origin.is_dir():
                for path in origin.rglob("*"):
                    relative = path.relative_to(ROOT).as_posix()
                    if path.is_file() and not ignored(relative, patterns):
                        out = target / path.relative_to(origin)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, out)
            else:
                out = target / origin.name if dest.endswith("/") or len(sources) > 1 else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, out)


def plugin_entry_points() -> dict[str, str]:
    """Plugin directory -> the name its `modelmux` entry point registers (what `modelmux plugins` shows)."""
    names = {}
    for pyproject in sorted(ROOT.glob("plugins/*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        assert data["project"]["name"] == pyproject.parent.name, "a plugin directory is named after its package"
        (name,) = data["project"]["entry-points"]["modelmux"]
        names[pyproject.parent.name] = name
    return names


@dataclass
class Image:
    env: dict[str, str]
    data: Path
    healthcheck: list[str]
    cmd: list[str]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, dockerfile_stages: Stages) -> Image:
    """The Dockerfile's two stages, run with container paths mapped to temporary directories."""
    build, runtime = dockerfile_stages
    tmp = tmp_path_factory.mktemp("image")
    paths = {
        "/wheels": tmp / "wheels",
        "/opt/modelmux": tmp / "venv",
        "/data": tmp / "data",
        "/etc/modelmux": tmp / "etc",
    }

    def host(text: str) -> str:
        for container, local in paths.items():
            text = re.sub(re.escape(container) + r"(?=/|\b|$)", str(local), text)
        return text

    # A base environment like the python image's: a Python 3.11 with pip first on PATH.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELMUX_", "XDG_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"

    context = tmp / "src"
    copy_context(build, context)
    install_uv, build_run = [args for keyword, args in build if keyword == "RUN"]
    # The image installs uv with pip; here the Makefile already put it in .venv/bin, first on PATH.
    assert install_uv == 'pip install --no-cache-dir "uv==${UV_VERSION}"', install_uv
    assert shutil.which("uv", path=env["PATH"]), "uv is missing: run make install"
    assert build_run.startswith("deploy/build-wheels.sh "), build_run
    build_env = {**env, **arg_defaults(build)}
    subprocess.run(["sh", "-c", host(build_run)], cwd=context, env=build_env, check=True, timeout=600)

    for keyword, args in runtime:
        if keyword == "ENV":
            for name, value in env_pairs([(keyword, args)]):
                env[name] = host(value.replace("$PATH", env.get("PATH", "")))
        elif keyword == "COPY":
            source, dest = shlex.split(args)
            out = Path(host(dest))
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / source, out)
        elif keyword == "RUN":
            command = " ".join(word for word in shlex.split(args) if not word.startswith("--mount="))
            if "useradd" in command:
                continue  # the unprivileged user: checked in test_the_image_runs_as_an_unprivileged_user
            assert "/wheels" in command or "venv" in command, f"teach this test about: RUN {args}"
            subprocess.run(["sh", "-c", host(command)], env=env, check=True, timeout=300)
    paths["/data"].mkdir(exist_ok=True)

    instructions_by_keyword = dict(runtime)
    healthcheck = instructions_by_keyword["HEALTHCHECK"].split(" CMD ", 1)[1]
    return Image(
        env=env,
        data=paths["/data"],
        healthcheck=json.loads(healthcheck),
        cmd=json.loads(instructions_by_keyword["CMD"]),
    )


@dataclass
class Server:
    url: str
    image: Image
    env: dict[str, str]


@pytest.fixture(scope="module")
def server(image: Image) -> Iterator[Server]:
    port = free_port()
    # Loopback in tests; the 0.0.0.0 of the image: test_the_image_listens_on_3000_everywhere_and_reads_its_config_file.
    env = {**image.env, "MODELMUX_SERVER__HOST": "127.0.0.1", "MODELMUX_SERVER__PORT": str(port)}
    log = (image.data / "server.log").open("wb")
    proc = subprocess.Popen(image.cmd, env=env, cwd=image.data, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (image.data / "server.log").read_text()
            try:
                if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready in 60 s:\n" + (image.data / "server.log").read_text()
            time.sleep(0.2)
        yield Server(url=url, image=image, env=env)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_health_endpoints_answer(server: Server) -> None:
    assert httpx.get(f"{server.url}/health/live").status_code == 200
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


def test_the_images_own_healthcheck_passes(server: Server) -> None:
    result = subprocess.run(server.image.healthcheck, env=server.env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def test_a_chat_request_through_the_openai_sdk(server: Server) -> None:
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    completion = client.chat.completions.create(
        model="echo", messages=[{"role": "user", "content": "shipped in a wheel"}]
    )
    assert completion.choices[0].message.content == "shipped in a wheel"


def test_the_web_ui_is_served_from_the_wheel(server: Server) -> None:
    # Package data (modelmux/ui/static): loopback without admin keys opens the UI (docs/ui.md).
    assert 'src="ui/static/app.js"' in httpx.get(f"{server.url}/ui").text
    for name in ("app.js", "api.js", "overview.js", "plot.js", "playground.js", "style.css"):
        assert httpx.get(f"{server.url}/ui/static/{name}").status_code == 200, name
    assert httpx.get(f"{server.url}/ui/api/overview").json()["providers"]


def test_modelmux_plugins_lists_every_default_plugin_loaded(server: Server) -> None:
    result = subprocess.run(
        ["modelmux", "plugins"], env={**server.env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 2}
    for name in plugin_entry_points().values():
        assert name in rows and "│ ok" in rows[name], f"plugin {name} missing or not loaded:\n{result.stdout}"


def test_the_installed_environment_has_no_test_or_dev_tools(image: Image) -> None:
    bindir = Path(image.env["PATH"].split(os.pathsep)[0])
    assert (bindir / "modelmux").exists()
    for tool in ("pytest", "mypy", "ruff"):
        assert not (bindir / tool).exists(), f"{tool} is in the image's environment"


def test_the_default_plugins_are_every_plugin(dockerfile_stages: Stages) -> None:
    build = dockerfile_stages[0]
    chosen = set(arg_defaults(build)["PLUGINS"].replace(",", " ").split())
    # Short names resolve like deploy/build-wheels.sh does.
    resolved = {
        next(
            d
            for d in (n, f"modelmux-provider-{n}", f"modelmux-tool-{n}", f"modelmux-{n}")
            if (ROOT / "plugins" / d).is_dir()
        )
        for n in chosen
    }
    assert resolved == set(plugin_entry_points()), "the PLUGINS default should be every plugin under plugins/"


def test_the_image_is_multi_stage_slim_and_non_root(dockerfile_stages: Stages) -> None:
    build, runtime = dockerfile_stages
    assert all(re.search(r"python:\S*-slim", stage[0][1]) for stage in (build, runtime))
    user = dict(runtime)["USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER (Kubernetes runAsNonRoot can verify it)"
    (useradd,) = [args for keyword, args in runtime if keyword == "RUN" and "useradd" in args]
    assert f"--uid {uid}" in useradd
    assert not any("/src" in args or "build-wheels" in args for _, args in runtime if _ == "RUN"), (
        "the runtime stage installs wheels only; sources and build tools stay in the build stage"
    )


def test_the_image_listens_on_3000_everywhere_and_reads_its_config_file(
    dockerfile_stages: Stages, image_env: dict[str, str], validate_config: Validate
) -> None:
    runtime = dockerfile_stages[1]
    env = image_env
    assert env["MODELMUX_SERVER__HOST"] == "0.0.0.0"
    assert env["MODELMUX_SERVER__PORT"] == "3000"
    assert dict(runtime)["EXPOSE"] == "3000"
    config = env["MODELMUX_CONFIG_FILE"]
    assert any(k == "COPY" and a.endswith(" " + config) for k, a in runtime), "the image ships a default config"
    assert "/health/live" in dict(runtime)["HEALTHCHECK"]
    (source,) = [a.split()[0] for k, a in runtime if k == "COPY" and a.endswith(" " + config)]
    validate_config(ROOT / source, {k: v for k, v in env.items() if k.startswith("MODELMUX_")})


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = dockerignore_regexes()
    for path in (".venv/bin/python", ".git/HEAD", "tools/node_modules/x", "plugins/a/b.egg-info/PKG-INFO"):
        assert ignored(path, patterns), path
    for path in ("modelmux/app.py", "plugins/modelmux-redis/README.md", "deploy/build-wheels.sh"):
        assert not ignored(path, patterns), path


def test_make_and_the_image_build_with_the_same_uv() -> None:
    makefile = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M)
    dockerfile = re.search(r"^ARG UV_VERSION=(\S+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert makefile and dockerfile, "the Makefile and the Dockerfile both pin uv (UV_VERSION)"
    assert dockerfile.group(1) == makefile.group(1)
