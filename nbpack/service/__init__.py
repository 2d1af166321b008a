"""The service's operations over storage, without HTTP, split by noun around a :class:`Handle` read once per
request: ``handles`` (create, list, extend, delete), ``capabilities`` (API keys, tokens, links), ``members`` (the
zip, its members, the git repository), ``returns`` (ingest, list, serve), ``launch`` (hubs ranked, launch links),
``quota``, ``gc``, ``idempotency`` (a create's answer kept for its retries), ``local`` (Lab on this computer),
``create`` (a create request → ``BuildSpec``); ``core.Service`` assembles them. ``server/`` translates HTTP to these
calls and nothing more.
"""

from nbpack.service.answers import Stored
from nbpack.service.core import Service
from nbpack.service.handle import Handle

__all__ = ["Handle", "Service", "Stored"]
