"""The nbpack service: a Flask app factory; views only translate HTTP into ``nbpack.service.core`` calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from nbpack.config import load_config
from nbpack.service.core import Service
from nbpack.service.malloc import bound_arenas

__all__ = ["create_app"]


def create_app(
    test_config: Mapping[str, Any] | None = None, *, local_mode: bool = False, service: Service | None = None
) -> Flask:
    """Build the app: config from ``NBPACK_*`` variables (then ``test_config``), one Service, the blueprints."""
    from . import api, errors, git, guard, http, notebook, observe, pages

    bound_arenas()  # before the sweeper, outbox and request threads start: see nbpack/service/malloc.py
    app = Flask(__name__)
    # Upper-case keys are Flask's own (TESTING, ...); the rest are nbpack's, as the NBPACK_* variables name them.
    flask_keys = {k: v for k, v in (test_config or {}).items() if k.isupper()}
    app.config.from_mapping(flask_keys)
    if service is None:
        overrides = {k: v for k, v in (test_config or {}).items() if k not in flask_keys}
        service = Service(load_config(overrides=overrides, local_mode=local_mode))
    app.extensions["nbpack"] = service
    if service.config.gc_interval:
        from nbpack.service.gc import start_sweeper

        # Every process sweeps: each one also drops its own caches of handles deleted elsewhere.
        app.extensions["nbpack-gc"] = start_sweeper(service, service.config.gc_interval)
    # Every process sends the webhook outbox, so a notification queued by a replica that died still goes out.
    service.webhooks.start()
    app.config["MAX_FORM_MEMORY_SIZE"] = 16 << 20
    app.config["MAX_FORM_PARTS"] = 200
    errors.init_app(app)
    observe.init_app(app)
    guard.init_app(app)  # before the body caps: no body byte is read before the credential is checked
    http.init_body_caps(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(git.bp)
    app.register_blueprint(notebook.bp)
    return app
