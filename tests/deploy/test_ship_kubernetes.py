"""The Helm chart (deploy/helm/modelmux) and the plain manifests (deploy/kubernetes) as a cluster gets them.

No cluster here: the real helm binary (tools/package.json, installed by `make install-node`) lints the
chart and renders it with several sets of values; every document must parse as YAML and carry what
running ModelMux on Kubernetes needs: probes on the health endpoints, port 3000, the TOML from a
ConfigMap mounted where MODELMUX_CONFIG_FILE points (and passing `modelmux config validate` with
the container's environment, secrets included), API keys from a Secret, Prometheus scrape
annotations, a non-root security context, and Redis wired in when it is asked for.
"""

from __future__ import annotations

import base64
import posixpath
import re
import subprocess
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmux.health import READY_TIMEOUT

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "tools" / "node_modules" / ".bin" / "helm"
CHART = ROOT / "deploy" / "helm" / "modelmux"
PLAIN = ROOT / "deploy" / "kubernetes"
Validate = Callable[[Path, Mapping[str, str]], str]  # the validate_config fixture
Doc = dict[str, Any]

AUTH_CONFIG = """\
[server]
api_keys = ["${MODELMUX_API_KEY}"]

[providers.local]
type = "openai_compatible"
base_url = "http://vllm.llm.svc:8000/v1"
"""
CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "redis and three replicas": {
        "replicaCount": 3,
        "redis": {"enabled": True},
        "secretEnv": {"MODELMUX_API_KEY": "key-from-secret"},
        "config": AUTH_CONFIG,
    },
    "external redis, autoscaling, monitoring": {
        "externalRedis": {"url": "redis://:${REDIS_PASSWORD}@redis.example:6379/0"},
        "secretEnv": {"REDIS_PASSWORD": "pw"},
        "autoscaling": {"enabled": True, "minReplicas": 2},
        "podDisruptionBudget": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
    },
}


def helm(*args: str) -> str:
    assert HELM.exists(), f"{HELM} is missing: run `make install-node` (needs npm)"
    result = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def parse(text: str) -> list[Doc]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs)
    return docs


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def secret_values(secret: Doc) -> dict[str, str]:
    values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**values, **(secret.get("stringData") or {})}


@dataclass
class Workload:
    deployment: Doc
    container: Doc
    env: dict[str, str]  # what the container's process sees (the image's ENV, then the pod's)
    toml: str


def check_workload(docs: list[Doc], image_env: dict[str, str], extra_secrets: Sequence[Doc] = ()) -> Workload:
    """What every ModelMux Deployment must carry; returns it for case-specific checks."""
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and any(c["name"] == "modelmux" for c in _pod(d)["containers"])
    )
    pod = _pod(deployment)
    (container,) = [c for c in pod["containers"] if c["name"] == "modelmux"]
    assert {"name": "http", "containerPort": 3000} in [
        {k: p[k] for k in ("name", "containerPort")} for p in container["ports"]
    ]
    for probe, path in (("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] in ("http", 3000)
    # /health/ready may wait READY_TIMEOUT for its state store (or, when asked, a provider's) check:
    # a shorter probe timeout would turn a slow check into a pod leaving the Service.
    assert container["readinessProbe"].get("timeoutSeconds", 1) > READY_TIMEOUT
    # Liveness never looks past the process: an upstream outage must not restart every pod.
    assert container.get("startupProbe", container["livenessProbe"])["httpGet"]["path"] == "/health/live"

    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "3000"
    assert annotations["prometheus.io/path"] == "/metrics"

    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    if container["securityContext"].get("readOnlyRootFilesystem"):
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert {"/tmp", "/data"} <= writable, "a read-only root needs /tmp and /data ($XDG_DATA_HOME) writable"

    env = dict(image_env)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
    for source in container.get("envFrom", []):
        name = source["secretRef"]["name"]
        secret = one([*docs, *extra_secrets], "Secret", name)
        env.update(secret_values(secret))

    config_path = env["MODELMUX_CONFIG_FILE"]
    directory, filename = posixpath.split(config_path)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    configmap = one(docs, "ConfigMap", volume["configMap"]["name"])
    items = volume["configMap"].get("items") or [{"key": filename, "path": filename}]
    (key,) = [i["key"] for i in items if i["path"] == filename]
    toml = configmap["data"][key]
    tomllib.loads(toml)

    service = next(d for d in docs if d["kind"] == "Service" and d["spec"]["selector"].items() <= _labels(deployment))
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in ("http", 3000)
    return Workload(deployment, container, env, toml)


def _pod(deployment: Doc) -> Doc:
    pod = deployment["spec"]["template"]["spec"]
    assert isinstance(pod, dict)
    return pod


def _labels(deployment: Doc) -> Any:
    return deployment["spec"]["template"]["metadata"]["labels"].items()


def validate_workload(workload: Workload, tmp_path: Path, validate_config: Validate) -> None:
    path = tmp_path / "config.toml"
    path.write_text(workload.toml)
    validate_config(path, {k: v for k, v in workload.env.items() if k != "PATH"})


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Doc]]:
    result = {}
    for case, values in CASES.items():
        path = tmp_path_factory.mktemp("values") / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        helm("lint", "--strict", str(CHART), "-f", str(path))
        result[case] = parse(helm("template", "mux", str(CHART), "-f", str(path)))
    return result


