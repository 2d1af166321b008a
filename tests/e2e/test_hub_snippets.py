"""deploy/hub/: the hub-side snippets, loaded by the real consumers.

- ``jupyterhub_config.py`` is loaded by JupyterHub 6's own ``JupyterHub.load_config_file``; a spawn link's query
  (``opt-profile=<slug>``) goes through JupyterHub's own ``SpawnHandler._get_user_options``, the spawner's
  ``options_from_query`` and ``_run_apply_user_options``, as a spawn does.
- ``values.yaml`` is merged over zero-to-jupyterhub's default values as helm does and validated against the chart's
  own ``values.schema.yaml`` (vendored, tests/vendor/z2jh/README.md); its ``profileList`` is handed to a real
  KubeSpawner (``_mock=True``, KubeSpawner's own test mode: no cluster) as z2jh does, and the same query selects
  each profile through KubeSpawner's ``options_from_query`` and ``load_user_options``.
What could not run: a Kubernetes cluster, so no pod was started from these values (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import logging
import types
from pathlib import Path

import jsonschema
import pytest
import yaml
from jupyterhub.app import JupyterHub
from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets.config import Config

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "deploy" / "hub"
Z2JH = Path(__file__).resolve().parents[1] / "vendor" / "z2jh"


def _hub_config() -> Config:
    app = JupyterHub()
    app.load_config_file(str(HUB / "jupyterhub_config.py"))
    return app.config


def _user_options(spawner, query: dict[str, list[str]]) -> dict:  # noqa: ANN001
    """What JupyterHub's GET /hub/spawn makes of a query (pages.py: ``next`` dropped, ``opt-`` keys, the spawner)."""
    query = {k: v for k, v in query.items() if k not in ("next", "display_name")}
    handler = types.SimpleNamespace(log=logging.getLogger("test"))
    return spawner.options_from_query(SpawnHandler._get_user_options(handler, query))


def _values() -> dict:
    return yaml.safe_load((HUB / "values.yaml").read_text())


def _coalesce(base: dict, over: dict) -> dict:
    # helm's value merge: maps merge key by key, anything else (lists, scalars) replaces, null deletes.
    out = copy.deepcopy(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _coalesce(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _z2jh_schema() -> dict:
    return yaml.safe_load((Z2JH / "values.schema.yaml").read_text())


def _run(coro):
    """Run ``coro`` to completion on a fresh loop in its own thread: a session's Playwright (sync API) keeps a loop
    running in the main thread, where asyncio.run refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


# --- jupyterhub_config.py ----------------------------------------------------------------------------------------


def test_the_config_snippet_sets_jupyterhub_traits() -> None:
    config = _hub_config()
    assert config.Spawner.default_url == "/lab"
    assert config.Spawner.options_from_form == "simple"
    assert callable(config.Spawner.apply_user_options)
    assert config.JupyterHub.allow_named_servers is True
    # Every trait the snippet sets exists on the class that reads it (a typo would be silently ignored by traitlets).
    app = JupyterHub(config=config)
    for section, cls in (("JupyterHub", JupyterHub), ("Spawner", LocalProcessSpawner)):
        assert set(config[section]) <= set(cls.class_traits(config=True)), section
    assert app.allow_named_servers is True
    spawner = LocalProcessSpawner(config=config)
    assert spawner.environment["RUCIO_HOST"].startswith("https://")
    assert {"NBPACK_LOCAL_RSES", "NBPACK_BEARER_HOSTS"} <= set(spawner.environment)
    assert 'name="profile"' in spawner.options_form.replace("'", '"')


def test_a_spawn_link_profile_runs_the_server_in_that_environment() -> None:
    config = _hub_config()
    spawner = LocalProcessSpawner(config=config)
    options = _user_options(spawner, {"opt-profile": ["lofar"], "next": ["/hub/user-redirect/git-pull?repo=x"]})
    assert options == {"profile": "lofar"}
    _run(spawner._run_apply_user_options(options))
    assert spawner.cmd == ["/opt/envs/lofar/bin/jupyterhub-singleuser"]
    assert spawner.environment["PATH"].startswith("/opt/envs/lofar/bin:")
    assert spawner.mem_limit == 16 * 1024**3 and spawner.cpu_limit == 4
    assert spawner.environment["RUCIO_HOST"] == "https://rucio.example.org"  # the hub's settings kept

    default = LocalProcessSpawner(config=config)
    _run(default._run_apply_user_options({}))  # a plain spawn (no options) gets the default profile
    assert default.cmd == ["/opt/envs/standard/bin/jupyterhub-singleuser"]

    unknown = LocalProcessSpawner(config=config)
    with pytest.raises(web.HTTPError) as err:
        _run(unknown._run_apply_user_options(_user_options(unknown, {"opt-profile": ["../../bin"]})))
    assert err.value.status_code == 400


# --- z2jh values.yaml --------------------------------------------------------------------------------------------


def test_the_values_snippet_validates_against_the_z2jh_chart_schema() -> None:
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    merged = _coalesce(defaults, _values())
    validator = jsonschema.Draft7Validator(_z2jh_schema())
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # The schema refuses what helm would refuse: a misspelt key under singleuser.
    typo = _coalesce(defaults, {"singleuser": {"profilelist": []}})
    assert any("profilelist" in e.message for e in validator.iter_errors(typo))


# KubeSpawner reads a kube config when built; this one names a cluster nothing listens on (never contacted: loading
# user options is local).
KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: jhub}}]
current-context: none
"""


def test_kubespawner_applies_each_profile_a_link_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes_asyncio.config.kube_config as kube_config
    from kubespawner import KubeSpawner

    (tmp_path / "kubeconfig").write_text(KUBECONFIG)
    # kubernetes_asyncio fixes its default location (KUBECONFIG or ~/.kube/config) when first imported.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))

    values = _values()
    profiles = values["singleuser"]["profileList"]
    # z2jh passes singleuser.profileList straight to KubeSpawner.profile_list.
    config = Config({"KubeSpawner": {"profile_list": profiles}})

    async def spawn_with(query: dict[str, list[str]]) -> KubeSpawner:
        # KubeSpawner is built inside JupyterHub's running event loop (its shared API client needs one).
        spawner = KubeSpawner(_mock=True, config=config)
        spawner.user_options = _user_options(spawner, query)
        await spawner.load_user_options()
        return spawner

    for profile in profiles:
        override = profile["kubespawner_override"]
        assert set(override) <= set(KubeSpawner.class_traits(config=True)), profile["slug"]
        spawner = _run(spawn_with({"opt-profile": [profile["slug"]], "next": ["/x"]}))
        assert spawner.user_options == {"profile": profile["slug"]}
        if "image" in override:
            assert spawner.image == override["image"]
        assert spawner.mem_limit == _bytes(override["mem_limit"])
        if "extra_resource_limits" in override:
            assert spawner.extra_resource_limits == override["extra_resource_limits"]

    with pytest.raises(ValueError):
        _run(spawn_with({"opt-profile": ["no-such-profile"]}))


def test_both_snippets_offer_the_same_profile_slugs() -> None:
    namespace: dict = {"get_config": Config}
    exec(compile((HUB / "jupyterhub_config.py").read_text(), "jupyterhub_config.py", "exec"), namespace)
    config_slugs = set(namespace["NBPACK_PROFILES"])
    values_slugs = {p["slug"] for p in _values()["singleuser"]["profileList"]}
    assert config_slugs <= values_slugs and "standard" in config_slugs


def _bytes(spec: str) -> int:
    units = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    return int(float(spec[:-1]) * units[spec[-1]])
