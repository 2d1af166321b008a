"""What the app keeps: the bundles its Deploy made (whose they are) and the returns nbpack reported.

Never in ESAP's basket: the GUI's Save Basket replaces every basket item.
"""

from django.db import models


class Deployment(models.Model):
    """One Deploy: the nbpack bundle made of a user's basket and a workflow, for a facility."""

    bundle_id = models.CharField(max_length=100, unique=True)
    user_name = models.CharField(max_length=50, db_index=True)  # ESAP's EsapUserProfile.user_name
    facility = models.CharField(max_length=240, blank=True)
    workflow = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "nbpack_esap"


class Return(models.Model):
    """One return bundle nbpack reported by webhook: stored once per delivery id, whoever re-sends it.

    No foreign key to ``Deployment``: ESAP's database routers refuse relations between apps they do not route, so
    the user (from the bundle's deployment) is copied in and the deployment is found by ``bundle_id``.
    """

    webhook_id = models.CharField(max_length=100, unique=True)
    bundle_id = models.CharField(max_length=100, db_index=True)
    user_name = models.CharField(max_length=50, db_index=True)
    return_id = models.CharField(max_length=100)
    status = models.CharField(max_length=40, blank=True)
    event = models.CharField(max_length=60, blank=True)
    received = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "nbpack_esap"
        ordering = ["-received", "-id"]
