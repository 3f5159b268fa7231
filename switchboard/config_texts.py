"""What the configuration reference says about each key, check and variable (the words, as data).

``switchboard.config_reference`` walks the schemas for names, types, defaults and constraints; the
descriptions it cannot derive from code live here, keyed by dotted path, class and method, or name.
"""

from __future__ import annotations

from switchboard.config import UNCERTAIN_DEFAULTS
from switchboard.config_texts_windows import WINDOWS_AND_ALERTING
from switchboard.payloads.cxone import PLACEHOLDERS

_UNCERTAIN = ", ".join(f"`{kind}`: `{policy}`" for kind, policy in UNCERTAIN_DEFAULTS.items())

FILE_INTROS = {
    "sources.yaml": "Inbound sources: how each signs, how big its bodies may be, how fast it may post, how retries "
                    "are recognised, and how its metrics map to severities. Secrets are never in the file, only the "
                    "names of the environment variables holding them.",
    "targets.yaml": "Downstream targets: kind, timeouts and the durable retry policy (Celery retries with "
                    "full-jitter exponential backoff honouring `Retry-After`; after `max_attempts` the dispatch is "
                    "dead-lettered), plus the Genesys name tables, the CRM lookup, the fallback notifier and the "
                    "payload-reference TTL. Vendor URLs and credentials come from the environment.",
    "routing.yaml": "Routing rules, first match wins; each names the targets a matching alert is dispatched to.",
    "mappings.yaml": "Entity -> business unit -> PagerDuty routing key (from the named environment variable) and "
                     "diagnostic links.",
    "service.yaml": "Service-wide behaviour.",
    "alerting.yaml": "Alert intelligence: one incident per real problem. The dedupe window merges repeats into the "
                     "open incident, the flapping cooldown holds state changes and delivers only the latest, "
                     "grouping and storm control attach a business unit's alerts to one incident. A window of 0 "
                     "turns that feature off.",
    "windows.yaml": "Time windows: maintenance holds, how held events are released, and the dialing policy for "
                    "outbound calls. Every instant carries an explicit UTC offset (a naive time is a config error).",
}

