//! `cargo xtask bootstrap`: installs what the tasks need when it is missing, so that a fresh machine needs only
//! Rust (`cargo`) and two commands. `run`, `test`, `lint`, `bench`, `chaos` and `services` call [`ensure`] first
//! with their own needs; `bootstrap` alone installs everything and starts the machine services (PostgreSQL, Redis).
//!
//! Debian packages come from `apt-get` (as root, or through `sudo -n`), after one `apt-get update`; the Kafka broker
//! (tansu), cargo-nextest, cargo-machete and cargo-deny are compiled by `cargo install`. Each install is announced with what it is for; an
//! install that cannot happen (not root, no package source provides the package, apt-get failing) stops with an
//! error naming the package.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::services;

/// Which task the needs are for.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum Task {
    Run,
    Test,
    Lint,
    Bench,
    Chaos,
    Services,
    /// Everything any task needs.
    All,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Run => "make run",
            Task::Test => "make test",
            Task::Lint => "make lint",
            Task::Bench => "make bench",
            Task::Chaos => "make chaos",
            Task::Services => "make services",
            Task::All => "every task",
        }
    }
}

use Task::{All, Bench, Chaos, Lint, Run, Services, Test};

/// Debian packages, installed together when their check fails.
struct AptNeed {
    packages: &'static [&'static str],
    /// What is looked for, as shown to the user.
    what: &'static str,
    why: &'static str,
    present: fn() -> bool,
    tasks: &'static [Task],
    /// Where the package comes from when it is not in Debian's own archive.
    source_hint: Option<&'static str>,
}

const GOOGLE_SOURCE: &str = "it is not in Debian's archive: it comes from Google Cloud's apt repository \
                             (`cloud-sdk-<release> main`), which must be configured under /etc/apt/sources.list.d";

const APT_NEEDS: &[AptNeed] = &[
    AptNeed {
        packages: &["make"],
        what: "make",
        why: "the Makefile is the front door (`make run`, `make test`)",
        present: || on_path("make"),
        tasks: &[Run, Test, Bench, Chaos, Services, All],
        source_hint: None,
    },
    AptNeed {
        packages: &["postgresql", "postgresql-client"],
        what: "PostgreSQL",
        why: "every binary keeps its state in PostgreSQL (127.0.0.1:5432)",
        present: || on_path("psql") && on_path("pg_ctlcluster") && has_pg_cluster(),
        tasks: &[Run, Test, Bench, Chaos, Services, All],
        source_hint: None,
    },
    AptNeed {
        packages: &["redis-server"],
        what: "Redis",
        why: "mappings cache and the Shopee rate limiter (127.0.0.1:6379)",
        present: || on_path("redis-server"),
        tasks: &[Run, Test, Bench, Chaos, Services, All],
        source_hint: None,
    },
    AptNeed {
        packages: &["openjdk-17-jre-headless"],
        what: "Java 17",
        why: "the Pub/Sub emulator runs on Java",
        present: || on_path("java"),
        tasks: &[Run, Test, Bench, Chaos, Services, All],
        source_hint: None,
    },
    AptNeed {
        packages: &["google-cloud-cli-pubsub-emulator"],
        what: "the Pub/Sub emulator",
        why: "ORDR, price and inventory messages go through Pub/Sub (emulator on 127.0.0.1:8085)",
        present: || Path::new(services::EMULATOR_LAUNCHER).exists(),
        tasks: &[Run, Test, Bench, Chaos, Services, All],
        source_hint: Some(GOOGLE_SOURCE),
    },
    AptNeed {
        packages: &["kubectl"],
        what: "kubectl",
        why: "`make test` validates the Kubernetes manifests (deploy/validate.sh renders them with `kubectl kustomize`)",
        present: || on_path("kubectl"),
        tasks: &[Test, All],
        source_hint: Some(GOOGLE_SOURCE),
    },
    AptNeed {
        packages: &["chromium", "chromium-driver"],
        what: "Chromium and ChromeDriver",
        why: "the web console's browser tests (headless Chromium driven through chromedriver)",
        present: || on_path("chromium") && on_path("chromedriver"),
        tasks: &[Test, All],
        source_hint: None,
    },
];

/// Tools compiled from crates.io by `cargo install`.
struct CargoNeed {
    name: &'static str,
    install_args: &'static [&'static str],
    why: &'static str,
    /// What the install costs, measured on a 2-core machine of this project's kind.
    expected: &'static str,
    present: fn() -> bool,
    tasks: &'static [Task],
}

