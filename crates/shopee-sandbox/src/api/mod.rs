//! The Shopee side: one handler for every `/api/v2/...` path. It applies injected faults, checks partner_id,
//! timestamp, sign and access token as Shopee does, applies rate limits, checks the request against Shopee's
//! published documentation (`shopee_contract`: documented parameters only, at their types, required ones present;
//! any departure is `error_param` naming the parameters), dispatches to the API's handler, wraps the answer in
//! Shopee's envelope with only the fields the documentation lists for that API, and writes the journal entry.
//!
//! GET parameters are read as Shopee's mirror SDK sends them: a parameter documented as an array (`int64[]`,
//! `string[]`: `item_status`, `item_id_list`) is a repeated key, one value each; a parameter documented as `string`
//! that holds a list (`order_sn_list`, `package_number_list`, `response_optional_fields`) is comma-joined.
//!
//! Routes that the documentation does not list are in [`NOT_IN_CONTRACT`]: they get no parameter check.

mod auth;
mod discounts;
mod logistics;
mod media;
mod orders;
mod polygons;
mod products;
mod push;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shopee_client::sign;

use crate::Shared;
use crate::args::Args;
use crate::config::ms;
use crate::error::{ApiError, ApiResult};
use crate::model::{FaultKind, JournalEntry};
use crate::state::{Inner, now_ms};

/// What a handler answers.
pub(crate) enum Out {
    /// Success: `response` (and warnings) in the envelope. `response` and `warning` are sent only when the API's
    /// documentation lists them (`warning` as a string or a list, as documented).
    Data { response: Value, warning: Vec<String> },
    /// Success with the fields at the top level (auth endpoints).
    TopLevel(Map<String, Value>),
    /// HTTP 302 to this URL (auth_partner).
    Redirect(String),
}

pub(crate) fn ok(response: Value) -> ApiResult<Out> {
    Ok(Out::Data {
        response,
        warning: Vec::new(),
    })
}

/// The call being handled.
pub(crate) struct Ctx<'a> {
    /// 0 for public APIs.
    pub shop_id: u64,
    /// Unix seconds.
    pub now: i64,
    /// The parts of a `multipart/form-data` body (media uploads); None for JSON bodies.
    pub form: Option<&'a [media::FormPart]>,
    /// An injected [`FaultKind::UpdateResultFailed`] is active for this call: an API with an `update_result` answers
    /// `failed` and changes nothing.
    pub update_fails: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Public,
    Shop,
    /// Signed either way: as a shop call when the query has `shop_id` and `access_token`, else as a public one.
    Either,
}

type Handler = fn(&mut Inner, &Ctx, &Args) -> ApiResult<Out>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Post,
}

