-- Every valid Shopee push, stored before it is acknowledged. One row per distinct push (dedup_key); a repeat only
-- increments seen_count. order-publisher claims unprocessed rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE push_inbox (
    id              BIGSERIAL PRIMARY KEY,
    -- code 3: '3:{shop_id}:{ordersn}:{status}:{update_time}'; otherwise '{code}:{shop_id}:{sha256(body)}'.
    dedup_key       TEXT NOT NULL CONSTRAINT push_inbox_dedup_key UNIQUE,
    shop_id         BIGINT CHECK (shop_id > 0),
    -- NULL when the push carried no code (e.g. a verification push); unknown codes are stored as they come.
    code            INTEGER,
    order_sn        TEXT CHECK (order_sn ~ '^[A-Z0-9]{1,32}$'),
    order_status    TEXT,
    update_time     BIGINT,
    payload         JSONB NOT NULL,
    -- 'push' from Shopee's POST, 'lost_push' from get_lost_push_message, 'order_list' from the order-list scan.
    source          TEXT NOT NULL DEFAULT 'push' CHECK (source IN ('push', 'lost_push', 'order_list')),
    seen_count      INTEGER NOT NULL DEFAULT 1 CHECK (seen_count > 0),
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- W3C traceparent of the request that stored it, so the publisher continues the trace.
    traceparent     TEXT,
    processed_at    TIMESTAMPTZ,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT
);
CREATE INDEX push_inbox_pending ON push_inbox (next_attempt_at, id) WHERE processed_at IS NULL;
