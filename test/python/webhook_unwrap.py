"""Verifies captured BESH webhook deliveries with the official Python `openai` SDK's `webhooks.unwrap`.

Reads one JSON object on stdin: {"secret": ..., "deliveries": [{"body": ..., "headers": {...}}, ...]}, and prints
ONE JSON object on stdout: for each delivery, the parsed event (class, type, id, batch id) or the error's class.
With BESH_BASE_URL and BESH_API_KEY set, it also registers an endpoint as the README shows (`registered`).
The caller asserts.
"""

import json
import os
import sys

import openai


def main() -> None:
    given = json.load(sys.stdin)
    client = openai.OpenAI(
        api_key=os.environ.get("BESH_API_KEY", "unused"),
        base_url=os.environ.get("BESH_BASE_URL", "http://127.0.0.1:9/v1"),
    )
    registered = None
    if "BESH_BASE_URL" in os.environ:
        registered = client.post(
            "/webhook_endpoints",
            cast_to=object,
            body={"url": "https://example.com/besh", "events": ["batch.completed", "batch.failed"]},
        )
        client.delete(f"/webhook_endpoints/{registered['id']}", cast_to=object)
    results = []
    for delivery in given["deliveries"]:
        try:
            event = client.webhooks.unwrap(delivery["body"], delivery["headers"], secret=given["secret"])
            results.append(
                {
                    "ok": True,
                    "class": type(event).__name__,
                    "type": event.type,
                    "id": event.id,
                    "batch_id": event.data.id,
                    "created_at": event.created_at,
                }
            )
        except Exception as err:  # the caller asserts which class
            results.append({"ok": False, "error": type(err).__name__})
    print(json.dumps({"openai_version": openai.__version__, "registered": registered, "results": results}))


if __name__ == "__main__":
    main()
