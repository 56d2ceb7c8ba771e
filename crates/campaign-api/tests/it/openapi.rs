//! `/openapi.json` documents exactly the routes the router serves, each reachable, with schemas that accept what the
//! test suite sends and refuse what the API refuses. (Every exchange of every test is also checked against it: see
//! `spec.rs`.)

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::spec::{self, check_schema, request_schema};
use crate::common::{in_hours, start};

/// (method, path) of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_matches_the_routes() {
    let api = start().await;
    let (status, doc) = api.call(Method::GET, "/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        &doc,
        spec::document(),
        "the served document is the one the code builds"
    );
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    let documented = documented(&doc);
    let served: BTreeSet<(String, String)> = campaign_api::routes()
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.path.to_owned()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let phantom: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        phantom.is_empty(),
        "openapi.json documents routes that are not served: {phantom:?}"
    );

    let mut operation_ids = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(
            operation_ids.insert(id.to_owned()),
            "operationId {id} is used twice"
        );
        assert!(
            op["responses"]["401"].is_object(),
            "{method} {path} does not document 401"
        );
        let success: Vec<&String> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .filter(|s| s.starts_with('2'))
            .collect();
        assert_eq!(
            success.len(),
            1,
            "{method} {path}: one success answer, got {success:?}"
        );
        // Each `{param}` of the path is declared as a path parameter, and nothing else is.
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .filter_map(|p| p["name"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(in_template, declared, "{method} {path}: path parameters");
    }

    // Every documented operation reaches a handler (not the router's 404 / 405).
    for (method, path) in &documented {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let (status, body) = api.call(m, &concrete, Some(json!({}))).await;
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !(status == 404 && body["error"]["message"] == "no such route"),
            "{method} {path} is documented but not routed"
        );
    }

    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().expect("name");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

/// A request body the suite sends, for each operation that takes one.
fn fixtures() -> Vec<(&'static str, &'static str, Value)> {
    let skus = ["SKU1-100001".to_owned(), "SKU1-100002".to_owned()];
    vec![
        (
            "POST",
            "/v1/campaigns",
            crate::campaigns::campaign("Black Friday", Some("H1"), &skus, "15.90"),
        ),
        (
            "POST",
            "/v1/campaigns",
            crate::campaigns::campaign("Everywhere", None, &skus, "9.99"),
        ),
        (
            "PATCH",
            "/v1/campaigns/{id}",
            json!({
                "name": "After",
                "ends_at": in_hours(24),
                "add_items": [{"sku": "S-3", "promotion_price": "11.00"}],
                "remove_skus": ["S-1"],
                "update_items": [{"sku": "S-2", "promotion_price": "12.50", "purchase_limit": 3}],
            }),
        ),
        (
            "PUT",
            "/v1/mappings",
            json!([
                {"sku": "MAP-A", "shop_id": 7, "item_id": 11, "model_id": 0},
                {"sku": "MAP-B", "shop_id": 7, "item_id": 12, "model_id": 5},
            ]),
        ),
        ("POST", "/v1/mappings/discover", json!({"shop_id": 7})),
        ("POST", "/v1/catalog/content-sync", json!({})),
        (
            "POST",
            "/v1/catalog/content-sync",
            json!({"skus": ["A-1", "B-2"]}),
        ),
        ("PATCH", "/v1/shops/{shop_id}", json!({"mart_shop_id": 8})),
        (
            "PATCH",
            "/v1/shops/{shop_id}",
            json!({"mart_shop_id": null, "multi_warehouse": true}),
        ),
    ]
}

#[test]
fn request_schemas_accept_what_the_suite_sends_and_refuse_what_the_api_refuses() {
    let doc = spec::document();
    let fixtures = fixtures();
    for (method, path, body) in &fixtures {
        let op = &doc["paths"][*path][method.to_lowercase()];
        let schema =
            request_schema(op).unwrap_or_else(|| panic!("{method} {path} documents no request body"));
        if let Err(errors) = check_schema(schema, body) {
            panic!("{method} {path}: the documented schema refuses {body}: {errors:?}");
        }
    }
    // Every operation with a body has a fixture.
    for (method, path) in documented(doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        if request_schema(op).is_some() {
            assert!(
                fixtures.iter().any(|(m, p, _)| *m == method && *p == path),
                "{method} {path} takes a body but has no fixture here"
            );
        }
    }
    // The schemas are not vacuous: shapes the API refuses (serde `deny_unknown_fields`, required fields, types).
    let schema_of = |method: &str, path: &str| {
        request_schema(&doc["paths"][path][method])
            .expect("schema")
            .clone()
    };
    let create = schema_of("post", "/v1/campaigns");
    let mut no_items = crate::campaigns::campaign("C", None, &[], "1.00");
    no_items.as_object_mut().expect("object").remove("items");
    let mut extra = crate::campaigns::campaign("C", None, &["A".to_owned()], "1.00");
    extra["color"] = json!("red");
    let mut bad_price = crate::campaigns::campaign("C", None, &["A".to_owned()], "1.00");
    bad_price["items"][0]["promotion_price"] = json!("1,00");
    for refused in [no_items, extra, bad_price, json!([])] {
        assert!(check_schema(&create, &refused).is_err(), "accepted {refused}");
    }
    let mappings = schema_of("put", "/v1/mappings");
    assert!(check_schema(&mappings, &json!([{"sku": "A", "shop_id": "7", "item_id": 1}])).is_err());
    assert!(check_schema(&mappings, &json!({"sku": "A"})).is_err());
    let shop = schema_of("patch", "/v1/shops/{shop_id}");
    assert!(check_schema(&shop, &json!({"mart": 1})).is_err());
}

#[test]
fn response_schemas_refuse_answers_the_api_never_gives() {
    let doc = spec::document();
    let ok = |path: &str, method: &str, status: &str| {
        doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"].clone()
    };
    let campaign = ok("/v1/campaigns/{id}", "get", "200");
    assert!(check_schema(&campaign, &json!({"id": 1, "status": "paused"})).is_err());
    let error = ok("/v1/campaigns/{id}", "get", "404");
    assert!(check_schema(&error, &json!({"error": {"code": "not_found", "message": "m"}})).is_ok());
    assert!(check_schema(&error, &json!({"message": "m"})).is_err());
    // A detail's shop without a discount: `shopee` is null.
    let detail = json!({"id": 1, "name": "c", "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-02T00:00:00Z",
        "hub_ids": null, "status": "failed", "state": "failed", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "shops": [{"shop_id": 7, "discount_id": null, "state": "failed",
        "shopee_status": null, "synced_at": null, "error": "refused", "items": [], "shopee": null}]});
    if let Err(errors) = check_schema(&campaign, &detail) {
        panic!("{errors:?}");
    }
    let mut unknown = detail.clone();
    unknown["shops"][0]["state"] = json!("paused");
    assert!(check_schema(&campaign, &unknown).is_err());
    let shops = ok("/v1/shops", "get", "200");
    assert!(check_schema(&shops, &json!({"items": [], "next_cursor": null})).is_ok());
    assert!(check_schema(&shops, &json!({"items": [{"shop_id": "x"}], "next_cursor": null})).is_err());
}
