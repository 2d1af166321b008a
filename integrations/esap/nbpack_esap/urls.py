"""Included at ``esap-api/`` before ESAP's own includes, so ``ida/deploy`` is this app's."""

from django.urls import path

from nbpack_esap import views

app_name = "nbpack_esap"
urlpatterns = [
    path("ida/deploy", views.deploy, name="deploy"),
    path("nbpack/hook", views.hook, name="hook"),
    path("nbpack/returns", views.returns, name="returns"),
    path("nbpack/returns/<int:pk>/view", views.return_view, name="return-view"),
    path("nbpack/returns/<int:pk>/download", views.return_download, name="return-download"),
]
