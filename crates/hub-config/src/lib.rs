//! The Hub Config Service (`GET {HUB_CONFIG_URL}/v1/hubs`), kept warm in memory.
//!
//! A background task fetches the hubs every `HUB_CONFIG_REFRESH_SECS` and swaps in a new immutable snapshot; a
//! quotation only clones an `Arc` of the current snapshot and never waits on the service. When a refresh fails the
//! last good snapshot keeps serving (its age is the `hub_config_age_seconds` gauge). A hub entry that does not parse is
//! skipped with a warning; the others still serve.
//!
//! `delivery.zip_ranges` (inclusive 8-digit CEP ranges, `[["01000000", "01599999"]]`) and `delivery.zip_fee` (a
//! decimal string) serve the seller-logistics quotation (channel 90021). Absent `zip_ranges` = no range (the hub
//! quotes no 90021 call); absent `zip_fee` = the hub's `base_fee`.

pub mod kml;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use domain::Money;
use serde::Deserialize;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One opening interval, minutes from local midnight (America/Sao_Paulo); `close` exclusive, may be <= `open` for an
/// interval that runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// ISO weekday: 1 = Monday .. 7 = Sunday.
    pub weekday: u8,
    pub open: u16,
    pub close: u16,
}

/// A hub as the quotation needs it, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Hub {
    pub hub_id: String,
    pub active: bool,
    pub shop_id: u64,
    pub latitude: f64,
    pub longitude: f64,
    pub radius_km: f64,
    pub base_fee: Money,
    pub fee_per_km: Money,
    pub free_above: Option<Money>,
    pub preparation_minutes: u32,
    pub speed_kmh: f64,
    pub opening_hours: Vec<Opening>,
    /// Inclusive CEP ranges (8 digits as integers) this hub serves on channel 90021; empty = none.
    pub zip_ranges: Vec<ZipRange>,
    /// The flat channel-90021 fee (`delivery.zip_fee`; `base_fee` when absent).
    pub zip_fee: Money,
}

/// An inclusive range of CEPs, as integers (`01000000` = 1_000_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipRange {
    pub first: u32,
    pub last: u32,
}

impl ZipRange {
    pub fn contains(&self, cep: u32) -> bool {
        self.first <= cep && cep <= self.last
    }
}

impl Hub {
    /// Whether one of the hub's `zip_ranges` holds `cep` (see [`parse_cep`]).
    pub fn serves_zip(&self, cep: u32) -> bool {
        self.zip_ranges.iter().any(|r| r.contains(cep))
    }
}

/// A CEP of exactly 8 ASCII digits (`"01310100"`) as an integer; anything else is `None`.
pub fn parse_cep(raw: &str) -> Option<u32> {
    (raw.len() == 8 && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse().ok())
        .flatten()
}

/// Every hub, by Shopee shop.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub by_shop: HashMap<u64, Vec<Hub>>,
    pub hubs: usize,
    pub fetched_at: Option<Instant>,
}

impl Snapshot {
    pub fn new(hubs: Vec<Hub>) -> Self {
        let count = hubs.len();
        let mut by_shop: HashMap<u64, Vec<Hub>> = HashMap::new();
        for h in hubs {
            by_shop.entry(h.shop_id).or_default().push(h);
        }
        Self {
            by_shop,
            hubs: count,
            fetched_at: Some(Instant::now()),
        }
    }
}

#[derive(Debug, Deserialize)]
struct RawHub {
    hub_id: String,
    #[serde(default)]
    active: bool,
    shopee_shop_id: u64,
    location: RawLocation,
    delivery: RawDelivery,
    #[serde(default)]
    opening_hours: Vec<RawOpening>,
}

#[derive(Debug, Deserialize)]
struct RawLocation {
    latitude: f64,
    longitude: f64,
}

