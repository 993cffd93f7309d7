"""One round trip through BESH with the official Python `openai` SDK.

Reads BESH_BASE_URL and BESH_API_KEY, drives files and batches the way a Python user would, and prints ONE JSON
object on stdout with what it observed. It judges nothing beyond what it needs to go on: the caller asserts.
Any unexpected exception exits non-zero with a message on stderr.
"""

import io
import json
import os
import sys
import time

import importlib
import openai

N_REQUESTS = 20
FINAL = {"completed", "failed", "expired", "cancelled"}


def batch_jsonl(n: int) -> bytes:
    lines = [
        {
            "custom_id": f"py-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "sim-model",
                "messages": [{"role": "user", "content": f"python question {i}"}],
                "max_tokens": 8,
            },
        }
        for i in range(n)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def expect_error(cls: type, call) -> str:
    """Runs call, which must raise exactly cls; returns the class name seen."""
    try:
        call()
    except cls as e:
        return type(e).__name__
    raise RuntimeError(f"expected {cls.__name__}, but the call succeeded")


def main() -> dict:
    client = openai.OpenAI(
        base_url=os.environ["BESH_BASE_URL"],
        api_key=os.environ["BESH_API_KEY"],
        max_retries=0,
        timeout=60,
    )

    # Two earlier files, so that the listing below has to follow cursors to reach the batch's input.
    for i in range(2):
        client.files.create(file=(f"earlier-{i}.jsonl", batch_jsonl(1)), purpose="batch")

    uploaded = client.files.create(
        file=("requests.jsonl", io.BytesIO(batch_jsonl(N_REQUESTS)), "application/jsonl"),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    processed = client.files.wait_for_processing(uploaded.id, poll_interval=0.2, max_wait_seconds=30)

    # limit=1, oldest first: the SDK's auto-pagination follows `after` cursors to the third page.
    listed_ids = [f.id for f in client.files.list(limit=1, order="asc", purpose="batch")]

    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"client": "python-sdk"},
        extra_body={"priority": "high"},  # a BESH create parameter
    )
    priority_at_create = getattr(batch, "priority", None)
    deadline = time.monotonic() + 60
    while batch.status not in FINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(f"batch {batch.id} still {batch.status} after 60 s")
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)

    output = b""
    if batch.output_file_id:
        output = client.files.content(batch.output_file_id).content
    output_lines = [json.loads(line) for line in output.decode().splitlines() if line.strip()]

    errors = [
        expect_error(openai.BadRequestError, lambda: client.batches.cancel(batch.id)),
        expect_error(openai.NotFoundError, lambda: client.batches.retrieve("batch_does_not_exist")),
        expect_error(openai.NotFoundError, lambda: client.models.retrieve("no-such-model")),
    ]
    model_ids = [m.id for m in client.models.list()]

    # BESH's partial results, a page of 7 lines at a time: the raw response carries the cursor in a header. The
    # SDK's own HTTP library gives the raw response class (httpx in released SDKs; its successor in some).
    http_client = next(c for c in type(client._client).__mro__ if not c.__module__.startswith("openai"))
    http = importlib.import_module(http_client.__module__.split(".")[0])
    partial_ids = []
    after = None
    for _ in range(100):
        params = {"limit": 7, **({"after": after} if after else {})}
        page = client.get(
            f"/batches/{batch.id}/partial_results", cast_to=http.Response, options={"params": params}
        )
        partial_ids += [json.loads(line)["custom_id"] for line in page.text.splitlines() if line.strip()]
        after = page.headers["x-next-after"]
        if page.headers["x-has-more"] == "false":
            break

    return {
        "openai_version": openai.__version__,
        "uploaded": uploaded.model_dump(),
        "processed": processed.model_dump(),
        "listed_ids": listed_ids,
        "model_ids": model_ids,
        "partial_custom_ids": partial_ids,
        "batch": {
            "id": batch.id,
            "status": batch.status,
            "metadata": batch.metadata,
            "priority_at_create": priority_at_create,
            "priority": getattr(batch, "priority", None),
            "request_counts": batch.request_counts.model_dump() if batch.request_counts else None,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
        },
        "output_line_count": len(output_lines),
        "output_custom_ids": [line["custom_id"] for line in output_lines],
        "output_status_codes": sorted({line["response"]["status_code"] for line in output_lines}),
        "errors": errors,
    }


if __name__ == "__main__":
    try:
        observed = main()
    except Exception as e:  # noqa: BLE001 - any surprise must fail the run, loudly
        print(f"sdk_roundtrip.py: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(observed))
