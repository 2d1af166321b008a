"""deploy/: the container image definition and the Kubernetes manifests, checked offline.

- The manifests are validated (strict: unknown fields refused) against the Kubernetes OpenAPI schemas that
  ``kubernetes-validate`` ships, for the oldest and newest versions it knows of that have every kind used.
- The Containerfile is parsed by ``dockerfile-parse`` (what it says: non-root USER, HEALTHCHECK on /healthz, the
  command, no secret baked in).
- The image's own command (CMD, with host and port moved to 127.0.0.1 and a free port) runs as two replicas over one
  SeaweedFS bucket, with the environment the manifests give (ConfigMap + Secret, values swapped for local ones), each
  with its own cache folder (the per-pod emptyDir); the image's HEALTHCHECK command is run as written against them.
  What could not run here (building the image, a cluster): docs/deploy.md.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from nbpack.hub.registry import load_registry
from tests.fixtures.hub import free_port

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
# Names that must only ever reach a container from a Secret, never from the image or a ConfigMap.
SECRET_NAMES = {
    "NBPACK_SECRET_KEY",
    "NBPACK_API_KEYS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "NBPACK_WEBHOOK_SECRETS",
    "NBPACK_METRICS_TOKEN",
}
# Oldest first: policy/v1 PodDisruptionBudget needs 1.21; 1.29 is a still-common floor for managed clusters.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def _manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _one(kind: str, name: str | None = None) -> dict:
    found = [d for d in _manifests() if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _dockerfile() -> DockerfileParser:
    parser = DockerfileParser(fileobj=open(DEPLOY / "Containerfile", "rb"))  # noqa: SIM115 - parser reads it now
    return parser


def _final_stage(parser: DockerfileParser) -> list[dict]:
    instructions = parser.structure
    last_from = max(i for i, ins in enumerate(instructions) if ins["instruction"] == "FROM")
    return instructions[last_from:]


def _exec_form(value: str) -> list[str]:
    # HEALTHCHECK's value keeps its options before CMD; the exec form is the JSON array after it.
    return json.loads(value[value.index("[") :])


# --- Kubernetes manifests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_is_valid_for_kubernetes(version: str) -> None:
    docs = _manifests()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Ingress", "ConfigMap", "Secret"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_validator_refuses_what_a_cluster_would() -> None:
    deployment = _one("Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}  # a misspelt field
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "three"
    for doc in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, K8S_VERSIONS[-1], strict=True)


def test_the_deployment_runs_replicas_with_probes_resources_secrets_and_a_per_pod_cache() -> None:
    deployment, config = _one("Deployment"), _one("ConfigMap", "nbpack-config")
    secret = _one("Secret")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["automountServiceAccountToken"] is False

    # Readiness follows storage (/healthz); liveness must not (an S3 outage would restart every replica).
    for probe in ("readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert "httpGet" not in container["livenessProbe"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["livenessProbe"]["tcpSocket"]["port"] in ports
    assert ports["http"] == int(container["command"][container["command"].index("--port") + 1])

    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]

    # Secrets from the Secret only; the rest from the ConfigMap; nothing secret in plain env or the ConfigMap.
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert refs == {"configMapRef": config["metadata"]["name"], "secretRef": secret["metadata"]["name"]}
    assert "env" not in container
    assert SECRET_NAMES <= set(secret["stringData"]) and not SECRET_NAMES & set(config["data"])
    assert all("REPLACE" in v for v in secret["stringData"].values())  # a template, no real secret

    # The cache is a per-pod emptyDir mounted where NBPACK_CACHE_DIR points; /tmp too (read-only root).
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts[config["data"]["NBPACK_CACHE_DIR"]]]
    assert "emptyDir" in volumes[mounts[config["data"]["TMPDIR"]]]
    hubs_dir = str(Path(config["data"]["NBPACK_HUBS_FILE"]).parent)
    assert volumes[mounts[hubs_dir]]["configMap"]["name"] == "nbpack-hubs"
    assert config["data"]["NBPACK_STORAGE"].startswith("s3://")


def test_service_and_ingress_reach_the_pods_at_the_public_url(tmp_path: Path) -> None:
    deployment, service, ingress = _one("Deployment"), _one("Service"), _one("Ingress")
    config = _one("ConfigMap", "nbpack-config")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    [rule] = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    public = urlsplit(config["data"]["NBPACK_PUBLIC_URL"])
    assert public.scheme == "https" and public.hostname == rule["host"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    # The hub registry the ConfigMap mounts is one nbpack loads.
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(_one("ConfigMap", "nbpack-hubs")["data"]["hubs.toml"])
    registry = load_registry(hubs)
    assert {h.launch for h in registry} == {"nbgitpuller", "binderhub", "fromurl"}
    # The profiled hub names exactly the z2jh profileList's slugs (deploy/hub/values.yaml).
    values = yaml.safe_load((REPO / "deploy" / "hub" / "values.yaml").read_text())
    z2jh = [h for h in registry if h.profiles]
    assert len(z2jh) == 1 and z2jh[0].named_servers
    assert [p.slug for p in z2jh[0].profiles] == [p["slug"] for p in values["singleuser"]["profileList"]]


# --- Containerfile -----------------------------------------------------------------------------------------------


def test_containerfile_runs_nbpack_serve_as_a_non_root_user_with_a_healthcheck() -> None:
    parser = _dockerfile()
    final = _final_stage(parser)
    users = [ins["value"] for ins in final if ins["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    uid = int(users[-1].split(":")[0])
    assert uid == _one("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]

    [health] = [ins["value"] for ins in final if ins["instruction"] == "HEALTHCHECK"]
    probe = _exec_form(health)
    assert any("/healthz" in arg for arg in probe)
    [cmd] = [ins["value"] for ins in final if ins["instruction"] == "CMD"]
    command = json.loads(cmd)
    assert command[:2] == ["nbpack", "serve"]
    port = command[command.index("--port") + 1]
    assert any(f":{port}/healthz" in arg for arg in probe)
    assert [ins["value"] for ins in final if ins["instruction"] == "EXPOSE"] == [port]
    # The Deployment runs exactly the image's command.
    assert _one("Deployment")["spec"]["template"]["spec"]["containers"][0]["command"] == command


def test_containerfile_bakes_in_no_secret() -> None:
    parser = _dockerfile()
    baked = set(parser.envs) | set(parser.args)
    for ins in parser.structure:
        if ins["instruction"] in ("ENV", "ARG", "LABEL"):
            baked |= set(re.findall(r"[A-Z][A-Z0-9_]+", ins["value"]))
    assert not baked & SECRET_NAMES
    copied = " ".join(ins["value"] for ins in parser.structure if ins["instruction"] in ("COPY", "ADD"))
    assert ".env" not in copied and "secret" not in copied.lower()
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".venv", ".git", "node_modules", ".cache"} <= set(ignored)


# --- The image's command, run as two replicas over one bucket -----------------------------------------------------


def _local_command(command: list[str], port: int) -> list[str]:
    local = list(command)
    local[0] = str(Path(sys.executable).parent / local[0])
    local[local.index("--host") + 1] = "127.0.0.1"  # tests listen on loopback only; the image binds 0.0.0.0
    local[local.index("--port") + 1] = str(port)
    local[local.index("--workers") + 1] = "1"  # two replicas on a shared 2-core machine: one worker each
    return local


def _healthcheck(port: int) -> int:
    probe = _exec_form(next(i["value"] for i in _final_stage(_dockerfile()) if i["instruction"] == "HEALTHCHECK"))
    probe = [arg.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for arg in probe]
    probe[0] = sys.executable if probe[0] in ("python3", "python") else probe[0]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode


def _api(base: str, method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class _Replica:
    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        self.log.close()


@pytest.mark.timeout(240)
def test_the_image_command_serves_replicas_over_one_bucket(tmp_path: Path, s3_env, s3_bucket: str) -> None:  # noqa: ANN001
    config = dict(_one("ConfigMap", "nbpack-config")["data"])
    secret = dict(_one("Secret")["stringData"])
    command = json.loads(next(i["value"] for i in _final_stage(_dockerfile()) if i["instruction"] == "CMD"))
    key = secrets.token_urlsafe(16)
    hubs = tmp_path / "hubs.toml"
    hubs.write_text(_one("ConfigMap", "nbpack-hubs")["data"]["hubs.toml"])
    ports = [free_port(), free_port()]
    while ports[1] == ports[0]:
        ports[1] = free_port()
    public = f"http://127.0.0.1:{ports[0]}"  # both replicas behind one public URL, as behind the Ingress
    shared = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NBPACK_", "AWS_"))},
        **config,
        **secret,
        "NBPACK_PUBLIC_URL": public,
        "NBPACK_STORAGE": f"s3://{s3_bucket}/nbpack",
        "NBPACK_S3_ENDPOINT": s3_env.endpoint,
        "AWS_ACCESS_KEY_ID": s3_env.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_env.secret_key,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NBPACK_SECRET_KEY": secrets.token_urlsafe(32),
        "NBPACK_API_KEYS": f"esap-prod={key}",
        "NBPACK_WEBHOOK_SECRETS": f"esap-prod={secrets.token_urlsafe(16)}",
        "NBPACK_METRICS_TOKEN": secrets.token_urlsafe(16),
        "NBPACK_HUBS_FILE": str(hubs),
    }
    replicas = []
    try:
        for i, port in enumerate(ports):
            pod = tmp_path / f"pod{i}"
            (pod / "cache").mkdir(parents=True)
            (pod / "tmp").mkdir()
            tmp = str(pod / "tmp")
            env = {**shared, "NBPACK_CACHE_DIR": str(pod / "cache"), "TMPDIR": tmp, "XDG_RUNTIME_DIR": tmp}
            replicas.append(_Replica(_local_command(command, port), env, tmp_path / f"pod{i}.log"))
        deadline = time.monotonic() + 90
        while not all(_healthcheck(p) == 0 for p in ports):
            assert time.monotonic() < deadline, [(tmp_path / f"pod{i}.log").read_text()[-2000:] for i in (0, 1)]
            assert all(r.proc.poll() is None for r in replicas), (tmp_path / "pod0.log").read_text()[-2000:]
            time.sleep(0.5)
        one, two = (f"http://127.0.0.1:{p}" for p in ports)

        # Created through one replica, served by the other (its own empty cache): state lives in the bucket only.
        status, created = _api(one, "POST", "/api/v1/bundles", key, {"catalogs": [{"name": "t", "rows": [{"a": 1}]}]})
        assert status == 201, created
        hid = created["id"]
        assert created["links"]["landing"].startswith(public + "/b/")
        assert _api(two, "GET", f"/api/v1/bundles/{hid}", key, None)[0] == 200
        git_url = created["links"]["git"].replace(public, two)
        clone = subprocess.run(
            ["git", "clone", "--depth", "1", "--", git_url, str(tmp_path / "clone")],
            capture_output=True,
            timeout=60,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        assert clone.returncode == 0, clone.stderr
        assert (tmp_path / "clone" / "nbpack.json").is_file()
        assert list((tmp_path / "pod1" / "cache").rglob("*.git")), "the git repository went to pod 1's own cache"
        assert not list((tmp_path / "pod0" / "cache").rglob("*.git"))

        # Each pod builds the handle's repository itself, to the same commit: one BinderHub image tag per handle.
        heads = [
            subprocess.run(
                ["git", "ls-remote", "--", created["links"]["git"].replace(public, base), "main"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            ).stdout.split()[:1]
            for base in (one, two)
        ]
        assert heads[0] == heads[1] and len(heads[0][0]) == 40

        # Deleted through replica two: replica one refuses the same capability (no shared memory) within the
        # second a worker may remember a checked git-token handle (nbpack/service/recent.py, issue 23).
        assert _api(two, "DELETE", f"/api/v1/bundles/{hid}", key)[0] in (200, 204)
        deleted = time.monotonic()
        while True:
            gone = subprocess.run(
                ["git", "ls-remote", "--", created["links"]["git"].replace(public, one)],
                capture_output=True,
                timeout=60,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            )
            if gone.returncode != 0:
                break
            # 1 s remembered, plus the time one ls-remote takes on a loaded machine
            assert time.monotonic() - deleted < 6, "replica one still serves a deleted handle"
            time.sleep(0.2)

        # Readiness follows storage: with the bucket gone the HEALTHCHECK fails while the process lives on.
        s3 = s3_env._client
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=s3_bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=s3_bucket)
        assert _healthcheck(ports[0]) != 0
        assert all(r.proc.poll() is None for r in replicas)
    finally:
        for replica in replicas:
            replica.stop()
        shutil.rmtree(tmp_path / "clone", ignore_errors=True)


def test_every_setting_deploy_names_is_read_by_nbpack() -> None:
    from tests.unit.test_docs_names import _unknown

    files = [REPO / "docs" / "deploy.md", DEPLOY / "Containerfile", *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.py")]
    named = {n for f in files for n in re.findall(r"\b(?:NBPACK|RUCIO)_[A-Z0-9_]*[A-Z0-9]", f.read_text())}
    assert {"NBPACK_PUBLIC_URL", "NBPACK_CACHE_DIR", "NBPACK_LOCAL_RSES", "RUCIO_HOST"} <= named
    # NBPACK_PROFILES / NBPACK_DEFAULT_PROFILE are the hub snippet's own Python names, not settings.
    assert _unknown(named - {"NBPACK_PROFILES", "NBPACK_DEFAULT_PROFILE"}) == set()
