//! Every route but /health/* and /metrics answers 401 without a valid token, in the JSON error shape.

use reqwest::Method;

use crate::common::{TOKEN, start};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_a_valid_bearer_token() {
    let api = start().await;
    let routes = campaign_api::routes();
    assert!(routes.len() >= 19);
    for r in &routes {
        let path = concrete(r.path);
        let method = Method::from_bytes(r.method.as_str().as_bytes()).expect("method");
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let (status, body) = api
                .call_with(method.clone(), &path, Some(serde_json::json!({})), token, &[])
                .await;
            assert_eq!(status, 401, "{} {path} with {token:?}: {body}", r.method);
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Bearer"))
            );
        }
        // A token sent in another scheme does not count either.
        let (status, _) = api
            .call_with(
                method.clone(),
                &path,
                None,
                None,
                &[("authorization", &format!("Basic {TOKEN}"))],
            )
            .await;
        assert_eq!(status, 401, "{} {path} with Basic", r.method);
    }
    // Unknown routes do not reveal themselves without a token; with one they are a JSON 404.
    let (status, _) = api.call_with(Method::GET, "/v1/nothing", None, None, &[]).await;
    assert_eq!(status, 401);
    let (status, body) = api.call(Method::GET, "/v1/nothing", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    // Operational routes are open.
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let resp = api
            .http
            .get(format!("{}{path}", api.url))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    // Both configured tokens work.
    let (status, _) = api
        .call_with(
            Method::GET,
            "/v1/shops",
            None,
            Some("other-token-0123456789"),
            &[],
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_malformed_bodies_get_json_errors() {
    let api = start().await;
    let big = "x".repeat(campaign_api::MAX_BODY_BYTES + 10);
    let resp = api
        .http
        .put(format!("{}/v1/mappings", api.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(format!("[\"{big}\"]"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "payload_too_large");

    let resp = api
        .http
        .post(format!("{}/v1/campaigns", api.url))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"].is_string());

    let (status, body) = api.call(Method::GET, "/v1/campaigns?limit=0", None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or("").contains("limit"));
    let (status, _) = api.call(Method::GET, "/v1/campaigns/not-a-number", None).await;
    assert_eq!(status, 400);
    let (status, body) = api.call(Method::PATCH, "/v1/shops", None).await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
