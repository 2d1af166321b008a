"""Who is deploying: the signed-in user's ESAP profile, found the way ESAP's own accounts view finds it.

mozilla-django-oidc makes the Django username a hash of the e-mail; the name people know is the ESAP profile's
``user_name``. ESAP's ``EsapUserProfileViewSet`` finds the profile by the OIDC id token's ``iss`` + ``sub`` (the
profile's ``uid``) and, when the session holds no id token, by the user's e-mail; so does this.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlparse

from django.apps import apps


def _uid(id_token: str) -> str | None:
    """``<issuer host>:userinfo:<sub>`` from an id token's payload (verified by mozilla-django-oidc at sign-in)."""
    try:
        payload = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "==="))
        return urlparse(payload["iss"]).netloc + ":userinfo:" + payload["sub"]
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None


def esap_profile(request: Any) -> Any | None:
    """The signed-in user's ``accounts.EsapUserProfile``, or None."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    profiles = apps.get_model("accounts", "EsapUserProfile").objects
    token = request.session.get("oidc_id_token")
    uid = _uid(token) if isinstance(token, str) else None
    if uid is not None:
        return profiles.filter(uid=uid).first()
    email = getattr(user, "email", "")
    return profiles.filter(user_email=email).first() if email else None


def basket(profile: Any) -> list:
    """The profile's shopping basket as ESAP's accounts API returns it: ``[{"item_data": "<JSON text>"}, …]``."""
    return [{"item_data": item.item_data} for item in profile.shopping_cart.order_by("id")]