/// Every Shopee API the sandbox serves: path, method, signature level, handler.
const ROUTES: &[(&str, Verb, Kind, Handler)] = {
    use Kind::{Either, Public, Shop};
    use Verb::{Get, Post};
    &[
        ("/api/v2/shop/auth_partner", Get, Public, auth::auth_partner),
        ("/api/v2/auth/token/get", Post, Public, auth::token_get),
        (
            "/api/v2/auth/access_token/get",
            Post,
            Public,
            auth::access_token_get,
        ),
        (
            "/api/v2/push/get_lost_push_message",
            Get,
            Public,
            push::get_lost_push_message,
        ),
        (
            "/api/v2/push/confirm_consumed_lost_push_message",
            Post,
            Public,
            push::confirm_consumed,
        ),
        ("/api/v2/order/get_order_list", Get, Shop, orders::get_order_list),
        (
            "/api/v2/order/get_order_detail",
            Get,
            Shop,
            orders::get_order_detail,
        ),
        (
            "/api/v2/order/get_package_detail",
            Get,
            Shop,
            orders::get_package_detail,
        ),
        ("/api/v2/order/cancel_order", Post, Shop, orders::cancel_order),
        (
            "/api/v2/product/get_item_list",
            Get,
            Shop,
            products::get_item_list,
        ),
        (
            "/api/v2/product/get_item_base_info",
            Get,
            Shop,
            products::get_item_base_info,
        ),
        (
            "/api/v2/product/get_model_list",
            Get,
            Shop,
            products::get_model_list,
        ),
        ("/api/v2/product/update_price", Post, Shop, products::update_price),
        ("/api/v2/product/update_stock", Post, Shop, products::update_stock),
        ("/api/v2/product/update_item", Post, Shop, products::update_item),
        (
            "/api/v2/product/get_mart_item_by_outlet_item_id",
            Post,
            Shop,
            products::get_mart_item,
        ),
        (
            "/api/v2/product/batch_update_outlet_price",
            Post,
            Shop,
            products::batch_update_outlet_price,
        ),
        (
            "/api/v2/product/batch_update_outlet_stock",
            Post,
            Shop,
            products::batch_update_outlet_stock,
        ),
        (
            "/api/v2/product/get_batch_task_result",
            Get,
            Shop,
            products::get_batch_task_result,
        ),
        (
            "/api/v2/logistics/get_shipping_parameter",
            Get,
            Shop,
            logistics::get_shipping_parameter,
        ),
        ("/api/v2/logistics/ship_order", Post, Shop, logistics::ship_order),
        (
            "/api/v2/logistics/update_tracking_status",
            Post,
            Shop,
            logistics::update_tracking_status,
        ),
        (
            "/api/v2/logistics/get_tracking_number",
            Get,
            Shop,
            logistics::get_tracking_number,
        ),
        (
            "/api/v2/logistics/upload_serviceable_polygon",
            Post,
            Shop,
            polygons::upload_serviceable_polygon,
        ),
        (
            "/api/v2/logistics/check_polygon_update_status",
            Post,
            Shop,
            polygons::check_polygon_update_status,
        ),
        (
            "/api/v2/discount/add_discount",
            Post,
            Shop,
            discounts::add_discount,
        ),
        (
            "/api/v2/discount/add_discount_item",
            Post,
            Shop,
            discounts::add_discount_item,
        ),
        (
            "/api/v2/discount/update_discount",
            Post,
            Shop,
            discounts::update_discount,
        ),
        (
            "/api/v2/discount/update_discount_item",
            Post,
            Shop,
            discounts::update_discount_item,
        ),
        (
            "/api/v2/discount/delete_discount_item",
            Post,
            Shop,
            discounts::delete_discount_item,
        ),
        (
            "/api/v2/discount/end_discount",
            Post,
            Shop,
            discounts::end_discount,
        ),
        (
            "/api/v2/discount/delete_discount",
            Post,
            Shop,
            discounts::delete_discount,
        ),
        (
            "/api/v2/discount/get_discount",
            Get,
            Shop,
            discounts::get_discount,
        ),
        (
            "/api/v2/discount/get_discount_list",
            Get,
            Shop,
            discounts::get_discount_list,
        ),
        // Documented as a public (partner-signed) call; the sandbox also takes it shop-signed.
        (
            "/api/v2/media_space/upload_image",
            Post,
            Either,
            media::upload_image,
        ),
    ]
};

/// Routes the published documentation (`shopee_contract`) does not list; they are served without a parameter check.
/// - `/api/v2/shop/auth_partner`: the authorization page the seller is sent to (a browser redirect, not an API
///   call: it is described in the authorization guide, not in the API reference).
pub const NOT_IN_CONTRACT: &[&str] = &["/api/v2/shop/auth_partner"];

/// The route table: every Shopee path the sandbox serves, with its method.
pub fn routes() -> impl Iterator<Item = (&'static str, Method)> {
    ROUTES.iter().map(|(path, verb, _, _)| {
        let method = match verb {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
        };
        (*path, method)
    })
}

fn route(path: &str) -> Option<(Method, Kind, Handler)> {
    let (_, verb, kind, handler) = ROUTES.iter().find(|(p, ..)| *p == path)?;
    let method = match verb {
        Verb::Get => Method::GET,
        Verb::Post => Method::POST,
    };
    Some((method, *kind, *handler))
}

