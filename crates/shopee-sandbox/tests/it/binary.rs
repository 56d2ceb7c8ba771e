//! The `shopee-sandbox` binary: `--help` with an empty environment, `--demo`, clean stop on SIGTERM.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use shopee_client::sign;

const BIN: &str = env!("CARGO_BIN_EXE_shopee-sandbox");

#[test]
fn help_works_with_an_empty_environment() {
    let out = Command::new(BIN).arg("--help").env_clear().output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "SANDBOX_ADDR",
        "SHOPEE_PARTNER_ID",
        "SHOPEE_PUSH_CALLBACK_URL",
        "--demo",
        "--seed-file",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}

#[tokio::test]
async fn the_demo_serves_signed_calls_and_stops_on_sigterm() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args(["--demo", "--partner-id", "77", "--partner-key", "bin-key"])
        .env("SANDBOX_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/health/live")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the sandbox did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens: serde_json::Value = http
        .get(format!("{base}/_sandbox/shops/900001/tokens"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = tokens["access_tokens"][0]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = "/api/v2/order/get_order_detail";
    let ts = chrono::Utc::now().timestamp();
    let s = sign::sign_shop("bin-key", 77, path, ts, &token, 900_001);
    let body: serde_json::Value = http
        .get(format!("{base}{path}"))
        .query(&[
            ("partner_id", "77".to_owned()),
            ("timestamp", ts.to_string()),
            ("access_token", token),
            ("shop_id", "900001".into()),
            ("sign", s),
            ("order_sn_list", "2511250DEMO01".into()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"], "", "{body}");
    assert_eq!(body["response"]["order_list"][0]["order_status"], "READY_TO_SHIP");

    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let stopping = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "the sandbox did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
