#!/usr/bin/env python3
"""Consistency checks of deploy/ that no schema can express, run by deploy/check.sh.

kubernetes-validate proves each object is well-formed; this proves the objects fit
together and fit the binary: selectors reach the pods, the shutdown budget covers the
drain, the admin port carries the scrape and is exposed by no Service, every AUDIT_* setting used here exists in src/ and every subcommand in src/cli.rs, the image
and the manifests agree on port and user. Each failure names the file and what to fix.

    python3 deploy/check_manifests.py      (from the repository root; needs PyYAML)
"""

from __future__ import annotations

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
# Margin after the drain for closing the pool and flushing spans (deployment.yaml).
SHUTDOWN_MARGIN_S = 5
# Files that are deliberately not applied by a kustomization.
NOT_APPLIED = {"secret.example.yaml"}

failures: list[str] = []


def fail(where: str, message: str) -> None:
    failures.append(f"{where}: {message}")


def rel(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def load_all(path: pathlib.Path) -> list[dict]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def kustomize_resources(directory: pathlib.Path, seen: set[pathlib.Path]) -> list[tuple[pathlib.Path, dict]]:
    """Objects a kustomization applies, following directory resources like kustomize."""
    objects = []
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            objects += kustomize_resources(target, seen)
        elif not target.exists():
            fail(rel(directory / "kustomization.yaml"), f"lists {entry}, which does not exist")
        else:
            seen.add(target)
            objects += [(target, doc) for doc in load_all(target)]
    return objects


def cli_contract() -> tuple[set[str], set[str]]:
    """The environment variables the binary's clap arguments declare (anywhere in src/,
    as flattened argument groups live beside their code) and the subcommands of src/cli.rs."""
    env_names: set[str] = set()
    for path in (ROOT / "src").rglob("*.rs"):
        env_names |= set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', path.read_text()))
    source = (ROOT / "src" / "cli.rs").read_text()
    commands: set[str] = set()
    enum = re.search(r"pub enum Command\s*\{(.*?)\n\}", source, re.S)
    if enum:
        for variant in re.findall(r"^\s*([A-Z][A-Za-z0-9]*)\s*(?:\(|,|\{)", enum.group(1), re.M):
            # clap's default: variant names in kebab-case.
            commands.add(re.sub(r"(?<!^)(?=[A-Z])", "-", variant).lower())
    return env_names, commands


def pods(objects):
    """(file, kind/name, pod spec, pod labels) of every workload."""
    for path, obj in objects:
        spec = obj.get("spec", {})
        if obj["kind"] in ("Deployment", "Job"):
            template = spec["template"]
        elif obj["kind"] == "CronJob":
            template = spec["jobTemplate"]["spec"]["template"]
        else:
            continue
        yield path, f'{obj["kind"]}/{obj["metadata"]["name"]}', template["spec"], template["metadata"].get("labels", {})


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def check_kubernetes(env_names: set[str], commands: set[str]) -> None:
    seen: set[pathlib.Path] = set()
    serving = kustomize_resources(K8S, seen)
    migration = kustomize_resources(K8S / "migrate", seen)
    objects = serving + migration

    # A manifest nobody applies is a manifest nobody notices is stale.
    for path in K8S.rglob("*.yaml"):
        if path.name != "kustomization.yaml" and path.name not in NOT_APPLIED and path.resolve() not in seen:
            fail(rel(path), "is in no kustomization's resources")

    # Both kustomizations must roll out the same image, or the Job migrates to a schema
    # the replicas do not expect.
    images = [yaml.safe_load((d / "kustomization.yaml").read_text()).get("images") for d in (K8S, K8S / "migrate")]
    if images[0] != images[1]:
        fail("deploy/kubernetes/migrate/kustomization.yaml", f"images {images[1]} differ from the service's {images[0]}")

    by_kind: dict[str, list] = {}
    for path, obj in objects:
        by_kind.setdefault(obj["kind"], []).append((path, obj))
    configmap = next(obj for _, obj in by_kind["ConfigMap"] if obj["metadata"]["name"] == "audit-service")["data"]
    secrets = {obj["metadata"]["name"]: obj for obj in load_all(K8S / "secret.example.yaml")}

    for path, obj in by_kind.get("ConfigMap", []):
        for key in obj.get("data", {}):
            if key.startswith("AUDIT_") and key not in env_names:
                fail(rel(path), f"{key} is not a setting of the binary (src/)")
    for name, secret in secrets.items():
        for key in secret.get("stringData", {}):
            if key.startswith("AUDIT_") and key not in env_names:
                fail("deploy/kubernetes/secret.example.yaml", f"{name}: {key} is not a setting of the binary (src/)")

    deployment_path, deployment = by_kind["Deployment"][0]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    if not selects(deployment["spec"]["selector"]["matchLabels"], pod_labels):
        fail(rel(deployment_path), "selector does not match the pod template's labels")
    # The HPA owns the replica count; a fixed count would fight it on every apply.
    if "replicas" in deployment["spec"]:
        fail(rel(deployment_path), "sets replicas, which every apply would impose over the HPA's count")
    if not any(h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
               for _, h in by_kind.get("HorizontalPodAutoscaler", [])):
        fail(rel(deployment_path), "no HorizontalPodAutoscaler scales it")

    for path, obj in by_kind.get("Service", []):
        if not selects(obj["spec"]["selector"], pod_labels):
            fail(rel(path), "selector does not reach the Deployment's pods")
        for port in obj["spec"]["ports"]:
            if not port.get("appProtocol"):
                fail(rel(path), f"port {port['name']} has no appProtocol (gRPC would be balanced per connection)")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for path, obj in by_kind.get(kind, []):
            selector = obj["spec"].get("selector", obj["spec"].get("podSelector", {})).get("matchLabels", {})
            workloads = [labels for _, _, _, labels in pods(objects) if selects(selector, labels)]
            if not workloads:
                fail(rel(path), "selects no pod of these manifests")
    for path, hpa in by_kind.get("HorizontalPodAutoscaler", []):
        if hpa["spec"]["scaleTargetRef"]["name"] != deployment["metadata"]["name"]:
            fail(rel(path), "scaleTargetRef is not the Deployment")
        if hpa["spec"].get("minReplicas", 1) < 2:
            fail(rel(path), "minReplicas below 2")

    drain = int(configmap.get("AUDIT_DRAIN_TIMEOUT_SECS", 20))
    for path, what, spec, _labels in pods(objects):
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            fail(rel(path), f"{what}: pod does not set runAsNonRoot")
        for container in spec["containers"]:
            where = f"{what} container {container['name']}"
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in resources.get(part, {}):
                        fail(rel(path), f"{where}: no {part}.{resource}")
            security = container.get("securityContext", {})
            if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation", True):
                fail(rel(path), f"{where}: root filesystem not read-only or privilege escalation allowed")
            args = container.get("args") or container.get("command") or []
            if container["image"].startswith("audit-service") and (not args or args[0] not in commands):
                fail(rel(path), f"{where}: `audit-service {' '.join(args)}` is not a subcommand of src/cli.rs")
            for env in container.get("env", []):
                if env["name"].startswith("AUDIT_") and env["name"] not in env_names:
                    fail(rel(path), f"{where}: {env['name']} is not a setting of the binary (src/)")
            for source in container.get("envFrom", []):
                ref = source.get("secretRef") or source.get("configMapRef")
                known = set(secrets) | {obj["metadata"]["name"] for _, obj in by_kind.get("ConfigMap", [])}
                if ref["name"] not in known:
                    fail(rel(path), f"{where}: envFrom {ref['name']} is defined nowhere in deploy/kubernetes")
            port_names = {port["name"] for port in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    fail(rel(path), f"{where}: {probe} uses port {port!r}, which the container does not name")

        if what.startswith("Deployment/"):
            container = spec["containers"][0]
            sleep = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            grace = spec.get("terminationGracePeriodSeconds", 30)
            if grace < sleep + drain + SHUTDOWN_MARGIN_S:
                fail(rel(path), f"terminationGracePeriodSeconds {grace} < preStop {sleep} + drain {drain} + {SHUTDOWN_MARGIN_S}")
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                if probe not in container:
                    fail(rel(path), f"{what}: no {probe}")
            listen_port = int(configmap["AUDIT_LISTEN"].rsplit(":", 1)[1])
            if listen_port not in [p["containerPort"] for p in container["ports"]]:
                fail(rel(path), f"AUDIT_LISTEN port {listen_port} is not a containerPort")
            check_dockerfile(listen_port, spec["securityContext"].get("runAsUser"))
            if "AUDIT_ADMIN_LISTEN" in configmap:
                check_admin_port(int(configmap["AUDIT_ADMIN_LISTEN"].rsplit(":", 1)[1]), path, deployment,
                                 container, by_kind)


def check_admin_port(port: int, path: pathlib.Path, deployment: dict, container: dict, by_kind: dict) -> None:
    """With an admin listener, /metrics is only there: the scrape annotation, the port's name
    and the NetworkPolicy must follow it, and no Service may expose it."""
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if named.get("admin") != port:
        fail(rel(path), f"AUDIT_ADMIN_LISTEN port {port} is not the containerPort named admin")
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    if annotations.get("prometheus.io/scrape") == "true" and annotations.get("prometheus.io/port") != str(port):
        fail(rel(path), f"prometheus.io/port is not {port}: /metrics is served only on the admin port")
    for service_path, service in by_kind.get("Service", []):
        for service_port in service["spec"]["ports"]:
            if service_port.get("targetPort") in ("admin", port):
                fail(rel(service_path), f"exposes the admin port {port}, which is for scrapers and probes only")
    for policy_path, policy in by_kind.get("NetworkPolicy", []):
        if not selects(policy["spec"]["podSelector"].get("matchLabels", {}),
                       deployment["spec"]["template"]["metadata"]["labels"]):
            continue
        if "Ingress" in policy["spec"].get("policyTypes", []) and not any(
                entry.get("port") in ("admin", port)
                for rule in policy["spec"].get("ingress", []) for entry in rule.get("ports", [])):
            fail(rel(policy_path), f"admits nobody to the admin port {port}: Prometheus cannot scrape /metrics")


def check_dockerfile(port: int, user: int | None) -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    if f"EXPOSE {port}" not in text or f"AUDIT_LISTEN=0.0.0.0:{port}" not in text:
        fail("deploy/Dockerfile", f"does not listen on and EXPOSE {port}, the port the manifests use")
    if user is not None and not re.search(rf"^USER {user}(:\d+)?$", text, re.M):
        fail("deploy/Dockerfile", f"USER is not {user}, the manifests' runAsUser")


def check_compose(env_names: set[str], commands: set[str]) -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    for name, service in compose["services"].items():
        for key in service.get("environment", {}) or {}:
            if key.startswith("AUDIT_") and key not in env_names:
                fail("deploy/compose.yaml", f"service {name}: {key} is not a setting of the binary (src/)")
        if service.get("image", "").startswith("audit-service"):
            command = service.get("command") or ["serve"]
            if command[0] not in commands:
                fail("deploy/compose.yaml", f"service {name}: `audit-service {command[0]}` is not a subcommand")
        for volume in service.get("volumes", []) or []:
            source = volume.split(":", 1)[0]
            if source.startswith(".") and not (ROOT / "deploy" / source).exists():
                fail("deploy/compose.yaml", f"service {name} mounts {source}, which does not exist")


def main() -> int:
    env_names, commands = cli_contract()
    check_kubernetes(env_names, commands)
    check_compose(env_names, commands)
    for failure in failures:
        print(f"FAIL {failure}")
    if not failures:
        print("deploy/ manifests are consistent with each other and with src/cli.rs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
