//! Channel 90026 serviceable area: a KML upload answers a task, the task is in progress and then done (or failed
//! on a file without usable polygons); what is not KML is refused with Shopee's documented error names.

use serde_json::json;

use crate::support::*;

const UPLOAD: &str = "/api/v2/logistics/upload_serviceable_polygon";
const CHECK: &str = "/api/v2/logistics/check_polygon_update_status";

const KML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<kml xmlns=\"http://www.opengis.net/kml/2.2\"><Document>\
<Placemark><name>SAO-01</name><Polygon><outerBoundaryIs><LinearRing><coordinates>\
-46.6,-23.5 -46.7,-23.6 -46.5,-23.6 -46.6,-23.5</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>\
</Document></kml>";

async fn upload(env: &Env, file_name: &str, data: &[u8]) -> Answer {
    let form =
        shopee_client::envelope::MultipartBody::file("file", file_name, "application/octet-stream", data);
    answer(
        env.http
            .post(env.url(UPLOAD))
            .query(&env.signed_shop_query(UPLOAD, now()))
            .header("Content-Type", form.content_type())
            .body(form.bytes().to_vec())
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn check(env: &Env, task_id: &str) -> Answer {
    env.post(CHECK, json!({"task_id": task_id})).await
}

#[tokio::test]
async fn a_kml_upload_is_in_progress_then_completed_and_kept_as_the_shops_area() {
    let env = env().await;
    assert_eq!(env.sandbox.polygon(SHOP), None);
    let a = upload(&env, "area.kml", KML.as_bytes()).await;
    let task_id = a.ok()["task_id"].as_str().unwrap().to_owned();
    assert!(!task_id.is_empty());
    assert_eq!(env.sandbox.polygon(SHOP).as_deref(), Some(KML));

    let first = check(&env, &task_id).await;
    assert_eq!(first.ok()["status"], 1, "{}", first.body);
    assert_eq!(first.ok()["message"], "task in progress");
    for _ in 0..2 {
        let done = check(&env, &task_id).await;
        assert_eq!(done.ok()["status"], 0, "{}", done.body);
        assert_eq!(done.ok()["message"], "task completed");
    }

    // The latest upload is the shop's area.
    let second = KML.replace("SAO-01", "SAO-02");
    upload(&env, "area.kml", second.as_bytes()).await.ok();
    assert_eq!(env.sandbox.polygon(SHOP), Some(second));
    assert_eq!(env.sandbox.calls_to(UPLOAD), 2);
}

#[tokio::test]
async fn a_file_that_is_not_kml_is_refused_with_the_documented_names() {
    let env = env().await;
    for (what, data) in [
        ("png", &b"\x89PNG\r\n\x1a\n...."[..]),
        (
            "geojson",
            &b"{\"type\": \"FeatureCollection\", \"features\": []}"[..],
        ),
        ("other xml", &b"<?xml version=\"1.0\"?><gpx></gpx>"[..]),
    ] {
        let a = upload(&env, "area.kml", data).await;
        assert_eq!((a.status, a.error()), (400, "error_param"), "{what}: {}", a.body);
        assert_eq!(a.message(), "File type is not .kml type", "{what}");
    }
    let empty = upload(&env, "area.kml", b"").await;
    assert_eq!(empty.error(), "error_data", "{}", empty.body);
    assert_eq!(env.sandbox.polygon(SHOP), None, "nothing refused is kept");
}

#[tokio::test]
async fn a_kml_without_usable_polygons_ends_with_status_2_and_unknown_tasks_are_not_found() {
    let env = env().await;
    let open_ring = KML.replace("-46.6,-23.5</coordinates>", "-46.6,-23.4</coordinates>");
    let task = upload(&env, "area.kml", open_ring.as_bytes()).await.ok()["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(check(&env, &task).await.ok()["status"], 1);
    let failed = check(&env, &task).await;
    assert_eq!(failed.ok()["status"], 2, "{}", failed.body);
    assert!(failed.ok()["message"].as_str().unwrap().contains("first point"));

    let unknown = check(&env, "nope").await;
    assert_eq!(unknown.error(), "error_server", "{}", unknown.body);
    assert_eq!(unknown.message(), "Error Details : task not found");
    // Another shop cannot read this shop's task.
    let (other_token, _) = env.sandbox.issue_tokens(900_002);
    let other = env
        .post_as(CHECK, 900_002, &other_token, json!({"task_id": task}))
        .await;
    assert_eq!(other.error(), "error_server", "{}", other.body);
}
