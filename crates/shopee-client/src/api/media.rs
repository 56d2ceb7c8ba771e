//! Media space: `upload_image`, which turns an image file into the `image_id` that `update_item` takes in
//! `image.image_id_list` (Shopee never takes image URLs there).
//!
//! Unconfirmed shape: `shopee-api.md` does not list `media_space/upload_image`. This client follows the shape
//! Shopee's v2 reference shows: a public (partner-signed) `POST` with the common params in the query and a
//! `multipart/form-data` body carrying the file in the field `image`; the answer is
//! `response.image_info{image_id, image_url_list[{image_url_region, image_url}]}`. Limits the client checks before
//! sending: 1 byte ..= 10 MB.

use serde::{Deserialize, Serialize};

use super::Extra;
use crate::client::ShopeeClient;
use crate::envelope::{Endpoint, MultipartBody};
use crate::error::{Error, Result};

/// Not idempotent: a repeated upload makes a second image id (harmless, but only retried when Shopee certainly did
/// not take the first one).
pub const UPLOAD_IMAGE: Endpoint = Endpoint::post("/api/v2/media_space/upload_image")
    .public()
    .not_idempotent();

/// The largest image Shopee takes (10 MB).
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// The multipart field that carries the file.
pub const IMAGE_FIELD: &str = "image";

/// One image file to upload.
#[derive(Clone)]
pub struct UploadImageRequest {
    /// The part's file name (e.g. `image.jpg`); Shopee does not keep it.
    pub file_name: String,
    /// `image/jpeg`, `image/png`, ...
    pub content_type: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for UploadImageRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadImageRequest")
            .field("file_name", &self.file_name)
            .field("content_type", &self.content_type)
            .field("len", &self.data.len())
            .finish()
    }
}

impl UploadImageRequest {
    /// The body sent: the file in the part `image`.
    pub fn form(&self) -> MultipartBody {
        MultipartBody::file(IMAGE_FIELD, &self.file_name, &self.content_type, &self.data)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageUrl {
    #[serde(default)]
    pub image_url_region: String,
    #[serde(default)]
    pub image_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageInfo {
    pub image_id: String,
    #[serde(default)]
    pub image_url_list: Vec<ImageUrl>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadImageResponse {
    pub image_info: ImageInfo,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ShopeeClient {
    /// `POST /api/v2/media_space/upload_image` (public, multipart): the image id to use in `update_item`.
    pub async fn upload_image(&self, req: &UploadImageRequest) -> Result<UploadImageResponse> {
        let api = UPLOAD_IMAGE.path;
        if req.data.is_empty() {
            return Err(Error::InvalidRequest {
                api,
                problem: "the image is empty".to_owned(),
            });
        }
        if req.data.len() > MAX_IMAGE_BYTES {
            return Err(Error::InvalidRequest {
                api,
                problem: format!(
                    "the image holds {} bytes, more than Shopee's {MAX_IMAGE_BYTES}",
                    req.data.len()
                ),
            });
        }
        let form = req.form();
        let resp: UploadImageResponse = self.public_multipart_call(&UPLOAD_IMAGE, &form).await?;
        if resp.image_info.image_id.is_empty() {
            return Err(Error::Decode {
                api,
                request_id: String::new(),
                detail: "image_info.image_id is empty".to_owned(),
            });
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multipart_body_carries_the_file_in_its_field() {
        let form = MultipartBody::file(IMAGE_FIELD, "a\"b.png", "image/png", b"\x89PNG data");
        let ct = form.content_type();
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8_lossy(form.bytes());
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("Content-Disposition: form-data; name=\"image\"; filename=\"ab.png\"\r\n"));
        assert!(text.contains("Content-Type: image/png\r\n\r\n\u{fffd}PNG data\r\n"));
        assert!(text.ends_with(&format!("\r\n--{boundary}--\r\n")));
        assert!(
            !format!("{form:?}").contains("PNG"),
            "Debug never shows the bytes"
        );
    }

    #[test]
    fn answer_decodes() {
        let r: UploadImageResponse = serde_json::from_str(
            r#"{"image_info":{"image_id":"br-1","image_url_list":[{"image_url_region":"BR","image_url":"https://cf/x"}]}}"#,
        )
        .unwrap();
        assert_eq!(r.image_info.image_id, "br-1");
        assert_eq!(r.image_info.image_url_list[0].image_url_region, "BR");
    }
}