DESCRIPTIONS: dict[str, str] = {
    # sources.yaml
    "sources": "Inbound sources by name (`POST /webhooks/<name>`).",
    "sources.<name>.signature": "How requests are signed; a missing or wrong signature is answered 401.",
    "sources.<name>.signature.scheme": "`hmac-sha256`: an HMAC of the raw body in `header`; `standard-webhooks`: "
                                       "the Standard Webhooks headers with `whsec_` secrets.",
    "sources.<name>.signature.header": "Request header carrying the HMAC (`hmac-sha256` only).",
    "sources.<name>.signature.encoding": "How the HMAC digest is written in the header (`hmac-sha256` only).",
    "sources.<name>.signature.prefix": "Text before the digest in the header, e.g. `sha256=` (`hmac-sha256` only).",
    "sources.<name>.signature.tolerance_s": "How far `webhook-timestamp` may be from now (`standard-webhooks` "
                                           "only).",
    "sources.<name>.secrets_env": "Name of the environment variable holding the source's secrets (comma-separated: "
                                  "several active secrets during a rotation).",
    "sources.<name>.max_body_bytes": "Largest accepted request body; a larger one is answered 413.",
    "sources.<name>.ingress_rate": "How fast the source may post; over the rate is answered 429 with `Retry-After`.",
    "sources.<name>.ingress_rate.limit": "Requests allowed per `per_seconds`.",
    "sources.<name>.ingress_rate.per_seconds": "Length of the rate window in seconds.",
    "sources.<name>.idempotency": "How a redelivery is recognised; a duplicate is answered 200 `duplicate`.",
    "sources.<name>.idempotency.header": "Header with the sender's request id, used when there is no Standard "
                                         "Webhooks `webhook-id`; with neither, the body's SHA-256 is the key.",
    "sources.<name>.idempotency.window_s": "How long a seen `webhook-id`, request id or body hash is a duplicate.",
    "sources.<name>.idempotency.payload_keys": "Further keys from payload fields: an event repeating the values of "
                                               "one seen within the window is a duplicate even under a new id.",
    "sources.<name>.idempotency.payload_keys[].fields": "Payload fields (dotted paths into nested objects, e.g. "
                                                        "`alert.id`) whose values together form the key (no key "
                                                        "when any of them is missing).",
    "sources.<name>.idempotency.payload_keys[].window_s": "How long this key marks a duplicate.",
    "sources.<name>.platform": "Platform label carried on every alert and hashed into its `alert_key` (with "
                               "metric_type and entity_id).",
    "sources.<name>.severity": "Severity per metric_type: a severity, or a map from the reported state to a "
                               "severity; `default` entries are the fallbacks (else `medium`).",
    "sources.<name>.mapping": "The `generic` source only (required there): where each canonical field is in the "
                              "posted JSON, as a dotted path of object keys (`alert.labels.host`). The receiver "
                              "answers 422, keyed by path, when a required path is missing or a mapped value has "
                              "the wrong type.",
    "sources.<name>.mapping.entity_id": "Path of the entity id: a string (1..256) or an integer (used as its "
                                        "decimal text). Hashed into `alert_key`.",
    "sources.<name>.mapping.metric_type": "Path of the metric type: a string (1..128). Hashed into `alert_key`; "
                                          "keys the severity table.",
    "sources.<name>.mapping.timestamp": "Path of the event time: ISO 8601 with an explicit offset (naive: 422); "
                                        "converted to UTC.",
    "sources.<name>.mapping.entity_name": "Path of a display name (string or null); absent: the entity id.",
    "sources.<name>.mapping.current_value": "Path of the reading: a number, a string or null.",
    "sources.<name>.mapping.threshold_value": "Path of the threshold: a number, a string or null.",
    "sources.<name>.mapping.breach_direction": "Path of `above`, `below` or null.",
    "sources.<name>.mapping.status": "How the alert's status reads; absent: every event is `firing`.",
    "sources.<name>.mapping.status.path": "Path of the sender's status (a string, number or boolean).",
    "sources.<name>.mapping.status.values": "The sender's status value as text (JSON true and 1 read as `true` "
                                            "and `1`) -> `firing` or `resolved`.",
    "sources.<name>.mapping.status.default": "Status when the value is absent, null or not in `values`.",
    "sources.<name>.mapping.state": "Path of the state looked up in the `severity` table (a string, number or "
                                    "boolean, as text).",
    "sources.<name>.mapping.kind": "The alerts' kind (a constant: routing rules match on it).",
    "sources.<name>.mapping.attributes": "Attribute name -> path; each becomes `attributes.<name>` of the alert "
                                         "(any JSON value; null when absent).",
    # targets.yaml
    "targets": "Downstream targets by name; routing rules name them.",
    "targets.<name>.kind": "`pagerduty` (Events v2), `genesys_workitem` (a work item), `call` (a proactive phone "
                           "call), `orchestrator_resolution` (a resolution callback to the ZTP orchestrator), "
                           "`chat` (a message to the Slack-style webhook `SWITCHBOARD_SLACK_WEBHOOK_URL`).",
    "targets.<name>.timeout": "HTTP timeouts of this target's vendor calls.",
    "targets.<name>.timeout.connect_s": "Connect timeout in seconds.",
    "targets.<name>.timeout.read_s": "Read timeout in seconds.",
    "targets.<name>.retry": "Retry policy for retryable failures (408/425/429/5xx, timeouts); other 4xx "
                            "dead-letter at once.",
    "targets.<name>.retry.max_attempts": "Attempts in all, the first included, before the dispatch is "
                                         "dead-lettered.",
    "targets.<name>.retry.base_s": "Backoff base: after attempt n the wait is uniform in [0, min(`cap_s`, "
                                   "`base_s` * 2^n)].",
    "targets.<name>.retry.cap_s": "Largest backoff wait; a vendor's longer `Retry-After` wins, and no wait exceeds "
                                  "5 minutes.",
    "targets.<name>.on_uncertain": "When an earlier attempt died mid-call: `resend` (the vendor deduplicates), "
                                   "`verify` (look the work item up), `dead_letter` (never act twice). Unset: "
                                   f"per kind, {_UNCERTAIN}.",
    "targets.<name>.fallback": "Notify a human (Slack + SMS) when this target dead-letters; unset: only when the "
                               "route's priority is `critical`.",
    "targets.<name>.workitem": "The Genesys work item; required for kinds `genesys_workitem` and `call` (for a "
                               "call: the follow-up created when the call may not be placed).",
    "targets.<name>.workitem.type_id": "Genesys work type id.",
    "targets.<name>.workitem.default_queue": "Queue name (a key of `genesys.queues`) when the route names none.",
    "targets.<name>.workitem.priority": "Work item priority per alert severity.",
    "targets.<name>.workitem.due_minutes": "Minutes until the work item's `dateDue`, per alert severity (the SLA).",
    "targets.<name>.call": "The proactive phone call; required for kind `call`.",
    "targets.<name>.call.via": "Who places the call: `genesys_callback` (a Genesys callback in `queue`) or "
                               "`cxone_dial` (a CXone dial with `cxone_skill`).",
    "targets.<name>.call.queue": "Genesys queue name (a key of `genesys.queues`) of the callback; required when "
                                 "`via` is `genesys_callback`.",
    "targets.<name>.call.cxone_skill": "CXone skill id that places the outbound call; required when `via` is "
                                       "`cxone_dial`.",
    "targets.<name>.call.dial_path": "CXone API path the dial is POSTed to (CXone has no single public dial "
                                     "contract).",
    "targets.<name>.call.dial_body": "Template of the CXone dial body; placeholders "
                                     + ", ".join(f"`{{{p}}}`" for p in PLACEHOLDERS)
                                     + " (a value that is exactly one placeholder keeps its type).",
    "targets.<name>.call.occupancy_throttle": "Protect the contact center (Genesys callbacks only): while the "
                                              "callback queue's occupancy (queue observations) is above `above`, "
                                              "critical calls go ahead, default ones are slowed, bulk ones become "
                                              "work items in `outside_window_queue`. Unset: no throttle.",
    "targets.<name>.call.occupancy_throttle.above": "Occupancy ((oInteracting + oWaiting) / oOnQueueUsers) above "
                                                    "which the throttle applies.",
    "targets.<name>.call.occupancy_throttle.slow_s": "How long a slowed call waits (re-queued, not an attempt).",
    "targets.<name>.call.occupancy_throttle.max_slowdowns": "Slowdowns before a default-priority call becomes a "
                                                            "work item.",
    "targets.<name>.call.outside_window_queue": "Queue name of the follow-up work item, due at the next allowed "
                                                "time, when the dialing policy says no.",
    "genesys": "Genesys names used by routing rules and targets -> the org's ids.",
    "genesys.queues": "Queue name -> Genesys queue id.",
    "genesys.skills": "Skill name -> Genesys skill id.",
    "genesys.custom_attribute_limit": "Longest value of a Genesys custom attribute; when one is longer, the full "
                                      "alert travels by `payload_ref`, never truncated.",
    "genesys.occupancy_cache_s": "How long a queue's occupancy (for a route's `overflow`) is cached in Redis and "
                                 "shared by every worker: one queue observation query per queue per period.",
    "crm": "The customer lookup (phone, time zone, DND) before a call.",
    "crm.timeout": "HTTP timeouts of CRM lookups (a block written without a key gets the general defaults "
                   "below, not these).",
    "crm.timeout.connect_s": "Connect timeout in seconds.",
    "crm.timeout.read_s": "Read timeout in seconds.",
    "crm.cache_s": "How long customer records are cached in Redis.",
    "fallback": "The fallback notifier (Slack webhook and Twilio SMS) for dead letters and credential failures.",
    "fallback.sms_to_env": "Name of the environment variable holding the on-call numbers (comma-separated).",
    "fallback.credential_alert_every_s": "At most one credential-failure alert per vendor per this period.",
    "fallback.max_attempts": "Attempts to deliver one notification.",
    "payload_ref_ttl_s": "How long `GET /payloads/<ref>` keeps full payloads.",
    # routing.yaml
    "rules": "Routing rules in order; the first whose `match` holds decides. Keep a catch-all (`match: {}`) last: "
             "an alert no rule matches is suppressed.",
    "rules[].name": "Rule name, recorded with each route.",
    "rules[].match": "Conditions, all of which must hold; a list holds when the alert's value is in it; an omitted "
                     "condition holds always.",
    "rules[].match.source": "Source names.",
    "rules[].match.kind": "Alert kinds, e.g. `health`, `ztp`, `iot`.",
    "rules[].match.metric_type": "Metric types, e.g. `trunk_status`, `ztp_resolution`.",
    "rules[].match.severity": "Alert severities.",
    "rules[].match.status": "Alert statuses.",
    "rules[].match.business_impact": "Business units (from `mappings.yaml`), or `unmapped` for an unknown entity.",
    "rules[].match.state": "The source's reported state (ZTP `provisioning_status`, trunk status), as text.",
    "rules[].match.attributes": "Attribute name -> value; holds when every named attribute of the alert equals "
                                "its value (`{requires_callback: true}`; `true` does not equal `1`).",
    "rules[].match.error_code_regex": "Python regular expression searched in the alert's `attributes.error_code`; "
                                      "compiled at load (a bad one is a config error).",
    "rules[].targets": "Where a matching alert goes: one dispatch per entry.",
    "rules[].targets[].target": "Target name (a key of `targets` in `targets.yaml`).",
    "rules[].targets[].priority": "Dispatch queue (`dispatch.<priority>`); a `critical` route's dead letter also "
                                  "notifies a human unless the target's `fallback` says otherwise.",
    "rules[].targets[].queue": "Genesys queue name (a key of `genesys.queues`) instead of the target's "
                               "`default_queue`.",
    "rules[].targets[].skills": "Genesys skill names (keys of `genesys.skills`) the work item requires.",
    "rules[].targets[].workitem_priority": "Work item priority (Genesys: higher is routed first) instead of the "
                                           "target's `workitem.priority` for the alert's severity.",
    "rules[].targets[].priority_delta": "Added to the work item's priority.",
    "rules[].targets[].escalation_minutes": "Escalate after this long: PagerDuty `custom_details."
                                            "escalation_minutes` (the service's escalation policy acts), work item "
                                            "`dateDue` = now + this (instead of `due_minutes`), chat text.",
    "rules[].targets[].overflow": "Work items only: when the queue's occupancy, (oInteracting + oWaiting) / "
                                  "oOnQueueUsers from Genesys queue observations, is above the threshold, the work "
                                  "item goes to this queue instead; unreadable statistics keep the primary (counted "
                                  "in `count:occupancy_unknown:<queue>`).",
    "rules[].targets[].overflow.queue": "Overflow queue name (a key of `genesys.queues`).",
    "rules[].targets[].overflow.when_occupancy_above": "Occupancy threshold (0.85: 85%).",
    "rules[].targets[].overflow.priority_delta": "Added to the work item's priority when it overflows.",
    # mappings.yaml
    "entities": "Entity id -> business unit; an entity not listed is `unmapped` and pages with the default key.",
    "entities.<name>.business_unit": "Business unit (a key of `business_units`).",
    "entities.<name>.name": "Display name of the entity.",
    "business_units": "Business units by name: PagerDuty routing key and diagnostic links.",
    "business_units.<name>.pagerduty_routing_key_env": "Name of the environment variable holding the unit's "
                                                       "PagerDuty routing key.",
    "business_units.<name>.links": "Diagnostic links attached to the unit's alerts.",
    "business_units.<name>.links[].href": "Link URL; `{entity_id}` is substituted.",
    "business_units.<name>.links[].text": "Link text.",
    "default_routing_key_env": "Name of the environment variable holding the PagerDuty routing key for entities "
                               "without a business unit.",
    "audit_notify_every_s": "An unmapped entity, or a business unit whose routing-key variable is unset, pages with "
                            "the default key and raises a config-audit alert (metric, `switchboard status`); the "
                            "fallback chat channel is told at most once per entity per this period (0: never).",
    # service.yaml
    "ingest_max_depth": "The receiver answers 503 + Retry-After while the ingest queue holds this many messages or "
                        "more (0: no guard): a flood is pushed back to the senders instead of growing the backlog.",
    "depth_check_every_s": "How often each receiver process reads the ingest queue's depth for that guard.",
    "rate_limits": "Named rate limits (GCRA schedules in Redis shared by every worker); several targets may share "
                   "one, e.g. one Genesys OAuth client.",
    "rate_limits.<name>.rate": "Requests per second, set a little under the vendor's limit.",
    "rate_limits.<name>.burst": "How many requests may go at once before the spacing applies.",
    "rate_limits.<name>.per": "`bucket`: one schedule; `routing_key`: one per PagerDuty routing key.",
    "rate_limits.<name>.critical_share": "Share of the rate kept as a lane for critical routes, which a bulk "
                                         "backlog can never delay.",
    "rate_limits.<name>.horizon_s": "How far ahead a non-critical dispatch may reserve its slot; beyond it, it "
                                    "asks again later.",
    "rate_limits.<name>.backoff_factor": "A vendor 429 multiplies the rate by this.",
    "rate_limits.<name>.min_factor": "The rate never drops below this share of `rate`.",
    "rate_limits.<name>.recovery_per_s": "After a back-off the rate recovers by this share of `rate` per second.",
    "rate_limits.<name>.max_in_window": "The vendor's own sliding window (at most `count` sends in any `window_s`), "
                                        "checked immediately before each send: a hard cap.",
    "rate_limits.<name>.max_in_window.count": "Sends allowed in the window.",
    "rate_limits.<name>.max_in_window.window_s": "The window's length in seconds.",
    "targets.<name>.rate_limit": "The rate limit (a name in `rate_limits`) this target's dispatches take slots of.",
    "ledger_ttl_s": "How long an event's ledger (what `switchboard trace` shows) and dispatch state are kept.",
    "pipeline_grain": "`chain`: one Celery task per stage; `fused`: one `switchboard.ingest` task runs every stage.",
    "retry_after_s": "`Retry-After` sent with a 503 when the broker or Redis is down.",
    "read_timeout_s": "Each connection to the receiver (gunicorn, `DeadlineSyncWorker`) has this many seconds in "
                      "total to deliver its request's headers and body; a body not in by then is answered 408, "
                      "headers not in by then end the connection. A slow client cannot hold a worker longer.",
    "config_poll_s": "How often each running process looks for changed config files (inode, mtime and size of "
                     "each file) and reloads them (0: only on SIGHUP or `switchboard config reload`). An invalid "
                     "change is logged with every problem and the running config is kept.",
    "reconcile_every_s": "How often beat's `switchboard.reconcile` compares local incident state with PagerDuty's "
                         "(REST API) and corrects drift: acknowledged/resolved by a human there, a lost resolve or "
                         "trigger re-sent through the normal dispatch path.",
    "reconcile_lookback_s": "Incidents updated within this many seconds are reconciled.",
    "stall_after_s": "Redis broker only: an accepted event with no outcome, no step for this many seconds and no "
                     "message left in the broker (not queued, not held by a worker) lost its message to a killed "
                     "worker; beat's `switchboard.sweep_stalled` publishes it again. Keep it above a vendor "
                     "call's timeout and a broker restart.",
    "stall_sweep_every_s": "How often beat's `switchboard.sweep_stalled` runs.",
    "events_flush_s": "A worker sends its task events (`-E`: what Flower shows) in one message at most this many "
                      "seconds after the first of them; Flower shows them up to this much later, each with the "
                      "time it happened. 0: a message at each turn of the worker's event loop (Celery's own "
                      "behaviour: about one per event, ~30% of a busy pool's main process). Read when a worker "
                      "starts; a warm shutdown sends what is buffered.",
    "stall_max_sweeps": "An event published again this many times without reaching an outcome is dead-lettered "
                        "(replay it with `switchboard dlq replay`).",
    **WINDOWS_AND_ALERTING,
}

