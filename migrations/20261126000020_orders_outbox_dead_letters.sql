-- Orders as this service knows them, the transactional outbox, and the dead letters every worker parks work in.

-- One row per Shopee order we have heard of. order_sn is globally unique at Shopee; delivery events find orders by it.
CREATE TABLE orders (
    shop_id          BIGINT NOT NULL CHECK (shop_id > 0),
    order_sn         TEXT NOT NULL CHECK (order_sn ~ '^[A-Z0-9]{1,32}$'),
    -- Intake: received (seen, not actionable yet) -> needs_mapping | published; parked when it cannot be handled.
    intake_state     TEXT NOT NULL DEFAULT 'received'
                     CHECK (intake_state IN ('received', 'needs_mapping', 'published', 'parked')),
    -- Shopee's latest status as we saw it (READY_TO_SHIP, CANCELLED, ...).
    shopee_status    TEXT,
    shopee_update_time BIGINT,
    hub_id           TEXT,
    -- The new_order event's id, once the event is in the outbox.
    new_order_event_id UUID,
    published_at     TIMESTAMPTZ,
    -- A CANCELLED that arrived after publishing: recorded and visible, never a second event.
    cancelled_after_publish_at TIMESTAMPTZ,
    -- The order system's id, learned from delivery events (key of deliveries.out).
    ordr_order_id    TEXT,
    -- Delivery progress as told to Shopee (domain::delivery::DeliveryState); only moves forward.
    delivery_state   TEXT NOT NULL DEFAULT 'ready_to_ship'
                     CHECK (delivery_state IN ('ready_to_ship', 'arranged', 'picked_up', 'delivered',
                                               'delivery_failed', 'cancelled')),
    delivery_updated_at TIMESTAMPTZ,
    -- Why the order is needs_mapping or parked (e.g. the unmapped lines).
    detail           TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, order_sn),
    CHECK ((intake_state = 'published') = (published_at IS NOT NULL))
);
CREATE UNIQUE INDEX orders_order_sn ON orders (order_sn);
CREATE INDEX orders_needs_mapping ON orders (shop_id) WHERE intake_state = 'needs_mapping';

-- Messages to publish, written in the same transaction as the state change that causes them.
-- idempotency_key is unique: one new_order per (shop_id, order_sn), however often the work is redone.
CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    topic           TEXT NOT NULL,
    ordering_key    TEXT,
    idempotency_key TEXT NOT NULL CONSTRAINT outbox_idempotency_key UNIQUE,
    attributes      JSONB NOT NULL DEFAULT '{}'::jsonb,
    payload         JSONB NOT NULL,
    traceparent     TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    published_at    TIMESTAMPTZ,
    message_id      TEXT
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE published_at IS NULL;

-- Work any worker could not do, with the reason. campaign-api lists them and requests a redrive; the owning
-- worker (by source) picks redrive_requested rows up again.
CREATE TABLE dead_letters (
    id             BIGSERIAL PRIMARY KEY,
    -- The worker that owns it: order-publisher, catalog-sync-worker, delivery-status-consumer, campaign-api.
    source         TEXT NOT NULL,
    -- What it is: inbox_push, order, price_update, inventory_update, delivery_event, content_sync, ...
    kind           TEXT NOT NULL,
    -- A human handle: "900001:2511250ABCDEF", "789100000001@SAO-01", a Kafka offset ...
    reference      TEXT,
    reason         TEXT NOT NULL,
    payload        JSONB NOT NULL,
    status         TEXT NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'redrive_requested', 'redriven')),
    attempts       INTEGER NOT NULL DEFAULT 1,
    redrive_count  INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_by_status ON dead_letters (source, status, id);
