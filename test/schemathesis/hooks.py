"""Schemathesis hooks for the run against BESH (see schemathesis.toml)."""

import re
import uuid

import schemathesis

# What BESH accepts as an Idempotency-Key (src/services/idempotency.ts).
VALID_KEY = re.compile(r"^[\x20-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    """Hypothesis draws short strings, so generated Idempotency-Keys repeat across requests, and BESH rightly
    replays the first answer to a repeated key, even for an object deleted since: schemathesis's stateful checks
    cannot know that. In a valid request (the only kind that creates anything) the key is made unique; invalid
    requests are sent as generated."""
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and VALID_KEY.match(key):
        case.headers["Idempotency-Key"] = f"schemathesis-{uuid.uuid4()}"


# A webhook URL a valid request could name: the host BESH must look up (DNS) and could later call. Any http(s)
# URL is sent with a TEST-NET-1 address instead, which BESH refuses (400) without a lookup, as the run leaves
# WEBHOOK_ALLOW_PRIVATE unset: generated requests never reach the network.
WEBHOOK_URL = re.compile(r"^https?://", re.IGNORECASE)


@schemathesis.hook("before_call")
def webhook_urls_stay_offline(context, case, kwargs):
    if case.method.upper() != "POST" or case.path != "/v1/webhook_endpoints" or not isinstance(case.body, dict):
        return
    url = case.body.get("url")
    if isinstance(url, str) and WEBHOOK_URL.match(url):
        case.body["url"] = "https://192.0.2.1/schemathesis"
