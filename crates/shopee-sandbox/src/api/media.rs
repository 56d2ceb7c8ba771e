//! Media space: `upload_image` (multipart, the file in the field `image`) gives an image id that `update_item`
//! accepts in `image.image_id_list`.
//!
//! Unconfirmed shape (not in `shopee-api.md`; sandbox choices): accepted as a public or a shop-signed call; JPEG
//! and PNG only (recognized by their bytes, not by the declared type); 1 byte ..= 10 MB; every refusal is
//! `error_param` (HTTP 400). The answer: `image_info{image_id, image_url_list[{image_url_region: BR, image_url}]}`.

use serde_json::json;

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::{ApiError, ApiResult};
use crate::model::UploadedImage;
use crate::state::Inner;

/// The largest image the sandbox takes (Shopee: 10 MB).
pub(crate) const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub(crate) struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

impl FormPart {
    /// What the journal keeps of the part (never the bytes).
    pub fn describe(&self) -> serde_json::Value {
        json!({"file_name": self.file_name, "content_type": self.content_type, "size": self.data.len(),
            "format": image_format(&self.data)})
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The value of `key=` in a header's parameters (`name="image"`, `boundary=abc`).
fn header_param(header: &str, key: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Parses a `multipart/form-data` body; Err names what is malformed.
pub(crate) fn parse_multipart(content_type: &str, body: &[u8]) -> Result<Vec<FormPart>, String> {
    let boundary =
        header_param(content_type, "boundary").ok_or("the multipart Content-Type has no boundary")?;
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut at =
        find(body, &delimiter, 0).ok_or("the body does not start with the boundary")? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        if !body[at..].starts_with(b"\r\n") {
            return Err("a boundary is not followed by CRLF".to_owned());
        }
        at += 2;
        let end = find(body, &next_delimiter, at).ok_or("a part is not closed by the boundary")?;
        let part = &body[at..end];
        let head_end = find(part, b"\r\n\r\n", 0).ok_or("a part has no header end")?;
        let head = String::from_utf8_lossy(&part[..head_end]);
        let (mut name, mut file_name, mut part_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                name = header_param(v, "name");
                file_name = header_param(v, "filename");
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(v.trim().to_owned());
            }
        }
        parts.push(FormPart {
            name: name.ok_or("a part has no name")?,
            file_name,
            content_type: part_type,
            data: part[head_end + 4..].to_vec(),
        });
        at = end + next_delimiter.len();
    }
}

/// `jpeg` or `png` from the file's first bytes.
fn image_format(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else {
        None
    }
}

pub(super) fn upload_image(inner: &mut Inner, ctx: &Ctx, _args: &Args) -> ApiResult<Out> {
    let Some(parts) = ctx.form else {
        return Err(ApiError::param(
            "upload_image takes a multipart/form-data body with the file in the field image.",
        ));
    };
    let image = parts
        .iter()
        .find(|p| p.name == "image")
        .ok_or_else(|| ApiError::param("There is no image in the request (multipart field image)."))?;
    if image.data.is_empty() {
        return Err(ApiError::param("The image is empty."));
    }
    if image.data.len() > MAX_IMAGE_BYTES {
        return Err(ApiError::param("The image must not exceed 10 MB."));
    }
    let Some(format) = image_format(&image.data) else {
        return Err(ApiError::param("The image must be a JPG, JPEG or PNG file."));
    };
    let image_id = inner.new_image_id();
    let url = super::products::image_url(&image_id);
    inner.images.insert(
        image_id.clone(),
        UploadedImage {
            image_id: image_id.clone(),
            format: format.to_owned(),
            size: image.data.len(),
            uploaded_by_shop: (ctx.shop_id != 0).then_some(ctx.shop_id),
        },
    );
    ok(json!({"image_info": {"image_id": image_id,
        "image_url_list": [{"image_url_region": "BR", "image_url": url}]}}))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_a_file_part() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n\x1a\nrest\r\n--XyZ\r\nContent-Disposition: form-data; name=\"scene\"\r\n\r\nnormal\r\n--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=\"XyZ\"", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "image");
        assert_eq!(parts[0].file_name.as_deref(), Some("a.png"));
        assert_eq!(parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(parts[0].data, b"\x89PNG\r\n\x1a\nrest");
        assert_eq!(image_format(&parts[0].data), Some("png"));
        assert_eq!(
            (parts[1].name.as_str(), parts[1].data.as_slice()),
            ("scene", &b"normal"[..])
        );
        assert!(parse_multipart("multipart/form-data", body).is_err());
        assert!(parse_multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno end").is_err());
    }
}
