//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Written next to the code rather than derived by macros (kept small: the route table in `lib.rs` is the single
//! list of routes, and the integration tests fail if a route is missing here, if this names a route the router does
//! not serve, or if a documented route answers 404/405).

use axum::Json;
use serde_json::{Value, json};

/// `GET /openapi.json`.
pub async fn serve() -> Json<Value> {
    Json(document())
}

fn error_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for code in codes {
        let text = match *code {
            "400" => "the request cannot be read",
            "401" => "no valid bearer token",
            "404" => "not found",
            "409" => "not allowed in the current state, or the same Idempotency-Key is being processed",
            "413" => "body too large",
            "422" => "breaks a rule; `message` says which, `details` lists each problem",
            "502" => "Shopee refused or failed",
            "503" => "a dependency is down; retry",
            _ => "error",
        };
        m.insert(
            (*code).to_owned(),
            json!({"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(m)
}

fn ok(status: &str, description: &str, schema: Value, errors: &[&str]) -> Value {
    let mut r = error_responses(errors);
    r[status] = json!({"description": description, "content": {"application/json": {"schema": schema}}});
    r
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn page_of(name: &str) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": schema_ref(name)},
        "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page; null on the last"}}})
}

fn path_param(name: &str, kind: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}})
}

fn query_param(name: &str, kind: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": {"type": kind}, "description": description})
}

fn paging() -> Vec<Value> {
    vec![
        query_param("limit", "integer", "1..=500, default 50"),
        query_param("cursor", "string", "`next_cursor` of the previous page"),
    ]
}

fn body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

