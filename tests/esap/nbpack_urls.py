"""ESAP's root urls.py with the one line adopting nbpack-esap, placed before ESAP's own ``esap-api/`` includes."""

from django.urls import include, path
from esap.urls import urlpatterns as esap_urlpatterns

urlpatterns = [path("esap-api/", include("nbpack_esap.urls")), *esap_urlpatterns]
