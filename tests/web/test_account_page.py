"""The account page's records: one UNION ALL on PostgreSQL, the same records as four queries."""

import pytest

from tests.web.test_query_counts import grow
from web.account_page import recent_records


def _shown(records) -> list[tuple]:
    """What the timeline and the side panels read of each record."""
    return (
        [
            (t.pk, t.external_id, t.subject, t.get_priority_display(), t.get_status_display(), t.opened_at)
            for t in records.tickets
        ]
        + [(s.pk, s.get_kind_display(), s.score, s.comment, s.responded_at) for s in records.surveys]
        + [
            (p.pk, p.get_kind_display(), p.summary, p.author.username if p.author else None, p.occurred_at)
            for p in records.touchpoints
        ]
        + [
            (
                c.pk,
                c.from_stage.name if c.from_stage else None,
                c.to_stage.name,
                c.get_cause_display(),
                c.changed_at,
            )
            for c in records.stage_changes
        ]
    )


def test_the_union_reads_the_same_records_as_one_query_per_kind(
    world, place_on_journeys, django_assert_num_queries
):
    first = grow(world, 12, place_on_journeys)
    with django_assert_num_queries(1):
        united = recent_records(first, limit=10, union=True)
    with django_assert_num_queries(4):
        apart = recent_records(first, limit=10, union=False)
    assert _shown(united) == _shown(apart)
    assert (len(united.tickets), len(united.surveys), len(united.touchpoints)) == (10, 10, 10)
    assert united.stage_changes, "place_on_journeys records a stage change"
    assert {p.author.username for p in united.touchpoints} == {world.csm_a.username}
    times = [t.opened_at for t in united.tickets]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("size", [12])
def test_the_page_timeline_shows_each_kind(world, client, place_on_journeys, size):
    first = grow(world, size, place_on_journeys)
    client.force_login(world.csm_a)
    timeline = client.get(f"/accounts/{first.pk}/").context["timeline"]
    kinds = {item["kind"] for item in timeline}
    assert {"ticket", "survey", "touchpoint", "stage", "task", "alert"} <= kinds
    titles = [item["title"] for item in timeline]
    assert any(title.startswith(f"Ticket #{size}-0: s") for title in titles)
    assert any(title.startswith("Call by ") for title in titles)
    assert [item["at"] for item in timeline] == sorted((item["at"] for item in timeline), reverse=True)
