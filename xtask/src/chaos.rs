//! `cargo xtask chaos [--full] [scenario...]`: the reliability scenarios of quality-bar.md against the real binaries
//! as separate processes, real PostgreSQL, Redis, the Pub/Sub emulator, a Kafka broker process and the Shopee
//! sandbox.
//!
//! Each scenario is an `#[ignore]`d test named `r<N>_...` in a `tests/chaos.rs` target of the crate whose flow it
//! exercises (so it reuses that crate's test stack). They run one at a time: some stop and restart the machine's
//! PostgreSQL and Redis. Every scenario writes a report (what was done, what was checked, the counts, PASS/FAIL)
//! through `test_support::chaos::Report`; this task prints them together at the end.

use std::path::PathBuf;

use crate::{cargo, services, sh};

pub fn run(full: bool, scenarios: &[String]) -> anyhow::Result<()> {
    let _started = services::ensure_all()?;
    let report_path = std::env::temp_dir().join(format!("seller-backend-chaos-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&report_path);
    let profile = if full { "full" } else { "short" };
    println!("==> chaos, {profile} profile{}", scenario_list(scenarios));
    let mut nextest = cargo();
    nextest
        .args([
            "nextest",
            "run",
            "--workspace",
            "--profile",
            "chaos",
            "--run-ignored",
            "only",
        ])
        .args(["-E", &filter(scenarios)?])
        .env("CHAOS_PROFILE", profile)
        .env("CHAOS_REPORT", &report_path)
        .env("PUBSUB_EMULATOR_HOST", services::PUBSUB_EMULATOR_HOST);
    let outcome = sh(&mut nextest);
    let passed = summary(&report_path);
    let _ = std::fs::remove_file(&report_path);
    outcome?;
    anyhow::ensure!(passed, "a chaos scenario failed (see its report above)");
    Ok(())
}

fn scenario_list(scenarios: &[String]) -> String {
    if scenarios.is_empty() {
        ": every scenario".into()
    } else {
        format!(": {}", scenarios.join(" "))
    }
}

/// The nextest filter: every `chaos` test binary, narrowed to the named scenarios (`R1`, `r11`, ...).
fn filter(scenarios: &[String]) -> anyhow::Result<String> {
    let mut names = Vec::new();
    for s in scenarios {
        let n = s.trim_start_matches(['R', 'r']);
        anyhow::ensure!(
            !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()),
            "`{s}` is not a scenario id (R1..R16)"
        );
        names.push(format!("test(/^r{n}_/)"));
    }
    Ok(if names.is_empty() {
        "binary(chaos)".into()
    } else {
        format!("binary(chaos) & ({})", names.join(" | "))
    })
}

/// Prints one line per scenario from the reports they wrote; false when any failed.
fn summary(path: &PathBuf) -> bool {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut all_passed = true;
    println!("\n==> chaos summary");
    let mut rows: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    rows.sort_by_key(|r| {
        r["id"]
            .as_str()
            .and_then(|id| id.trim_start_matches('R').parse::<u32>().ok())
            .unwrap_or(u32::MAX)
    });
    // A scenario nextest retries (R8: see .config/nextest.toml) writes one row per attempt, in order: the last
    // attempt decides, and an earlier failed attempt is printed as such (never hidden).
    let last_of_id: std::collections::HashMap<String, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r["id"].as_str().unwrap_or("?").to_owned(), i))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let passed = r["passed"].as_bool().unwrap_or(false);
        let is_last = last_of_id.get(r["id"].as_str().unwrap_or("?")) == Some(&i);
        if is_last {
            all_passed &= passed;
        }
        let label = match (passed, is_last) {
            (true, _) => "PASS",
            (false, true) => "FAIL",
            (false, false) => "FAIL, retried",
        };
        let counts: Vec<String> = r["counts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| format!("{} {}", c[0].as_str().unwrap_or("?"), c[1]))
            .collect();
        println!(
            "{:<4} {}  {:>6.1} s  {}\n       {}",
            r["id"].as_str().unwrap_or("?"),
            label,
            r["seconds"].as_f64().unwrap_or(0.0),
            r["title"].as_str().unwrap_or(""),
            counts.join(", ")
        );
    }
    if rows.is_empty() {
        println!("(no scenario wrote a report)");
        all_passed = false;
    }
    all_passed
}
