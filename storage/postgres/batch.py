"""The batch statement: a routed batch in one round trip to PostgreSQL.

One statement (atomic by itself: no BEGIN/COMMIT round trips), built once
from the table modules' common table expressions and prepared once by
asyncpg, with one parameter per column (the messages', their own copies'
and the cascade's, a few rows per message, packed as text:
:mod:`storage.postgres.packed`; the rest arrays):

* ``replies``: the agents' messages that join a request
  (:func:`.tables.request_targets.reply_cte`): the thread and payload of the
  newest open request in their conversation, which ``ins`` archives them
  with;
* ``ins``: the batch's messages (:func:`.tables.messages.insert_rows`), ON
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
  (:mod:`.tables.notify_seen`) and steps (:mod:`.tables.notify_jobs`), the
  desk's routing (:mod:`.tables.desk_conversations`), and the request
  statuses that answers and displayed markers move
  (:func:`.tables.request_targets.advance_ctes`). A mark, step or status
  move that depends on a message (writing is reading, an answer is an
  answer) is recorded only if that message is archived now, not as a
  duplicate.

The outer SELECT returns one row per archived message (with the thread and
payload ``replies`` gave it), then the assignees, the reopened conversations
and the moved request statuses, told apart by ``kind``.
"""

from __future__ import annotations

from collections.abc import Sequence

from storage.errors import NotFound
from storage.models import ArchivedBatch, ArchiveResult, BatchExtras, BatchRead, NewMessage
from storage.postgres.pool import Conn
from storage.postgres.tables import (
    desk_conversations,
    messages,
    notify_jobs,
    notify_seen,
    request_targets,
    user_archives,
)

_ROWS = 11  # the parameters of messages.insert_rows
_OWN = _ROWS + 2  # after the confirmed deliveries
_SEEN = _OWN + user_archives.PARAMETERS
_STEPS = _SEEN + notify_seen.MARK_PARAMETERS
_ROUTE = _STEPS + notify_jobs.SCHEDULE_PARAMETERS
_REPLIES = _ROUTE + desk_conversations.ROUTE_PARAMETERS
_ADVANCE = _REPLIES + request_targets.REPLY_PARAMETERS

_STATEMENT = f"""
    WITH {request_targets.reply_cte(_REPLIES)},
    ins AS ({messages.insert_rows("replies")}
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
    {desk_conversations.route_ctes(_ROUTE)},
    {request_targets.advance_ctes(_ADVANCE, "ins")}
    SELECT 'archived' AS kind, ins.stanza_id, replies.thread, replies.payload,
           (SELECT id FROM delivery) AS delivery_id,
           NULL::bigint AS conversation_id, NULL::text AS assignee,
           NULL::bigint AS ord, NULL::text AS public_id, NULL::text AS customer_jid,
           NULL::bigint AS company_id, NULL::text AS status
      FROM ins LEFT JOIN replies USING (stanza_id)
    UNION ALL
    SELECT 'assigned', NULL, NULL, NULL, NULL, conversation_id, assignee,
           NULL, NULL, NULL, NULL, NULL
      FROM assigned
    UNION ALL
    SELECT 'reopened', NULL, NULL, NULL, NULL, conversation_id, NULL,
           NULL, NULL, NULL, NULL, NULL
      FROM reopened
    UNION ALL
    SELECT 'moved', NULL, NULL, NULL, NULL, NULL, NULL,
           ord, public_id, customer_jid, company_id, status
      FROM moved
"""


async def archive(
    conn: Conn, batch: Sequence[NewMessage], confirmed: Sequence[int], extras: BatchExtras
) -> ArchivedBatch:
    """Archive what is not a duplicate, forget the ``confirmed`` deliveries and
    record the ``extras``.

    Returns the results of the messages inserted (in the order inserted; the
    duplicates are left out), the new delivery's id (or None), the threads
    the replies were given and what the extras read and moved. Raises
    NotFound for an unknown conversation.
    """
    try:
        rows = await conn.fetch(
            _STATEMENT,
            *messages.row_columns(batch),
            list(confirmed),
            *user_archives.columns(batch),
            *notify_seen.mark_columns(extras.seen),
            *notify_jobs.schedule_columns(extras.steps),
            list(extras.routed),
            list(extras.reopen),
            *request_targets.reply_arrays(extras.replies),
            *request_targets.advance_arrays(extras.updates),
        )
    except messages.MISSING_CONVERSATION as exc:
        raise NotFound(f"conversation does not exist: {exc.detail}") from exc
    archived = [r for r in rows if r["kind"] == "archived"]
    routing = desk_conversations.routing(
        ((r["conversation_id"], r["assignee"]) for r in rows if r["kind"] == "assigned"),
        (r["conversation_id"] for r in rows if r["kind"] == "reopened"),
    )
    return ArchivedBatch(
        results=[ArchiveResult(r["stanza_id"], duplicate=False) for r in archived],
        delivery_id=archived[0]["delivery_id"] if archived else None,
        threads={r["stanza_id"]: (r["thread"], r["payload"]) for r in archived if r["thread"]},
        read=BatchRead(
            routing=routing,
            changes=request_targets.changes(r for r in rows if r["kind"] == "moved"),
        ),
    )