@pytest.mark.parametrize("case", list(CASES))
def test_the_chart_renders_a_complete_workload_whose_config_validates(
    case: str, rendered: dict[str, list[Doc]], image_env: dict[str, str], tmp_path: Path, validate_config: Validate
) -> None:
    workload = check_workload(rendered[case], image_env)
    validate_workload(workload, tmp_path, validate_config)


def test_defaults_one_replica_no_redis_no_secret(rendered: dict[str, list[Doc]], image_env: dict[str, str]) -> None:
    docs = rendered["defaults"]
    workload = check_workload(docs, image_env)
    assert workload.deployment["spec"]["replicas"] == 1
    assert "envFrom" not in workload.container
    assert not [d for d in docs if d["kind"] == "Secret" or "redis" in d["metadata"]["name"]]
    assert "MODELMUX_STATE__BACKEND" not in workload.env


def test_redis_enabled_adds_a_redis_the_replicas_share(
    rendered: dict[str, list[Doc]], image_env: dict[str, str]
) -> None:
    docs = rendered["redis and three replicas"]
    workload = check_workload(docs, image_env)
    assert workload.deployment["spec"]["replicas"] == 3
    assert workload.env["MODELMUX_STATE__BACKEND"] == workload.env["MODELMUX_CACHE__BACKEND"] == "redis"
    assert (
        workload.env["MODELMUX_STATE__URL"]
        == workload.env["MODELMUX_CACHE__URL"]
        == "redis://mux-modelmux-redis:6379/0"
    )
    service = one(docs, "Service", "mux-modelmux-redis")
    assert service["spec"]["ports"][0]["port"] == 6379
    redis = one(docs, "Deployment", "mux-modelmux-redis")
    assert service["spec"]["selector"].items() <= _labels(redis)
    assert not service["spec"]["selector"].items() <= _labels(workload.deployment), "the gateway Service is separate"
    # The API key reaches the container from the Secret, not from the ConfigMap.
    assert workload.env["MODELMUX_API_KEY"] == "key-from-secret"
    assert "key-from-secret" not in yaml.safe_dump(one(docs, "ConfigMap"))


def test_external_redis_with_autoscaling_and_monitoring(
    rendered: dict[str, list[Doc]], image_env: dict[str, str]
) -> None:
    docs = rendered["external redis, autoscaling, monitoring"]
    workload = check_workload(docs, image_env)
    assert "replicas" not in workload.deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 2
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == "/metrics"
    assert workload.env["MODELMUX_STATE__URL"].endswith("@redis.example:6379/0")
    assert not [d for d in docs if d["metadata"]["name"].endswith("-redis")], "no built-in Redis with an external one"


def test_the_plain_manifests(image_env: dict[str, str], tmp_path: Path, validate_config: Validate) -> None:
    kustomization = yaml.safe_load((PLAIN / "kustomization.yaml").read_text())
    docs = [doc for name in kustomization["resources"] for doc in parse((PLAIN / name).read_text())]
    assert "secret.example.yaml" not in kustomization["resources"], "no key is applied from git"
    example_secret = parse((PLAIN / "secret.example.yaml").read_text())
    workload = check_workload(docs, image_env, extra_secrets=example_secret)
    validate_workload(workload, tmp_path, validate_config)
    assert workload.env["MODELMUX_API_KEY"] == "change-me"
    (image,) = [c["image"] for c in workload.deployment["spec"]["template"]["spec"]["containers"]]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert image == f"{values['image']['repository']}:{chart['appVersion']}", "the chart and the manifests agree"


def test_every_chart_value_is_documented_and_every_documented_value_exists() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    doc = (ROOT / "docs" / "deployment" / "kubernetes.md").read_text()
    table = doc.split("### Values", 1)[1].split("\n## ", 1)[0]
    for key in values:
        assert f"`{key}`" in table or f"`{key}." in table, f"values.yaml key {key} is not in the Values table"
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        for path in re.findall(r"`([A-Za-z][\w.]*)`", row.split("|")[1]):
            node: Any = values
            for part in path.split("."):
                assert isinstance(node, dict) and part in node, f"docs list {path}, which values.yaml lacks"
                node = node[part]