const CARGO_NEEDS: &[CargoNeed] = &[
    CargoNeed {
        name: "cargo-nextest",
        install_args: &["cargo-nextest", "--locked"],
        why: "the test runner of `make test` and of the chaos scenarios",
        // Measured: 10m03s with other builds sharing the 2 cores.
        expected: "about 10 minutes",
        present: crate::has_nextest,
        tasks: &[Test, Chaos, All],
    },
    CargoNeed {
        name: "tansu",
        install_args: &[
            "tansu",
            "--version",
            "~0.6",
            "--locked",
            "--features",
            "dynostore",
        ],
        why: "a real Kafka-protocol broker for the delivery-status-consumer tests, chaos scenarios and benchmarks",
        // Measured: 29m55s with other builds sharing the 2 cores (20m47s of CPU time).
        expected: "15 to 30 minutes",
        present: || tansu_bin().is_some(),
        tasks: &[Test, Bench, Chaos, All],
    },
    CargoNeed {
        name: "cargo-machete",
        install_args: &["cargo-machete", "--locked"],
        why: "`make lint` fails on an unused dependency (cargo-machete reads the sources)",
        // Measured: 1m29s on the 2 cores.
        expected: "about 1.5 minutes",
        present: || cargo_tool("cargo-machete"),
        tasks: &[Lint, Test, All],
    },
    CargoNeed {
        name: "cargo-deny",
        install_args: &["cargo-deny", "--locked"],
        why: "`make lint` checks the dependency graph's licenses, duplicates and sources (deny.toml)",
        // Measured: 5m06s with a workspace build sharing the 2 cores.
        expected: "about 5 minutes",
        present: || cargo_tool("cargo-deny"),
        tasks: &[Lint, Test, All],
    },
];

/// Installs what `task` needs and is missing. Quiet when nothing is.
pub fn ensure(task: Task) -> anyhow::Result<()> {
    let apt: Vec<&AptNeed> = APT_NEEDS
        .iter()
        .filter(|n| n.tasks.contains(&task) && !(n.present)())
        .collect();
    let cargo: Vec<&CargoNeed> = CARGO_NEEDS
        .iter()
        .filter(|n| n.tasks.contains(&task) && !(n.present)())
        .collect();
    if apt.is_empty() && cargo.is_empty() {
        return Ok(());
    }
    eprintln!(
        "==> bootstrap: {} needs what this machine does not have yet",
        task.name()
    );
    if !apt.is_empty() {
        install_apt(&apt)?;
    }
    for need in cargo {
        install_cargo(need)?;
    }
    Ok(())
}

/// `cargo xtask bootstrap`: everything any task needs, then PostgreSQL and Redis started; prints what is there.
pub fn bootstrap(task: Task) -> anyhow::Result<()> {
    let started = Instant::now();
    ensure(task)?;
    services::ensure_machine_services()?;
    println!("bootstrap ({}): ready in {}", task.name(), took(started));
    for need in APT_NEEDS.iter().filter(|n| n.tasks.contains(&task)) {
        println!(
            "  {:<28} {}",
            need.what,
            if (need.present)() { "ok" } else { "MISSING" }
        );
    }
    for need in CARGO_NEEDS.iter().filter(|n| n.tasks.contains(&task)) {
        let state = if need.name == "tansu" {
            tansu_bin().map_or_else(|| "MISSING".into(), |p| format!("ok ({})", p.display()))
        } else if (need.present)() {
            "ok".into()
        } else {
            "MISSING".into()
        };
        println!("  {:<28} {state}", need.name);
    }
    println!(
        "  {:<28} running (the Pub/Sub emulator is started by each task)",
        "PostgreSQL, Redis"
    );
    Ok(())
}

fn install_apt(needs: &[&AptNeed]) -> anyhow::Result<()> {
    let packages: Vec<&str> = needs.iter().flat_map(|n| n.packages.iter().copied()).collect();
    let names = packages.join(" ");
    for need in needs {
        eprintln!(
            "==> installing {} (Debian package {}): {}",
            need.what,
            need.packages.join(", "),
            need.why
        );
    }
    let sudo = if is_root() {
        false
    } else if Command::new("sudo")
        .args(["-n", "true"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        true
    } else {
        anyhow::bail!(
            "cannot install {names}: apt-get needs root and this is not root (nor is `sudo` usable without a \
             password). Run `sudo apt-get update && sudo apt-get install {names}`, or this command as root"
        );
    };
    let apt = |program: &str| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", program]);
            c
        } else {
            let mut c = Command::new(program);
            c.env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        c.stdin(Stdio::null());
        c
    };
    // The package lists first, once: a fresh machine may have none, or old ones.
    eprintln!("==> apt-get update (once, before installing)");
    let updated = apt("apt-get")
        .args(["update", "-q"])
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run apt-get to install {names}: {e}"))?;
    anyhow::ensure!(
        updated.success(),
        "cannot install {names}: `apt-get update` failed ({updated}): no reachable package source?"
    );
    for need in needs {
        for package in need.packages {
            if !has_candidate(package) {
                let hint = need.source_hint.map_or_else(String::new, |h| format!(" ({h})"));
                anyhow::bail!(
                    "cannot install {package} (for {}: {}): no configured apt source provides it{hint}",
                    need.what,
                    need.why
                );
            }
        }
    }
    let pg_was_missing = needs.iter().any(|n| n.packages.contains(&"postgresql"));
    let started = Instant::now();
    let mut install = apt("apt-get");
    // Without the recommended extras (Chromium's would bring a desktop's daemons).
    install
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&packages);
    let status = install
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run apt-get to install {names}: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "cannot install {names}: `apt-get install` failed ({status}); its output is above"
    );
    eprintln!("    installed {names} in {}", took(started));
    if pg_was_missing {
        trust_local_postgres()?;
    }
    Ok(())
}

