"""astrobase URL Configuration

The `urlpatterns` list routes URLs to views. For more information please see:
    https://docs.djangoproject.com/en/2.0/topics/http/urls/
Examples:
Function views
    1. Add an import:  from my_app import views
    2. Add a URL to urlpatterns:  path('', views.home, name='home')
Class-based views
    1. Add an import:  from other_app.views import Home
    2. Add a URL to urlpatterns:  path('', Home.as_view(), name='home')
Including another URLconf
    1. Import the include() function: from django.urls import include, path
    2. Add a URL to urlpatterns:  path('blog/', include('blog.urls'))
"""
from django.contrib import admin
from django.urls import include, path, re_path

urlpatterns = [
    path('esap-api/query/', include('query.api.urls')),
    path('esap-api/rucio/', include('rucio.api.urls')),
    path('esap-api/accounts/', include('accounts.api.urls')),
    path('esap-api/ida/', include('ida.api.urls')),
    path('esap-api/batch/', include('batch.api.urls')),
    path('esap-api/admin/', admin.site.urls, name='admin-view'),
    re_path('^esap-api/oidc/', include('mozilla_django_oidc.urls')),
]
