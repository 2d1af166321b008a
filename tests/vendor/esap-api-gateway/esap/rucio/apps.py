from django.apps import AppConfig


class RucioConfig(AppConfig):
    name = 'rucio'
