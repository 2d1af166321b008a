"""WSGI entry point for gunicorn: ``gunicorn wsgi:app`` (configuration from ``NBPACK_*`` variables)."""

from server import create_app

app = create_app()
