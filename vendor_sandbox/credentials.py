"""Default credentials the vendor emulators accept, in one place: the tests and ``make up`` configure the
Switchboard clients with these. They are sandbox-only values, not secrets. Genesys and CXone credentials
can be changed at run time through ``PUT /_sandbox/oauth/<vendor>``."""

from __future__ import annotations

GENESYS_CLIENT_ID = "sandbox-genesys-client"
GENESYS_CLIENT_SECRET = "sandbox-genesys-secret"

CXONE_CLIENT_ID = "sandbox-cxone-client"
CXONE_CLIENT_SECRET = "sandbox-cxone-secret"
CXONE_ACCESS_KEY_ID = "sandbox-cxone-key"
CXONE_ACCESS_KEY_SECRET = "sandbox-cxone-key-secret"

ORCHESTRATOR_API_KEY = "sandbox-orchestrator-key"

CRM_TOKEN = "sandbox-crm-token"

SLACK_WEBHOOK_PATH = "/services/TSANDBOX/BSANDBOX/sandbox-slack-token"

TWILIO_ACCOUNT_SID = "ACsandbox0000000000000000000000000"
TWILIO_AUTH_TOKEN = "sandbox-twilio-token"

PAGERDUTY_API_TOKEN = "sandbox-pagerduty-api-token"
