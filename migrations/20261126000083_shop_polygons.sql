-- order-publisher serviceable area (channel 90026 Entrega Expressa): per shop, the last KML uploaded with
-- `logistics/upload_serviceable_polygon` (its SHA-256; the file is recomputed from the hub config) and how its task
-- went. A shop whose computed KML differs from `kml_sha256`, or whose last attempt did not end `done`, is handled
-- again on the next hub sync.
--   status: uploading  - claimed by a replica, upload under way (a stale claim is taken over after 10 minutes)
--           processing - Shopee took the file (task_id); its task is still running
--           done       - the task completed (status 0): the area is in place
--           failed     - the task ended with KML file errors (status 2, Shopee's message in last_error)
--           error      - the upload or the check failed (last_error); retried next cycle
CREATE TABLE shop_polygons (
    shop_id      BIGINT PRIMARY KEY,
    kml_sha256   TEXT NOT NULL,
    task_id      TEXT,
    status       TEXT NOT NULL CHECK (status IN ('uploading', 'processing', 'done', 'failed', 'error')),
    uploaded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    checked_at   TIMESTAMPTZ,
    last_error   TEXT
);
