//! Shop authorization and tokens: auth_partner, token/get (single-use code), access_token/get (single-use refresh
//! token; the previous access token keeps a 5-minute grace).

use serde_json::{Map, Value, json};

use super::{Ctx, Out};
use crate::args::Args;
use crate::config::ms;
use crate::error::{ApiError, ApiResult};
use crate::state::{Inner, now_ms};

pub(super) fn auth_partner(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let redirect = args.req_str("redirect")?;
    // Sandbox extension: `shop_id` picks the shop the "seller" authorizes.
    let shop_id = match args.opt_u64("shop_id")? {
        Some(id) => id,
        None => inner
            .cfg
            .default_shop_id
            .or_else(|| inner.shops.keys().next().copied())
            .ok_or_else(|| {
                ApiError::param("The sandbox has no shop to authorize: seed one or pass shop_id.")
            })?,
    };
    let code = inner.authorize_shop(shop_id);
    let sep = if redirect.contains('?') { '&' } else { '?' };
    Ok(Out::Redirect(format!(
        "{redirect}{sep}code={code}&shop_id={shop_id}"
    )))
}

fn check_partner(inner: &Inner, args: &Args) -> ApiResult<()> {
    match args.opt_u64("partner_id")? {
        Some(id) if id != inner.cfg.partner_id => Err(ApiError::param(
            "partner_id in the body does not match the query.",
        )),
        _ => Ok(()),
    }
}

fn tokens_answer(inner: &Inner, access: String, refresh: String, extra: Map<String, Value>) -> Out {
    let mut fields = extra;
    fields.insert("access_token".into(), json!(access));
    fields.insert("refresh_token".into(), json!(refresh));
    fields.insert("expire_in".into(), json!(ms(inner.cfg.access_token_ttl) / 1000));
    Out::TopLevel(fields)
}

pub(super) fn token_get(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    check_partner(inner, args)?;
    let code = args.req_str("code")?;
    let shop_id = args
        .opt_u64("shop_id")?
        .ok_or_else(|| ApiError::param("shop_id (or main_account_id, not simulated) is required."))?;
    let now = now_ms();
    let valid = match inner.codes.get_mut(code) {
        Some(c) if !c.used && c.expires_at_ms > now && c.shop_id == shop_id => {
            c.used = true;
            true
        }
        _ => false,
    };
    if !valid {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "error_auth",
            "Invalid code: it is unknown, expired, already used or for another shop.",
        ));
    }
    let (access, refresh) = inner.issue_tokens(shop_id);
    let mut extra = Map::new();
    extra.insert("shop_id_list".into(), json!([shop_id]));
    extra.insert("merchant_id_list".into(), json!([]));
    Ok(tokens_answer(inner, access, refresh, extra))
}

pub(super) fn access_token_get(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    check_partner(inner, args)?;
    let refresh_token = args.req_str("refresh_token")?;
    let shop_id = args.req_u64("shop_id")?;
    let now = now_ms();
    let shop = inner
        .shops
        .get(&shop_id)
        .ok_or_else(|| ApiError::param(format!("shop_id {shop_id} is not authorized.")))?;
    match &shop.refresh_token {
        Some((current, exp)) if current == refresh_token && *exp > now => {}
        Some((current, _)) if current == refresh_token => {
            return Err(ApiError::business(
                "error_shop_refresh_token",
                "The refresh_token has expired: authorize the shop again.",
            ));
        }
        _ if shop.used_refresh_tokens.contains(refresh_token) => {
            return Err(ApiError::business(
                "error_shop_refresh_token",
                "The refresh_token has already been used: refresh tokens are single-use.",
            ));
        }
        _ => return Err(ApiError::param("Invalid refresh_token.")),
    }
    let (access, refresh) = inner.issue_tokens(shop_id);
    let mut extra = Map::new();
    extra.insert("partner_id".into(), json!(inner.cfg.partner_id));
    extra.insert("shop_id".into(), json!(shop_id));
    Ok(tokens_answer(inner, access, refresh, extra))
}
