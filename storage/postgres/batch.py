"""The batch statement: a routed batch in one round trip to PostgreSQL.

One statement (atomic by itself: no BEGIN/COMMIT round trips), built once
from the table modules' common table expressions and prepared once by
asyncpg, with one array parameter per column:

* ``ins``: the batch's messages (:data:`.tables.messages.INSERT_ROWS`), ON
  CONFLICT DO NOTHING: without a target it covers both unique indexes, the
  client-key one (a retransmission) and stanza_id (the same batch retried
  after its commit was lost in transit: those rows are already archived).
  Rows are inserted (and numbered) in batch order, so when two copies of a
  message are in one batch the first one is kept;
* ``delivery``: the new rows that are not pending, as one delivery record
  (:mod:`.tables.deliveries`), and ``confirmed``: the earlier deliveries
  confirmed meanwhile, deleted, so a busy component commits once per batch;
* ``own``: the new rows' copies in users' own archives (:mod:`.tables.user_archives`);
* what the features record and read with the batch
  (:class:`storage.models.BatchExtras`): the cascade's read marks
  (:mod:`.tables.notify_seen`) and steps (:mod:`.tables.notify_jobs`), and
  the desk's routing (:mod:`.tables.desk_conversations`). A mark or step
  that depends on a message (writing is reading) is recorded only if that
  message is archived now, not as a duplicate.

The outer SELECT returns one row per archived message, then the assignees
and the reopened conversations, told apart by ``kind``.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.errors import NotFound
from storage.models import BatchExtras, DeskRouting, NewMessage
from storage.postgres.pool import Conn
from storage.postgres.tables import (
    desk_conversations,
    messages,
    notify_jobs,
    notify_seen,
    user_archives,
)

_ROWS = 11  # the parameters of messages.INSERT_ROWS
_OWN = _ROWS + 2  # after the confirmed deliveries
_SEEN = _OWN + user_archives.PARAMETERS
_STEPS = _SEEN + notify_seen.MARK_PARAMETERS
_ROUTE = _STEPS + notify_jobs.SCHEDULE_PARAMETERS

_STATEMENT = f"""
    WITH ins AS ({messages.INSERT_ROWS}
        ON CONFLICT DO NOTHING
        RETURNING id, stanza_id, pending, conversation_id
    ), delivery AS (
        INSERT INTO deliveries (message_ids)
        SELECT array_agg(id ORDER BY id) FROM ins WHERE NOT pending HAVING count(*) > 0
        RETURNING id
    ), confirmed AS (
        DELETE FROM deliveries WHERE id = ANY(${_ROWS + 1}::bigint[])
    ), {user_archives.insert_cte(_OWN, "ins")},
    {notify_seen.mark_cte(_SEEN, "ins")},
    {notify_jobs.schedule_cte(_STEPS, "ins")},
    {desk_conversations.route_ctes(_ROUTE)}
    SELECT 'archived' AS kind, stanza_id, (SELECT id FROM delivery) AS delivery_id,
           NULL::bigint AS conversation_id, NULL::text AS assignee
      FROM ins
    UNION ALL
    SELECT 'assigned', NULL, NULL, conversation_id, assignee FROM assigned
    UNION ALL
    SELECT 'reopened', NULL, NULL, conversation_id, NULL FROM reopened
"""


async def archive(
    conn: Conn, batch: Sequence[NewMessage], confirmed: Sequence[int], extras: BatchExtras
) -> tuple[set[str], int | None, DeskRouting]:
    """Archive what is not a duplicate, forget the ``confirmed`` deliveries and
    record the ``extras``.

    Returns the stanza-ids inserted, the new delivery's id (or None) and the
    routing the extras asked for. Raises NotFound for an unknown conversation.
    """
    try:
        rows = await conn.fetch(
            _STATEMENT,
            *messages.row_arrays(batch),
            list(confirmed),
            *user_archives.arrays(batch),
            *notify_seen.mark_arrays(extras.seen),
            *notify_jobs.schedule_arrays(extras.steps),
            list(extras.routed),
            list(extras.reopen),
        )
    except messages.MISSING_CONVERSATION as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    archived = [r for r in rows if r["kind"] == "archived"]
    delivery_id = archived[0]["delivery_id"] if archived else None
    routing = desk_conversations.routing(
        ((r["conversation_id"], r["assignee"]) for r in rows if r["kind"] == "assigned"),
        (r["conversation_id"] for r in rows if r["kind"] == "reopened"),
    )
    return {r["stanza_id"] for r in archived}, delivery_id, routing
