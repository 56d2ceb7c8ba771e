//! What the client logs never holds a token, the partner key, a signature or buyer data.

use std::io::Write;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use domain::OrderSn;
use shopee_client::api::order::OptionalField;
use shopee_sandbox::{Fault, SeedOrder};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::support::{Env, PARTNER_KEY, SHOP, shop};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_hold_no_secret_and_no_buyer_data() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("shopee_client=trace")
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(capture.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let env = Env::new().await;
    let client = env.client().await;
    let before = env.authorized(&client, SHOP, 0).await; // expired: forces a refresh
    env.sandbox
        .seed_order(SeedOrder::example(SHOP, "2511250LOG01", 100_001, "789100000001"))
        .await
        .unwrap();
    env.sandbox.inject_fault(
        Fault::server_error(503)
            .api("/api/v2/order/get_order_detail")
            .times(1),
    );
    let orders = client
        .get_order_detail(
            shop(),
            &[OrderSn::parse("2511250LOG01").unwrap()],
            OptionalField::FOR_INTAKE,
        )
        .await
        .unwrap();
    let after = client.token_store().unwrap().load(shop()).await.unwrap().unwrap();
    let _ = client.auth_link("https://x.test/cb", Utc::now().timestamp());

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("shopee.call"), "spans are logged: {text}");
    assert!(
        text.contains("outcome=\"ok\"") || text.contains("outcome=ok"),
        "{text}"
    );
    assert!(text.contains("duration_ms"), "{text}");
    let address = orders[0].recipient_address.as_ref().unwrap();
    for secret in [
        before.access_token.as_str(),
        before.refresh_token.as_str(),
        after.access_token.as_str(),
        after.refresh_token.as_str(),
        PARTNER_KEY,
        "sign=",
        address.name.as_str(),
        address.phone.as_str(),
        address.full_address.as_str(),
        "12345678909",
    ] {
        assert!(!text.contains(secret), "`{secret}` appears in the logs:\n{text}");
    }
}
