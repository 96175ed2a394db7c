"""The OpenAPI 3.1 description of the public API, served at ``GET /openapi.json``.

Field names and length limits come from ``collector.http.decode`` and the settings, so the description
cannot drift from what the decoder enforces. Admin endpoints are for operators and the CLI and are
described by ``collector --help`` instead.
"""

from __future__ import annotations

from typing import Any

from collector.http.decode import ALIASES, IGNORED, LIMITS, MAX_INT

ERROR = {"$ref": "#/components/schemas/Error"}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string",
                                                                                             "pattern": "^[0-9]+$"}}}


def _error(description: str, retry: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ERROR}}}
    if retry:
        out["headers"] = RETRY_AFTER
    return out


def _event_schema(settings) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key, canon in ALIASES.items():
        if canon in LIMITS:
            props[key] = {"type": "string", "maxLength": LIMITS[canon]}
        elif canon in ("engagement_ms", "ts"):
            props[key] = {"type": "number", "minimum": -MAX_INT, "maximum": MAX_INT,
                          "description": "milliseconds" + (" since the Unix epoch; far from the server's clock it "
                                                           "is replaced by the receive time and flagged"
                                                           if canon == "ts" else " of engagement")}
        elif canon == "props":
            props[key] = {"oneOf": [{"$ref": "#/components/schemas/Props"},
                                    {"type": "string", "description": "the same object, JSON-encoded"},
                                    {"type": "null"}]}
        elif canon in ("hash", "auth"):
            props[key] = {"description": "truthy or falsy; hash routing / authenticated page"}
        elif canon in IGNORED:
            props[key] = {"description": "accepted for compatibility and ignored"}
        else:
            props[key] = {}
    for key in ("n", "name"):
        props[key]["description"] = "event name: pageview, or a custom name"
    for key in ("u", "url"):
        props[key]["description"] = "absolute page URL (http, https, or app:// for apps); url or screen is required"
    for key in ("d", "domain"):
        props[key]["description"] = "the site, as configured on the collector (required)"
    return {
        "type": "object",
        "description": "One event. Short (Plausible) and long names are both accepted. Required: a name, "
                       "a domain, and a url (or a screen for apps). Unknown keys are ignored.",
        "properties": props,
        "maxProperties": settings.max_json_keys,
        "examples": [{"n": "pageview", "u": "https://example.org/plans?utm_source=news", "d": "example.org",
                      "r": "https://www.google.com/"}],
    }


