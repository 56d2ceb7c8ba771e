-- catalog-sync-worker: price and stock coalescing, events waiting for a mapping, discovery and content-sync jobs.

-- The newest value seen and the last value applied, per Shopee model and kind. The newest-wins rule lives in the
-- UPSERT (`WHERE EXCLUDED.newest_version > catalog_sync_state.newest_version`): an older version never replaces a
-- newer one, whatever the order of delivery, the replica or a restart.
CREATE TABLE catalog_sync_state (
    shop_id          BIGINT NOT NULL REFERENCES shops (shop_id),
    item_id          BIGINT NOT NULL CHECK (item_id > 0),
    model_id         BIGINT NOT NULL CHECK (model_id >= 0),
    kind             TEXT NOT NULL CHECK (kind IN ('price', 'stock')),
    -- Stock of a multi-warehouse shop is per warehouse location; '' for price and single-location shops.
    location_id      TEXT NOT NULL DEFAULT '',
    sku              TEXT NOT NULL,
    hub_id           TEXT NOT NULL,
    newest_version   BIGINT NOT NULL,
    -- Centavos for price, units for stock.
    newest_value     BIGINT NOT NULL CHECK (newest_value >= 0),
    newest_event_id  TEXT NOT NULL,
    newest_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_version  BIGINT,
    applied_value    BIGINT,
    applied_at       TIMESTAMPTZ,
    -- pending: newest_version not applied yet; applied: it is; parked: Shopee refused it for good (dead letter).
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'parked')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, item_id, model_id, kind, location_id)
);
CREATE INDEX catalog_sync_state_pending ON catalog_sync_state (shop_id, item_id, kind) WHERE state = 'pending';

-- Items with pending models, claimed by flushers (FOR UPDATE SKIP LOCKED + lease). `seq` changes whenever new work
-- arrives, so a flusher only removes the row when nothing arrived while it was sending.
CREATE TABLE catalog_sync_dirty (
    shop_id      BIGINT NOT NULL,
    item_id      BIGINT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('price', 'stock')),
    seq          BIGINT NOT NULL DEFAULT 1,
    -- Not before: the flush window (coalescing) or the retry backoff.
    due_at       TIMESTAMPTZ NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    lease_owner  TEXT,
    lease_until  TIMESTAMPTZ,
    PRIMARY KEY (shop_id, item_id, kind)
);
CREATE INDEX catalog_sync_dirty_due ON catalog_sync_dirty (due_at);

-- Events whose SKU or hub has no mapping yet (needs_mapping): the newest per (kind, sku, hub), applied when the
-- mapping appears.
CREATE TABLE catalog_sync_unmapped (
    kind          TEXT NOT NULL CHECK (kind IN ('price', 'stock')),
    sku           TEXT NOT NULL,
    hub_id        TEXT NOT NULL,
    version       BIGINT NOT NULL,
    value         BIGINT NOT NULL CHECK (value >= 0),
    event_id      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, sku, hub_id)
);

-- Mapping discovery (queued by campaign-api `POST /v1/mappings/discover`, run by catalog-sync-worker).
CREATE TABLE mapping_discovery_jobs (
    id            BIGSERIAL PRIMARY KEY,
    shop_id       BIGINT NOT NULL CHECK (shop_id > 0),
    status        TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    items_scanned INTEGER NOT NULL DEFAULT 0,
    matched       INTEGER NOT NULL DEFAULT 0,
    unmatched     INTEGER NOT NULL DEFAULT 0,
    conflicting   INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    lease_until   TIMESTAMPTZ,
    attempts      INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX mapping_discovery_jobs_open ON mapping_discovery_jobs (id) WHERE status IN ('queued', 'running');

-- Content sync (queued by campaign-api `POST /v1/catalog/content-sync`; `skus` NULL = every mapped SKU).
CREATE TABLE content_sync_jobs (
    id           BIGSERIAL PRIMARY KEY,
    skus         TEXT[],
    status       TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
    items_seen   INTEGER NOT NULL DEFAULT 0,
    updated      INTEGER NOT NULL DEFAULT 0,
    unchanged    INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    lease_until  TIMESTAMPTZ,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ
);
CREATE INDEX content_sync_jobs_open ON content_sync_jobs (id) WHERE status IN ('queued', 'running');

-- What content was last sent per Shopee item, field by field, so only changes are sent.
CREATE TABLE content_sync_state (
    shop_id     BIGINT NOT NULL,
    item_id     BIGINT NOT NULL CHECK (item_id > 0),
    sku         TEXT NOT NULL,
    sent        JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, item_id)
);

-- The scheduled content sync's watermark for productsUpdatedSince.
CREATE TABLE content_sync_cursor (
    name        TEXT PRIMARY KEY,
    since       TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
