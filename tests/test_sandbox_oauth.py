"""Vendor sandbox OAuth (Genesys client credentials, CXone password grant with an access key): token
endpoints, counting, ``fail: N``, expiry, revocation, credential changes, token-endpoint rate limits and
faults, the control API. Real SandboxServer, real HTTP through ``requests``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from switchboard.waiting import wait_for
from vendor_sandbox.credentials import (
    CXONE_ACCESS_KEY_ID,
    CXONE_ACCESS_KEY_SECRET,
    CXONE_CLIENT_ID,
    CXONE_CLIENT_SECRET,
    GENESYS_CLIENT_ID,
    GENESYS_CLIENT_SECRET,
)
from vendor_sandbox.oauth import OAuthDefaults, OAuthRegistry

GENESYS_UNAUTHORIZED = {"message": "Authentication required", "code": "authentication.required", "status": 401}
CXONE_UNAUTHORIZED = {"error": "invalid_token"}


def oauth_state(url: str, vendor: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_sandbox/oauth/{vendor}", timeout=5)
    assert response.status_code == 200
    return response.json()


def configure(url: str, vendor: str, spec: dict[str, Any]) -> requests.Response:
    return requests.put(f"{url}/_sandbox/oauth/{vendor}", json=spec, timeout=5)


def genesys_token_request(url: str, client: tuple[str, str] = (GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET),
                          grant_type: str = "client_credentials") -> requests.Response:
    return requests.post(f"{url}/oauth/token", auth=client, data={"grant_type": grant_type}, timeout=5)


def cxone_token_request(url: str, client: tuple[str, str] = (CXONE_CLIENT_ID, CXONE_CLIENT_SECRET),
                        key: tuple[str, str] = (CXONE_ACCESS_KEY_ID, CXONE_ACCESS_KEY_SECRET),
                        grant_type: str = "password") -> requests.Response:
    form = {"grant_type": grant_type, "username": key[0], "password": key[1]}
    return requests.post(f"{url}/auth/token", auth=client, data=form, timeout=5)


def genesys_api(url: str, token: str) -> requests.Response:
    body = {"name": "Work item", "typeId": "type-1"}
    return requests.post(f"{url}/api/v2/taskmanagement/workitems", json=body,
                         headers={"Authorization": f"Bearer {token}"}, timeout=5)


def cxone_api(url: str, token: str) -> requests.Response:
    return requests.post(f"{url}/incontactapi/services/v33.0/queuecallback",
                         json={"skill": 1, "phoneNumber": "+15551234567"},
                         headers={"Authorization": f"Bearer {token}"}, timeout=5)


@dataclass(frozen=True)
class Vendor:
    name: str
    token_request: Callable[[str], requests.Response]
    api: Callable[[str, str], requests.Response]
    api_ok: int
    unauthorized: dict[str, Any]
    default_expires_in: int
    token_path: str


VENDORS = [
    Vendor("genesys", genesys_token_request, genesys_api, 200, GENESYS_UNAUTHORIZED, 86399, "/oauth/token"),
    Vendor("cxone", cxone_token_request, cxone_api, 202, CXONE_UNAUTHORIZED, 3600, "/auth/token"),
]


def token_of(vendor: Vendor, url: str) -> str:
    response = vendor.token_request(url)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_genesys_token(url: str) -> None:
    response = genesys_token_request(url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("bearer", 86399) and len(body["access_token"]) >= 32
    [entry] = requests.get(f"{url}/_sandbox/requests", params={"vendor": "genesys"}, timeout=5).json()
    assert entry["form"] == {"grant_type": "client_credentials"} and entry["json"] is None
    assert entry["headers"]["authorization"].startswith("Basic ")


def test_genesys_token_errors(url: str) -> None:
    wrong = genesys_token_request(url, client=(GENESYS_CLIENT_ID, "wrong"))
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert wrong.json()["description"]
    unknown = genesys_token_request(url, client=("someone", GENESYS_CLIENT_SECRET))
    assert unknown.status_code == 401
    anonymous = requests.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, timeout=5)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    grant = genesys_token_request(url, grant_type="password")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    as_json = requests.post(f"{url}/oauth/token", json={"grant_type": "client_credentials"},
                            auth=(GENESYS_CLIENT_ID, GENESYS_CLIENT_SECRET), timeout=5)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    state = oauth_state(url, "genesys")
    assert (state["token_requests"], state["tokens_issued"], state["failed_requests"]) == (5, 0, 5)
    assert state["active_tokens"] == 0


def test_cxone_token(url: str) -> None:
    response = cxone_token_request(url)
    assert response.status_code == 200
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    header, claims, _signature = body["id_token"].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["aud"] == CXONE_CLIENT_ID and decoded["exp"] - decoded["iat"] == 3600
    assert cxone_api(url, body["access_token"]).status_code == 202


def test_cxone_token_errors(url: str) -> None:
    bad_client = cxone_token_request(url, client=(CXONE_CLIENT_ID, "wrong"))
    assert (bad_client.status_code, bad_client.json()) == (401, {"error": "invalid_client"})
    bad_key = cxone_token_request(url, key=(CXONE_ACCESS_KEY_ID, "wrong"))
    assert (bad_key.status_code, bad_key.json()["error"]) == (400, "invalid_grant")
    other_key = cxone_token_request(url, key=("other-key", CXONE_ACCESS_KEY_SECRET))
    assert (other_key.status_code, other_key.json()["error"]) == (400, "invalid_grant")
    grant = cxone_token_request(url, grant_type="client_credentials")
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    state = oauth_state(url, "cxone")
    assert (state["token_requests"], state["tokens_issued"], state["failed_requests"]) == (4, 0, 4)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_token_requests_are_counted(url: str, vendor: Vendor) -> None:
    tokens = {token_of(vendor, url) for _ in range(3)}
    assert len(tokens) == 3
    state = oauth_state(url, vendor.name)
    assert state == {
        "vendor": vendor.name,
        "token_requests": 3,
        "tokens_issued": 3,
        "failed_requests": 0,
        "active_tokens": 3,
        "expires_in": vendor.default_expires_in,
        "fail_pending": 0,
        "client_id": GENESYS_CLIENT_ID if vendor.name == "genesys" else CXONE_CLIENT_ID,
    }


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_fail_n_rejects_the_next_token_requests(url: str, vendor: Vendor) -> None:
    assert configure(url, vendor.name, {"fail": 2}).json()["fail_pending"] == 2
    for remaining in (1, 0):
        failed = vendor.token_request(url)
        assert (failed.status_code, failed.json()["error"]) == (401, "invalid_client")
        assert oauth_state(url, vendor.name)["fail_pending"] == remaining
    token = token_of(vendor, url)
    assert vendor.api(url, token).status_code == vendor.api_ok
    state = oauth_state(url, vendor.name)
    assert (state["token_requests"], state["tokens_issued"], state["failed_requests"]) == (3, 1, 2)


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_token_expiry(url: str, vendor: Vendor) -> None:
    assert configure(url, vendor.name, {"expires_in": 1}).json()["expires_in"] == 1
    response = vendor.token_request(url)
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]
    assert vendor.api(url, token).status_code == vendor.api_ok
    answers: list[requests.Response] = []
    wait_for(lambda: answers.append(vendor.api(url, token)) or answers[-1].status_code == 401,
             5, 0.05, "the token to expire")
    assert answers[-1].json() == vendor.unauthorized
    assert answers[-1].headers["WWW-Authenticate"].startswith("Bearer")
    assert oauth_state(url, vendor.name)["active_tokens"] == 0
    assert vendor.api(url, token_of(vendor, url)).status_code == vendor.api_ok


@pytest.mark.parametrize("vendor", VENDORS, ids=lambda v: v.name)
def test_revoke_makes_every_token_401(url: str, vendor: Vendor) -> None:
    tokens = [token_of(vendor, url) for _ in range(2)]
    assert all(vendor.api(url, t).status_code == vendor.api_ok for t in tokens)
    revoked = requests.post(f"{url}/_sandbox/oauth/{vendor.name}/revoke", timeout=5).json()
    assert (revoked["revoked"], revoked["active_tokens"]) == (2, 0)
    for token in tokens:
        response = vendor.api(url, token)
        assert (response.status_code, response.json()) == (401, vendor.unauthorized)
    fresh = token_of(vendor, url)
    assert vendor.api(url, fresh).status_code == vendor.api_ok
    statuses = [e["status"] for e in requests.get(f"{url}/_sandbox/requests", timeout=5,
                                                  params={"vendor": vendor.name, "all": "1"}).json()
                if e["path"] != vendor.token_path]
    assert statuses == [vendor.api_ok, vendor.api_ok, 401, 401, vendor.api_ok]


def test_credentials_can_change_and_reset_restores_them(url: str) -> None:
    changed = configure(url, "cxone", {"client_secret": "new-secret", "access_key_secret": "new-key-secret",
                                       "expires_in": 60})
    assert changed.status_code == 200 and changed.json()["expires_in"] == 60
    assert cxone_token_request(url).status_code == 401
    assert cxone_token_request(url, client=(CXONE_CLIENT_ID, "new-secret")).status_code == 400
    renewed = cxone_token_request(url, client=(CXONE_CLIENT_ID, "new-secret"),
                                  key=(CXONE_ACCESS_KEY_ID, "new-key-secret"))
    assert (renewed.status_code, renewed.json()["expires_in"]) == (200, 60)
    configure(url, "genesys", {"client_id": "other-client"})
    assert genesys_token_request(url).status_code == 401
    assert genesys_token_request(url, client=("other-client", GENESYS_CLIENT_SECRET)).status_code == 200
    token = renewed.json()["access_token"]
    assert requests.delete(f"{url}/_sandbox/requests", timeout=5).status_code == 200
    assert cxone_api(url, token).status_code == 401  # reset forgets issued tokens
    for vendor in VENDORS:
        state = oauth_state(url, vendor.name)
        assert (state["token_requests"], state["expires_in"]) == (0, vendor.default_expires_in)
        assert vendor.token_request(url).status_code == 200


def test_control_api_refuses_bad_requests(url: str) -> None:
    assert requests.get(f"{url}/_sandbox/oauth/pagerduty", timeout=5).status_code == 404
    assert requests.post(f"{url}/_sandbox/oauth/nobody/revoke", timeout=5).status_code == 404
    for spec in ({"expires_in": -1}, {"expires_in": "60"}, {"fail": True}, {"client_secret": ""},
                 {"access_key_id": "k"}, {"lifetime": 5}):
        response = configure(url, "genesys", spec)
        assert response.status_code == 400, spec
    assert configure(url, "cxone", {"access_key_id": "k2"}).status_code == 200
    assert requests.put(f"{url}/_sandbox/oauth/genesys", data="x", timeout=5).status_code == 400
    assert oauth_state(url, "genesys")["expires_in"] == 86399


def test_token_endpoint_rate_limit(url: str) -> None:
    assert requests.get(f"{url}/_sandbox/ratelimit/genesys.token", timeout=5).json()["limit"] == 300
    requests.post(f"{url}/_sandbox/ratelimit/genesys.token", json={"limit": 2, "window_s": 30}, timeout=5)
    assert [genesys_token_request(url).status_code for _ in range(2)] == [200, 200]
    throttled = genesys_token_request(url)
    seconds = int(throttled.headers["Retry-After"])
    assert throttled.status_code == 429 and 1 <= seconds <= 30
    assert throttled.json()["code"] == "too.many.requests.retry.after"
    assert f"[{seconds}] seconds" in throttled.json()["message"]
    assert cxone_token_request(url).status_code == 200  # CXone's token endpoint has its own budget
    requests.post(f"{url}/_sandbox/ratelimit/cxone.token", json={"limit": 1, "window_s": 30}, timeout=5)
    cxone_throttled = cxone_token_request(url)
    assert cxone_throttled.status_code == 429 and "Retry-After" in cxone_throttled.headers
    state = oauth_state(url, "genesys")
    assert (state["token_requests"], state["tokens_issued"], state["failed_requests"]) == (3, 2, 1)


def test_token_endpoint_faults_are_separate_from_api_faults(url: str) -> None:
    token = token_of(VENDORS[0], url)
    requests.post(f"{url}/_sandbox/faults/genesys.token", json={"script": [{"status": 503, "retry_after": 3}]},
                  timeout=5)
    assert genesys_api(url, token).status_code == 200
    failed = genesys_token_request(url)
    assert (failed.status_code, failed.headers["Retry-After"], failed.json()["status"]) == (503, "3", 503)
    requests.post(f"{url}/_sandbox/faults/genesys", json={"script": [{"status": 500}]}, timeout=5)
    assert genesys_token_request(url).status_code == 200
    assert genesys_api(url, token).status_code == 500
    state = oauth_state(url, "genesys")
    assert (state["token_requests"], state["tokens_issued"], state["failed_requests"]) == (3, 2, 1)


def test_registry_expiry_and_revocation_on_a_fake_clock() -> None:
    now = [100.0]
    registry = OAuthRegistry(clock=lambda: now[0])
    registry.register(OAuthDefaults("v", "id", "secret", 10, unauthorized_body={"error": "x"}))
    assert registry.client_ok("v", "id", "secret") and not registry.client_ok("v", "id", "nope")
    assert not registry.access_key_ok("v", "k", "s")  # no access key configured for this vendor
    token, expires_in = registry.issue("v", "id")
    assert expires_in == 10 and registry.check("v", token) is not None
    now[0] = 109.9
    assert registry.check("v", token) is not None
    now[0] = 110.0
    assert registry.check("v", token) is None
    second, _ = registry.issue("v", "id")
    assert registry.revoke_all("v") == 1 and registry.check("v", second) is None
    assert registry.check("v", None) is None and registry.check("v", "unknown") is None
    with pytest.raises(KeyError):
        registry.describe("other")