# What each schema-level check (``@validates_schema``) enforces, by schema class and method.
SCHEMA_CHECKS = {
    ("SourceSchema", "_severities"): "every severity in `severity` (or in its per-state maps) is a known one.",
    ("SourcesFileSchema", "_mapping_only_for_generic"): "the `generic` source has a `mapping`; no other source has "
                                                        "one (their fields are known).",
    ("GenericMappingSchema", "_typed_paths_are_leaves"): "no path read as a value (every field but `attributes`) "
                                                         "is a prefix of another mapped path.",
    ("StateRuleSchema", "_ordered"): "a state's `end` is later than its `start` when both are given.",
    ("CallSchema", "_template_names"): "`dial_body` uses only the known placeholders.",
    ("CallSchema", "_via_needs"): "`via: genesys_callback` needs `queue`; `via: cxone_dial` needs `cxone_skill`.",
    ("TargetSchema", "_kind_needs"): "kind `call` needs `call`; kinds `genesys_workitem` and `call` need "
                                     "`workitem`; `on_uncertain: verify` only for kind `genesys_workitem`.",
    ("MappingsFileSchema", "_units_exist"): "every entity's `business_unit` is a key of `business_units`.",
    ("MappingsFileSchema", "_acyclic"): "the `dependencies` graph has no cycle.",
    ("ClockWindowSchema", "_ordered"): "`end` is later than `start` (windows do not cross midnight).",
    ("RecurrenceSchema", "_parses"): "`rrule` parses (from `dtstart`) and `timezone` is a known zone.",
    ("ScopeSchema", "_not_empty"): "at least one of `site`, `entity`, `business_unit`, `source` is given (an empty "
                                   "scope would hold every alert).",
    ("MaintenanceSchema", "_one_kind"): "either `start` and `end` (end after start) or `recurrence`, not both.",
}

