-- Shops, their tokens, hubs and product mappings: the data every flow reads.
-- Ids are Shopee's (BIGINT, positive). Timestamps are timestamptz, UTC.

CREATE TABLE shops (
    shop_id                  BIGINT PRIMARY KEY CHECK (shop_id > 0),
    name                     TEXT,
    -- Instant Mart: an outlet shop belongs to a mart shop; price and stock are managed per outlet.
    mart_shop_id             BIGINT REFERENCES shops (shop_id) CHECK (mart_shop_id <> shop_id),
    -- Several warehouses: stock updates must carry a location_id.
    multi_warehouse          BOOLEAN NOT NULL DEFAULT false,
    authorized_at            TIMESTAMPTZ,
    -- Shopee authorizations last at most 365 days (push code 12 warns 7 days ahead).
    authorization_expires_at TIMESTAMPTZ,
    deauthorized_at          TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per shop: the current token pair, encrypted (AES-256-GCM with TOKEN_ENCRYPTION_KEY; nonce || ciphertext).
-- A refresh replaces both tokens in one UPDATE guarded by `generation`, so a pair is never half-rotated.
CREATE TABLE shop_tokens (
    shop_id                  BIGINT PRIMARY KEY REFERENCES shops (shop_id) ON DELETE CASCADE,
    access_token_enc         BYTEA NOT NULL CHECK (octet_length(access_token_enc) > 12),
    refresh_token_enc        BYTEA NOT NULL CHECK (octet_length(refresh_token_enc) > 12),
    access_expires_at        TIMESTAMPTZ NOT NULL,
    refresh_expires_at       TIMESTAMPTZ NOT NULL,
    generation               BIGINT NOT NULL DEFAULT 1 CHECK (generation > 0),
    refreshed_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (refresh_expires_at >= access_expires_at)
);

-- Hubs (dark stores) and the Shopee shop that sells for each. Refreshed from the Hub Config Service.
CREATE TABLE hubs (
    hub_id       TEXT PRIMARY KEY CHECK (hub_id ~ '^[A-Z0-9][A-Z0-9_-]{0,31}$'),
    shop_id      BIGINT NOT NULL REFERENCES shops (shop_id),
    -- Shopee warehouse location for multi-warehouse shops; NULL for single-location shops.
    location_id  TEXT CHECK (location_id <> ''),
    active       BOOLEAN NOT NULL DEFAULT true,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- One hub per shop location: a stock update can never be ambiguous about which hub it is for.
    CONSTRAINT hubs_one_per_shop_location UNIQUE NULLS NOT DISTINCT (shop_id, location_id)
);
CREATE INDEX hubs_shop_id ON hubs (shop_id);

-- SKU <-> Shopee (shop, item, model). The source of truth; Redis only caches it.
CREATE TABLE product_mappings (
    sku            TEXT NOT NULL CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    shop_id        BIGINT NOT NULL REFERENCES shops (shop_id),
    item_id        BIGINT NOT NULL CHECK (item_id > 0),
    -- 0 when the item has no models, as Shopee's price and stock APIs expect.
    model_id       BIGINT NOT NULL DEFAULT 0 CHECK (model_id >= 0),
    -- Instant Mart: the outlet's item id when it differs from the mart item.
    outlet_item_id BIGINT CHECK (outlet_item_id > 0),
    source         TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'discovered')),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A SKU appears once per shop, and a Shopee model maps to exactly one SKU.
    CONSTRAINT product_mappings_pkey PRIMARY KEY (sku, shop_id),
    CONSTRAINT product_mappings_one_sku_per_model UNIQUE (shop_id, item_id, model_id)
);