/// GET parameters as a JSON object: a parameter the API documents as an array is a list of its repeated values,
/// any other is its (first) value. For an API without documentation, repeated keys are joined with commas.
fn query_args(api: &str, query: &[(String, String)]) -> Map<String, Value> {
    let doc = shopee_contract::contract().api(api);
    let mut map = Map::new();
    for (k, v) in query {
        let array = doc
            .and_then(|d| d.request.iter().find(|f| &f.name == k))
            .is_some_and(|f| f.kind().array);
        match map.get_mut(k) {
            Some(Value::Array(values)) => values.push(Value::String(v.clone())),
            Some(Value::String(existing)) if doc.is_none() => {
                existing.push(',');
                existing.push_str(v);
            }
            Some(_) => {}
            None if array => {
                map.insert(k.clone(), Value::Array(vec![Value::String(v.clone())]));
            }
            None => {
                map.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
    map
}

/// The request against the API's documentation: `error_param` naming every parameter that departs from it.
fn check_contract(
    api: &str,
    method: &Method,
    query: &[(String, String)],
    body: Option<&Value>,
    form: Option<&[media::FormPart]>,
) -> ApiResult<()> {
    let Some(doc) = shopee_contract::contract().api(api) else {
        return Ok(());
    };
    let violations = if let Some(parts) = form {
        let parts: Vec<(String, bool)> = parts
            .iter()
            .map(|p| (p.name.clone(), p.file_name.is_some()))
            .collect();
        doc.check_form(&parts)
    } else if *method == Method::GET {
        doc.check_query(query)
    } else {
        doc.check_body(body.unwrap_or(&Value::Object(Map::new())))
    };
    if violations.is_empty() {
        return Ok(());
    }
    let detail: Vec<String> = violations.iter().map(ToString::to_string).collect();
    Err(ApiError::param(format!(
        "Wrong parameters, detail: {}.",
        detail.join("; ")
    )))
}

/// Removes `null` members, at every level: a value the sandbox does not have is left out, as Shopee does, never
/// sent as `null` (no documented field is nullable).
fn without_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(without_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(without_nulls),
        _ => {}
    }
}

/// A successful answer's envelope with only the top-level fields the API documents: `request_id`, `error`,
/// `message`, `warning` (a string, or a list where documented as `string[]`) and `response`. An API without
/// documentation gets all of them.
fn envelope(api: &str, request_id: String, mut response: Value, warnings: Vec<String>) -> Value {
    let doc = shopee_contract::contract().api(api);
    let documented = |name: &str| doc.is_none_or(|d| d.response.iter().any(|f| f.name == name));
    let mut answer = Map::new();
    for (name, value) in [
        ("request_id", json!(request_id)),
        ("error", json!("")),
        ("message", json!("")),
    ] {
        if documented(name) {
            answer.insert(name.into(), value);
        }
    }
    if let Some(field) = doc.map_or(Some(None), |d| {
        d.response.iter().find(|f| f.name == "warning").map(Some)
    }) {
        let as_list = field.is_some_and(|f| f.kind().array);
        let warning = if as_list {
            json!(warnings)
        } else {
            json!(warnings.join(" "))
        };
        answer.insert("warning".into(), warning);
    }
    if documented("response") {
        without_nulls(&mut response);
        answer.insert("response".into(), response);
    }
    Value::Object(answer)
}

fn first<'q>(query: &'q [(String, String)], key: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The axum handler for `/api/v2/{*path}`.
pub(crate) async fn shopee(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at_ms = now_ms();
    let api = uri.path().to_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // A multipart body (media uploads) is parsed here; the journal keeps what each part is, never its bytes.
    let form: Option<Result<Vec<media::FormPart>, String>> = content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
        .then(|| media::parse_multipart(content_type, &body));
    let body_json: Option<Value> = if let Some(form) = &form {
        Some(match form {
            Ok(parts) => Value::Object(parts.iter().map(|p| (p.name.clone(), p.describe())).collect()),
            Err(problem) => json!({"multipart_error": problem}),
        })
    } else if body.is_empty() {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
        )
    };
    let shop_id = first(&query, "shop_id")
        .and_then(|s| s.parse::<u64>().ok())
        .or_else(|| body_json.as_ref()?.get("shop_id")?.as_u64());
    let journal_request = if method == Method::GET {
        let mut map = query_args(&api, &query);
        map.remove("sign");
        map.remove("access_token");
        Value::Object(map)
    } else {
        body_json.clone().unwrap_or(Value::Null)
    };

    let (latency, mut fault) = shared.lock().take_faults(shop_id, &api, at_ms);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    // Not an error answer: the call is handled, and the handler answers `update_result: failed`.
    let update_fails = matches!(fault, Some(FaultKind::UpdateResultFailed));
    if update_fails {
        fault = None;
    }

    let mut retry_after = None;
    let (request_id, result) = {
        let mut inner = shared.lock();
        let request_id = inner.request_id();
        let result = match fault {
            Some(kind) => Err(fault_error(kind, &mut retry_after)),
            None => match &form {
                Some(Err(problem)) => Err(ApiError::param(format!(
                    "The multipart/form-data body is malformed: {problem}."
                ))),
                Some(Ok(parts)) => handle(
                    &mut inner,
                    &Call {
                        method: &method,
                        api: &api,
                        query: &query,
                        body: None,
                        form: Some(parts),
                        shop_id,
                        update_fails,
                    },
                ),
                None => handle(
                    &mut inner,
                    &Call {
                        method: &method,
                        api: &api,
                        query: &query,
                        body: body_json.as_ref(),
                        form: None,
                        shop_id,
                        update_fails,
                    },
                ),
            },
        };
        // A configured limit is a one-second window: say so when answering 429.
        if let Err(e) = &result
            && e.status == StatusCode::TOO_MANY_REQUESTS
            && retry_after.is_none()
        {
            retry_after = Some(1);
        }
        let (http_status, error) = match &result {
            Ok(Out::Redirect(_)) => (StatusCode::FOUND, String::new()),
            Ok(_) => (StatusCode::OK, String::new()),
            Err(e) => (e.status, e.error.clone()),
        };
        // A refusal Shopee sends inside a successful envelope (`update_tracking_status`: `update_result: failed`).
        let refused_in_answer = match &result {
            Ok(Out::Data { response, .. })
                if response.get("update_result") == Some(&Value::from("failed")) =>
            {
                Some("update_result: failed".to_owned())
            }
            _ => None,
        };
        inner.journal.push(JournalEntry {
            at_ms,
            method: method.to_string(),
            api: api.clone(),
            shop_id,
            http_status: http_status.as_u16(),
            error,
            refused_in_answer,
            request: journal_request,
        });
        let capacity = inner.cfg.journal_capacity.max(1);
        if inner.journal.len() > capacity {
            let excess = inner.journal.len() - capacity;
            inner.journal.drain(..excess);
        }
        (request_id, result)
    };
    if let Err(e) = &result {
        tracing::debug!(api = %api, shop.id = shop_id, error = %e.error, message = %e.message, "sandbox answered an error");
    }

    // Pushes caused by this call go out in the background: the API answer does not wait for the callback.
    let pushing = Arc::clone(&shared);
    tokio::spawn(async move { pushing.deliver_outgoing().await });

    let mut response = match result {
        Ok(Out::Data { response, warning }) => (
            StatusCode::OK,
            axum::Json(envelope(&api, request_id, response, warning)),
        )
            .into_response(),
        Ok(Out::TopLevel(mut fields)) => {
            fields.insert("request_id".into(), json!(request_id));
            fields.insert("error".into(), json!(""));
            fields.insert("message".into(), json!(""));
            let mut answer = Value::Object(fields);
            without_nulls(&mut answer);
            (StatusCode::OK, axum::Json(answer)).into_response()
        }
        Ok(Out::Redirect(location)) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(e) => (
            e.status,
            axum::Json(json!({"request_id": request_id, "error": e.error, "message": e.message})),
        )
            .into_response(),
    };
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

fn fault_error(kind: FaultKind, retry_after: &mut Option<u64>) -> ApiError {
    match kind {
        FaultKind::Http429 { retry_after_secs } => {
            *retry_after = retry_after_secs;
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "error_rate_limit",
                "Too many requests, please try again later.",
            )
        }
        FaultKind::ServerError { status } => ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "error_server",
            "Something wrong on the server, please try again later.",
        ),
        FaultKind::RateLimit => ApiError::new(
            StatusCode::OK,
            "error_rate_limit",
            "Your request has exceeded the rate limit, please try again later.",
        ),
        FaultKind::Error {
            status,
            error,
            message,
        } => ApiError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            &error,
            message,
        ),
        // Latency never answers by itself, and a failed update result is answered by the handler.
        FaultKind::Latency { .. } | FaultKind::UpdateResultFailed => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "error_inner", "latency")
        }
    }
}

