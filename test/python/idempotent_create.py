"""Creates the same file and the same batch twice with the official Python `openai` SDK, each pair under one
Idempotency-Key sent with `extra_headers`, as a client retrying after a timeout would.

Reads BESH_BASE_URL and BESH_API_KEY and prints ONE JSON object on stdout with the ids it got: the caller asserts.
"""

import json
import os
import uuid

import openai


def main() -> dict:
    client = openai.OpenAI(
        base_url=os.environ["BESH_BASE_URL"],
        api_key=os.environ["BESH_API_KEY"],
        max_retries=0,
        timeout=60,
    )
    filename = f"py-idem-{uuid.uuid4().hex}.jsonl"
    line = {
        "custom_id": "py-0",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "sim-model", "messages": [{"role": "user", "content": "hello"}]},
    }
    content = (json.dumps(line) + "\n").encode()

    upload_key = f"py-upload-{uuid.uuid4()}"
    files = [
        client.files.create(
            file=(filename, content), purpose="batch", extra_headers={"Idempotency-Key": upload_key}
        )
        for _ in range(2)
    ]
    batch_key = f"py-batch-{uuid.uuid4()}"
    batches = [
        client.batches.create(
            input_file_id=files[0].id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            extra_headers={"Idempotency-Key": batch_key},
        )
        for _ in range(2)
    ]
    return {
        "filename": filename,
        "file_ids": [f.id for f in files],
        "batch_ids": [b.id for b in batches],
    }


if __name__ == "__main__":
    print(json.dumps(main()))