# Checks across files, made by ``load_config`` after every file has loaded (``config._cross_check``).
LOAD_CHECKS = {
    "targets.yaml": ["`targets.<name>.workitem.default_queue`, `call.queue` and `call.outside_window_queue` are "
                     "keys of `genesys.queues`."],
    "routing.yaml": ["every `rules[].targets[].target` is a target in `targets.yaml`.",
                     "every `rules[].targets[].queue` is a key of `genesys.queues` and every skill a key of "
                     "`genesys.skills` (`targets.yaml`).",
                     "`workitem_priority`, `priority_delta` and `overflow` only on `genesys_workitem` targets; "
                     "`escalation_minutes` only on `pagerduty`, `genesys_workitem` and `chat` targets; "
                     "`overflow.queue` is a key of `genesys.queues` other than the primary queue."],
}

# Environment: process settings (``load_settings``), by variable -> (Settings attribute, meaning).
SETTINGS_ENV = {
    "SWITCHBOARD_REDIS_URL": ("redis_url", "Redis for state: idempotency keys, ledger, dead letters, deferrals."),
    "SWITCHBOARD_BROKER_URL": ("broker_url", "Celery broker: `redis://...` or `amqp://...` (RabbitMQ, publisher "
                                             "confirms on)."),
    "SWITCHBOARD_PAGERDUTY_URL": ("pagerduty_url", "PagerDuty Events v2 base URL."),
    "SWITCHBOARD_CONFIG_DIR": ("config_dir", "Directory of the YAML files described above."),
    "SWITCHBOARD_KEY_PREFIX": ("key_prefix", "Prefix of every Redis key."),
    "PORT": ("port", "Port of the webhook receiver (127.0.0.1)."),
}
VENDOR_MEANINGS = {
    "genesys_api": "Genesys Cloud API host (your region's).",
    "genesys_login": "Genesys Cloud OAuth host (your region's).",
    "cxone_api": "NICE CXone API base.",
    "cxone_auth": "NICE CXone token host.",
    "crm": "Customer lookup (phone, time zone, DND).",
    "orchestrator": "ZTP orchestrator (resolution callbacks).",
    "slack": "Fallback notifier: Slack-style incoming webhook.",
    "twilio": "Fallback notifier: Twilio SMS API.",
    "pagerduty_api": "PagerDuty REST API v2 (read by the reconciliation beat task).",
}
CREDENTIAL_MEANINGS = {
    "SWITCHBOARD_GENESYS_CLIENT_ID": "Genesys OAuth client id (client credentials grant).",
    "SWITCHBOARD_GENESYS_CLIENT_SECRET": "Genesys OAuth client secret.",
    "SWITCHBOARD_CXONE_CLIENT_ID": "CXone application client id (password grant).",
    "SWITCHBOARD_CXONE_CLIENT_SECRET": "CXone application client secret.",
    "SWITCHBOARD_CXONE_ACCESS_KEY_ID": "CXone access key id.",
    "SWITCHBOARD_CXONE_ACCESS_KEY_SECRET": "CXone access key secret.",
    "SWITCHBOARD_CRM_TOKEN": "CRM bearer token.",
    "SWITCHBOARD_PAGERDUTY_API_TOKEN": "PagerDuty REST API token (read-only is enough); unset: no reconciliation.",
    "SWITCHBOARD_ORCHESTRATOR_API_KEY": "ZTP orchestrator API key (`X-Api-Key`).",
    "SWITCHBOARD_TWILIO_ACCOUNT_SID": "Twilio account SID.",
    "SWITCHBOARD_TWILIO_AUTH_TOKEN": "Twilio auth token.",
    "SWITCHBOARD_TWILIO_FROM": "Sender of fallback SMS (a number, or an `MG...` messaging service).",
    "SWITCHBOARD_FALLBACK_SMS_TO": "On-call numbers for fallback SMS, comma-separated (never logged); the "
                                   "default of `fallback.sms_to_env`.",
}
# Read outside ``load_settings`` (receiver, Celery app, ``switchboard up`` / ``demo``): (default, meaning).
OTHER_ENV = {
    "SWITCHBOARD_PAYLOAD_TOKEN": ("unset: `/payloads` disabled", "Bearer token(s) for `GET /payloads/<ref>`, "
                                                                 "comma-separated during a rotation."),
    "SWITCHBOARD_REDIS_VISIBILITY_TIMEOUT_S": ("`3600`", "Redis broker only: how long a crashed worker's message "
                                                         "waits before redelivery."),
    "SANDBOX_PORT": ("`8900`", "Port of the vendor sandbox under `switchboard up`."),
    "SWITCHBOARD_EMBEDDED_REDIS_PORT": ("a free port", "Port of the embedded Valkey under `switchboard up` when no "
                                                       "Redis or broker URL is set."),
    "SWITCHBOARD_WORKER_METRICS_PORT": ("unset: no worker `/metrics`", "Port (127.0.0.1) of a worker pool's "
                                                                       "`/metrics`; the Procfile sets it per pool "
                                                                       "from `<POOL>_METRICS_PORT`."),
    "SWITCHBOARD_LOG_FORMAT": ("`json`", "`json` (one redacted JSON line per record) or `text` (redacted too)."),
    "PROMETHEUS_MULTIPROC_DIR": ("unset: one process's metrics", "prometheus_client's multiprocess directory; the "
                                                                 "Procfile sets it per process under "
                                                                 "`METRICS_DIR`."),
}
# ``${NAME:-default}`` in the Procfile: what each knob does (the default and the processes come from the file).
PROCFILE_MEANINGS = {
    "METRICS_DIR": "Parent of the per-process Prometheus multiprocess directories (emptied by `switchboard up`).",
    "WEB_CONCURRENCY": "Gunicorn worker processes of the receiver.",
    "LOG_LEVEL": "Celery log level.",
    "FLOWER_PORT": "Port of Flower (127.0.0.1).",
    "PORT": "Port of the webhook receiver (127.0.0.1).",
}
