//! The behaviour every binary owes its operators, checked against the real executable as a child process:
//! `--help` with an empty environment, one-line errors naming a missing or malformed variable, health and
//! metrics, readiness that follows PostgreSQL down and back up, a clean exit within 2 s of SIGTERM, `migrate`.

use std::time::{Duration, Instant};

use crate::{Proc, TcpProxy, TestDb, free_port, wait_for_status};

pub struct Contract {
    /// `env!("CARGO_BIN_EXE_<name>")`.
    pub exe: &'static str,
    /// The variables the binary requires, with valid values.
    pub required: Vec<(&'static str, String)>,
    /// Other variables it needs to reach its dependencies in this test (REDIS_URL, PUBSUB_EMULATOR_HOST, ...).
    pub extra: Vec<(&'static str, String)>,
}

fn run_to_exit(exe: &str, args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = std::process::Command::new(exe)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("run binary");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub async fn check(contract: Contract) {
    let name = contract.exe.rsplit('/').next().unwrap_or(contract.exe).to_owned();

    // --help works with an empty environment and lists what the binary reads.
    let (code, stdout, _) = run_to_exit(contract.exe, &["--help"], &[]);
    assert_eq!(code, 0, "{name} --help must succeed with an empty environment");
    for (var, _) in &contract.required {
        assert!(stdout.contains(var), "{name} --help does not mention {var}");
    }
    assert!(
        stdout.contains("migrate"),
        "{name} --help does not list the migrate subcommand"
    );

    // Each missing required variable: exit 2, one line that names it.
    for (missing, _) in &contract.required {
        let env: Vec<_> = contract
            .required
            .iter()
            .filter(|(k, _)| k != missing)
            .cloned()
            .collect();
        let (code, _, stderr) = run_to_exit(contract.exe, &[], &env);
        assert_eq!(
            code, 2,
            "{name} without {missing} should exit 2; stderr: {stderr}"
        );
        let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: expected one line, got {stderr:?}");
        assert!(
            lines[0].contains(missing) && lines[0].contains("is not set"),
            "{name}: {stderr}"
        );
    }

    // A malformed variable is named too.
    let mut env = contract.required.clone();
    env.push(("HTTP_ADDR", "localhost-no-port".into()));
    let (code, _, stderr) = run_to_exit(contract.exe, &[], &env);
    assert_eq!(code, 2, "{name}: malformed HTTP_ADDR should exit 2");
    assert!(stderr.contains("HTTP_ADDR is malformed"), "{name}: {stderr}");

    // `migrate` applies the schema to an empty database.
    let empty = TestDb::empty().await;
    let count_tables = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('shops', 'product_mappings')",
        )
        .fetch_one(&empty.pool)
        .await
        .expect("count tables")
    };
    assert_eq!(count_tables().await, 0, "the database starts without the schema");
    let (code, _, stderr) = run_to_exit(contract.exe, &["migrate"], &[("DATABASE_URL", empty.url.clone())]);
    assert_eq!(code, 0, "{name} migrate failed: {stderr}");
    assert_eq!(
        count_tables().await,
        2,
        "{name} migrate did not create the schema"
    );

    // Serve: PostgreSQL reached through a proxy this test can cut.
    let db = TestDb::new().await;
    let proxy = TcpProxy::start("127.0.0.1:5432".parse().expect("addr")).await;
    let port = free_port();
    let mut env = contract.required.clone();
    env.extend(contract.extra.clone());
    env.push(("HTTP_ADDR", format!("127.0.0.1:{port}")));
    env.push(("DATABASE_URL", db.url_via(proxy.addr)));
    env.push(("RUST_LOG", "warn".into()));
    let started = Instant::now();
    let mut proc = Proc::spawn(contract.exe, &[], &env);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&format!("{base}/health/live"), 200, Duration::from_secs(10)).await;
    wait_for_status(&format!("{base}/health/ready"), 200, Duration::from_secs(20)).await;
    eprintln!("{name}: start to ready in {} ms", started.elapsed().as_millis());

    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics");
    assert_eq!(metrics.status(), 200);
    let content_type = metrics.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain"),
        "{name} /metrics content type {content_type}"
    );
    let body = metrics.text().await.unwrap_or_default();
    assert!(
        body.contains("dependency_up{dependency=\"postgres\"} 1"),
        "{name} /metrics: {body}"
    );

    // PostgreSQL goes away: not ready, naming it. Back: ready again, without a restart.
    proxy.cut();
    wait_for_status(&format!("{base}/health/ready"), 503, Duration::from_secs(15)).await;
    let body = reqwest::get(format!("{base}/health/ready"))
        .await
        .expect("ready")
        .text()
        .await
        .unwrap_or_default();
    assert!(
        body.contains("postgres"),
        "{name} not-ready body should name postgres: {body}"
    );
    reqwest::get(format!("{base}/health/live"))
        .await
        .map(|r| assert_eq!(r.status(), 200))
        .expect("live");
    proxy.restore();
    wait_for_status(&format!("{base}/health/ready"), 200, Duration::from_secs(20)).await;

    // SIGTERM: exit 0 within 2 s.
    let asked = Instant::now();
    proc.signal("TERM");
    let status = proc.wait_exit(Duration::from_secs(2));
    let status = status.unwrap_or_else(|| panic!("{name} did not exit within 2 s of SIGTERM"));
    assert!(status.success(), "{name} exited with {status} after SIGTERM");
    eprintln!("{name}: exited {} ms after SIGTERM", asked.elapsed().as_millis());
}
