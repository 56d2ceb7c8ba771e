//! Content sync with images: Catalog image URLs (served by a local image server) are downloaded, uploaded to the
//! sandbox once per URL and sent as `image.image_id_list` only when a product's list changed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalog_sync_worker::content::ContentSync;
use serde_json::{Value, json};
use shopee_sandbox::JournalEntry;

use crate::jobs::catalog_server;
use crate::support::Rig;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-png-";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0-jpeg-";

/// name -> (Content-Type, body), served at `/img/{name}`; anything else is a 404.
type Files = Arc<Mutex<HashMap<String, (String, Vec<u8>)>>>;

async fn image_server(files: Files) -> String {
    use axum::extract::{Path, State};
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let app = axum::Router::new()
        .route(
            "/img/{name}",
            axum::routing::get(
                |State(files): State<Files>, Path(name): Path<String>| async move {
                    match files.lock().unwrap().get(&name).cloned() {
                        Some((ct, body)) => ([(header::CONTENT_TYPE, ct)], body).into_response(),
                        None => (StatusCode::NOT_FOUND, "no such image").into_response(),
                    }
                },
            ),
        )
        .with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/img")
}

fn file(name: &str, data: &[u8]) -> (String, (String, Vec<u8>)) {
    let ct = if data.starts_with(PNG) {
        "image/png"
    } else {
        "image/jpeg"
    };
    (name.to_owned(), (ct.to_owned(), data.to_vec()))
}

fn product(sku: &str, name: &str, images: &[String]) -> Value {
    json!({"sku": sku, "name": name, "description": "Arroz tipo 1", "brand": null, "ean": null, "active": true,
        "images": images.iter().map(|u| json!({"url": u})).collect::<Vec<_>>(), "weightGrams": 1000,
        "dimensions": null})
}

fn calls(rig: &Rig, api: &str) -> Vec<JournalEntry> {
    rig.sandbox
        .journal()
        .into_iter()
        .filter(|e| e.api.ends_with(api))
        .collect()
}

/// The image ids stored for these URLs, in this order.
async fn ids(rig: &Rig, urls: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for url in urls {
        out.push(
            sqlx::query_scalar("SELECT image_id FROM catalog_images WHERE url = $1")
                .bind(url)
                .fetch_one(&rig.db.pool)
                .await
                .unwrap(),
        );
    }
    out
}

