-- Gold entity `order_event`: the order service's domain events about orders, from its transactional
-- outbox (silver `outbox`, an outbox spec: each committed event once, keyed by its id; see README,
-- "The transactional outbox"). Only committed transactions reach the outbox's change stream, so
-- every row here is an event whose business change committed.
--
--   * order_id: the event's aggregate id (aggregatetype 'order'); events of other aggregates are
--     left out.
--   * status: the order status the event's JSON payload reports ($.status), NULL when it has none.
--   * committed_at: the source commit time; source_position: the source's position of the event
--     (silver's _sequence, a text whose order is the source's commit order: Postgres WAL position
--     first): an order's events sorted by it are in the order the service committed them.
SELECT
    id AS event_id,
    TRIM(aggregateid) AS order_id,
    TRIM(type) AS event_type,
    get_json_object(payload, '$.status') AS status,
    payload,
    created_at,
    _commit_ts AS committed_at,
    _sequence AS source_position
FROM outbox
WHERE TRIM(aggregatetype) = 'order'
