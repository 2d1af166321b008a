"""The service's operations over storage, without HTTP: store bundles as handles, mint links, ingest and list
returns, retention. ``server/`` translates HTTP to these calls and nothing more.
"""

from nbpack.service.answers import Stored
from nbpack.service.core import Service

__all__ = ["Service", "Stored"]
