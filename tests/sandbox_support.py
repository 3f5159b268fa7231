"""Request builders and shortcuts shared by the vendor-emulator tests (``tests/test_sandbox_*.py``)."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from vendor_sandbox.credentials import (
    CRM_TOKEN,
    CXONE_ACCESS_KEY_ID,
    CXONE_ACCESS_KEY_SECRET,
    CXONE_CLIENT_ID,
    CXONE_CLIENT_SECRET,
    GENESYS_CLIENT_ID,
    GENESYS_CLIENT_SECRET,
    ORCHESTRATOR_API_KEY,
    SLACK_WEBHOOK_PATH,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
)

WORKITEMS = "/api/v2/taskmanagement/workitems"
CALLBACKS = "/api/v2/conversations/callbacks"
OBSERVATIONS = "/api/v2/analytics/queues/observations/query"
DIAL = "/incontactapi/services/v33.0/queuecallback"
RESOLUTIONS = "/api/v1/events/resolutions"
TWILIO_MESSAGES = f"/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/Messages.json"


def control(url: str, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{url}/_sandbox{path}", timeout=5, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def recorded(url: str, vendor: str, path: str | None = None, *, all_: bool = True) -> list[dict[str, Any]]:
    params = {"vendor": vendor, **({"path": path} if path else {}), **({"all": "1"} if all_ else {})}
    return control(url, "GET", "/requests", params=params)


def genesys_token(url: str) -> str:
    response = requests.post(
        f"{url}/oauth/token",
        auth=(GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def cxone_token(url: str) -> str:
    form = {"grant_type": "password", "username": CXONE_ACCESS_KEY_ID, "password": CXONE_ACCESS_KEY_SECRET}
    response = requests.post(f"{url}/auth/token", auth=(CXONE_CLIENT_ID, CXONE_CLIENT_SECRET), data=form, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def workitem(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "ZTP failed on 00:1A:2B:3C:4D:5E",
        "typeId": "type-ztp",
        "description": "Validation failed",
        "priority": 5,
        "dateDue": "2030-01-01T12:00:00Z",
        "queueId": "queue-ztp-l2",
        "skillIds": ["skill-ztp-l1", "skill-firmware"],
        "externalTag": "ztp-evt-1",
        "customFields": {"device_mac_text": "00:1A:2B:3C:4D:5E"},
    }
    body.update(overrides)
    return body


def callback(**overrides: Any) -> dict[str, Any]:
    body = {
        "callbackNumbers": ["+15551234567"],
        "queueId": "queue-iot",
        "callbackUserName": "Acme Cold Storage",
        "data": {"alert": "freezer 3 at -2C"},
    }
    body.update(overrides)
    return body


def resolution(**overrides: Any) -> dict[str, Any]:
    body = {
        "ztp_event_id": f"evt-{uuid.uuid4().hex[:8]}",
        "resolution_status": "resolved",
        "resolution_code": "FIRMWARE_ROLLBACK",
        "agent_id": "agent-7",
        "resolved_at": "2024-05-01T12:00:00Z",
        "device_mac": "00:1A:2B:3C:4D:5E",
        "orchestrator_action": "retry_provisioning",
    }
    body.update(overrides)
    return body


def post_workitem(url: str, body: Any, token: str | None = None) -> requests.Response:
    return requests.post(f"{url}{WORKITEMS}", json=body, headers=bearer(token or genesys_token(url)), timeout=5)


def post_dial(url: str, body: Any, token: str | None = None) -> requests.Response:
    return requests.post(f"{url}{DIAL}", json=body, headers=bearer(token or cxone_token(url)), timeout=5)


def post_resolution(url: str, body: Any, key: str = ORCHESTRATOR_API_KEY) -> requests.Response:
    return requests.post(f"{url}{RESOLUTIONS}", json=body, headers={"X-Api-Key": key}, timeout=5)


def get_customer(url: str, customer_id: str, token: str = CRM_TOKEN, timeout: float = 5) -> requests.Response:
    return requests.get(f"{url}/api/v1/customers/{customer_id}", headers=bearer(token), timeout=timeout)


def post_slack(url: str, body: Any, path: str = SLACK_WEBHOOK_PATH) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, timeout=5)


def post_sms(url: str, form: Any, auth: tuple[str, str] = (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN),
             path: str = TWILIO_MESSAGES) -> requests.Response:
    return requests.post(f"{url}{path}", data=form, auth=auth, timeout=5)


SMS = {"To": "+15551234567", "From": "+15557654321", "Body": "Freezer 3 is at -2C"}