async fn run_job(rig: &Rig, sync: &ContentSync) -> (String, i32, i32, i32, Option<String>) {
    let id: i64 = sqlx::query_scalar("INSERT INTO content_sync_jobs (skus) VALUES (NULL) RETURNING id")
        .fetch_one(&rig.db.pool)
        .await
        .unwrap();
    assert!(sync.run_next_job().await.unwrap());
    sqlx::query_as("SELECT status, updated, unchanged, failed, error FROM content_sync_jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&rig.db.pool)
        .await
        .unwrap()
}

fn keys(e: &JournalEntry) -> Vec<String> {
    let mut k: Vec<String> = e.request.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn images_are_uploaded_once_and_sent_only_when_the_list_changes() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(2, 1).await;
    let files: Files = Arc::new(Mutex::new(
        [
            file("a.png", PNG),
            file("b.jpg", JPEG),
            file("c.png", PNG),
            file("d.jpg", JPEG),
        ]
        .into_iter()
        .collect(),
    ));
    let base = image_server(files).await;
    let url = |n: &str| format!("{base}/{n}");
    let (item0, item1) = (map[&rig.sku(0)].0, map[&rig.sku(1)].0);
    // b.jpg is in both products (and twice in the second: sent once).
    let list0 = vec![url("a.png"), url("b.jpg")];
    let list1 = vec![url("c.png"), url("b.jpg")];
    let fixture = Arc::new(Mutex::new(vec![
        product(&rig.sku(0), "Arroz 1kg", &list0),
        product(
            &rig.sku(1),
            "Feijão 1kg",
            &[list1.clone(), vec![url("c.png")]].concat(),
        ),
    ]));
    let sync = ContentSync::new(
        rig.db.pool.clone(),
        rig.client.clone(),
        &catalog_server(fixture.clone()).await,
    );

    // First sync: three distinct images uploaded, each item gets its ids in the Catalog's order with the rest.
    let (status, updated, _, failed, error) = run_job(&rig, &sync).await;
    assert_eq!((status.as_str(), updated, failed, error), ("done", 2, 0, None));
    assert_eq!(calls(&rig, "upload_image").len(), 3);
    assert_eq!(rig.sandbox.uploaded_images().len(), 3);
    let (ids0, ids1) = (ids(&rig, &list0).await, ids(&rig, &list1).await);
    assert_eq!(rig.sandbox.item(rig.shop, item0).unwrap().images, ids0);
    assert_eq!(rig.sandbox.item(rig.shop, item1).unwrap().images, ids1);
    let updates = calls(&rig, "update_item");
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[0].request["image"]["image_id_list"], json!(ids0));
    assert!(
        updates[0].request.get("item_name").is_some(),
        "one call with every changed field"
    );

    // Same images, another name: no upload, no image field.
    fixture.lock().unwrap()[0] = product(&rig.sku(0), "Arroz Branco 1kg", &list0);
    rig.sandbox.clear_journal();
    let (_, updated, unchanged, failed, _) = run_job(&rig, &sync).await;
    assert_eq!((updated, unchanged, failed), (1, 1, 0));
    assert!(calls(&rig, "upload_image").is_empty());
    let updates = calls(&rig, "update_item");
    assert_eq!(updates.len(), 1);
    assert_eq!(keys(&updates[0]), ["item_id", "item_name"]);

    // One image of the second product changes: only that one is uploaded; the new list goes alone.
    let new1 = vec![url("c.png"), url("d.jpg")];
    fixture.lock().unwrap()[1] = product(&rig.sku(1), "Feijão 1kg", &new1);
    rig.sandbox.clear_journal();
    let (_, updated, unchanged, _, _) = run_job(&rig, &sync).await;
    assert_eq!((updated, unchanged), (1, 1));
    assert_eq!(calls(&rig, "upload_image").len(), 1);
    assert_eq!(rig.sandbox.uploaded_images().len(), 4);
    let updates = calls(&rig, "update_item");
    assert_eq!(updates.len(), 1);
    assert_eq!(keys(&updates[0]), ["image", "item_id"]);
    let new_ids = ids(&rig, &new1).await;
    assert_eq!(new_ids[0], ids1[0], "c.png keeps its id");
    assert_eq!(updates[0].request["image"]["image_id_list"], json!(new_ids));
    assert_eq!(rig.sandbox.item(rig.shop, item1).unwrap().images, new_ids);
    println!(
        "content images: 3 uploads for 2 products, then 0 for a name change, then 1 for one changed image"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_image_fails_its_product_only() {
    let rig = Rig::new(200).await;
    let map = rig.seed_catalog(3, 1).await;
    let files: Files = Arc::new(Mutex::new(
        [
            file("ok.png", PNG),
            (
                "page.jpg".to_owned(),
                ("text/html".to_owned(), b"<html>moved</html>".to_vec()),
            ),
        ]
        .into_iter()
        .collect(),
    ));
    let base = image_server(files.clone()).await;
    // The missing image's URL carries a credential in its query: never in the error.
    let missing = format!("{base}/missing.jpg?token=s3cr3t-t0ken");
    let fixture = Arc::new(Mutex::new(vec![
        product(
            &rig.sku(0),
            "Arroz 1kg",
            &[format!("{base}/ok.png"), missing.clone()],
        ),
        product(&rig.sku(1), "Feijão 1kg", &[format!("{base}/page.jpg")]),
        product(&rig.sku(2), "Café 500g", &[format!("{base}/ok.png")]),
    ]));
    let sync = ContentSync::new(
        rig.db.pool.clone(),
        rig.client.clone(),
        &catalog_server(fixture.clone()).await,
    );
    let (status, updated, _, failed, error) = run_job(&rig, &sync).await;
    assert_eq!((status.as_str(), updated, failed), ("done", 1, 2));
    let error = error.expect("the job says which products failed");
    assert!(
        error.contains(&format!("SKU {}", rig.sku(0)))
            && error.contains("image 2 (")
            && error.contains("/img/missing.jpg): download answered HTTP 404"),
        "{error}"
    );
    assert!(
        error.contains(&format!("SKU {}", rig.sku(1)))
            && error.contains("not an image (Content-Type text/html"),
        "{error}"
    );
    assert!(!error.contains("s3cr3t") && !error.contains("token="), "{error}");
    // The others were sent: every name, and the good product's image.
    for n in 0..3 {
        let item = rig.sandbox.item(rig.shop, map[&rig.sku(n)].0).unwrap();
        assert_ne!(
            item.item_name,
            format!("Item {}", map[&rig.sku(n)].0),
            "SKU {n} got its name"
        );
    }
    let ok_id = ids(&rig, &[format!("{base}/ok.png")]).await;
    assert_eq!(
        rig.sandbox.item(rig.shop, map[&rig.sku(2)].0).unwrap().images,
        ok_id
    );
    assert!(
        rig.sandbox
            .item(rig.shop, map[&rig.sku(0)].0)
            .unwrap()
            .images
            .is_empty()
    );
    assert_eq!(
        rig.sandbox.uploaded_images().len(),
        1,
        "ok.png once, though two products use it"
    );

    // The image appears: the next run uploads it and sends the images alone (the name was sent already).
    files
        .lock()
        .unwrap()
        .insert("missing.jpg".into(), ("image/jpeg".into(), JPEG.to_vec()));
    rig.sandbox.clear_journal();
    let (_, updated, unchanged, failed, _) = run_job(&rig, &sync).await;
    assert_eq!((updated, unchanged, failed), (1, 1, 1));
    let updates = calls(&rig, "update_item");
    assert_eq!(updates.len(), 1);
    assert_eq!(keys(&updates[0]), ["image", "item_id"]);
    assert_eq!(
        rig.sandbox.item(rig.shop, map[&rig.sku(0)].0).unwrap().images,
        ids(&rig, &[format!("{base}/ok.png"), missing]).await
    );
    println!("content images: a 404 and an HTML page failed their products only, with redacted reasons");
}
