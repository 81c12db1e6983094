#!/usr/bin/env python3
"""Offline checks of Lyceum's deployment files, run by scripts/validate-deploy.sh inside
its virtualenv (it needs kubernetes-validate, jsonschema and PyYAML).

  deploy_checks.py k8s [--k8s-version V]... [--schemas DIR] FILE...
      Every document must validate: built-in kinds against the Kubernetes OpenAPI schema
      of each version (strict: unknown fields fail), custom resources against a schema in
      DIR (<kind>.schema.json, matched on apiVersion and kind). A kind with no schema at
      all fails: nothing is skipped silently. Then Lyceum's own workloads are held to
      the rules of the deployment (non-root, read-only root filesystem, resources, gRPC
      probes, a Service, a PodDisruptionBudget and an autoscaler per service).

  deploy_checks.py compose FILE...
      What the compose-spec schema cannot see: depends_on names services that exist, the
      profiles are consistent, named volumes are declared, host ports are unique.

  deploy_checks.py otel FILE...
      An OpenTelemetry collector configuration: every component a pipeline names is
      defined, and every receiver listens on all interfaces.

Prints one line per finding and exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import yaml
from kubernetes_validate import utils as kv


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def ok(self, what: str) -> None:
        print(f"  ok    {what}")

    def fail(self, what: str, why: str) -> None:
        self.failures += 1
        print(f"  FAIL  {what}: {why}")


def load_documents(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


# ---------------------------------------------------------------------------- k8s


def custom_schemas(directory: str | None) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> JSON schema, from the *.schema.json files of a directory."""
    schemas: dict[tuple[str, str], dict] = {}
    if not directory:
        return schemas
    for path in sorted(Path(directory).glob("*.schema.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        props = schema.get("properties", {})
        api_version = props.get("apiVersion", {}).get("const")
        kind = props.get("kind", {}).get("const")
        if not api_version or not kind:
            raise SystemExit(f"{path}: a schema must fix apiVersion and kind with `const`")
        jsonschema.Draft202012Validator.check_schema(schema)
        schemas[(api_version, kind)] = schema
    return schemas


def describe(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind', '?')}/{meta.get('name', '?')}"


def validate_schema(doc: dict, versions: list[str], schemas: dict, report: Report) -> bool:
    what = describe(doc)
    for key in ("apiVersion", "kind", "metadata"):
        if key not in doc:
            report.fail(what, f"no {key}")
            return False
    if not isinstance(doc["metadata"], dict) or not doc["metadata"].get("name"):
        report.fail(what, "no metadata.name")
        return False

    custom = schemas.get((doc["apiVersion"], doc["kind"]))
    if custom is not None:
        errors = sorted(
            jsonschema.Draft202012Validator(custom).iter_errors(doc), key=lambda e: list(e.path)
        )
        for error in errors:
            path = ".".join(str(p) for p in error.path) or "(document)"
            report.fail(what, f"{path}: {error.message} [custom schema]")
        if not errors:
            report.ok(f"{what} ({doc['apiVersion']}, custom schema)")
        return not errors

    valid = True
    for version in versions:
        try:
            kv.validate(doc, version, strict=True)
        except kv.ValidationError as error:
            path = ".".join(str(p) for p in error.path) or "(document)"
            report.fail(what, f"{path}: {error.message} [Kubernetes {error.version}]")
            valid = False
        except kv.SchemaNotFoundError:
            report.fail(
                what,
                f"no schema for {doc['apiVersion']} {doc['kind']}: not a Kubernetes "
                f"{version} built-in kind, and no custom schema names it",
            )
            return False
    if valid:
        report.ok(f"{what} (Kubernetes {', '.join(versions)})")
    return valid


def pod_spec_of(doc: dict) -> dict | None:
    spec = doc.get("spec") or {}
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return ((spec.get("template") or {}).get("spec")) or {}
    if doc["kind"] == "CronJob":
        job = (spec.get("jobTemplate") or {}).get("spec") or {}
        return ((job.get("template") or {}).get("spec")) or {}
    return None


def labels_of(doc: dict) -> dict:
    return (doc.get("metadata") or {}).get("labels") or {}


def check_lyceum_workload(doc: dict, report: Report) -> None:
    """The rules every Lyceum workload follows (the platform's own pods are exempt)."""
    pod = pod_spec_of(doc)
    if pod is None or labels_of(doc).get("app.kubernetes.io/part-of") != "lyceum":
        return
    what = describe(doc)
    problems: list[str] = []
    pod_security = pod.get("securityContext") or {}
    if pod_security.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot is not true")
    if (pod_security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod securityContext.seccompProfile.type is not RuntimeDefault")
    for container in pod.get("containers") or []:
        name = container.get("name", "?")
        security = container.get("securityContext") or {}
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {name}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"container {name}: readOnlyRootFilesystem is not true")
        if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
            problems.append(f"container {name}: capabilities do not drop ALL")
        resources = container.get("resources") or {}
        if not (resources.get("requests") or {}).get("memory"):
            problems.append(f"container {name}: no memory request")
        if not (resources.get("limits") or {}).get("memory"):
            problems.append(f"container {name}: no memory limit")
    if doc["kind"] == "Deployment" and labels_of(doc).get("app.kubernetes.io/component") == "service":
        for container in pod.get("containers") or []:
            name = container.get("name", "?")
            for probe in ("readinessProbe", "livenessProbe"):
                grpc = (container.get(probe) or {}).get("grpc") or {}
                if grpc.get("port") != 50051:
                    problems.append(f"container {name}: {probe} is not a gRPC probe on 50051")
    for problem in problems:
        report.fail(what, problem)
    if not problems:
        report.ok(f"{what} follows the workload rules")


def selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def check_service_companions(docs: list[dict], report: Report) -> None:
    """Each Lyceum service Deployment has its Service, PodDisruptionBudget and autoscaler."""
    for doc in docs:
        if doc.get("kind") != "Deployment":
            continue
        labels = labels_of(doc)
        if labels.get("app.kubernetes.io/part-of") != "lyceum":
            continue
        if labels.get("app.kubernetes.io/component") != "service":
            continue
        name = doc["metadata"]["name"]
        namespace = doc["metadata"].get("namespace")
        template_labels = (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get(
            "labels"
        ) or {}

        def same_namespace(other: dict) -> bool:
            return (other.get("metadata") or {}).get("namespace") == namespace

        has_service = any(
            d.get("kind") == "Service"
            and same_namespace(d)
            and selects({"matchLabels": (d.get("spec") or {}).get("selector") or {}}, template_labels)
            for d in docs
        )
        has_pdb = any(
            d.get("kind") == "PodDisruptionBudget"
            and same_namespace(d)
            and selects((d.get("spec") or {}).get("selector") or {}, template_labels)
            for d in docs
        )
        has_hpa = any(
            d.get("kind") == "HorizontalPodAutoscaler"
            and same_namespace(d)
            and ((d.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == name
            for d in docs
        )
        missing = [
            what
            for what, present in (
                ("Service", has_service),
                ("PodDisruptionBudget", has_pdb),
                ("HorizontalPodAutoscaler", has_hpa),
            )
            if not present
        ]
        if missing:
            report.fail(f"Deployment/{name}", "no " + ", no ".join(missing) + " for it")
        else:
            report.ok(f"Deployment/{name} has its Service, PodDisruptionBudget and autoscaler")


def check_unique(docs: list[dict], report: Report) -> None:
    seen: set[tuple] = set()
    for doc in docs:
        meta = doc.get("metadata") or {}
        key = (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace"), meta.get("name"))
        if key in seen:
            report.fail(describe(doc), "defined twice")
        seen.add(key)


def run_k8s(args: argparse.Namespace) -> int:
    report = Report()
    versions = args.k8s_version or ["1.30.0"]
    schemas = custom_schemas(args.schemas)
    for path in args.files:
        print(f"{path}:")
        try:
            docs = load_documents(path)
        except yaml.YAMLError as error:
            report.fail(path, f"not YAML: {error}")
            continue
        if not docs:
            report.fail(path, "no documents")
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                report.fail(path, "a document is not a mapping")
                continue
            if validate_schema(doc, versions, schemas, report):
                check_lyceum_workload(doc, report)
        valid = [d for d in docs if isinstance(d, dict)]
        check_unique(valid, report)
        check_service_companions(valid, report)
    return 1 if report.failures else 0


# ------------------------------------------------------------------------ compose


def run_compose(args: argparse.Namespace) -> int:
    report = Report()
    for path in args.files:
        print(f"{path}:")
        before = report.failures
        try:
            (doc,) = load_documents(path)
        except (yaml.YAMLError, ValueError) as error:
            report.fail(path, f"not one YAML document: {error}")
            continue
        services = doc.get("services") or {}
        volumes = set((doc.get("volumes") or {}).keys())
        host_ports: dict[str, str] = {}
        for name, service in services.items():
            profiles = set(service.get("profiles") or [])
            depends = service.get("depends_on") or {}
            targets = depends if isinstance(depends, list) else list(depends.keys())
            for target in targets:
                if target == name:
                    report.fail(f"service {name}", "depends on itself")
                elif target not in services:
                    report.fail(f"service {name}", f"depends on undefined service {target!r}")
                else:
                    # A service must not need one that its profiles leave out.
                    target_profiles = set(services[target].get("profiles") or [])
                    if target_profiles and profiles and not profiles <= target_profiles:
                        report.fail(
                            f"service {name}",
                            f"in profiles {sorted(profiles)} but depends on {target!r}, "
                            f"only in {sorted(target_profiles)}",
                        )
            for volume in service.get("volumes") or []:
                source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source")
                if source and not source.startswith((".", "/", "~", "$")) and source not in volumes:
                    report.fail(f"service {name}", f"named volume {source!r} is not declared")
            for port in service.get("ports") or []:
                # "[ip:]host:container" publishes on the host; a bare "container" does not.
                published = port.rsplit(":", 1)[0] if isinstance(port, str) and ":" in port else None
                if published:
                    if published in host_ports:
                        report.fail(
                            f"service {name}",
                            f"host port {published} is also published by {host_ports[published]}",
                        )
                    host_ports[published] = name
        if report.failures == before:
            report.ok(f"{len(services)} services: dependencies, profiles, volumes, host ports")
    return 1 if report.failures else 0


# --------------------------------------------------------------------------- otel


def run_otel(args: argparse.Namespace) -> int:
    report = Report()
    for path in args.files:
        print(f"{path}:")
        before = report.failures
        try:
            (config,) = load_documents(path)
        except (yaml.YAMLError, ValueError) as error:
            report.fail(path, f"not one YAML document: {error}")
            continue
        service = config.get("service") or {}
        pipelines = service.get("pipelines") or {}
        if not pipelines:
            report.fail(path, "no pipelines")
        for extension in service.get("extensions") or []:
            if extension not in (config.get("extensions") or {}):
                report.fail(path, f"extension {extension!r} is enabled but not defined")
        for name, pipeline in pipelines.items():
            for section in ("receivers", "processors", "exporters"):
                defined = config.get(section) or {}
                named = pipeline.get(section) or []
                if section != "processors" and not named:
                    report.fail(f"pipeline {name}", f"no {section}")
                for component in named:
                    if component not in defined:
                        report.fail(f"pipeline {name}", f"{section[:-1]} {component!r} is not defined")
        for name, receiver in (config.get("receivers") or {}).items():
            for protocol, settings in ((receiver or {}).get("protocols") or {}).items():
                endpoint = (settings or {}).get("endpoint", "")
                if not str(endpoint).startswith("0.0.0.0:"):
                    report.fail(
                        f"receiver {name}/{protocol}",
                        f"endpoint {endpoint!r}: containers must listen on 0.0.0.0",
                    )
        if report.failures == before:
            report.ok(f"{len(pipelines)} pipelines reference defined components")
    return 1 if report.failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k8s = sub.add_parser("k8s")
    k8s.add_argument("--k8s-version", action="append")
    k8s.add_argument("--schemas")
    k8s.add_argument("files", nargs="+")
    k8s.set_defaults(run=run_k8s)
    compose = sub.add_parser("compose")
    compose.add_argument("files", nargs="+")
    compose.set_defaults(run=run_compose)
    otel = sub.add_parser("otel")
    otel.add_argument("files", nargs="+")
    otel.set_defaults(run=run_otel)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