/// The whole document.
pub fn document() -> Value {
    let e = ["400", "401", "503"];
    let mut campaign_list_params = paging();
    campaign_list_params.push(query_param(
        "status",
        "string",
        "upcoming | ongoing | expired | creating | failed | ended | deleted",
    ));
    let mut mapping_params = paging();
    mapping_params.push(query_param("sku", "string", "only this SKU"));
    mapping_params.push(query_param("shop_id", "integer", "only this shop"));
    let mut dl_params = paging();
    dl_params.push(query_param(
        "source",
        "string",
        "the owning worker, e.g. order-publisher",
    ));
    dl_params.push(query_param(
        "status",
        "string",
        "parked | redrive_requested | redriven",
    ));
    let id = path_param("id", "integer");
    json!({
      "openapi": "3.1.0",
      "info": {"title": "seller-backend campaign-api", "version": env!("CARGO_PKG_VERSION"),
               "description": "Internal API: Shopee campaigns in SKU terms, product mappings, shops, orders, dead letters. Every route needs `Authorization: Bearer <token>` (CAMPAIGN_API_TOKENS). Errors are {\"error\": {\"code\", \"message\"}}. Money is a decimal string in BRL."},
      "security": [{"bearer": []}],
      "paths": {
        "/openapi.json": {"get": {"summary": "This document", "operationId": "openapi",
            "responses": ok("200", "the OpenAPI document", json!({"type": "object"}), &["401"])}},
        "/v1/campaigns": {
          "post": {"summary": "Create a campaign: one Shopee discount per hub's shop", "operationId": "createCampaign",
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": false, "schema": {"type": "string", "maxLength": 255},
                            "description": "a retried create with the same key and body returns the first result"}],
            "requestBody": body(schema_ref("CreateCampaign")),
            "responses": ok("201", "created in at least one shop; per-shop and per-item outcome", schema_ref("Campaign"),
                            &["400", "401", "409", "413", "422", "502", "503"])},
          "get": {"summary": "List campaigns, newest first", "operationId": "listCampaigns",
            "parameters": campaign_list_params,
            "responses": ok("200", "a page of campaigns (shops without items)", page_of("Campaign"), &e)}},
        "/v1/campaigns/{id}": {
          "get": {"summary": "A campaign with its items and Shopee's live status per shop", "operationId": "getCampaign",
            "parameters": [id],
            "responses": ok("200", "the campaign; each shop has `shopee` (get_discount) ", schema_ref("Campaign"), &["400", "401", "404", "503"])},
          "patch": {"summary": "Rename, end earlier, add / remove / reprice items", "operationId": "updateCampaign",
            "parameters": [id], "requestBody": body(schema_ref("UpdateCampaign")),
            "responses": ok("200", "the campaign after the change", schema_ref("Campaign"), &["400", "401", "404", "409", "422", "502", "503"])},
          "delete": {"summary": "Delete an upcoming campaign", "operationId": "deleteCampaign",
            "parameters": [id],
            "responses": ok("200", "the deleted campaign", schema_ref("Campaign"), &["400", "401", "404", "409", "502", "503"])}},
        "/v1/campaigns/{id}/end": {
          "post": {"summary": "End an ongoing campaign", "operationId": "endCampaign", "parameters": [id],
            "responses": ok("200", "the ended campaign", schema_ref("Campaign"), &["400", "401", "404", "409", "502", "503"])}},
        "/v1/mappings": {
          "put": {"summary": "Bulk upsert of product mappings", "operationId": "upsertMappings",
            "requestBody": body(json!({"type": "array", "maxItems": 5000, "items": schema_ref("Mapping")})),
            "responses": ok("200", "what changed; conflicts are models already mapped to another SKU", schema_ref("UpsertReport"), &["400", "401", "413", "422", "503"])},
          "get": {"summary": "Read mappings", "operationId": "listMappings", "parameters": mapping_params,
            "responses": ok("200", "a page of mappings", page_of("Mapping"), &e)}},
        "/v1/mappings/discover": {
          "post": {"summary": "Queue a mapping discovery for a shop (item_sku / model_sku matched to SKUs)", "operationId": "discoverMappings",
            "requestBody": body(json!({"type": "object", "required": ["shop_id"], "properties": {"shop_id": {"type": "integer"}}})),
            "responses": ok("202", "queued", schema_ref("QueuedJob"), &["400", "401", "422", "503"])}},
        "/v1/mappings/discover/{job_id}": {
          "get": {"summary": "A discovery job's status and counts", "operationId": "getDiscoveryJob",
            "parameters": [path_param("job_id", "integer")],
            "responses": ok("200", "the job", schema_ref("DiscoveryJob"), &["400", "401", "404", "503"])}},
        "/v1/catalog/content-sync": {
          "post": {"summary": "Queue a content sync (every mapped SKU when `skus` is absent)", "operationId": "queueContentSync",
            "requestBody": body(json!({"type": "object", "properties": {"skus": {"type": "array", "items": {"type": "string"}, "maxItems": 10000}}})),
            "responses": ok("202", "queued", schema_ref("QueuedJob"), &["400", "401", "422", "503"])}},
        "/v1/catalog/content-sync/{job_id}": {
          "get": {"summary": "A content-sync job's status and counts", "operationId": "getContentSyncJob",
            "parameters": [path_param("job_id", "integer")],
            "responses": ok("200", "the job", schema_ref("ContentSyncJob"), &["400", "401", "404", "503"])}},
        "/v1/shops": {
          "get": {"summary": "Known shops with authorization and token expiry (never tokens)", "operationId": "listShops",
            "parameters": paging(),
            "responses": ok("200", "a page of shops", page_of("Shop"), &e)}},
        "/v1/shops/auth-link": {
          "get": {"summary": "The URL a seller opens to authorize the app", "operationId": "shopAuthLink",
            "responses": ok("200", "the link (valid 5 minutes) and the callback it returns to",
              json!({"type": "object", "required": ["url", "redirect", "expires_at"], "properties": {
                "url": {"type": "string"}, "redirect": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"}}}), &["401"])}},
        "/v1/shops/{shop_id}": {
          "get": {"summary": "One shop: authorization status, token expiry, Instant Mart outlet and multi-warehouse settings", "operationId": "getShop",
            "parameters": [path_param("shop_id", "integer")],
            "responses": ok("200", "the shop", schema_ref("Shop"), &["400", "401", "404", "503"])},
          "patch": {"summary": "Set whether the shop is an Instant Mart outlet (of which mart) and whether it is multi-warehouse",
            "operationId": "updateShop",
            "description": "catalog-sync-worker updates price and stock of an outlet shop through the outlet APIs, and stock updates of a multi-warehouse shop must carry location_id. The mart must be a known shop, not the shop itself and not an outlet; a shop that is the mart of other shops cannot become an outlet (422).",
            "parameters": [path_param("shop_id", "integer")], "requestBody": body(schema_ref("UpdateShop")),
            "responses": ok("200", "the shop after the change, as GET answers it", schema_ref("Shop"), &["400", "401", "404", "413", "422", "503"])}},
        "/v1/orders/{order_sn}": {
          "get": {"summary": "An order's state in this service (no buyer data)", "operationId": "getOrder",
            "parameters": [path_param("order_sn", "string")],
            "responses": ok("200", "the order", schema_ref("Order"), &["400", "401", "404", "503"])}},
        "/v1/dead-letters": {
          "get": {"summary": "Parked work and why", "operationId": "listDeadLetters", "parameters": dl_params,
            "responses": ok("200", "a page of dead letters, oldest first", page_of("DeadLetter"), &e)}},
        "/v1/dead-letters/{id}/redrive": {
          "post": {"summary": "Ask the owning worker to try a parked item again", "operationId": "redriveDeadLetter",
            "parameters": [id],
            "responses": ok("202", "redrive requested", json!({"type": "object", "properties": {"id": {"type": "integer"}, "status": {"type": "string"}}}),
                            &["400", "401", "404", "409", "503"])}}
      },
      "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
          "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
              "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}},
          "Money": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$", "examples": ["9.90"]},
          "CampaignItemInput": {"type": "object", "required": ["sku", "promotion_price"], "properties": {
              "sku": {"type": "string"}, "promotion_price": schema_ref("Money"),
              "purchase_limit": {"type": "integer", "minimum": 0, "description": "0 = no limit"},
              "promotion_stock": {"type": "integer", "minimum": 0}}},
          "CreateCampaign": {"type": "object", "required": ["name", "starts_at", "ends_at", "items"], "properties": {
              "name": {"type": "string", "maxLength": 128},
              "starts_at": {"type": "string", "format": "date-time", "description": "more than 1 hour ahead"},
              "ends_at": {"type": "string", "format": "date-time", "description": "less than 180 days after starts_at"},
              "hub_ids": {"type": "array", "items": {"type": "string"}, "description": "absent = every shop where the SKUs are mapped"},
              "items": {"type": "array", "minItems": 1, "maxItems": 1000, "items": schema_ref("CampaignItemInput")}}},
          "UpdateCampaign": {"type": "object", "properties": {
              "name": {"type": "string"}, "ends_at": {"type": "string", "format": "date-time", "description": "only earlier"},
              "add_items": {"type": "array", "items": schema_ref("CampaignItemInput")},
              "remove_skus": {"type": "array", "items": {"type": "string"}},
              "update_items": {"type": "array", "items": schema_ref("CampaignItemInput")}}},
          "Campaign": {"type": "object", "properties": {
              "id": {"type": "integer"}, "name": {"type": "string"},
              "starts_at": {"type": "string", "format": "date-time"}, "ends_at": {"type": "string", "format": "date-time"},
              "hub_ids": {"type": ["array", "null"], "items": {"type": "string"}},
              "status": {"type": "string", "enum": ["upcoming", "ongoing", "expired", "creating", "failed", "ended", "deleted"]},
              "state": {"type": "string"},
              "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
              "shops": {"type": "array", "items": schema_ref("CampaignShop")}}},
          "CampaignShop": {"type": "object", "properties": {
              "shop_id": {"type": "integer"}, "discount_id": {"type": ["integer", "null"]},
              "state": {"type": "string", "enum": ["pending", "creating", "discount_created", "active", "compensating", "failed", "ended", "deleted"]},
              "shopee_status": {"type": ["string", "null"]}, "synced_at": {"type": ["string", "null"]},
              "error": {"type": ["string", "null"]},
              "items": {"type": "array", "items": schema_ref("CampaignItem")},
              "shopee": {"description": "detail only: Shopee's get_discount answer, or {error}"}}},
          "CampaignItem": {"type": "object", "properties": {
              "sku": {"type": "string"}, "item_id": {"type": "integer"}, "model_id": {"type": "integer"},
              "promotion_price": schema_ref("Money"), "purchase_limit": {"type": "integer"},
              "promotion_stock": {"type": ["integer", "null"]},
              "state": {"type": "string", "enum": ["pending", "added", "rejected", "removed"]},
              "error": {"type": ["object", "null"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
          "Mapping": {"type": "object", "required": ["sku", "shop_id", "item_id", "model_id"], "properties": {
              "sku": {"type": "string"}, "shop_id": {"type": "integer"}, "item_id": {"type": "integer"},
              "model_id": {"type": "integer", "description": "0 when the item has no models"},
              "outlet_item_id": {"type": "integer"}}},
          "UpsertReport": {"type": "object", "properties": {
              "inserted": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
              "conflicts": {"type": "array", "items": {"type": "object", "properties": {
                  "sku": {"type": "string"}, "shop_id": {"type": "integer"}, "item_id": {"type": "integer"},
                  "model_id": {"type": "integer"}, "mapped_to_sku": {"type": "string"}}}}}},
          "QueuedJob": {"type": "object", "properties": {"job_id": {"type": "integer"}, "status": {"type": "string"},
              "created_at": {"type": "string", "format": "date-time"}}},
          "DiscoveryJob": {"type": "object", "properties": {
              "job_id": {"type": "integer"}, "shop_id": {"type": "integer"},
              "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
              "items_scanned": {"type": "integer"}, "matched": {"type": "integer"}, "unmatched": {"type": "integer"},
              "conflicting": {"type": "integer"}, "error": {"type": ["string", "null"]},
              "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]}, "finished_at": {"type": ["string", "null"]}}},
          "ContentSyncJob": {"type": "object", "properties": {
              "job_id": {"type": "integer"}, "skus": {"type": ["array", "null"], "items": {"type": "string"}},
              "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
              "items_seen": {"type": "integer"}, "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
              "failed": {"type": "integer"}, "error": {"type": ["string", "null"]},
              "created_at": {"type": "string"}, "started_at": {"type": ["string", "null"]}, "finished_at": {"type": ["string", "null"]}}},
          "UpdateShop": {"type": "object", "additionalProperties": false, "minProperties": 1,
              "description": "each field absent = unchanged", "properties": {
              "mart_shop_id": {"type": ["integer", "null"], "minimum": 1,
                               "description": "Instant Mart: the mart shop this shop is an outlet of; null = not an outlet any more"},
              "multi_warehouse": {"type": "boolean", "description": "stock updates must carry location_id"}}},
          "Shop": {"type": "object", "properties": {
              "shop_id": {"type": "integer"},
              "mart_shop_id": {"type": ["integer", "null"], "description": "Instant Mart: the mart shop this outlet belongs to; null when not an outlet"},
              "multi_warehouse": {"type": "boolean", "description": "stock updates carry location_id"},
              "authorization_status": {"type": "string", "enum": ["authorized", "expired", "deauthorized", "never_authorized"]},
              "authorized_at": {"type": ["string", "null"]}, "authorization_expires_at": {"type": ["string", "null"]},
              "deauthorized_at": {"type": ["string", "null"]}, "access_token_expires_at": {"type": ["string", "null"]},
              "refresh_token_expires_at": {"type": ["string", "null"]}, "tokens_refreshed_at": {"type": ["string", "null"]}}},
          "Order": {"type": "object", "properties": {
              "shop_id": {"type": "integer"}, "order_sn": {"type": "string"},
              "intake_state": {"type": "string", "enum": ["received", "needs_mapping", "published", "parked"]},
              "shopee_status": {"type": ["string", "null"]},
              "delivery_state": {"type": "string", "enum": ["ready_to_ship", "arranged", "picked_up", "delivered", "delivery_failed", "cancelled"]},
              "hub_id": {"type": ["string", "null"]}, "ordr_order_id": {"type": ["string", "null"]},
              "new_order_event_id": {"type": ["string", "null"]},
              "published_at": {"type": ["string", "null"]}, "cancelled_after_publish_at": {"type": ["string", "null"]},
              "delivery_updated_at": {"type": ["string", "null"]}, "detail": {"type": ["string", "null"]},
              "created_at": {"type": "string"}, "updated_at": {"type": "string"}}},
          "DeadLetter": {"type": "object", "properties": {
              "id": {"type": "integer"}, "source": {"type": "string"}, "kind": {"type": "string"},
              "reference": {"type": ["string", "null"]}, "reason": {"type": "string"}, "payload": {},
              "status": {"type": "string", "enum": ["parked", "redrive_requested", "redriven"]},
              "attempts": {"type": "integer"}, "redrive_count": {"type": "integer"},
              "created_at": {"type": "string"}, "updated_at": {"type": "string"}}}
        }
      }
    })
}