/// Whether an apt source offers `package` (`apt-cache policy` shows a candidate).
fn has_candidate(package: &str) -> bool {
    let Ok(out) = Command::new("apt-cache").args(["policy", package]).output() else {
        return false;
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Candidate:"))
        .any(|c| c.trim() != "(none)" && !c.trim().is_empty())
}

/// A freshly installed Debian PostgreSQL asks for passwords on 127.0.0.1; the tests and `make run` connect as
/// `postgres` without one (as on this project's machines), so local TCP connections are trusted.
fn trust_local_postgres() -> anyhow::Result<()> {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        return Ok(());
    };
    for version in versions.flatten() {
        let hba = version.path().join("main/pg_hba.conf");
        let Ok(text) = std::fs::read_to_string(&hba) else {
            continue;
        };
        if text.contains("# seller-backend: trust local TCP") {
            continue;
        }
        let trusted = format!(
            "# seller-backend: trust local TCP (tests and `make run` connect as postgres without a password)\n\
             host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n{text}"
        );
        std::fs::write(&hba, trusted).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", hba.display()))?;
        eprintln!(
            "    PostgreSQL: local TCP connections trusted ({})",
            hba.display()
        );
    }
    Ok(())
}

fn install_cargo(need: &CargoNeed) -> anyhow::Result<()> {
    let shown = format!("cargo install {}", need.install_args.join(" "));
    eprintln!("==> installing {} ({shown}): {}", need.name, need.why);
    eprintln!(
        "    it is compiled from source: {} on a 2-core machine; cargo's progress follows",
        need.expected
    );
    // A target directory of its own: the workspace's (CARGO_TARGET_DIR) stays unlocked for builds meanwhile, and a
    // reinstall reuses what was compiled.
    let target = cache_dir().join("install-target");
    let started = Instant::now();
    let status = crate::cargo()
        .arg("install")
        .args(need.install_args)
        .arg("--target-dir")
        .arg(&target)
        // Outside the workspace, so that its configuration does not apply to the tool's build.
        .current_dir(home())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run `{shown}`: {e}"))?;
    anyhow::ensure!(
        status.success(),
        "cannot install {} (`{shown}` failed: {status}); its output is above",
        need.name
    );
    anyhow::ensure!(
        (need.present)(),
        "`{shown}` succeeded but {} is still not found: is {} on PATH?",
        need.name,
        cargo_bin_dir().display()
    );
    eprintln!("    {} installed in {}", need.name, took(started));
    Ok(())
}

fn took(started: Instant) -> String {
    let s = started.elapsed().as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{:.1} s", started.elapsed().as_secs_f64())
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map_or_else(|| home().join(".cache"), PathBuf::from)
        .join("seller-backend")
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map_or_else(|| home().join(".cargo"), PathBuf::from)
        .join("bin")
}

/// Where the tests look for tansu (crates/test-support/src/kafka.rs): `TANSU_BIN`, PATH, then cargo's bin dir.
fn tansu_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TANSU_BIN") {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    find_on_path("tansu")
        .or_else(|| Some(cargo_bin_dir().join("tansu")).filter(|p| p.is_file()))
        .or_else(|| Some(home().join(".cargo/bin/tansu")).filter(|p| p.is_file()))
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// A cargo subcommand (`cargo-<name>`): where cargo finds it, on PATH or in cargo's bin dir.
fn cargo_tool(program: &str) -> bool {
    on_path(program) || cargo_bin_dir().join(program).is_file()
}

fn on_path(program: &str) -> bool {
    find_on_path(program).is_some()
}

fn has_pg_cluster() -> bool {
    std::fs::read_dir("/etc/postgresql").is_ok_and(|mut d| d.next().is_some())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}
