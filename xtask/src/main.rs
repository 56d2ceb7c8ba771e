//! `cargo xtask <task>`: the real logic behind the Makefile.
//!
//! - `bootstrap`: install what the tasks need when it is missing (each task below also does it for its own needs).
//! - `run`: the whole system locally (PostgreSQL, Redis, the Pub/Sub emulator, a Kafka broker, the Shopee
//!   sandbox and the five binaries), until Ctrl-C.
//! - `test`: formatting, clippy `-D warnings`, then every test against real services, starting what is missing.
//! - `services`: start what the tests need and leave it running.
//! - `bench`: the benchmarks (see docs/benchmarks.md).
//! - `chaos`: the reliability scenarios against the real binaries (short profile in `test`, full on demand).
//! - `ordr-pull`: the ORDR messages waiting on the demo subscription of `run`, decoded.

mod bench;
mod bench_catalog;
mod bench_delivery;
mod bench_footprint;
mod bench_ingest;
mod bench_orders;
mod bench_quotation;
mod bootstrap;
mod chaos;
mod run;
mod services;

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "seller-backend developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the tasks need when it is missing (Debian packages by apt-get, tansu and cargo-nextest by
    /// cargo install), then start PostgreSQL and Redis. `run`, `test`, `bench`, `chaos` and `services` do the same
    /// for their own needs; this is the step a fresh machine (and CI) runs first.
    Bootstrap {
        /// Only what this task needs.
        #[arg(long = "for", value_enum, default_value = "all")]
        task: bootstrap::Task,
    },
    /// Start the whole system locally against the Shopee sandbox; Ctrl-C stops everything it started.
    Run,
    /// fmt check + clippy -D warnings + all tests (real PostgreSQL, Redis, Pub/Sub emulator, tansu), then the short
    /// chaos profile and the deploy manifests' validation.
    Test {
        /// Skip fmt and clippy.
        #[arg(long)]
        no_lint: bool,
        /// Only this package's tests (repeatable), e.g. `-p delivery-status-consumer`; the chaos profile and the
        /// deploy validation are skipped then.
        #[arg(short, long = "package", value_name = "PACKAGE")]
        packages: Vec<String>,
        /// Extra arguments for the test runner (e.g. a test name filter).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Start PostgreSQL, Redis and the Pub/Sub emulator if they are not running, and leave them running.
    Services,
    /// fmt check and clippy -D warnings.
    Lint,
    /// Release build of the five binaries (what the Dockerfile does); prints where they are and their sizes.
    Dist,
    /// Run benchmarks and print their figures.
    Bench {
        /// Which benchmarks (all when empty).
        names: Vec<String>,
    },
    /// The reliability scenarios (quality-bar.md R1-R16) against the real binaries, one at a time; prints per
    /// scenario what was done, what was checked, the counts and PASS/FAIL.
    Chaos {
        /// The full profile (quality-bar.md sizes; tens of minutes) instead of the short one (a few minutes).
        #[arg(long)]
        full: bool,
        /// Scenario ids (R1, R11, ...); all when empty.
        scenarios: Vec<String>,
    },
    /// Pull the ORDR messages waiting on `make run`'s demo subscription and print each one's attributes and its
    /// data as pretty JSON (decoded from Pub/Sub's base64). They stay on the subscription unless --ack.
    OrdrPull {
        /// The subscription (on the emulator, project of `make run`).
        #[arg(long, default_value = run::DEMO_SUBSCRIPTION)]
        subscription: String,
        /// At most this many messages.
        #[arg(long, default_value_t = 10)]
        max: u32,
        /// Acknowledge what was printed (else it is released at once, to be pulled again).
        #[arg(long)]
        ack: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Bootstrap { task } => bootstrap::bootstrap(task),
        Task::Run => bootstrap::ensure(bootstrap::Task::Run).and_then(|()| run::run()),
        Task::Test {
            no_lint,
            packages,
            args,
        } => bootstrap::ensure(bootstrap::Task::Test).and_then(|()| test(no_lint, &packages, &args)),
        Task::Services => bootstrap::ensure(bootstrap::Task::Services)
            .and_then(|()| services::ensure_all())
            .map(|started| {
                for s in started {
                    // Keep what we started running for the developer.
                    s.detach();
                }
            }),
        Task::Lint => lint(),
        Task::Dist => dist(),
        Task::Bench { names } => bootstrap::ensure(bootstrap::Task::Bench).and_then(|()| bench::run(&names)),
        Task::Chaos { full, scenarios } => {
            bootstrap::ensure(bootstrap::Task::Chaos).and_then(|()| chaos::run(full, &scenarios))
        }
        Task::OrdrPull {
            subscription,
            max,
            ack,
        } => run::ordr_pull(&subscription, max, ack),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command, inheriting output; fails with the command line when it fails.
pub fn sh(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("==> {}", shown.replace('"', ""));
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run {shown}: {e}"))?;
    anyhow::ensure!(status.success(), "{shown} failed ({status})");
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The deployable binaries, one image holds them all (see Dockerfile).
const DEPLOYABLES: &[&str] = &[
    "webhook-gateway",
    "order-publisher",
    "catalog-sync-worker",
    "delivery-status-consumer",
    "campaign-api",
];

fn dist() -> anyhow::Result<()> {
    let mut build = cargo();
    build.args(["build", "--release", "--locked"]);
    for bin in DEPLOYABLES {
        build.args(["--bin", bin]);
    }
    sh(&mut build)?;
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| std::path::PathBuf::from("target"), std::path::PathBuf::from)
        .join("release");
    for bin in DEPLOYABLES {
        let path = dir.join(bin);
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{:<28} {:>6.1} MiB  {}",
            bin,
            size as f64 / 1024.0 / 1024.0,
            path.display()
        );
    }
    Ok(())
}

/// fmt, clippy, then the dependencies: none unused (cargo-machete), and licenses, duplicates and sources as
/// deny.toml says (cargo-deny). Advisories need the RustSec database from GitHub, which this project's machines
/// cannot reach: they are checked only with `CARGO_DENY_ADVISORIES=1`.
fn lint() -> anyhow::Result<()> {
    bootstrap::ensure(bootstrap::Task::Lint)?;
    sh(cargo().args(["fmt", "--all", "--", "--check"]))?;
    sh(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    // `--with-metadata`: crate names as cargo resolves them (renamed packages, lib names), not guessed. Without
    // CARGO_PKG_NAME (set for xtask by `cargo run`): cargo-machete takes it as a sign that it was not started as
    // `cargo machete`, and would read `machete` as a path.
    sh(cargo()
        .args(["machete", "--with-metadata"])
        .env_remove("CARGO_PKG_NAME"))
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\nlint: an unused dependency (named above with its Cargo.toml): remove it. If it is used where \
             cargo-machete cannot see (a macro's expansion, only for a feature), add it to that crate's \
             `[package.metadata.cargo-machete] ignored = [...]` with a comment saying why"
        )
    })?;
    let mut checks = vec!["bans", "licenses", "sources"];
    if std::env::var_os("CARGO_DENY_ADVISORIES").is_some_and(|v| v == "1") {
        checks.push("advisories");
    }
    sh(cargo().args(["deny", "check"]).args(&checks)).map_err(|e| {
        anyhow::anyhow!(
            "{e}\nlint: the dependency graph breaks a rule of deny.toml (the errors above say which crate and why)"
        )
    })
}

