"""The service assembled: one storage, one cache folder, the registry and payload catalog, and the parts by noun.

Everything lives in storage (see design.md "Storage keys"); the local cache only holds derived copies (git
repositories, opened return zips), so any number of service processes sharing one bucket behave as one service.
A request reads its handle once (``access.check`` for a token, ``handles.load`` for an API key) and hands the
:class:`~nbpack.service.handle.Handle` to the part it asks: ``handles``, ``members``, ``returns``, ``launch``.
``server/`` calls these parts directly and only translates HTTP.
"""

from __future__ import annotations

from pathlib import Path

from nbpack.bundle.payloads import PayloadCatalog, load_catalog
from nbpack.config import Config
from nbpack.hub.registry import Hub, load_esap_facilities, load_registry
from nbpack.service.capabilities import Capabilities
from nbpack.service.context import Context
from nbpack.service.handles import Handles
from nbpack.service.launch import Launcher
from nbpack.service.members import Members
from nbpack.service.returns import Returns
from nbpack.store import spool
from nbpack.store.backends import Storage, open_storage
from nbpack.store.cache import CachedStorage
from nbpack.store.keys import immutable
from nbpack.webhooks.dispatch import Dispatcher

__all__ = ["Service"]


class Service:
    """The nbpack service over one storage; stateless beyond that storage and a derived cache."""

    def __init__(self, config: Config, storage: Storage | None = None) -> None:
        backend = storage or open_storage(config.storage_url, endpoint_url=config.s3_endpoint, region=config.s3_region)
        # Manifests, notebooks and zip parts never change once written: the worker keeps the small ones in memory.
        self.ctx = Context(config, CachedStorage(backend, immutable), Path(config.cache_dir))
        self.config, self.storage, self.cache_dir = config, self.ctx.storage, self.ctx.cache_dir
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        spool.sweep_old(self.ctx.tmp_dir())
        hubs: list[Hub] = []
        if config.esap_facilities_file:
            hubs = load_esap_facilities(config.esap_facilities_file, config.hubs_file)
        elif config.hubs_file:
            hubs = load_registry(config.hubs_file)
        self.payloads: PayloadCatalog | None = load_catalog(config.payloads_file) if config.payloads_file else None
        # Sends the webhook outbox kept in storage (started by the server, or by the first ingest that queues one).
        self.webhooks = Dispatcher(self.storage, config)
        self.hubs = hubs
        self.access = Capabilities(self.ctx, hubs)
        self.handles = Handles(self.ctx, self.access)
        self.members = Members(self.ctx)
        self.returns = Returns(self.ctx, self.access, self.webhooks)
        self.launch = Launcher(self.access, hubs)

    def ping(self) -> None:
        """Raise ``StorageError`` when storage is unreachable."""
        self.ctx.storage.ping()
