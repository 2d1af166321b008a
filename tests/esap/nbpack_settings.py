"""The gateway's own dev settings plus what adopting nbpack-esap takes (the app, three settings).

Also what running ESAP here needs and ESAP's dev settings leave out: a dummy ``OIDC_OP_JWKS_ENDPOINT`` (DRF's
OIDC authentication refuses to start without one; nobody signs in through OIDC in the tests), and every
database, log file and shared folder in the run folder the fixture gives (``NBPACK_TEST_GATEWAY_DIR``).
"""

import os

from esap.settings.dev import *  # noqa: F403 - the gateway's settings, as its bootstrap.sh uses them

_RUN = os.environ["NBPACK_TEST_GATEWAY_DIR"]

INSTALLED_APPS = [*INSTALLED_APPS, "nbpack_esap"]  # noqa: F405
ROOT_URLCONF = "nbpack_urls"
NBPACK_URL = os.environ["NBPACK_URL"]
NBPACK_API_KEY = os.environ["NBPACK_API_KEY"]
NBPACK_WEBHOOK_SECRET = os.environ["NBPACK_WEBHOOK_SECRET"]

OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/jwks"
for _name, _db in DATABASES.items():  # noqa: F405
    _db["NAME"] = os.path.join(_RUN, os.path.basename(_db["NAME"]))
LOGGING["handlers"]["my_file_handler"]["filename"] = os.path.join(_RUN, "esap.log")  # noqa: F405
