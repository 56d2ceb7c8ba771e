-- Where the order-list reconciliation of each shop got to (Shopee update_time, unix seconds).
CREATE TABLE reconcile_cursors (
    shop_id          BIGINT PRIMARY KEY CHECK (shop_id > 0),
    last_update_time BIGINT NOT NULL CHECK (last_update_time >= 0),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