/// One call as it arrived.
struct Call<'a> {
    method: &'a Method,
    api: &'a str,
    query: &'a [(String, String)],
    body: Option<&'a Value>,
    form: Option<&'a [media::FormPart]>,
    shop_id: Option<u64>,
    update_fails: bool,
}

fn handle(inner: &mut Inner, call: &Call) -> ApiResult<Out> {
    let Call {
        method,
        api,
        query,
        body,
        form,
        shop_id,
        update_fails,
    } = *call;
    let (expected_method, kind, handler) =
        route(api).ok_or_else(|| ApiError::not_found(format!("Invalid API path {api}: no such API.")))?;
    if *method != expected_method {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "error_not_found",
            format!("{api} must be called with {expected_method}."),
        ));
    }
    let now_ms = now_ms();
    let now = now_ms / 1000;

    // partner_id, timestamp, sign: in the query, for every API.
    let partner_id: u64 = first(query, "partner_id")
        .ok_or_else(|| ApiError::param("There is no partner_id in query."))?
        .parse()
        .map_err(|_| ApiError::param("partner_id must be an integer."))?;
    if partner_id != inner.cfg.partner_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "error_auth",
            "Invalid partner_id: it does not exist in this environment.",
        ));
    }
    let timestamp: i64 = first(query, "timestamp")
        .ok_or_else(|| ApiError::param("There is no timestamp in query."))?
        .parse()
        .map_err(|_| ApiError::param("timestamp must be unix seconds."))?;
    let window = ms(inner.cfg.timestamp_window) / 1000;
    if (now - timestamp).abs() > window {
        return Err(ApiError::param(format!(
            "Invalid timestamp: timestamp expired (it must be within {window} seconds of the server time)."
        )));
    }
    let received_sign = first(query, "sign").ok_or_else(|| ApiError::param("There is no sign in query."))?;
    let kind = match kind {
        Kind::Either if first(query, "access_token").is_some() || first(query, "shop_id").is_some() => {
            Kind::Shop
        }
        Kind::Either => Kind::Public,
        k => k,
    };
    let (shop, expected_sign) = match kind {
        Kind::Public => (
            0,
            sign::sign_public(&inner.cfg.partner_key, partner_id, api, timestamp),
        ),
        Kind::Shop | Kind::Either => {
            let shop: u64 = first(query, "shop_id")
                .ok_or_else(|| ApiError::param("There is no shop_id in query."))?
                .parse()
                .map_err(|_| ApiError::param("shop_id must be an integer."))?;
            let token = first(query, "access_token")
                .ok_or_else(|| ApiError::param("There is no access_token in query."))?;
            (
                shop,
                sign::sign_shop(&inner.cfg.partner_key, partner_id, api, timestamp, token, shop),
            )
        }
    };
    // Lowercase hex as Shopee sends and expects.
    if received_sign != expected_sign {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "error_sign", "Wrong sign."));
    }
    if kind == Kind::Shop {
        let token = first(query, "access_token").unwrap_or_default();
        if !inner.access_token_valid(shop, token, now_ms) {
            let code = inner.cfg.invalid_token_error.clone();
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                &code,
                "Invalid access_token.",
            ));
        }
    }
    if !inner.admit(shop_id, api, now_ms) {
        let status = inner.cfg.rate_limit_status;
        return Err(ApiError::new(
            status,
            "error_rate_limit",
            "Your request has exceeded the rate limit, please try again later.",
        ));
    }

    check_contract(api, method, query, body, form)?;

    let empty = Map::new();
    let query_args = query_args(api, query);
    let args = if expected_method == Method::GET {
        Args::new(&query_args)
    } else if form.is_some() {
        Args::new(&empty)
    } else {
        match body {
            None => Args::new(&empty),
            Some(Value::Object(map)) => Args::new(map),
            Some(_) => return Err(ApiError::param("The request body must be a JSON object.")),
        }
    };
    handler(
        inner,
        &Ctx {
            shop_id: shop,
            now,
            form,
            update_fails,
        },
        &args,
    )
}
