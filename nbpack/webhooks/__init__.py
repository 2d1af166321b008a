"""Notifications to ESAP when a return bundle arrives: signed, delivered with bounded retries."""
