"""nbpack-esap: ESAP's Deploy builds an nbpack bundle of the user's basket; returns come back by webhook.

Adopted with ``INSTALLED_APPS += ["nbpack_esap"]``, ``path("esap-api/", include("nbpack_esap.urls"))`` before
ESAP's own ``esap-api/`` includes, and the settings ``NBPACK_URL``, ``NBPACK_API_KEY``, ``NBPACK_WEBHOOK_SECRET``.
"""

default_app_config = "nbpack_esap.apps.NbpackEsapConfig"  # Django 3.2 reads it; later versions find apps.py alone
