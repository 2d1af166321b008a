"""Deploy (a bundle of the user's basket, then the facility's launch link), the return webhook, the returns list.

Errors: a person following a link gets a small plain page with a 4xx (or 502 when nbpack cannot be reached); a
program gets JSON ``{"error", "message"}``. Never a traceback.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import FileResponse, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from nbpack_client import Client, NbpackError, ServiceError
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from nbpack_esap.identity import basket, esap_profile
from nbpack_esap.models import Deployment, Return

# A notification is a few hundred bytes; anything near this is not one, and is refused before it is read.
MAX_HOOK_BYTES = 64 * 1024
_HOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def _page(status: int, message: str) -> HttpResponse:
    body = f"<!doctype html><meta charset=utf-8><title>nbpack</title><p>{escape(message)}</p>\n"
    return HttpResponse(body, status=status, content_type="text/html; charset=utf-8")


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def _client() -> Client:
    return Client(settings.NBPACK_URL, settings.NBPACK_API_KEY, timeout=getattr(settings, "NBPACK_TIMEOUT", 120))


def _workflow(url: str) -> Any:
    """ESAP's Workflow fields inline when ESAP lists the workflow; else its URL (an OSSR workflow, as ESAP does)."""
    found = apps.get_model("ida", "Workflow").objects.filter(url=url).first()
    if found is None:
        return url
    return {"url": found.url, "ref": found.ref or "HEAD", "filepath": found.filepath or "", "name": found.name}


def _hook_url(request: Any) -> str:
    return getattr(settings, "NBPACK_CALLBACK_URL", "") or request.build_absolute_uri(reverse("nbpack_esap:hook"))


@require_GET
def deploy(request: Any) -> HttpResponse:
    """``ida/deploy?facility=<facility url>&workflow=<workflow url>``: the GUI's Deploy link, as it builds it today."""
    if not request.user.is_authenticated:
        return _page(401, "Sign in to ESAP to deploy a workflow with your basket.")
    profile = esap_profile(request)
    if profile is None:
        return _page(403, "Your ESAP account has no user profile yet: open ESAP once, then deploy again.")
    facility_url = request.GET.get("facility", "").strip()
    workflow_url = request.GET.get("workflow", "").strip()
    if not facility_url or not workflow_url:
        return _page(400, "A deploy link names a facility and a workflow (facility=…&workflow=…).")
    facility = apps.get_model("ida", "Facility").objects.filter(url=facility_url).first()
    workflow = _workflow(workflow_url)
    items = basket(profile)
    name = workflow["name"] if isinstance(workflow, dict) else workflow_url
    create: dict[str, Any] = {
        "title": f"{name} with {len(items)} basket item(s)"[:500],
        "payload": workflow,
        "owner": profile.user_name,
        "callback_url": _hook_url(request),
    }
    if items:
        create["basket"] = items
    try:
        answer = _client().create(create)
    except ServiceError as err:
        return _page(err.http_status if 400 <= err.http_status < 500 else 502, f"nbpack refused the bundle: {err}")
    except NbpackError as err:
        return _page(502, f"nbpack cannot be reached: {err}")
    Deployment.objects.create(
        bundle_id=answer["id"],
        user_name=profile.user_name,
        facility=facility.name if facility is not None else facility_url,
        workflow=workflow_url,
    )
    launch = answer["links"].get("launch") or {}
    known = facility is not None and facility.name in launch
    # A facility nbpack does not know: the bundle's landing page, which offers every way to open it.
    return redirect(launch[facility.name] if known else answer["links"]["landing"])


def _secret() -> Any:
    secret = settings.NBPACK_WEBHOOK_SECRET
    # a whsec_<base64> secret is used as the Standard Webhooks specification says; another as its UTF-8 bytes
    return secret if secret.startswith("whsec_") else secret.encode()


