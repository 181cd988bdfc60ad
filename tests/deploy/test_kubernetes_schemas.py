"""Every manifest is valid Kubernetes, and the kustomization renders exactly these files.

The schemas ship inside kubernetes-validate: nothing is downloaded. The strict schemas
refuse unknown fields, so a misspelt ``readOnlyRootFilesystem`` fails here instead of
being dropped silently by the API server.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from service.audit.signing import generate_signing_key
from service.settings import Settings
from tests.deploy.manifests import (
    KUBERNETES_DIR,
    Document,
    all_resources,
    containers,
    known_setting_names,
    kustomization,
    load_documents,
    manifest_files,
    pod_templates,
    resource,
    settings_env,
)

# The oldest Kubernetes the manifests claim (README.md), and the newest schema shipped.
OLDEST_KUBERNETES = "1.30"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())


def validate(document: Document, version: str) -> None:
    """Raise kubernetes_validate.ValidationError unless ``document`` fits the strict schema."""
    kubernetes_validate.validate(document, version, strict=True)


def validation_error(document: Document, version: str) -> str | None:
    try:
        validate(document, version)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{path}: {error.message}"
    return None


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_manifest_fits_the_kubernetes_schema(path: Path, version: str) -> None:
    documents = load_documents(path)
    assert documents, f"{path.name} holds no resource"
    for document in documents:
        assert validation_error(document, version) is None, path.name


def test_a_misspelt_field_fails_validation() -> None:
    deployment = resource("Deployment", "tsprov")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    context: dict[str, Any] = container["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    error = validation_error(deployment, kubernetes_validate.latest_version())
    assert error is not None
    assert "readOnlyRootFileSystem" in error


def test_kustomization_lists_every_manifest_and_nothing_else() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), "a resource is listed twice"
    for name in listed:
        assert (KUBERNETES_DIR / name).is_file(), f"kustomization.yaml lists missing {name}"
    assert sorted(listed) == sorted(path.name for path in manifest_files())


def test_kustomization_namespace_is_the_namespace_it_creates() -> None:
    (namespace,) = [doc for doc in all_resources() if doc["kind"] == "Namespace"]
    assert kustomization()["namespace"] == namespace["metadata"]["name"]


def test_every_container_image_is_set_by_the_kustomization() -> None:
    """kustomize rewrites only the image names it is given; any other would ship as is."""
    rewritten = {entry["name"] for entry in kustomization()["images"]}
    used = {c["image"] for _, pod in pod_templates() for c in containers(pod)}
    assert used == rewritten


def test_generated_settings_are_a_valid_config_map_of_known_settings() -> None:
    (generator,) = kustomization()["configMapGenerator"]
    values = settings_env()
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
        "data": values,
    }
    for version in KUBERNETES_VERSIONS:
        assert validation_error(config_map, version) is None
    assert set(values) <= known_setting_names()
    # Production refuses to start on a bad value here (PUBLIC_URL not https, say); the
    # secrets come from their Secrets, so stand-ins take their place.
    stand_ins = {
        "oauth_client_id": "kStandIn",
        "oauth_client_secret": "stand-in-client-secret",
        "encryption_keys": "k1:" + base64.urlsafe_b64encode(bytes(32)).decode(),
        "audit_signing_key": generate_signing_key(),
    }
    settings = Settings.model_validate(
        {key.removeprefix("TSPROV_").lower(): value for key, value in values.items()} | stand_ins
    )
    assert settings.env == "production"
    referenced = {
        source["configMapRef"]["name"]
        for _, pod in pod_templates()
        for container in containers(pod)
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    }
    assert referenced == {generator["name"]}


def test_every_tsprov_variable_is_a_setting_tsprov_reads() -> None:
    names = {
        variable["name"]
        for _, pod in pod_templates()
        for container in containers(pod)
        for variable in container.get("env", [])
    }
    assert names, "the workloads set no variable at all"
    # A TSPROV_ name that Settings lacks is a typo, which Settings would ignore.
    assert names - known_setting_names() == set()
