"""Lists follow `next_cursor`: 250 deliveries read across pages."""

from __future__ import annotations

from typing import Any

from conftest import Receiver

COUNT = 250


def test_iterators_follow_pagination_over_250_deliveries(
    admin: Any, project: str, receiver: Receiver
) -> None:
    hook = admin.webhooks.create(project, url=receiver.url, events=["execution_completed"])["id"]
    batch = admin.events.send_batch(project, [
        {"type": "execution_completed", "payload": {"project": f"run-{i}", "data": {"i": i}}}
        for i in range(COUNT)
    ])
    sent = [e["deliveries"][0] for e in batch["events"]]
    assert len(set(sent)) == COUNT

    pages = list(admin.deliveries.list(project, webhook_id=hook, page_size=100).pages())
    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert pages[-1].next_cursor is None
    walked = [d["id"] for p in pages for d in p.items]
    assert sorted(walked) == sorted(sent)
    # Newest first: ids are time-ordered.
    assert walked == sorted(walked, reverse=True)

    # The default page size (50): five requests, the same deliveries in order.
    assert [d["id"] for d in admin.deliveries.list(project)] == walked
    assert len(list(admin.deliveries.list(project).pages())) == 5

    events = [e["id"] for e in admin.events.list(project, page_size=249)]
    assert sorted(events) == sorted(e["id"] for e in batch["events"])
    receiver.wait_for(COUNT, timeout=60)
