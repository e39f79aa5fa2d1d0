//! Differential test: generated configs run with berth and with runc (the
//! oracle); both must refuse a config or both must run it with the same
//! effects inside the container. See conformance/README.md ("Differential
//! test") for the knobs: DIFF_SEED, DIFF_CASES, DIFF_ONLY, BERTH, RUNC,
//! DIFF_MINIMIZE, DIFF_REPORT_DIR.

use conformance::differential::{describe_case, generate, Campaign, Host, Settings};
use std::collections::BTreeMap;
use std::time::Instant;

/// `DIFF_LIST=1`: print the generated cases and how often each tag occurs,
/// without running anything.
fn list_only(settings: &Settings) {
    let host = Host::probe().expect("host facts");
    let mut tags: BTreeMap<String, u64> = BTreeMap::new();
    let indices: Vec<u64> = match settings.only {
        Some(i) => vec![i],
        None => (0..settings.cases).collect(),
    };
    for i in indices {
        let case = generate(settings.seed, i, &host);
        print!("{}", describe_case(&case));
        for m in &case.muts {
            *tags.entry(m.tag.clone()).or_default() += 1;
        }
    }
    println!("tags ({}):", tags.len());
    for (t, n) in tags {
        println!("  {n:5} {t}");
    }
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "compares berth with runc: runs with the berth build of the suite, not again under RUNTIME=runc"
)]
fn differential_against_runc() {
    let settings = Settings::from_env().expect("differential settings");
    if std::env::var_os("DIFF_LIST").is_some() {
        list_only(&settings);
        return;
    }
    let only = settings.only;
    let cases = settings.cases;
    let mut c = Campaign::new(settings).expect("differential campaign");
    println!(
        "differential: seed {:#x}, {} cases, {} (berth) vs {} (runc)",
        c.settings.seed,
        if only.is_some() { 1 } else { cases },
        c.settings.berth.path.display(),
        c.settings.runc.path.display()
    );
    let started = Instant::now();
    let indices: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    for i in indices {
        match c.run_case(i, only.is_some()) {
            Ok(line) => println!("{line}"),
            Err(e) => panic!("case {i}: the harness failed: {e:#}"),
        }
    }
    let summary = c.summary();
    println!("{summary}");
    println!("differential: {:.1} s", started.elapsed().as_secs_f64());
    let unknown: Vec<String> = c.unknown().iter().map(|f| f.key.clone()).collect();
    assert!(
        unknown.is_empty(),
        "{} divergences not in conformance/differential-known.txt:\n  {}\n\n{summary}\nreports in {}",
        unknown.len(),
        unknown.join("\n  "),
        c.settings.report_dir.display()
    );
}