#[derive(Debug, Deserialize)]
struct RawDelivery {
    radius_km: f64,
    base_fee: Value,
    fee_per_km: Value,
    #[serde(default)]
    free_above: Option<Value>,
    preparation_minutes: u32,
    speed_kmh: f64,
    #[serde(default)]
    zip_ranges: Option<Vec<Value>>,
    #[serde(default)]
    zip_fee: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawOpening {
    weekday: u8,
    open: String,
    close: String,
}

fn money(v: &Value, what: &str) -> Result<Money, String> {
    match v {
        Value::String(s) => Money::parse_decimal(s).map_err(|e| format!("{what}: {e}")),
        Value::Number(n) => Money::from_shopee_number(n).map_err(|e| format!("{what}: {e}")),
        _ => Err(format!("{what} must be a decimal string like \"4.90\"")),
    }
}

/// `[["01000000", "01599999"], ...]`: each an inclusive pair of 8-digit strings, first <= last.
fn zip_ranges(raw: Option<&Vec<Value>>) -> Result<Vec<ZipRange>, String> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.iter()
        .map(|pair| {
            let bounds = pair
                .as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| Some((parse_cep(a[0].as_str()?)?, parse_cep(a[1].as_str()?)?)));
            match bounds {
                Some((first, last)) if first <= last => Ok(ZipRange { first, last }),
                _ => Err(format!(
                    "delivery.zip_ranges entry {pair} is not a pair of 8-digit CEP strings [first, last] with first <= last"
                )),
            }
        })
        .collect()
}

