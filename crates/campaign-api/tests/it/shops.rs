//! `PATCH /v1/shops/{shop_id}`: an operator marks a shop as an Instant Mart outlet (of a mart shop) and as
//! multi-warehouse, against real PostgreSQL; what catalog-sync-worker reads is the `shops` row.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Api, start, unique_shop};

/// The row as catalog-sync-worker reads it: (mart_shop_id, multi_warehouse).
async fn row(api: &Api, shop: u64) -> (Option<i64>, bool) {
    sqlx::query_as("SELECT mart_shop_id, multi_warehouse FROM shops WHERE shop_id = $1")
        .bind(shop as i64)
        .fetch_one(&api.db.pool)
        .await
        .expect("shop row")
}

async fn patch(api: &Api, shop: u64, body: Value) -> (u16, Value) {
    api.call(Method::PATCH, &format!("/v1/shops/{shop}"), Some(body))
        .await
}

/// A shop that is known (a `shops` row) but was never authorized, as mapping upserts and hub syncs create them.
async fn known_shop(api: &Api) -> u64 {
    let shop = unique_shop();
    sqlx::query("INSERT INTO shops (shop_id) VALUES ($1)")
        .bind(shop as i64)
        .execute(&api.db.pool)
        .await
        .expect("shop");
    shop
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_shop_sets_and_clears_mart_shop_id() {
    let api = start().await;
    let (mart, outlet) = (unique_shop(), unique_shop());
    api.authorize(mart).await;
    api.authorize(outlet).await;
    let (status, before) = api.call(Method::GET, &format!("/v1/shops/{outlet}"), None).await;
    assert_eq!(status, 200, "{before}");
    assert!(before["mart_shop_id"].is_null(), "{before}");
    assert_eq!(before["multi_warehouse"], false);

    let (status, shop) = patch(&api, outlet, json!({"mart_shop_id": mart})).await;
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["shop_id"], outlet);
    assert_eq!(shop["mart_shop_id"], mart);
    assert_eq!(shop["multi_warehouse"], false);
    assert_eq!(
        shop["authorization_status"], "authorized",
        "answered as GET does: {shop}"
    );
    assert_eq!(row(&api, outlet).await, (Some(mart as i64), false));
    let (_, got) = api.call(Method::GET, &format!("/v1/shops/{outlet}"), None).await;
    assert_eq!(got, shop, "GET shows what PATCH answered");
    let (_, list) = api.call(Method::GET, "/v1/shops?limit=500", None).await;
    let listed: Vec<&Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|s| s["shop_id"] == outlet || s["shop_id"] == mart)
        .collect();
    assert_eq!(listed.len(), 2, "{list}");
    for s in listed {
        let expected = if s["shop_id"] == outlet {
            json!(mart)
        } else {
            Value::Null
        };
        assert_eq!(s["mart_shop_id"], expected, "{s}");
    }

    // The same value again changes nothing and still answers the shop.
    let (status, again) = patch(&api, outlet, json!({"mart_shop_id": mart})).await;
    assert_eq!((status, &again["mart_shop_id"]), (200, &json!(mart)), "{again}");

    // null: not an outlet any more.
    let (status, cleared) = patch(&api, outlet, json!({"mart_shop_id": null})).await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["mart_shop_id"].is_null(), "{cleared}");
    assert_eq!(row(&api, outlet).await, (None, false));
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_shop_sets_multi_warehouse_and_leaves_absent_fields_alone() {
    let api = start().await;
    let mart = known_shop(&api).await;
    let shop = known_shop(&api).await;
    let (status, _) = patch(&api, shop, json!({"mart_shop_id": mart})).await;
    assert_eq!(status, 200);

    let (status, got) = patch(&api, shop, json!({"multi_warehouse": true})).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["multi_warehouse"], true);
    assert_eq!(
        got["mart_shop_id"], mart,
        "an absent mart_shop_id is left as it was"
    );
    assert_eq!(got["authorization_status"], "never_authorized");
    assert_eq!(row(&api, shop).await, (Some(mart as i64), true));

    let (status, got) = patch(
        &api,
        shop,
        json!({"mart_shop_id": null, "multi_warehouse": false}),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        (got["mart_shop_id"].clone(), got["multi_warehouse"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(row(&api, shop).await, (None, false));

    let (status, got) = patch(&api, shop, json!({"multi_warehouse": true})).await;
    assert_eq!(status, 200, "{got}");
    assert!(got["mart_shop_id"].is_null(), "{got}");
    assert_eq!(row(&api, shop).await, (None, true));
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_shop_refuses_unknown_shop_unknown_mart_self_and_chains() {
    let api = start().await;
    let (mart, outlet, other) = (
        known_shop(&api).await,
        known_shop(&api).await,
        known_shop(&api).await,
    );

    let unknown = unique_shop();
    let (status, err) = patch(&api, unknown, json!({"multi_warehouse": true})).await;
    assert_eq!(status, 404, "{err}");
    assert_eq!(err["error"]["code"], "not_found");
    assert_eq!(err["error"]["message"], format!("shop {unknown} is not known"));

    let unprocessable = |status: u16, err: &Value, words: &str| {
        assert_eq!(status, 422, "{err}");
        assert_eq!(err["error"]["code"], "unprocessable", "{err}");
        let message = err["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(words), "`{message}` should say `{words}`");
    };
    let (status, err) = patch(&api, outlet, json!({"mart_shop_id": unknown})).await;
    unprocessable(
        status,
        &err,
        &format!("mart_shop_id {unknown} is not a known shop"),
    );
    let (status, err) = patch(&api, outlet, json!({"mart_shop_id": outlet})).await;
    unprocessable(status, &err, "is this shop");
    let (status, err) = patch(&api, outlet, json!({"mart_shop_id": 0})).await;
    unprocessable(status, &err, "mart_shop_id must be at least 1");
    assert_eq!(
        row(&api, outlet).await,
        (None, false),
        "refused changes leave the shop as it was"
    );

    let (status, _) = patch(&api, outlet, json!({"mart_shop_id": mart})).await;
    assert_eq!(status, 200);
    // The target is itself an outlet: no chain outlet -> outlet -> mart.
    let (status, err) = patch(&api, other, json!({"mart_shop_id": outlet})).await;
    unprocessable(
        status,
        &err,
        &format!("it is itself an outlet of mart shop {mart}"),
    );
    assert_eq!(row(&api, other).await, (None, false));
    // The mart of other shops cannot become an outlet, nor with the other field set in the same request.
    let (status, err) = patch(
        &api,
        mart,
        json!({"mart_shop_id": other, "multi_warehouse": true}),
    )
    .await;
    unprocessable(
        status,
        &err,
        &format!("is the mart shop of outlet shop(s) {outlet}"),
    );
    assert_eq!(
        row(&api, mart).await,
        (None, false),
        "nothing of a refused request is applied"
    );
    // Its own outlet as its mart: refused either way round.
    let (status, err) = patch(&api, mart, json!({"mart_shop_id": outlet})).await;
    unprocessable(status, &err, "cannot be a mart");
    // Once the outlet is released, the former mart may become an outlet.
    let (status, _) = patch(&api, outlet, json!({"mart_shop_id": null})).await;
    assert_eq!(status, 200);
    let (status, got) = patch(&api, mart, json!({"mart_shop_id": other})).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(row(&api, mart).await, (Some(other as i64), false));
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_shop_needs_a_token_and_a_readable_body() {
    let api = start().await;
    let (mart, shop) = (known_shop(&api).await, known_shop(&api).await);
    let path = format!("/v1/shops/{shop}");
    for token in [None, Some("wrong-token-0123456789")] {
        let (status, err) = api
            .call_with(
                Method::PATCH,
                &path,
                Some(json!({"mart_shop_id": mart})),
                token,
                &[],
            )
            .await;
        assert_eq!(status, 401, "{err}");
        assert_eq!(err["error"]["code"], "unauthorized");
    }
    assert_eq!(
        row(&api, shop).await,
        (None, false),
        "an unauthenticated PATCH changes nothing"
    );

    // Nothing to change, an unknown field, a null where a boolean belongs: 422, as the other routes answer.
    for body in [
        json!({}),
        json!({"mart_shop_id": mart, "name": "x"}),
        json!({"multi_warehouse": null}),
        json!({"multi_warehouse": "yes"}),
    ] {
        let (status, err) = patch(&api, shop, body.clone()).await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["code"], "unprocessable", "{err}");
        assert!(err["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (_, err) = patch(&api, shop, json!({})).await;
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("nothing to change"),
        "{err}"
    );
    // Not JSON at all, or no body: 400.
    for raw in ["{not json", ""] {
        let resp = api
            .http
            .patch(format!("{}{path}", api.url))
            .bearer_auth(crate::common::TOKEN)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 400, "body `{raw}`");
        let err: Value = resp.json().await.expect("json");
        assert_eq!(err["error"]["code"], "bad_request");
    }
    let (status, _) = patch(&api, 0, json!({"multi_warehouse": true})).await;
    assert_eq!(status, 400, "shop id 0 is not a shop id");
    assert_eq!(row(&api, shop).await, (None, false));
}
