"""Reading deploy/kubernetes and the compose file the way the deploy tests look at them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES_DIR / "kustomization.yaml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

Document = dict[str, Any]


def load_documents(path: Path) -> list[Document]:
    """Every non-empty YAML document in ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization() -> Document:
    documents = load_documents(KUSTOMIZATION)
    assert len(documents) == 1, "kustomization.yaml holds one document"
    return documents[0]


def manifest_files() -> list[Path]:
    """The Kubernetes manifests in deploy/kubernetes (the kustomization itself aside)."""
    return sorted(path for path in KUBERNETES_DIR.glob("*.yaml") if path != KUSTOMIZATION)


def all_resources() -> list[Document]:
    return [doc for path in manifest_files() for doc in load_documents(path)]


def resource(kind: str, name: str) -> Document:
    for doc in all_resources():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise LookupError(f"no {kind} named {name} in deploy/kubernetes")


def pod_templates() -> Iterator[tuple[str, Document]]:
    """``(kind/name, pod template spec)`` for every workload that runs pods."""
    for doc in all_resources():
        if doc["kind"] in {"Deployment", "Job", "StatefulSet", "DaemonSet"}:
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def containers(pod: Document) -> list[Document]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def settings_env() -> dict[str, str]:
    """The configMapGenerator's env file, as kustomize reads it (KEY=VALUE, # comments)."""
    (generator,) = kustomization()["configMapGenerator"]
    (env_file,) = generator["envs"]
    pairs = {}
    for line in (KUBERNETES_DIR / env_file).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value
    return pairs


def dockerfile_user() -> tuple[int, int]:
    """The numeric ``USER uid:gid`` the image runs as."""
    users = re.findall(r"^USER\s+(\d+):(\d+)\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert len(users) == 1, "the Dockerfile names one numeric USER uid:gid"
    uid, gid = users[0]
    return int(uid), int(gid)


def compose() -> Document:
    documents = load_documents(COMPOSE_FILE)
    assert len(documents) == 1
    return documents[0]


def known_setting_names() -> set[str]:
    """The variables tsprov's Settings read."""
    return {f"TSPROV_{name.upper()}" for name in Settings.model_fields}
