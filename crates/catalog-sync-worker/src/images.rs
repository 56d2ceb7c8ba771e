//! Catalog image URLs -> Shopee image ids for `update_item`'s `image.image_id_list`.
//!
//! Shopee takes image ids, never URLs: each image is downloaded from the Catalog's URL (a timeout and a 10 MB cap;
//! it must be a JPEG, PNG, GIF or WebP by its bytes), uploaded with `media_space/upload_image`, and its id kept in
//! `catalog_images` (url -> image_id), so a URL is uploaded once whatever the number of items, shops and runs that
//! use it. URLs are never logged nor put in errors whole: [`redact`] keeps scheme, host and path only (no
//! credentials, query or fragment).

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use shopee_client::ShopeeClient;
use shopee_client::api::media::{MAX_IMAGE_BYTES, UploadImageRequest};
use sqlx::PgPool;

/// The most images sent for an item (Shopee's usual limit): the Catalog's first ones, in its order.
pub const MAX_ITEM_IMAGES: usize = 9;

/// How long one image download may take, from connect to the last byte.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// `scheme://host[:port]/path` of a URL: no user info, query or fragment (which can carry credentials), at most
/// 160 characters.
pub fn redact(url: &str) -> String {
    let Ok(u) = reqwest::Url::parse(url) else {
        return "<not a URL>".to_owned();
    };
    let mut out = format!("{}://{}", u.scheme(), u.host_str().unwrap_or(""));
    if let Some(port) = u.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(u.path());
    if out.chars().count() > 160 {
        out = out.chars().take(159).collect::<String>() + "…";
    }
    out
}

/// Why one of a product's images could not be turned into an image id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    /// 1-based position in the product's image list.
    pub position: usize,
    /// The URL, redacted.
    pub url: String,
    pub reason: String,
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "image {} ({}): {}", self.position, self.url, self.reason)
    }
}

/// The image's format from its first bytes: (content type, file extension).
fn sniff(data: &[u8]) -> Option<(&'static str, &'static str)> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(("image/jpeg", "jpg"))
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some(("image/gif", "gif"))
    } else if data.len() >= 12 && data.starts_with(b"RIFF") && &data[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

/// Turns image URLs into Shopee image ids, uploading only what `catalog_images` does not know yet.
pub struct Images {
    pool: PgPool,
    shopee: ShopeeClient,
    http: reqwest::Client,
    max_bytes: usize,
}

impl Images {
    pub fn new(pool: PgPool, shopee: ShopeeClient) -> Self {
        Self {
            pool,
            shopee,
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(DOWNLOAD_TIMEOUT)
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .unwrap_or_default(),
            max_bytes: MAX_IMAGE_BYTES,
        }
    }

    /// The image ids of `urls`, in their order. `Ok(Err(..))`: an image could not be had (the first such one);
    /// `Err`: the database failed.
    pub async fn image_ids(&self, urls: &[String]) -> anyhow::Result<Result<Vec<String>, ImageError>> {
        let known: HashMap<String, String> = sqlx::query_as::<_, (String, String)>(
            "SELECT url, image_id FROM catalog_images WHERE url = ANY($1)",
        )
        .bind(urls)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
        let mut ids = Vec::with_capacity(urls.len());
        for (i, url) in urls.iter().enumerate() {
            if let Some(id) = known.get(url) {
                ids.push(id.clone());
                continue;
            }
            let (data, content_type, ext) = match self.download(url).await {
                Ok(d) => d,
                Err(reason) => {
                    return Ok(Err(ImageError {
                        position: i + 1,
                        url: redact(url),
                        reason,
                    }));
                }
            };
            let bytes = data.len();
            let req = UploadImageRequest {
                file_name: format!("image.{ext}"),
                content_type: content_type.to_owned(),
                data,
            };
            let uploaded = match self.shopee.upload_image(&req).await {
                Ok(r) => r.image_info.image_id,
                Err(e) => {
                    return Ok(Err(ImageError {
                        position: i + 1,
                        url: redact(url),
                        reason: format!("upload failed: {e}"),
                    }));
                }
            };
            // Another replica may have uploaded the same URL meanwhile: the stored id wins.
            let id: String = sqlx::query_scalar(
                "INSERT INTO catalog_images (url, image_id, bytes, content_type) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (url) DO UPDATE SET url = EXCLUDED.url RETURNING image_id",
            )
            .bind(url)
            .bind(&uploaded)
            .bind(i32::try_from(bytes).unwrap_or(i32::MAX))
            .bind(content_type)
            .fetch_one(&self.pool)
            .await?;
            tracing::debug!(url = %redact(url), image.id = %id, bytes, "image uploaded to Shopee");
            ids.push(id);
        }
        Ok(Ok(ids))
    }

    /// Downloads one image: (bytes, content type, extension), or why not (never the whole URL).
    async fn download(&self, url: &str) -> Result<(Vec<u8>, &'static str, &'static str), String> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "not a valid URL".to_owned())?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "scheme {} is not downloaded (http or https only)",
                parsed.scheme()
            ));
        }
        let mut resp = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| download_error(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("download answered HTTP {}", status.as_u16()));
        }
        let declared = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .chars()
            .take(60)
            .collect::<String>();
        if resp.content_length().is_some_and(|l| l > self.max_bytes as u64) {
            return Err(format!("larger than {} MB", self.max_bytes / (1024 * 1024)));
        }
        let mut data = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| download_error(&e))? {
            if data.len() + chunk.len() > self.max_bytes {
                return Err(format!("larger than {} MB", self.max_bytes / (1024 * 1024)));
            }
            data.extend_from_slice(&chunk);
        }
        if data.is_empty() {
            return Err("the download is empty".to_owned());
        }
        match sniff(&data) {
            Some((content_type, ext)) => Ok((data, content_type, ext)),
            None => Err(format!(
                "not an image (Content-Type {declared}, {} bytes that are not JPEG, PNG, GIF or WebP)",
                data.len()
            )),
        }
    }
}

/// A download failure without the URL reqwest would print.
fn download_error(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "download timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_redirect() {
        "too many redirects"
    } else {
        "download failed"
    };
    let detail = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_default();
    if detail.is_empty() {
        what.to_owned()
    } else {
        // The source is the transport's error (hyper, io): it does not carry the URL.
        format!("{what}: {}", detail.chars().take(200).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_drops_credentials_query_and_fragment() {
        assert_eq!(
            redact("https://user:secret@cdn.example.com:8443/p/a.jpg?X-Amz-Signature=abc&token=t#frag"),
            "https://cdn.example.com:8443/p/a.jpg"
        );
        assert_eq!(redact("not a url"), "<not a URL>");
        assert!(redact(&format!("http://h/{}", "a".repeat(500))).chars().count() <= 160);
    }

    #[test]
    fn sniffs_images_by_their_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Some(("image/jpeg", "jpg")));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some(("image/png", "png")));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(("image/webp", "webp")));
        assert_eq!(sniff(b"<html>"), None);
    }
}
