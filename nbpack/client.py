"""The nbpack service's Python client: the ``nbpack-client`` distribution (clients/python), re-exported.

One source: nbpack's wheel carries ``nbpack_client`` built from clients/python, and ESAP installs that folder alone.
"""

from __future__ import annotations

from nbpack_client.client import CREATE_ATTEMPTS, DOWNLOAD_ATTEMPTS, Client, CreateInterrupted, Progress, pull
from nbpack_client.errors import ServiceError

__all__ = ["Client", "CREATE_ATTEMPTS", "CreateInterrupted", "DOWNLOAD_ATTEMPTS", "Progress", "ServiceError", "pull"]
