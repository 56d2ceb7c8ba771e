//! A signed HTTP caller for the sandbox.

use serde_json::Value;
use shopee_client::sign;
use shopee_sandbox::{Sandbox, SandboxConfig};

pub const PARTNER_ID: u64 = 2_001_887;
pub const KEY: &str = "it-partner-key";
pub const SHOP: u64 = 900_001;

/// The smallest bytes the sandbox recognizes as a PNG (its signature), then some filler.
pub const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR....";
pub const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0....";

/// A valid `product/get_item_list` query: `item_status` is documented as `string[]` and required.
pub const LIST: &[(&str, &str)] = &[("offset", "0"), ("page_size", "10"), ("item_status", "NORMAL")];

pub fn list_params() -> Vec<(String, String)> {
    LIST.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn config() -> SandboxConfig {
    SandboxConfig::new(PARTNER_ID, KEY)
}

pub struct Env {
    pub sandbox: Sandbox,
    pub http: reqwest::Client,
    pub access: String,
    pub refresh: String,
}

pub async fn env() -> Env {
    env_with(config()).await
}

pub async fn env_with(config: SandboxConfig) -> Env {
    let sandbox = Sandbox::start(config).await.unwrap();
    let (access, refresh) = sandbox.issue_tokens(SHOP);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Env {
        sandbox,
        http,
        access,
        refresh,
    }
}

/// An answer: HTTP status and JSON body.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("<none>")
    }
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.error(), "", "expected success, got {}", self.body);
        assert_eq!(self.status, 200, "{}", self.body);
        &self.body["response"]
    }
}

pub async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer {
        status,
        body,
        headers,
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    fn shop_query(&self, path: &str, shop: u64, token: &str, ts: i64) -> Vec<(String, String)> {
        let s = sign::sign_shop(KEY, PARTNER_ID, path, ts, token, shop);
        vec![
            ("partner_id".into(), PARTNER_ID.to_string()),
            ("timestamp".into(), ts.to_string()),
            ("access_token".into(), token.to_owned()),
            ("shop_id".into(), shop.to_string()),
            ("sign".into(), s),
        ]
    }

    pub fn public_query(path: &str, ts: i64) -> Vec<(String, String)> {
        vec![
            ("partner_id".into(), PARTNER_ID.to_string()),
            ("timestamp".into(), ts.to_string()),
            ("sign".into(), sign::sign_public(KEY, PARTNER_ID, path, ts)),
        ]
    }

    /// A shop-level GET for SHOP with the current access token.
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Answer {
        self.get_as(path, SHOP, &self.access.clone(), params).await
    }

    pub async fn get_as(&self, path: &str, shop: u64, token: &str, params: &[(&str, &str)]) -> Answer {
        let mut q = self.shop_query(path, shop, token, now());
        q.extend(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        answer(self.http.get(self.url(path)).query(&q).send().await.unwrap()).await
    }

    /// A shop-level POST for SHOP with the current access token.
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.post_as(path, SHOP, &self.access.clone(), body).await
    }

    pub async fn post_as(&self, path: &str, shop: u64, token: &str, body: Value) -> Answer {
        let q = self.shop_query(path, shop, token, now());
        answer(
            self.http
                .post(self.url(path))
                .query(&q)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// A raw GET with the given query (no signing).
    pub async fn get_raw(&self, path: &str, q: &[(String, String)]) -> Answer {
        answer(self.http.get(self.url(path)).query(q).send().await.unwrap()).await
    }

    pub fn signed_shop_query(&self, path: &str, ts: i64) -> Vec<(String, String)> {
        self.shop_query(path, SHOP, &self.access, ts)
    }

    pub async fn public_get(&self, path: &str, params: &[(&str, &str)]) -> Answer {
        let mut q = Self::public_query(path, now());
        q.extend(params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        answer(self.http.get(self.url(path)).query(&q).send().await.unwrap()).await
    }

    /// `media_space/upload_image` with one file part named `field`: public when `shop_signed` is false.
    pub async fn upload(&self, field: &str, content_type: &str, data: &[u8], shop_signed: bool) -> Answer {
        let path = "/api/v2/media_space/upload_image";
        let q = if shop_signed {
            self.shop_query(path, SHOP, &self.access, now())
        } else {
            Self::public_query(path, now())
        };
        let form = shopee_client::envelope::MultipartBody::file(field, "image.bin", content_type, data);
        answer(
            self.http
                .post(self.url(path))
                .query(&q)
                .header("Content-Type", form.content_type())
                .body(form.bytes().to_vec())
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn public_post(&self, path: &str, body: Value) -> Answer {
        let q = Self::public_query(path, now());
        answer(
            self.http
                .post(self.url(path))
                .query(&q)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }
}
