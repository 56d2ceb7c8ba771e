//! Push recovery: get_lost_push_message (up to 100 unconfirmed lost pushes of the last 3 days, `data` as a string)
//! and confirm_consumed_lost_push_message.

use serde_json::json;

use super::{Ctx, Out, ok};
use crate::args::Args;
use crate::error::ApiResult;
use crate::model::PushState;
use crate::state::{DAY, Inner};

const PAGE: usize = 100;

pub(super) fn get_lost_push_message(inner: &mut Inner, ctx: &Ctx, _args: &Args) -> ApiResult<Out> {
    let lost: Vec<_> = inner
        .pushes
        .iter()
        .filter(|p| p.state == PushState::Lost && !p.confirmed && p.timestamp >= ctx.now - 3 * DAY)
        .collect();
    let page = &lost[..lost.len().min(PAGE)];
    let list: Vec<_> = page
        .iter()
        .map(|p| {
            json!({
                "shop_id": p.shop_id,
                "code": p.code,
                "timestamp": p.timestamp,
                "data": p.data.to_string(),
            })
        })
        .collect();
    ok(json!({
        "push_message_list": list,
        "has_next_page": lost.len() > PAGE,
        "last_message_id": page.last().map_or(0, |p| p.message_id),
    }))
}

pub(super) fn confirm_consumed(inner: &mut Inner, _ctx: &Ctx, args: &Args) -> ApiResult<Out> {
    let last = args.req_u64("last_message_id")?;
    for p in inner
        .pushes
        .iter_mut()
        .filter(|p| p.state == PushState::Lost && p.message_id <= last)
    {
        p.confirmed = true;
    }
    ok(json!({}))
}
