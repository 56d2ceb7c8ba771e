//! The OpenAPI 3.1 document served at `/openapi.json`, derived from the code: each handler's `#[utoipa::path]`
//! and each request / response type's `#[derive(ToSchema)]`. What is written here: the list of handlers, the error
//! answers each kind of route can give, and the schemas of the few shapes defined in other crates (checked against
//! real answers by the integration tests, which validate every request and answer against this document).

use std::collections::BTreeMap;

use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToSchema};

use crate::{campaigns, routes};

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "this document", body = Object), Authenticated),
)]
pub async fn serve() -> Json<Document> {
    Json(document())
}

/// The whole document.
pub fn document() -> Document {
    ApiDoc::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "seller-backend campaign-api",
        description = "Internal API: Shopee campaigns in SKU terms, product mappings, shops, orders, dead letters. \
                       Every route needs `Authorization: Bearer <token>` (CAMPAIGN_API_TOKENS). Errors are \
                       {\"error\": {\"code\", \"message\"}}. Money is a decimal string in BRL.",
    ),
    paths(
        serve,
        campaigns::http::create,
        campaigns::http::list,
        campaigns::http::detail,
        campaigns::http::update,
        campaigns::http::remove,
        campaigns::http::end,
        routes::mappings::upsert,
        routes::mappings::list,
        routes::mappings::discover,
        routes::mappings::discover_status,
        routes::catalog::content_sync,
        routes::catalog::content_sync_status,
        routes::shops::list,
        routes::shops::auth_link,
        routes::shops::detail,
        routes::shops::update,
        routes::orders::detail,
        routes::dead_letters::list,
        routes::dead_letters::redrive,
    ),
    components(schemas(ErrorBody)),
    modifiers(&Bearer),
    security(("bearer" = [])),
)]
struct ApiDoc;

/// Every route takes `Authorization: Bearer <token>`.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut Document) {
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// Every error answer: `{"error": {"code", "message", "details"?}}`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(ToSchema)]
pub struct ErrorDetail {
    /// Stable: bad_request, unauthorized, not_found, conflict, unprocessable, shopee_error, unavailable, ...
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
    /// 422: each problem; a failed creation: the campaign as it was left.
    #[schema(value_type = Option<ErrorDetails>)]
    pub details: Option<Value>,
}

/// What `details` of an error holds.
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ErrorDetails {
    /// Each problem of a 422, in words.
    Problems(Vec<String>),
    /// The campaign a failed creation left (nothing of it stays on Shopee).
    Campaign(campaigns::view::CampaignView),
}

fn error_response(status: u16) -> Response {
    let text = match status {
        400 => "the request cannot be read",
        401 => "no valid bearer token",
        404 => "not found",
        409 => "not allowed in the current state, or the same Idempotency-Key is being processed",
        413 => "body too large",
        422 => "breaks a rule; `message` says which, `details` lists each problem",
        502 => "Shopee refused or failed",
        503 => "a dependency is down; retry",
        _ => "error",
    };
    ResponseBuilder::new()
        .description(text)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
}

/// Declares a set of error answers a kind of route gives, for `responses(...)`.
macro_rules! error_answers {
    ($($(#[$meta:meta])* $name:ident: $($status:literal),+;)+) => {$(
        $(#[$meta])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                [$($status),+].into_iter().map(|s: u16| (s.to_string(), error_response(s).into())).collect()
            }
        }
    )+};
}

error_answers! {
    /// Routes that read nothing the caller names.
    Authenticated: 401;
    /// Lists.
    Reading: 400, 401, 503;
    /// One thing by its id.
    Looking: 400, 401, 404, 503;
    /// Queueing a job.
    Queueing: 400, 401, 422, 503;
    /// Redriving a dead letter.
    Redriving: 400, 401, 404, 409, 503;
    /// Creating a campaign.
    Creating: 400, 401, 409, 413, 422, 502, 503;
    /// Changing a campaign.
    Changing: 400, 401, 404, 409, 413, 422, 502, 503;
    /// Ending or deleting a campaign.
    Finishing: 400, 401, 404, 409, 502, 503;
    /// A bulk write.
    Writing: 400, 401, 413, 422, 503;
    /// Changing a shop.
    Setting: 400, 401, 404, 413, 422, 503;
}

// ---------------------------------------------------------------------------------------------------------------
// Shapes defined in other crates

/// `domain::Money` as JSON: a decimal string in BRL.
pub struct MoneyText;

impl PartialSchema for MoneyText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[0-9]+(\.[0-9]{1,2})?$"))
            .examples(["9.90"])
            .into()
    }
}

impl ToSchema for MoneyText {
    fn name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }
}

/// `domain::mapping::ProductMapping` as JSON: where a SKU lives in one Shopee shop.
#[derive(ToSchema)]
#[schema(as = Mapping)]
#[allow(dead_code)]
pub struct MappingShape {
    sku: String,
    shop_id: u64,
    item_id: u64,
    /// 0 when the item has no models.
    model_id: u64,
    /// Instant Mart: the outlet's own item id, when it differs from the mart item.
    #[schema(required = false)]
    outlet_item_id: u64,
}

/// `dead_letters::DeadLetter` as JSON: parked work and why.
#[derive(ToSchema)]
#[schema(as = DeadLetter)]
#[allow(dead_code)]
pub struct DeadLetterShape {
    id: i64,
    /// The owning worker, e.g. order-publisher.
    source: String,
    kind: String,
    reference: Option<String>,
    reason: String,
    #[schema(value_type = Object)]
    payload: Value,
    /// parked | redrive_requested | redriven
    status: String,
    attempts: i32,
    redrive_count: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}
