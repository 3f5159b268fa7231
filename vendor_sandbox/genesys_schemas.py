"""JSON Schemas the Genesys Cloud emulator enforces: ``WorkitemCreate``, the work item query,
``CreateCallbackCommand`` and the queue observation query. Top-level fields are closed
(``additionalProperties: false``) as in the SDK models, so a misspelt or invented field is a 400.

Field lists: the brief/CONTRACTS.md fields plus the other fields of the SDK's ``WorkitemCreate``
(``durationSeconds``, ``ttl``, ``autoStatusTransition``, ``assigneeId``, ``externalContactId``, ``wrapupCode``,
``utilizationLabelId``, ``scoredAgents``) and ``RoutingData``. Ids are non-empty strings (not forced to UUIDs,
so configs may use readable ids)."""

from __future__ import annotations

from typing import Any

from .schemas import make_validator

E164 = r"^\+[1-9][0-9]{1,14}$"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
ID: dict[str, Any] = {"type": "string", "minLength": 1}
IDS: dict[str, Any] = {"type": "array", "items": ID}
DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time-offset"}
PRIORITY: dict[str, Any] = {"type": "integer", "minimum": -25_000_000, "maximum": 25_000_000}
SCORED_AGENTS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["agentId", "score"],
        "properties": {"agentId": ID, "score": {"type": "integer", "minimum": 0, "maximum": 100}},
    },
}

WORKITEM_CREATE: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "Genesys WorkitemCreate",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "typeId"],
    "properties": {
        "name": {"type": "string", "minLength": 3, "maxLength": 256},
        "typeId": ID,
        "description": {"type": "string", "maxLength": 512},
        "priority": PRIORITY,
        "dateDue": DATE_TIME,
        "dateExpires": DATE_TIME,
        "durationSeconds": {"type": "integer", "minimum": 0, "maximum": 365 * 86_400},
        "ttl": {"type": "integer", "minimum": 0},
        "queueId": ID,
        "statusId": ID,
        "workbinId": ID,
        "languageId": ID,
        "scriptId": ID,
        "assigneeId": ID,
        "externalContactId": ID,
        "wrapupCode": ID,
        "utilizationLabelId": ID,
        "autoStatusTransition": {"type": "boolean"},
        "externalTag": {"type": "string", "maxLength": 256},
        "skillIds": IDS,
        "preferredAgentIds": IDS,
        "scoredAgents": SCORED_AGENTS,
        # String values of custom fields are limited to 255 characters; other JSON types pass.
        "customFields": {"type": "object", "additionalProperties": {"maxLength": 255}},
    },
}

QUERY_FIELDS = ("externalTag", "typeId", "queueId", "statusId", "workbinId", "name", "assigneeId", "languageId")

WORKITEM_QUERY: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "Genesys work item query",
    "type": "object",
    "additionalProperties": False,
    "required": ["filters"],
    "properties": {
        "filters": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "type", "operator", "values"],
                "properties": {
                    "name": {"enum": list(QUERY_FIELDS)},
                    "type": {"enum": ["String", "Uuid", "Enum"]},
                    "operator": {"enum": ["EQ", "IN"]},
                    "values": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                },
            },
        },
        "pageSize": {"type": "integer", "minimum": 1, "maximum": 200},
        "after": {"type": "string"},
        "sort": {"type": "object"},
        "attributes": {"type": "array", "items": {"type": "string"}},
        "expands": {"type": "array", "items": {"type": "string"}},
    },
}

ROUTING_DATA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["queueId"],
    "properties": {
        "queueId": ID,
        "languageId": ID,
        "label": {"type": "string"},
        "priority": {"type": "integer"},
        "skillIds": IDS,
        "preferredAgentIds": IDS,
        "scoredAgents": SCORED_AGENTS,
        "routingFlags": {"type": "array", "items": {"type": "string"}},
    },
}

CREATE_CALLBACK: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "Genesys CreateCallbackCommand",
    "type": "object",
    "additionalProperties": False,
    "required": ["callbackNumbers"],
    "properties": {
        "callbackNumbers": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": E164}},
        "queueId": ID,
        "routingData": ROUTING_DATA,
        "callbackUserName": {"type": "string", "maxLength": 256},
        "callbackScheduledTime": DATE_TIME,
        "countryCode": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "data": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 255}},
        "callerId": {"type": "string"},
        "callerIdName": {"type": "string"},
        "scriptId": ID,
        "validateCallbackNumbers": {"type": "boolean"},
    },
}

OBSERVATION_METRICS = (
    "oActiveUsers",
    "oAlerting",
    "oInteracting",
    "oLongestInteracting",
    "oLongestWaiting",
    "oMemberUsers",
    "oOffQueueUsers",
    "oOnQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
    "oWaiting",
)
OBSERVATION_DIMENSIONS = (
    "queueId",
    "mediaType",
    "userId",
    "requestedRoutingSkillId",
    "requestedLanguageId",
    "routingPriority",
    "direction",
    "originatingDirection",
)
PREDICATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["dimension", "value"],
    "properties": {
        "type": {"enum": ["dimension"]},
        "dimension": {"enum": list(OBSERVATION_DIMENSIONS)},
        "operator": {"enum": ["matches"]},
        "value": {"type": "string", "minLength": 1},
    },
}
FILTER_TYPE: dict[str, Any] = {"enum": ["and", "or"]}

OBSERVATION_QUERY: dict[str, Any] = {
    "$schema": DRAFT,
    "title": "Genesys queue observation query",
    "type": "object",
    "additionalProperties": False,
    "required": ["filter", "metrics"],
    "properties": {
        "filter": {
            "type": "object",
            "additionalProperties": False,
            "required": ["type"],
            "properties": {
                "type": FILTER_TYPE,
                "predicates": {"type": "array", "items": PREDICATE},
                "clauses": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["type", "predicates"],
                        "properties": {"type": FILTER_TYPE, "predicates": {"type": "array", "items": PREDICATE}},
                    },
                },
            },
        },
        "metrics": {"type": "array", "minItems": 1, "items": {"enum": list(OBSERVATION_METRICS)}},
        "detailMetrics": {"type": "array", "items": {"enum": list(OBSERVATION_METRICS)}},
    },
}

WORKITEM_CREATE_VALIDATOR = make_validator(WORKITEM_CREATE)
WORKITEM_QUERY_VALIDATOR = make_validator(WORKITEM_QUERY)
CREATE_CALLBACK_VALIDATOR = make_validator(CREATE_CALLBACK)
OBSERVATION_QUERY_VALIDATOR = make_validator(OBSERVATION_QUERY)
