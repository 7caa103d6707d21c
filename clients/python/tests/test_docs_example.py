"""The examples of docs/python.md's "Emit from a training run" run as
written, and their events reach a webhook."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN, Receiver, Service

DOC = Path(__file__).resolve().parents[3] / "docs" / "python.md"


def examples() -> list[str]:
    text = DOC.read_text()
    section = text.split("## Emit from a training run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_training_run_examples_are_three_lines_and_deliver(
    admin: Any, service: Service, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    snippets = examples()
    assert len(snippets) == 2
    admin.projects.create("fraud-team", "Fraud team")
    try:
        admin.webhooks.create("fraud-team", url=receiver.url, events=["*"])
        monkeypatch.setenv("MLHOOK_URL", service.base)
        monkeypatch.setenv("MLHOOK_TOKEN", admin.tokens.create("fraud-team")["token"])
        for snippet in snippets:
            assert len(snippet.strip().splitlines()) == 3
            # The retry must be the same request: the clock may not tick between the two.
            with monkeypatch.context() as frozen:
                frozen.setattr("time.time", lambda: 1_765_000_000.0)
                for _ in range(2):  # the idempotency key: a retried step sends once
                    exec(snippet, {"run_id": "run-0042", "accuracy": 0.93})
        bodies = [json.loads(r.body) for r in receiver.wait_for(2)]
        assert bodies[0]["data"]["valohai.execution-id"] == "run-0042"
        assert bodies[1]["eventTrigger"] == "MODEL_VERSION_CREATED"
        assert len(list(admin.events.list("fraud-team"))) == 2
    finally:
        admin.projects.delete("fraud-team")
