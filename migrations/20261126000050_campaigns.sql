-- campaign-api: campaigns (one Shopee discount per shop), their items, and Idempotency-Key records.
-- Mapping-discovery and content-sync jobs live in 20261126000040_catalog_sync.sql (queued by campaign-api,
-- run by catalog-sync-worker).

-- A campaign as the API user sees it, in SKU terms.
CREATE TABLE campaigns (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL CHECK (ends_at > starts_at),
    -- The hubs asked for; NULL = every shop where the SKUs are mapped.
    hub_ids     TEXT[],
    -- creating: Shopee calls in progress (or interrupted: resumed by a retry with the same Idempotency-Key,
    -- compensated by the reconcile loop when abandoned); active: at least one shop's discount exists;
    -- failed: no discount exists; ended / deleted: by the API.
    state       TEXT NOT NULL DEFAULT 'creating'
                CHECK (state IN ('creating', 'active', 'failed', 'ended', 'deleted')),
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX campaigns_state ON campaigns (state, id);

-- One Shopee discount per (campaign, shop). `discount_id` is written the moment add_discount answers, before any
-- item is added, so a discount on Shopee is never unknown to us (R15).
CREATE TABLE campaign_shops (
    campaign_id    BIGINT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    shop_id        BIGINT NOT NULL CHECK (shop_id > 0),
    -- pending: nothing sent; creating: add_discount sent, answer not recorded yet (a retry looks the discount up
    -- by name and period before creating another); discount_created: discount exists, items being added;
    -- active: items added; compensating: delete_discount needed (retried by the reconcile loop);
    -- failed: no discount on Shopee; ended; deleted.
    state          TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'creating', 'discount_created', 'active', 'compensating',
                                    'failed', 'ended', 'deleted')),
    discount_id    BIGINT CHECK (discount_id > 0),
    -- Shopee's status as last seen by get_discount / get_discount_list: upcoming | ongoing | expired | missing.
    shopee_status  TEXT,
    synced_at      TIMESTAMPTZ,
    error          TEXT,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, shop_id)
);
CREATE UNIQUE INDEX campaign_shops_discount ON campaign_shops (shop_id, discount_id) WHERE discount_id IS NOT NULL;
CREATE INDEX campaign_shops_open ON campaign_shops (state)
    WHERE state IN ('pending', 'creating', 'discount_created', 'compensating');

-- The SKUs of a campaign, resolved per shop to Shopee (item, model).
CREATE TABLE campaign_items (
    campaign_id       BIGINT NOT NULL,
    shop_id           BIGINT NOT NULL,
    sku               TEXT NOT NULL,
    item_id           BIGINT NOT NULL CHECK (item_id > 0),
    model_id          BIGINT NOT NULL CHECK (model_id >= 0),
    promotion_price   BIGINT NOT NULL CHECK (promotion_price > 0), -- centavos
    purchase_limit    INTEGER NOT NULL DEFAULT 0 CHECK (purchase_limit >= 0),
    promotion_stock   INTEGER CHECK (promotion_stock >= 0),
    -- pending: not sent yet; added: Shopee accepted it; rejected: Shopee refused it (error_code, error_message);
    -- removed: taken out by PATCH.
    state             TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'added', 'rejected', 'removed')),
    error_code        TEXT,
    error_message     TEXT,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, shop_id, sku),
    FOREIGN KEY (campaign_id, shop_id) REFERENCES campaign_shops (campaign_id, shop_id) ON DELETE CASCADE
);

-- Idempotency-Key records: the first request's hash and, once finished, its response; a retry with the same key
-- gets that response. While unfinished, `locked_until` is the lease of the request working on it; an expired lease
-- lets a retry take over and resume the campaign where it stopped.
CREATE TABLE idempotency_keys (
    scope          TEXT NOT NULL,
    key            TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash   TEXT NOT NULL,
    campaign_id    BIGINT REFERENCES campaigns (id) ON DELETE SET NULL,
    locked_until   TIMESTAMPTZ,
    response_status INTEGER,
    response_body  JSONB,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at   TIMESTAMPTZ,
    PRIMARY KEY (scope, key)
);
