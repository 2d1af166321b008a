"""nbpack-client: the nbpack service's Python client (standard library only, Python >= 3.8).

The one source of the client: ``nbpack.client`` re-exports it, and ESAP installs it alone
(``pip install ./clients/python``) beside its own pinned packages.
"""

from nbpack_client.client import DOWNLOAD_ATTEMPTS, Client, pull
from nbpack_client.errors import InvalidInput, NbpackError, ServiceError, UpstreamError

__all__ = ["Client", "DOWNLOAD_ATTEMPTS", "InvalidInput", "NbpackError", "ServiceError", "UpstreamError", "pull"]
__version__ = "0.1.0"
