-- catalog-sync-worker content sync: a Catalog image URL -> the Shopee image id `media_space/upload_image` gave for
-- it, so an image is downloaded and uploaded once, whatever the number of items, shops and runs that use it.
-- (Uploads are partner-level: the id is usable by every shop.)
CREATE TABLE catalog_images (
    url           TEXT PRIMARY KEY,
    image_id      TEXT NOT NULL,
    bytes         INTEGER NOT NULL CHECK (bytes > 0),
    content_type  TEXT NOT NULL,
    uploaded_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
