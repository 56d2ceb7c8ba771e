//! `POST /webhooks/shopee` against the real app (bound on port 0) and real PostgreSQL.

use std::time::Duration;

use service_runtime::cli::Serve;
use service_runtime::config::{BaseConfig, Env};
use shopee_client::sign::{PushSignatureMode, sign_push};
use test_support::{TcpProxy, TestDb};
use tokio_util::sync::CancellationToken;

const KEY: &str = "push-test-partner-key";
const CALLBACK: &str = "https://seller.example.com/webhooks/shopee";

struct Gateway {
    url: String,
    shutdown: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(database_url: &str) -> Gateway {
    let env = Env::from_pairs([
        ("SHOPEE_PARTNER_ID", "1000001"),
        ("SHOPEE_PARTNER_KEY", KEY),
        ("SHOPEE_PUSH_CALLBACK_URL", CALLBACK),
        (
            "TOKEN_ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("DATABASE_URL", database_url),
    ]);
    let config = webhook_gateway::Config::from_env(&env).expect("config");
    let base = BaseConfig::from_env(&env).expect("base");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    let serve = Serve {
        config,
        base,
        listener,
        shutdown: shutdown.clone(),
    };
    tokio::spawn(webhook_gateway::run(serve));
    Gateway { url, shutdown }
}

fn order_body(sn: &str) -> String {
    format!(
        r#"{{"shop_id":900001,"code":3,"timestamp":1764072000,"data":{{"ordersn":"{sn}","status":"READY_TO_SHIP","update_time":1764072000}}}}"#
    )
}

async fn post(gw: &Gateway, body: &[u8], auth: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{}/webhooks/shopee", gw.url))
        .body(body.to_vec());
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

fn sign(body: &[u8]) -> String {
    sign_push(PushSignatureMode::UrlAndBody, KEY, CALLBACK, body)
}

async fn rows(db: &TestDb) -> (i64, i64) {
    sqlx::query_as("SELECT count(*), COALESCE(sum(seen_count), 0)::int8 FROM push_inbox")
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_valid_push_is_stored_before_an_empty_2xx_and_a_repeat_only_counts() {
    let db = TestDb::new().await;
    let gw = start(&db.url).await;
    let body = order_body("2511250ABCDEF");
    let (status, text) = post(&gw, body.as_bytes(), Some(&sign(body.as_bytes()))).await;
    assert_eq!((status, text.as_str()), (200, ""));
    assert_eq!(rows(&db).await, (1, 1));
    let (status, _) = post(&gw, body.as_bytes(), Some(&sign(body.as_bytes()))).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&db).await, (1, 2));
    let (sn, status): (String, String) = sqlx::query_as("SELECT order_sn, order_status FROM push_inbox")
        .fetch_one(&db.pool)
        .await
        .expect("row");
    assert_eq!((sn.as_str(), status.as_str()), ("2511250ABCDEF", "READY_TO_SHIP"));
}

/// R3 (per kind): every bad signature 401, a signed bad body 400, oversized 413; nothing stored.
#[tokio::test(flavor = "multi_thread")]
async fn bad_pushes_are_rejected_and_change_nothing() {
    let db = TestDb::new().await;
    let gw = start(&db.url).await;
    let body = order_body("BADPUSH1");
    let good = sign(body.as_bytes());

    let wrong_key = sign_push(
        PushSignatureMode::UrlAndBody,
        "another-key",
        CALLBACK,
        body.as_bytes(),
    );
    assert_eq!(
        post(&gw, body.as_bytes(), Some(&wrong_key)).await.0,
        401,
        "wrong key"
    );
    let mut flipped = body.clone().into_bytes();
    flipped[10] ^= 0x01;
    assert_eq!(
        post(&gw, &flipped, Some(&good)).await.0,
        401,
        "one byte flipped after signing"
    );
    assert_eq!(post(&gw, body.as_bytes(), None).await.0, 401, "no header");
    let reserialized =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&body).expect("json"))
            .expect("pretty");
    assert_eq!(
        post(&gw, reserialized.as_bytes(), Some(&good)).await.0,
        401,
        "signed over re-serialized JSON"
    );
    let body_only = sign_push(PushSignatureMode::BodyOnly, KEY, CALLBACK, body.as_bytes());
    assert_eq!(
        post(&gw, body.as_bytes(), Some(&body_only)).await.0,
        401,
        "body-only signature in url mode"
    );