def document(settings) -> dict[str, Any]:
    beacon_errors = {
        "400": _error("The body is not valid UTF-8 JSON, breaks a limit (nesting, keys, string lengths, "
                      "numbers, events per batch), or misses a required field"),
        "408": _error("The request was not received within the deadline"),
        "413": _error(f"The body is larger than {settings.max_body_bytes} bytes"),
        "415": _error("Content-Type is not text/plain or application/json"),
        "422": _error("The domain is not a site configured on this collector"),
        "429": _error("Too many requests from this client, or overall", retry=True),
        "503": _error("The collector cannot accept events now (shutting down, or its spool is full)", retry=True),
    }
    json_body = lambda schema: {  # noqa: E731
        "required": True,
        "content": {
            "text/plain": {"schema": {"type": "string", "description": "the JSON document, sent as text/plain "
                                                                      "so browsers need no CORS preflight"}},
            "application/json": {"schema": schema},
        },
    }
    accepted = {"description": "Accepted: stored, or dropped by policy (the answer is the same)",
                "content": {"text/plain": {"schema": {"type": "string", "const": "ok"}}}}
    origin = {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}}
    preflight = {
        "summary": "CORS preflight",
        "parameters": [origin,
                       {"name": "Access-Control-Request-Method", "in": "header", "required": False,
                        "schema": {"type": "string"}}],
        "responses": {"204": {"description": "The origin may send beacons"},
                      "403": _error("No configured site allows this origin")},
    }
    pixel_params = [
        {"name": key, "in": "query", "required": False, "schema": {"type": "string"}}
        for key in ("n", "u", "d", "r", "p", "cid", "title", "search")
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Privacy-first analytics collector",
            "version": "1",
            "description": "Public ingestion API. Events are validated, scrubbed and pseudonymized before "
                           "they are stored; Cookie and Authorization headers are never read. Responses "
                           "carry security headers; beacon endpoints answer CORS for allowed origins.",
        },
        "paths": {
            "/api/event": {
                "post": {
                    "summary": "Record one event",
                    "requestBody": json_body({"$ref": "#/components/schemas/Event"}),
                    "responses": {"202": accepted, **beacon_errors},
                },
                "options": preflight,
            },
            "/api/batch": {
                "post": {
                    "summary": "Record several events",
                    "requestBody": json_body({"$ref": "#/components/schemas/Batch"}),
                    "responses": {"202": accepted, **beacon_errors},
                },
                "options": preflight,
            },
            "/p.gif": {
                "get": {
                    "summary": "Record one pageview with a tracking pixel (no JavaScript)",
                    "parameters": pixel_params,
                    "responses": {
                        "200": {"description": "A 1x1 transparent GIF",
                                "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}}},
                        **{k: v for k, v in beacon_errors.items() if k not in ("413", "415")},
                    },
                },
            },
            "/api/consent": {
                "post": {
                    "summary": "Record a consent grant or withdrawal (server to server)",
                    "parameters": [{"name": "X-Collector-Signature", "in": "header", "required": True,
                                    "description": "sha256=<hex HMAC-SHA256 of the body with the site's secret>",
                                    "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Consent"}}}},
                    "responses": {
                        "202": {"description": "Recorded",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "properties": {"recorded": {"const": True}},
                                    "required": ["recorded"]}}}},
                        "400": beacon_errors["400"],
                        "401": _error("The signature does not match, or ts is not within 300 s"),
                        "409": _error("This call (its nonce) was recorded before: nothing recorded"),
                        "408": beacon_errors["408"], "413": _error("The body is larger than 8192 bytes"),
                        "422": beacon_errors["422"], "503": beacon_errors["503"],
                    },
                },
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {
                "description": "The process is alive",
                "content": {"application/json": {"schema": {"type": "object",
                                                             "properties": {"alive": {"const": True}}}}}}}}},
            "/readyz": {"get": {"summary": "Readiness", "responses": {
                "200": {"description": "Accepting events into a spool that can take them (storage may be "
                                       "down meanwhile: the spool absorbs it; see the storage field)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}}},
                "503": {"description": "Not ready: starting, shutting down, or the spool full or failing",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Ready"}}}}}}},
            "/storagez": {"get": {"summary": "Storage health (not readiness: the spool absorbs outages)",
                                  "responses": {code: {"description": why, "content": {"application/json": {"schema": {
                                      "type": "object", "required": ["storage"],
                                      "properties": {"storage": {"type": "boolean"}, "writes": {"type": "boolean"},
                                                     "schema": {"type": "boolean"}}}}}}
                                      for code, why in (("200", "The last storage write succeeded and the schema "
                                                                "is applied"), ("503", "Storage is failing"))}}},
            "/openapi.json": {"get": {"summary": "This description", "responses": {"200": {
                "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        },
        "components": {
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"],
                          "properties": {"error": {"type": "string"}, "message": {"type": "string"}}},
                "Event": _event_schema(settings),
                "Props": {"type": "object", "maxProperties": settings.max_props,
                          "description": "custom properties: keys up to 64 characters",
                          "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
                "Batch": {"oneOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1,
                     "maxItems": settings.max_batch_events},
                    {"type": "object", "required": ["events"],
                     "description": "events, with fields shared by all of them beside the list",
                     "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"},
                                               "minItems": 1, "maxItems": settings.max_batch_events}}},
                ]},
                "Consent": {"type": "object", "required": ["site", "member_ref", "purpose", "action", "ts", "nonce"],
                            "properties": {
                    "site": {"type": "string"}, "member_ref": {"type": "string", "minLength": 1, "maxLength": 256},
                    "purpose": {"type": "string", "minLength": 1, "maxLength": 64},
                    "action": {"enum": ["grant", "withdraw"]},
                    "policy_version": {"type": "string", "maxLength": 64},
                    "ts": {"type": "number", "description": "the call's Unix time (s), within 300 s of the collector's"},
                    "nonce": {"type": "string", "minLength": 16, "maxLength": 128,
                              "description": "random, new for every call: a replayed call answers 409"}}},
                "Ready": {"type": "object", "required": ["ready"], "properties": {
                    "ready": {"type": "boolean"}, "accepting": {"type": "boolean"},
                    "state": {"enum": ["starting", "ready", "draining", "stopped"]},
                    "spool": {"type": "string", "description": "ok, or why the spool cannot take writes"},
                    "storage": {"type": "boolean", "description": "storage health, for information only"}}},
            },
        },
    }
