//! Benchmarks. Each flow adds its own here as it lands; until then this says plainly that there are none.

pub fn run(names: &[String]) -> anyhow::Result<()> {
    let known: &[&str] = &[];
    if let Some(unknown) = names.iter().find(|n| !known.contains(&n.as_str())) {
        anyhow::bail!(
            "no benchmark named `{unknown}` (known: {})",
            if known.is_empty() {
                "none yet".into()
            } else {
                known.join(", ")
            }
        );
    }
    anyhow::bail!(
        "no benchmark is implemented yet: the ingest, orders, catalog, delivery and quotation benchmarks arrive \
         with their flows (issues 4-7, 9); nothing was measured"
    )
}
