"""What an operator relies on: non-root, read-only, probed, drained, secrets by reference."""

from __future__ import annotations

import re

import pytest

from service.settings import Settings
from tests.deploy.manifests import (
    KUBERNETES_DIR,
    Document,
    all_resources,
    containers,
    dockerfile_user,
    pod_templates,
    resource,
    settings_env,
)

WORKLOADS = dict(pod_templates())
# Settings that hold a secret: only ever from a Secret, never a literal in a manifest.
SECRET_SETTINGS = frozenset(
    {
        "TSPROV_DATABASE_URL",
        "TSPROV_OAUTH_CLIENT_ID",
        "TSPROV_OAUTH_CLIENT_SECRET",
        "TSPROV_OBSERVER_CLIENT_ID",
        "TSPROV_OBSERVER_CLIENT_SECRET",
        "TSPROV_ENCRYPTION_KEYS",
        "TSPROV_AUDIT_SIGNING_KEY",
    }
)
SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|TOKEN|_KEYS?$|DATABASE")
# Files the server reads its key ring and checkpoint-signing key from, and their Secrets.
SECRET_FILES = {
    "TSPROV_ENCRYPTION_KEYS_FILE": "tsprov-encryption-keys",
    "TSPROV_AUDIT_SIGNING_KEY_FILE": "tsprov-audit-signing-key",
}
# uvicorn's timeout_graceful_shutdown in `tsprov serve`: in-flight requests get this long.
IN_FLIGHT_SECONDS = 25


def server() -> Document:
    return WORKLOADS["Deployment/tsprov"]


def file_secret(container: Document, pod: Document, variable: str) -> str:
    """The Secret whose volume holds the file ``variable`` names."""
    path = next(v["value"] for v in container["env"] if v["name"] == variable)
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            secret = volumes[mount["name"]]["secret"]
            assert mount["readOnly"] is True
            assert path.removeprefix(mount["mountPath"].rstrip("/") + "/") in {
                item["path"] for item in secret["items"]
            }
            name: str = secret["secretName"]
            return name
    raise AssertionError(f"{variable} names {path}, which no Secret volume provides")


@pytest.mark.parametrize("workload", WORKLOADS)
def test_pods_run_as_the_images_non_root_user(workload: str) -> None:
    pod = WORKLOADS[workload]
    uid, gid = dockerfile_user()
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert uid != 0
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    account = resource("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("workload", WORKLOADS)
def test_containers_are_read_only_and_unprivileged(workload: str) -> None:
    pod = WORKLOADS[workload]
    scratch = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for container in containers(pod):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context.get("privileged", False) is False
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert mounts.get("/tmp") in scratch, "Python's tempfile needs a writable /tmp"
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) >= {"cpu", "memory"}


def test_no_secret_is_committed() -> None:
    assert not [doc for doc in all_resources() if doc["kind"] == "Secret"]
    assert not set(settings_env()) & SECRET_SETTINGS
    assert not any(SECRET_LOOKING.search(name) for name in settings_env())


@pytest.mark.parametrize("workload", WORKLOADS)
def test_secrets_reach_containers_only_by_reference(workload: str) -> None:
    for container in containers(WORKLOADS[workload]):
        for variable in container.get("env", []):
            name = variable["name"]
            if "value" not in variable:
                assert set(variable["valueFrom"]) == {"secretKeyRef"}, name
            elif name in SECRET_FILES:
                assert file_secret(container, WORKLOADS[workload], name) == SECRET_FILES[name]
            else:
                assert name not in SECRET_SETTINGS, name
                assert not SECRET_LOOKING.search(name), name


def test_server_takes_every_secret_by_reference_and_never_the_owners() -> None:
    (container,) = server()["containers"]
    from_secrets = {
        v["name"]: v["valueFrom"]["secretKeyRef"]["name"]
        for v in container["env"]
        if "valueFrom" in v
    }
    assert set(from_secrets) == SECRET_SETTINGS - {
        "TSPROV_ENCRYPTION_KEYS",
        "TSPROV_AUDIT_SIGNING_KEY",
    }
    for variable, secret in SECRET_FILES.items():
        assert file_secret(container, server(), variable) == secret
    # Secret files belong to the fsGroup; mode 0440 lets the service's group read them.
    assert server()["securityContext"]["fsGroup"] == dockerfile_user()[1]
    for volume in server()["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o440
    (migrate,) = WORKLOADS["Job/tsprov-migrate"]["containers"]
    owner = {v["valueFrom"]["secretKeyRef"]["name"] for v in migrate["env"] if "valueFrom" in v}
    assert owner == {"tsprov-database-owner"}
    assert "tsprov-database-owner" not in from_secrets.values()


def test_probes_use_healthz_for_liveness_and_readyz_for_readiness() -> None:
    (container,) = server()["containers"]
    port_names = {port["name"]: port["containerPort"] for port in container["ports"]}
    probes = {
        kind: container[kind]["httpGet"]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"
    assert probes["readinessProbe"]["path"] == "/readyz"
    command = container["command"]
    served_port = int(command[command.index("--port") + 1])
    for probe in probes.values():
        assert port_names[probe["port"]] == served_port


def test_grace_period_covers_prestop_drain_and_in_flight_requests() -> None:
    pod = server()
    (container,) = pod["containers"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(
        settings_env().get(
            "TSPROV_SHUTDOWN_DRAIN_SECONDS",
            Settings.model_fields["shutdown_drain_seconds"].default,
        )
    )
    needed = float(pre_stop[1]) + drain + IN_FLIGHT_SECONDS
    # Closing the pool, the clients and the background loop takes well under a second.
    assert pod["terminationGracePeriodSeconds"] >= needed + 5
    assert "--workers" not in container["command"], "the SIGTERM drain needs one worker"


def secrets_the_readme_creates() -> set[tuple[str, str]]:
    """``(secret, key)`` for each ``kubectl create secret generic`` command in README.md."""
    text = (KUBERNETES_DIR / "README.md").read_text().replace("\\\n", " ")
    created = set()
    for command in re.findall(r"create secret generic (\S+)(.*)", text):
        name, options = command
        for key in re.findall(r"--from-(?:literal|file)=([\w-]+)=", options):
            created.add((name, key))
    return created


def test_readme_creates_every_secret_and_key_the_manifests_use() -> None:
    used: set[tuple[str, str]] = set()
    for pod in WORKLOADS.values():
        for container in containers(pod):
            for variable in container.get("env", []):
                if "valueFrom" in variable:
                    ref = variable["valueFrom"]["secretKeyRef"]
                    used.add((ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    used.add((volume["secret"]["secretName"], item["key"]))
    assert len(used) >= 7
    assert used == secrets_the_readme_creates()