fn test(no_lint: bool, packages: &[String], args: &[String]) -> anyhow::Result<()> {
    if !no_lint {
        lint()?;
    }
    let started = services::ensure_all()?;
    // The whole workspace, or only the packages asked for.
    let scope: Vec<String> = if packages.is_empty() {
        vec!["--workspace".into()]
    } else {
        packages.iter().flat_map(|p| ["-p".into(), p.clone()]).collect()
    };
    let mut runner = if has_nextest() {
        let mut c = cargo();
        c.args(["nextest", "run", "--no-fail-fast"]);
        c
    } else {
        let mut c = cargo();
        c.args(["test", "--no-fail-fast"]);
        c
    };
    runner
        .args(&scope)
        .args(args)
        .env("PUBSUB_EMULATOR_HOST", services::PUBSUB_EMULATOR_HOST);
    let tests = sh(&mut runner);
    let doc_tests = if tests.is_ok() && has_nextest() {
        // nextest does not run doc tests.
        sh(cargo().args(["test", "--doc"]).args(&scope))
    } else {
        Ok(())
    };
    let everything = args.is_empty() && packages.is_empty();
    // The short chaos profile after the other tests: its scenarios stop the machine's PostgreSQL and Redis.
    let chaos = if everything {
        chaos::run(false, &[])
    } else {
        Ok(())
    };
    let deploy = if packages.is_empty() && std::path::Path::new("deploy/validate.sh").exists() {
        sh(Command::new("bash").arg("deploy/validate.sh"))
    } else {
        Ok(())
    };
    drop(started);
    tests.and(doc_tests).and(chaos).and(deploy)
}

fn has_nextest() -> bool {
    cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}
