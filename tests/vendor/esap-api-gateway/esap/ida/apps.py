from django.apps import AppConfig


class IdaConfig(AppConfig):
    name = 'ida'