/// "HH:MM" -> minutes from midnight; "24:00" is the end of the day.
fn minutes(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl TryFrom<RawHub> for Hub {
    type Error = String;
    fn try_from(r: RawHub) -> Result<Self, String> {
        let d = &r.delivery;
        if !(r.location.latitude.abs() <= 90.0 && r.location.longitude.abs() <= 180.0) {
            return Err("location is not a valid latitude/longitude".into());
        }
        if !(d.radius_km.is_finite() && d.radius_km >= 0.0) {
            return Err("delivery.radius_km must be >= 0".into());
        }
        if !(d.speed_kmh.is_finite() && d.speed_kmh > 0.0) {
            return Err("delivery.speed_kmh must be > 0".into());
        }
        let opening_hours = r
            .opening_hours
            .iter()
            .map(|o| {
                let (open, close) = (minutes(&o.open), minutes(&o.close));
                match (open, close) {
                    (Some(open), Some(close)) if (1..=7).contains(&o.weekday) => Ok(Opening {
                        weekday: o.weekday,
                        open,
                        close,
                    }),
                    _ => Err(format!(
                        "opening_hours entry {{weekday {}, {}-{}}} is not ISO weekday 1..7 with HH:MM times",
                        o.weekday, o.open, o.close
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let base_fee = money(&d.base_fee, "delivery.base_fee")?;
        let zip_fee = match d.zip_fee.as_ref().filter(|v| !v.is_null()) {
            Some(v) => money(v, "delivery.zip_fee")?,
            None => base_fee,
        };
        Ok(Hub {
            zip_ranges: zip_ranges(d.zip_ranges.as_ref())?,
            zip_fee,
            active: r.active,
            shop_id: r.shopee_shop_id,
            latitude: r.location.latitude,
            longitude: r.location.longitude,
            radius_km: d.radius_km,
            base_fee,
            fee_per_km: money(&d.fee_per_km, "delivery.fee_per_km")?,
            free_above: d
                .free_above
                .as_ref()
                .filter(|v| !v.is_null())
                .map(|v| money(v, "delivery.free_above"))
                .transpose()?,
            preparation_minutes: d.preparation_minutes,
            speed_kmh: d.speed_kmh,
            opening_hours,
            hub_id: r.hub_id,
        })
    }
}

/// Parses the service's answer; bad entries are skipped (and named in the returned warnings).
pub fn parse_hubs(body: &[u8]) -> Result<(Vec<Hub>, Vec<String>), String> {
    let raw: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON array of hubs: {e}"))?;
    let mut hubs = Vec::with_capacity(raw.len());
    let mut warnings = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        let id = v.get("hub_id").and_then(Value::as_str).unwrap_or("?").to_owned();
        match serde_json::from_value::<RawHub>(v)
            .map_err(|e| e.to_string())
            .and_then(Hub::try_from)
        {
            Ok(h) => hubs.push(h),
            Err(e) => warnings.push(format!("hub #{i} ({id}) skipped: {e}")),
        }
    }
    Ok((hubs, warnings))
}

/// The current snapshot, shared by every request.
#[derive(Clone, Default)]
pub struct HubDirectory {
    current: Arc<RwLock<Option<Arc<Snapshot>>>>,
}

impl HubDirectory {
    /// The snapshot, if one was ever loaded. Never blocks on the network.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.current.write() {
            Ok(mut g) => *g = Some(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Some(snapshot),
        }
    }
}

/// Fetches `{base}/v1/hubs` once.
pub async fn fetch(client: &reqwest::Client, base: &str) -> Result<Snapshot, String> {
    let url = format!("{}/v1/hubs", base.trim_end_matches('/'));
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("Hub Config Service answered HTTP {status}"));
    }
    let body = resp.bytes().await.map_err(|e| e.without_url().to_string())?;
    let (hubs, warnings) = parse_hubs(&body)?;
    for w in warnings {
        tracing::warn!(problem = %w, "hub config entry skipped");
    }
    Ok(Snapshot::new(hubs))
}

/// Keeps `directory` fresh until `shutdown`: at once, then every `every`; while nothing was ever loaded, retries
/// after 1 s, doubling up to `every`.
pub fn spawn_refresher(
    directory: HubDirectory,
    base_url: String,
    every: Duration,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the Hub Config client");
                return;
            }
        };
        let mut backoff = Duration::from_secs(1);
        loop {
            match fetch(&client, &base_url).await {
                Ok(snapshot) => {
                    metrics::gauge!("hub_config_hubs").set(snapshot.hubs as f64);
                    metrics::counter!("hub_config_refresh_total", "outcome" => "ok").increment(1);
                    tracing::debug!(hubs = snapshot.hubs, "hub config refreshed");
                    directory.replace(snapshot);
                }
                Err(e) => {
                    metrics::counter!("hub_config_refresh_total", "outcome" => "error").increment(1);
                    tracing::warn!(error = %e, "hub config refresh failed; serving the last good snapshot");
                }
            }
            if let Some(age) = directory.snapshot().and_then(|s| s.fetched_at) {
                metrics::gauge!("hub_config_age_seconds").set(age.elapsed().as_secs_f64());
            }
            let wait = if directory.snapshot().is_some() {
                every
            } else {
                let wait = every.min(backoff);
                backoff = (backoff * 2).min(every);
                wait
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_documented_shape_and_skips_bad_entries() {
        let body = br#"[{"hub_id": "SAO-01", "active": true, "shopee_shop_id": 900001,
          "location": {"zipcode": "01310100", "latitude": -23.5614, "longitude": -46.6559},
          "delivery": {"radius_km": 5.0, "base_fee": "4.90", "fee_per_km": "1.10", "free_above": "99.00",
                       "preparation_minutes": 8, "speed_kmh": 18},
          "opening_hours": [{"weekday": 1, "open": "07:00", "close": "23:00"}]},
          {"hub_id": "BAD", "active": true, "shopee_shop_id": 1, "location": {"latitude": 0, "longitude": 0},
           "delivery": {"radius_km": 1, "base_fee": "x", "fee_per_km": "1", "preparation_minutes": 1, "speed_kmh": 1}}]"#;
        let (hubs, warnings) = parse_hubs(body).unwrap();
        assert_eq!(hubs.len(), 1);
        assert_eq!(hubs[0].base_fee.centavos(), 490);
        assert_eq!(hubs[0].free_above.unwrap().centavos(), 9900);
        assert_eq!(
            hubs[0].opening_hours[0],
            Opening {
                weekday: 1,
                open: 420,
                close: 1380
            }
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("BAD"));
        // No zip_ranges / zip_fee: no 90021 range, and the flat fee defaults to base_fee.
        assert!(hubs[0].zip_ranges.is_empty());
        assert_eq!(hubs[0].zip_fee, hubs[0].base_fee);
        assert!(!hubs[0].serves_zip(1_310_100));
    }

    fn with_delivery(extra: &str) -> Vec<u8> {
        format!(
            r#"[{{"hub_id": "Z", "active": true, "shopee_shop_id": 7, "location": {{"latitude": 0, "longitude": 0}},
                "delivery": {{"radius_km": 1, "base_fee": "4.90", "fee_per_km": "1", "preparation_minutes": 1,
                             "speed_kmh": 1 {extra}}}}}]"#
        )
        .into_bytes()
    }

    #[test]
    fn zip_ranges_and_zip_fee_parse_inclusively() {
        let (hubs, warnings) = parse_hubs(&with_delivery(
            r#", "zip_ranges": [["01000000", "01599999"], ["04500000", "04500000"]], "zip_fee": "9.90""#,
        ))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let h = &hubs[0];
        assert_eq!(h.zip_fee.centavos(), 990);
        assert_eq!(
            h.zip_ranges,
            vec![
                ZipRange {
                    first: 1_000_000,
                    last: 1_599_999
                },
                ZipRange {
                    first: 4_500_000,
                    last: 4_500_000
                }
            ]
        );
        for (cep, served) in [
            ("00999999", false),
            ("01000000", true),
            ("01310100", true),
            ("01599999", true),
            ("01600000", false),
            ("04500000", true),
            ("04500001", false),
        ] {
            assert_eq!(h.serves_zip(parse_cep(cep).unwrap()), served, "{cep}");
        }
        // null is the same as absent.
        let (hubs, _) = parse_hubs(&with_delivery(r#", "zip_ranges": null, "zip_fee": null"#)).unwrap();
        assert!(hubs[0].zip_ranges.is_empty());
        assert_eq!(hubs[0].zip_fee.centavos(), 490);
    }

    #[test]
    fn a_bad_zip_range_or_fee_skips_the_hub_with_a_reason() {
        for bad in [
            r#", "zip_ranges": [["0100000", "01599999"]]"#,
            r#", "zip_ranges": [["01599999", "01000000"]]"#,
            r#", "zip_ranges": [[1000000, 1599999]]"#,
            r#", "zip_ranges": [["01000000"]]"#,
            r#", "zip_ranges": [["0100000a", "01599999"]]"#,
            r#", "zip_fee": "x""#,
        ] {
            let (hubs, warnings) = parse_hubs(&with_delivery(bad)).unwrap();
            assert!(hubs.is_empty(), "{bad}");
            assert_eq!(warnings.len(), 1, "{bad}");
            assert!(warnings[0].contains("zip_"), "{bad}: {warnings:?}");
        }
    }

    #[test]
    fn ceps_are_exactly_eight_digits() {
        assert_eq!(parse_cep("01310100"), Some(1_310_100));
        assert_eq!(parse_cep("99999999"), Some(99_999_999));
        assert_eq!(parse_cep("1310100"), None);
        assert_eq!(parse_cep("01310-100"), None);
        assert_eq!(parse_cep("+1310100"), None);
        assert_eq!(parse_cep(""), None);
    }

    #[test]
    fn times_parse() {
        assert_eq!(minutes("00:00"), Some(0));
        assert_eq!(minutes("24:00"), Some(1440));
        assert_eq!(minutes("24:01"), None);
        assert_eq!(minutes("7:5"), Some(425));
        assert_eq!(minutes("x"), None);
    }
}