    let invalid = b"{\"shop_id\": 900001, \"code\": 3,";
    let (status, text) = post(&gw, invalid, Some(&sign(invalid))).await;
    assert_eq!(status, 400, "invalid JSON with a valid signature");
    assert!(text.contains("malformed"), "{text}");
    let missing_sn = br#"{"shop_id":900001,"code":3,"data":{"status":"READY_TO_SHIP"}}"#;
    assert_eq!(
        post(&gw, missing_sn, Some(&sign(missing_sn))).await.0,
        400,
        "order push without ordersn"
    );

    let mut huge = order_body("HUGE").into_bytes();
    huge.extend(std::iter::repeat_n(b' ', 1024 * 1024 + 1));
    assert_eq!(post(&gw, &huge, Some(&sign(&huge))).await.0, 413, "over 1 MiB");

    assert_eq!(rows(&db).await, (0, 0), "a rejected push must not be stored");

    // An unknown code with a valid signature is stored and acknowledged.
    let unknown = br#"{"shop_id":900001,"code":777,"timestamp":1,"data":{"anything":true}}"#;
    assert_eq!(post(&gw, unknown, Some(&sign(unknown))).await.0, 200);
    assert_eq!(rows(&db).await, (1, 1));
}

/// R11 (gateway side): while PostgreSQL is unreachable the answer is 503, never 2xx; afterwards the same push is
/// stored without a restart.
#[tokio::test(flavor = "multi_thread")]
async fn database_down_means_503_then_recovery() {
    let db = TestDb::new().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let gw = start(&db.url_via(proxy.addr)).await;
    let body = order_body("PGDOWN1");
    let auth = sign(body.as_bytes());
    assert_eq!(post(&gw, body.as_bytes(), Some(&auth)).await.0, 200);

    proxy.cut();
    let body2 = order_body("PGDOWN2");
    let auth2 = sign(body2.as_bytes());
    let (status, _) = post(&gw, body2.as_bytes(), Some(&auth2)).await;
    assert_eq!(status, 503, "no 2xx without persisting");

    proxy.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = post(&gw, body2.as_bytes(), Some(&auth2)).await;
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "gateway did not recover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows(&db).await.0, 2);
}

/// Group commit: many concurrent pushes, some of them repeats, each answered 2xx only once stored; every distinct
/// push is one row and every repeat is counted.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pushes_are_each_stored_before_their_2xx() {
    let db = TestDb::new().await;
    let gw = std::sync::Arc::new(start(&db.url).await);
    let mut tasks = Vec::new();
    for client in 0..32 {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                // Clients 0 and 1 send the same ten pushes.
                let body = order_body(&format!("CONC{:02}X{i:02}", client.max(1)));
                let (status, _) = post(&gw, body.as_bytes(), Some(&sign(body.as_bytes()))).await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    assert_eq!(rows(&db).await, (310, 320));
}

/// A statement that cannot finish (here: blocked on a row another transaction is inserting) does not hold up the
/// pushes that come after it: they go in a statement of their own.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_statement_does_not_hold_up_later_pushes() {
    let db = TestDb::new().await;
    let gw = std::sync::Arc::new(start(&db.url).await);
    let stalled = order_body("STALLED1");
    let key = push_inbox::Push::parse(stalled.as_bytes())
        .expect("push")
        .dedup_key;
    let mut tx = db.pool.begin().await.expect("begin");
    sqlx::query("INSERT INTO push_inbox (dedup_key, payload) VALUES ($1, '{}')")
        .bind(&key)
        .execute(&mut *tx)
        .await
        .expect("insert");

    let first = {
        let gw = gw.clone();
        tokio::spawn(async move {
            post(&gw, stalled.as_bytes(), Some(&sign(stalled.as_bytes())))
                .await
                .0
        })
    };
    // Until the other transaction ends, the statement holding STALLED1 waits on its row.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !first.is_finished(),
        "the push was answered before its statement could commit"
    );
    let later = order_body("LATER1");
    let answered = tokio::time::timeout(
        Duration::from_secs(2),
        post(&gw, later.as_bytes(), Some(&sign(later.as_bytes()))),
    )
    .await
    .expect("a later push waited for the stalled statement");
    assert_eq!(answered.0, 200);
    assert!(!first.is_finished());

    tx.commit().await.expect("commit");
    assert_eq!(
        first.await.expect("first"),
        200,
        "stored as a repeat of the committed row"
    );
    assert_eq!(rows(&db).await, (2, 3));
}
