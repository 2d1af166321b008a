"""The app's configuration."""

from django.apps import AppConfig


class NbpackEsapConfig(AppConfig):
    name = "nbpack_esap"
    verbose_name = "nbpack (notebook bundles)"
    default_auto_field = "django.db.models.BigAutoField"
