"""The demo's scenario as data: which sample to post, in what order, and what must come of it
(``samples/README.md``): PagerDuty events for health signals, Genesys work items for ZTP, and for IoT a
call or a next-business-day work item depending on the customer's local time when it is dispatched.
"""

from __future__ import annotations

FIRST_WAVE = [
    {"file": "genesys-trunk-down.json", "source": "genesys", "outcome": "dispatched",
     "pd": {"event_action": "trigger", "severity": "critical", "routing_key": "sandbox-voice-network"}},
    {"file": "genesys-queue-abandon.json", "source": "genesys", "outcome": "dispatched",
     "pd": {"event_action": "trigger", "severity": "critical", "routing_key": "sandbox-cc-ops"}},
    {"file": "cxone-trunk-health.json", "source": "cxone", "outcome": "dispatched",
     "pd": {"event_action": "trigger", "severity": "warning", "routing_key": "sandbox-voice-network",
            "timestamp": "2024-05-15T14:32:00Z"}},
    {"file": "cxone-queue-status.json", "source": "cxone", "outcome": "dispatched",
     "pd": {"event_action": "trigger", "severity": "warning", "routing_key": "sandbox-cc-ops"}},
    {"file": "ztp-validation-failed.json", "source": "ztp", "outcome": "dispatched",
     "workitem": {"queue": "QUEUE_ZTP_L2_FIRMWARE", "skills": ["ZTP-L1", "Firmware-Rollback"]}},
    {"file": "ztp-firmware-rollback.json", "source": "ztp", "outcome": "dispatched",
     "workitem": {"queue": "QUEUE_ZTP_L2_FIRMWARE", "skills": ["Firmware-Rollback"]}},
    {"file": "ztp-success-callback.json", "source": "ztp", "outcome": "dispatched",
     "workitem": {"queue": "QUEUE_ZTP_L1_VERIFICATION", "skills": []}},
    {"file": "iot-temp-critical.json", "source": "iot", "outcome": "dispatched", "call": {"customer": "CUST-9981"}},
]

# Posted after the first wave has settled: the trunk recovers seconds after it failed, inside the flapping
# cooldown (alerting.yaml, 5 minutes), so the recovery is held and its resolve is sent when the cooldown
# ends (tests/test_alert_intelligence.py proves the resolve with a short cooldown); and an agent closes
# the certificate work item, which calls the orchestrator back.
SECOND_WAVE = [
    {"file": "genesys-trunk-up.json", "source": "genesys", "outcome": "deferred",
     "same_key_as": "genesys-trunk-down.json", "held": "flapping"},
    {"file": "genesys-workitem-resolved.json", "source": "genesys", "outcome": "dispatched",
     "resolution": {"ztp_event_id": "evt_9f8a7b6c5d4e3f2a1b0c"}},
]

# Re-posted with the same idempotency key (request id / payload key): must answer 200 duplicate.
DUPLICATES = ["genesys-trunk-down.json", "iot-temp-critical.json"]
