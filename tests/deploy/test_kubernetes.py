"""deploy/kubernetes/ validates against the Kubernetes API schemas and meets the ops policy."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest

from services.__main__ import SERVICES
from tests.deploy.support import DEPLOY, IMAGE, UID, is_setting, load_yaml, load_yaml_documents

KUBERNETES = DEPLOY / "kubernetes"
EXAMPLE_SECRET = "secret.example.yaml"
SECRET_NAME = "community-ledger-secrets"
# The oldest and the newest minor version upstream supports as these manifests are written;
# kubernetes-validate ships the API schemas of each, and strict ones refuse unknown fields.
KUBERNETES_VERSIONS = ("1.35.0", "1.37.0")

Resource = dict[str, Any]


def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(KUBERNETES / "kustomization.yaml")
    return document


def listed_files() -> list[str]:
    files: list[str] = kustomization()["resources"]
    return files


def resources() -> list[tuple[str, Resource]]:
    """Every document of every file kustomize applies, with the file it is in."""
    return [
        (name, document)
        for name in listed_files()
        for document in load_yaml_documents(KUBERNETES / name)
    ]


def of_kind(kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for _, r in resources() if r["kind"] == kind}


def deployments() -> dict[str, Resource]:
    return of_kind("Deployment")


def job_containers() -> list[Resource]:
    spec = of_kind("Job")["migrate"]["spec"]["template"]["spec"]
    containers: list[Resource] = spec["initContainers"] + spec["containers"]
    return containers


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_the_kustomization_lists_exactly_the_manifests_here() -> None:
    """Every listed file exists, and every manifest here is listed but the example Secret."""
    listed = listed_files()
    assert len(listed) == len(set(listed))
    for name in listed:
        assert (KUBERNETES / name).is_file(), name
    present = {path.name for path in KUBERNETES.glob("*.yaml")}
    assert set(listed) == present - {"kustomization.yaml", EXAMPLE_SECRET}


def test_the_kustomization_namespace_and_image_match_the_manifests() -> None:
    """kustomize puts everything in the Namespace defined here and retags the image used."""
    namespaces = of_kind("Namespace")
    assert list(namespaces) == [kustomization()["namespace"]]
    name, _, tag = IMAGE.partition(":")
    assert kustomization()["images"] == [{"name": name, "newTag": tag}]


def test_the_namespace_enforces_the_restricted_pod_security_profile() -> None:
    """The cluster itself refuses a pod that gives up non-root or no-escalation."""
    labels = next(iter(of_kind("Namespace").values()))["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    """Each resource, and the example Secret, passes the strict API schema of that version."""
    documents = resources() + [
        (EXAMPLE_SECRET, d) for d in load_yaml_documents(KUBERNETES / EXAMPLE_SECRET)
    ]
    failures = []
    for name, document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            failures.append(f"{name} {document['kind']}: {path}: {error.message}")
    assert failures == []


def test_strict_validation_refuses_an_unknown_field() -> None:
    """A misspelt field fails validation, so a clean result means something."""
    deployment = copy.deepcopy(deployments()["catalog"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def assert_pod_is_locked_down(pod: Resource) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == UID
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Service links would set e.g. CATALOG_PORT=tcp://… and override the port setting.
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] >= 30


def assert_container_is_locked_down(container: Resource, pod: Resource) -> None:
    name = container["name"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True, name
    assert context["runAsUser"] == UID, name
    assert context["readOnlyRootFilesystem"] is True, name
    assert context["allowPrivilegeEscalation"] is False, name
    assert context["capabilities"] == {"drop": ["ALL"]}, name
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)
    assert container["image"] == IMAGE, name
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # A read-only root needs somewhere to write temporary files.
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], name  # noqa: S108 -- a path inside the pod
    secrets = mounts["/run/secrets"]
    assert secrets["readOnly"] is True, name
    assert volumes[secrets["name"]]["secret"]["secretName"] == SECRET_NAME, name


def secret_keys(container: Resource, pod: Resource) -> list[str]:
    """The secret keys mounted into a container, each under its own name."""
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/run/secrets")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    items = volume["secret"]["items"]
    assert all(item["path"] == item["key"] for item in items)
    return [item["key"] for item in items]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_locked_down_deployment(name: str) -> None:
    """Non-root, read-only root, no escalation or capabilities, seccomp, limits, secret files."""
    pod = deployments()[name]["spec"]["template"]["spec"]
    assert_pod_is_locked_down(pod)
    [container] = pod["containers"]
    assert_container_is_locked_down(container, pod)
    assert container["args"] == [name]


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_probes_readiness_and_liveness(name: str) -> None:
    """Traffic only once /readyz answers (database too); a restart when /healthz stops answering."""
    [container] = deployments()[name]["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert ports.get(http["port"], http["port"]) == 8000, probe


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_runs_two_replicas_behind_a_budget_and_a_service(name: str) -> None:
    """Two replicas, a PodDisruptionBudget keeping one, and a ClusterIP Service on port 8000."""
    deployment = deployments()[name]
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], labels)
    budgets = [
        b
        for b in of_kind("PodDisruptionBudget").values()
        if matches(b["spec"]["selector"]["matchLabels"], labels)
    ]
    assert len(budgets) == 1
    assert budgets[0]["spec"]["minAvailable"] == 1
    service = of_kind("Service")[name]
    assert service["spec"]["type"] == "ClusterIP"
    assert matches(service["spec"]["selector"], labels)
    [port] = service["spec"]["ports"]
    container_ports = {
        p["name"]: p["containerPort"]
        for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert container_ports.get(port["targetPort"], port["targetPort"]) == 8000


def test_only_deployments_pods_are_selected_by_budgets() -> None:
    """Every PodDisruptionBudget selects a Deployment's pods (none left over from a rename)."""
    pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments().values()]
    for name, budget in of_kind("PodDisruptionBudget").items():
        selector = budget["spec"]["selector"]["matchLabels"]
        assert sum(matches(selector, labels) for labels in pod_labels) == 1, name


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_is_scraped_by_prometheus(name: str) -> None:
    """The pods carry the scrape annotations: /metrics on port 8000."""
    annotations = deployments()[name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8000"
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_migration_job_runs_the_three_migrations_in_order() -> None:
    """catalog, ledger, notifier, each after the previous succeeded, never restarted in place."""
    pod = of_kind("Job")["migrate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert [c["args"] for c in job_containers()] == [[name, "migrate"] for name in SERVICES]
    assert [c["args"] for c in pod["initContainers"]] == [
        [name, "migrate"] for name in SERVICES[:-1]
    ]
    assert_pod_is_locked_down(pod)
    for container in job_containers():
        assert_container_is_locked_down(container, pod)


def test_each_container_gets_only_its_own_services_secrets() -> None:
    """The shared token secret and the service's own; the same keys as compose mounts."""
    compose_services = load_yaml(DEPLOY / "compose.yaml")["services"]
    for name in SERVICES:
        pod = deployments()[name]["spec"]["template"]["spec"]
        keys = secret_keys(pod["containers"][0], pod)
        assert keys == compose_services[name]["secrets"], name
        job_pod = of_kind("Job")["migrate"]["spec"]["template"]["spec"]
        [migration] = [c for c in job_containers() if c["args"][0] == name]
        assert secret_keys(migration, job_pod) == keys, name


def test_the_example_secret_is_placeholders_for_every_key_mounted() -> None:
    """secret.example.yaml names each key the pods read and holds no value, only placeholders."""
    [example] = load_yaml_documents(KUBERNETES / EXAMPLE_SECRET)
    assert example["metadata"]["name"] == SECRET_NAME
    mounted = set()
    for deployment in deployments().values():
        pod = deployment["spec"]["template"]["spec"]
        mounted.update(secret_keys(pod["containers"][0], pod))
    assert set(example["stringData"]) == mounted
    assert all(is_setting(key) for key in mounted), mounted
    assert "data" not in example, "base64 data would be a value, not a placeholder"
    for key, value in example["stringData"].items():
        assert "<" in value, key


def test_the_config_map_wires_services_by_their_service_names() -> None:
    """*_URL settings name Services here; production mode everywhere; migrations by the Job."""
    [config_map] = of_kind("ConfigMap").values()
    data: dict[str, str] = config_map["data"]
    for key, value in data.items():
        # Settings ignore unknown names, so a misspelt key would go unnoticed.
        assert is_setting(key), key
        if key.endswith("_URL"):
            assert urlsplit(value).hostname in of_kind("Service"), key
    for name in SERVICES:
        assert data[f"{name.upper()}_MODE"] == "production"
    assert data["CATALOG_MIGRATE_ON_START"] == "false"
    assert data["NOTIFIER_MIGRATE_ON_START"] == "false"
    for container in job_containers() + [
        d["spec"]["template"]["spec"]["containers"][0] for d in deployments().values()
    ]:
        [source] = container["envFrom"]
        assert source["configMapRef"]["name"] == config_map["metadata"]["name"]


def test_no_manifest_carries_a_secret_value() -> None:
    """No Secret is applied by kustomize, and no env var carries a value inline."""
    assert "Secret" not in {r["kind"] for _, r in resources()}
    for _, resource in resources():
        if resource["kind"] in ("Deployment", "Job"):
            pod = resource["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                assert "env" not in container, container["name"]


def strings(node: Any) -> list[str]:
    """Every string value in a YAML document, however deep."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_the_only_absolute_paths_are_the_pods_own() -> None:
    """No host path volume, no path of some machine: only the pod's mounts and HTTP paths."""
    in_the_pod = {"/run/secrets", "/tmp", "/healthz", "/readyz", "/metrics"}  # noqa: S108
    for name, resource in resources():
        assert "hostPath" not in str(resource), name
        paths = {s for s in strings(resource) if s.startswith("/")}
        assert paths <= in_the_pod, (name, paths - in_the_pod)


def test_the_readme_creates_the_secret_with_every_key() -> None:
    """The documented `kubectl create secret` command creates every key the pods mount."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    [example] = load_yaml_documents(KUBERNETES / EXAMPLE_SECRET)
    assert f"kubectl -n community-ledger create secret generic {SECRET_NAME}" in readme
    for key in example["stringData"]:
        assert f"--from-file={key}=" in readme, key