@csrf_exempt
@require_POST
def hook(request: Any) -> JsonResponse:
    """nbpack's return webhook: signature and timestamp checked on the raw body; each delivery id stored once."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > MAX_HOOK_BYTES:
        return _error(413, "too_large", f"a notification is at most {MAX_HOOK_BYTES} bytes")
    body = request.read(MAX_HOOK_BYTES + 1)
    if len(body) > MAX_HOOK_BYTES:
        return _error(413, "too_large", f"a notification is at most {MAX_HOOK_BYTES} bytes")
    headers = {name: request.headers.get(name, "") for name in _HOOK_HEADERS}
    try:
        event = Webhook(_secret()).verify(body, headers)
    except WebhookVerificationError as err:
        return _error(401, "bad_signature", f"not a notification nbpack signed for this ESAP: {err}")
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("bundle_id", "return_id")):
        return _error(400, "invalid_input", "the notification names no bundle_id and return_id")
    tenant = getattr(settings, "NBPACK_TENANT", "")
    if tenant and data.get("tenant") != tenant:
        return _error(403, "forbidden", "the notification is another tenant's")
    deployment = Deployment.objects.filter(bundle_id=data["bundle_id"]).first()
    if deployment is None:
        # Accepted (nbpack must not retry it) but not kept: no user of this ESAP deployed that bundle.
        return JsonResponse({"stored": False, "reason": "no deployment of this ESAP made that bundle"}, status=202)
    try:
        with transaction.atomic():
            Return.objects.create(
                webhook_id=headers["webhook-id"][:100],
                bundle_id=deployment.bundle_id,
                user_name=deployment.user_name,
                return_id=data["return_id"][:100],
                status=str(data.get("status") or "")[:40],
                event=str(event.get("type") or "")[:60],
            )
    except IntegrityError:
        return JsonResponse({"stored": True, "duplicate": True})
    return JsonResponse({"stored": True, "duplicate": False})


def _owned(request: Any, pk: int) -> Return | None:
    profile = esap_profile(request)
    if profile is None:
        return None
    return Return.objects.filter(pk=pk, user_name=profile.user_name).first()


@require_GET
def returns(request: Any) -> JsonResponse:
    """The signed-in user's returns, newest first, each with the links to view and download it."""
    if not request.user.is_authenticated:
        return _error(401, "unauthorized", "sign in to ESAP to see your returns")
    profile = esap_profile(request)
    rows = []
    if profile is not None:
        found = list(Return.objects.filter(user_name=profile.user_name).order_by("-received", "-id")[:500])
        made = {d.bundle_id: d for d in Deployment.objects.filter(bundle_id__in={r.bundle_id for r in found})}
        for r in found:
            deployment = made.get(r.bundle_id)
            rows.append(
                {
                    "id": r.pk,
                    "bundle_id": r.bundle_id,
                    "return_id": r.return_id,
                    "status": r.status,
                    "received": r.received.isoformat(),
                    "workflow": deployment.workflow if deployment else "",
                    "facility": deployment.facility if deployment else "",
                    "links": {
                        "view": request.build_absolute_uri(reverse("nbpack_esap:return-view", args=[r.pk])),
                        "download": request.build_absolute_uri(reverse("nbpack_esap:return-download", args=[r.pk])),
                    },
                }
            )
    return JsonResponse({"user_name": getattr(profile, "user_name", None), "returns": rows})


@require_GET
def return_view(request: Any, pk: int) -> HttpResponse:
    """The executed notebook of one of the user's returns, as nbpack renders it (sanitised HTML)."""
    found = _owned(request, pk)
    if found is None:
        return _page(404, "No such return of yours.")
    try:
        html = _client().return_html(found.bundle_id, found.return_id)
    except ServiceError as err:
        return _page(404 if err.http_status == 404 else 502, f"nbpack: {err}")
    except NbpackError as err:
        return _page(502, f"nbpack cannot be reached: {err}")
    resp = HttpResponse(html, content_type="text/html; charset=utf-8")
    resp["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return resp


@require_GET
def return_download(request: Any, pk: int) -> HttpResponse:
    """One of the user's return bundles as a zip, streamed from nbpack through a temporary file."""
    found = _owned(request, pk)
    if found is None:
        return _page(404, "No such return of yours.")
    folder = tempfile.mkdtemp(prefix="nbpack-return-")
    try:
        path = _client().download_return(found.bundle_id, found.return_id, os.path.join(folder, "r.zip"))
        # FileResponse reads the size from the path now; the open handle keeps the bytes once the folder is gone
        return FileResponse(
            open(path, "rb"),  # noqa: SIM115 - FileResponse closes it
            as_attachment=True,
            filename=f"{found.return_id}.zip",
            content_type="application/zip",
        )
    except ServiceError as err:
        return _page(404 if err.http_status == 404 else 502, f"nbpack: {err}")
    except NbpackError as err:
        return _page(502, f"nbpack cannot be reached: {err}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
