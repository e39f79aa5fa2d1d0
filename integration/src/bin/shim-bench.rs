//! `make bench` (shim part): containerd-shim-berth-v2 against each containerd generation's
//! containerd-shim-runc-v2, side by side in one run, as ratios.
//!
//! For every containerd found (Debian's, and the one in $CONTAINERD_BIN_DIR), one daemon per
//! configuration, all started before anything is measured:
//! - `runc-shim+runc`: the stock setup; `runc-shim+berth`: berth as the runc shim's BinaryName;
//!   `berth-shim+berth`: berth's own shim.
//!
//! Measured: the shim's resident set (VmRSS) and private memory (Private_Clean + Private_Dirty of
//! /proc/PID/smaps_rollup) holding one running container, and holding a pod of 10 containers (grouped
//! into one shim by the `io.kubernetes.cri.sandbox-id` annotation, as CRI does); then `ctr run --rm`
//! of `/bin/true` end to end, the configurations taking turns run by run.
//!
//! Environment: $BERTH (the runtime, default target/release/berth), $INTEG_BERTH_SHIM (the shim),
//! $BENCH_RUNS (ctr runs per configuration, default 20), $CONTAINERD_BIN_DIR.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use integration::cmd::which;
use integration::containerd::{Containerd, Generation, Options, CTR_NAMESPACE};
use integration::runtime::{Runtime, ShimKind, ShimRuntime};

const SANDBOX_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

struct Config {
    label: &'static str,
    kind: ShimKind,
    c: Containerd,
}

#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    private_kib: u64,
}

fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn mem_of(pid: i32) -> Result<Mem> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rollup = fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    Ok(Mem {
        rss_kib: kib_field(&status, "VmRSS:").context("VmRSS")?,
        private_kib: kib_field(&rollup, "Private_Clean:").context("Private_Clean")?
            + kib_field(&rollup, "Private_Dirty:").context("Private_Dirty")?,
    })
}

/// The one shim process serving task `id` (its daemon, named with `-id ID` on its command line).
fn shim_of(kind: ShimKind, id: &str) -> Result<i32> {
    let pids = kind.daemons_for(id);
    match pids[..] {
        [p] => Ok(p),
        _ => bail!("expected one {} for {id}, found {pids:?}", kind.binary()),
    }
}

fn remove(c: &Containerd, id: &str) {
    let _ = c
        .ctr(CTR_NAMESPACE)
        .args(["task", "kill", "-s", "SIGKILL", id])
        .run();
    let _ = c.wait_task(id, "STOPPED");
    let _ = c.ctr(CTR_NAMESPACE).args(["task", "delete", id]).run();
    let _ = c
        .ctr(CTR_NAMESPACE)
        .args(["containers", "delete", id])
        .run();
}

/// Memory of the shim holding one container, then a pod of 10.
fn memory(cfg: &Config) -> Result<(Mem, Mem)> {
    let c = &cfg.c;
    c.ctr_run(&["-d"], "one", &["sleep", "1000"]).ok()?;
    c.wait_task("one", "RUNNING")?;
    std::thread::sleep(Duration::from_millis(500));
    let one = mem_of(shim_of(cfg.kind, "one")?)?;
    remove(c, "one");

    let pod = "pod0";
    let ann = |sb: &str| format!("{SANDBOX_ANNOTATION}={sb}");
    let ids: Vec<String> = (0..10).map(|i| format!("pod{i}")).collect();
    for id in &ids {
        let a = ann(pod);
        c.ctr_run(&["-d", "--annotation", &a], id, &["sleep", "1000"])
            .ok()?;
        c.wait_task(id, "RUNNING")?;
    }
    std::thread::sleep(Duration::from_millis(500));
    let shim = shim_of(cfg.kind, pod)?;
    for id in &ids[1..] {
        ensure!(
            shim_of(cfg.kind, id).is_err(),
            "{}: {id} got a shim of its own, not the pod's",
            cfg.label
        );
    }
    let ten = mem_of(shim)?;
    for id in ids.iter().rev() {
        remove(c, id);
    }
    Ok((one, ten))
}

fn mib(k: u64) -> f64 {
    k as f64 / 1024.0
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    (m, sd)
}

fn bench_generation(gen: &Generation, berth: &Runtime, runc: &Runtime, runs: usize) -> Result<()> {
    println!(
        "### containerd {} ({})",
        gen.version,
        gen.containerd.display()
    );
    let opts = || Options {
        cri: false,
        own_netns: false,
    };
    let mut cfgs = Vec::new();
    for (label, kind, rt) in [
        ("runc-shim+runc", ShimKind::Runc, runc),
        ("runc-shim+berth", ShimKind::Runc, berth),
        ("berth-shim+berth", ShimKind::Berth, berth),
    ] {
        let c = Containerd::start(gen, opts(), |root| ShimRuntime::new(kind, rt, root))
            .with_context(|| format!("starting containerd {} for {label}", gen.version))?;
        cfgs.push(Config { label, kind, c });
    }

    println!("shim memory (MiB): RSS and private, one container | a pod of 10");
    let mut mems = Vec::new();
    for cfg in &cfgs {
        let (one, ten) = memory(cfg).with_context(|| cfg.label)?;
        mems.push((cfg.label, one, ten));
    }
    let base = mems
        .iter()
        .find(|m| m.0 == "berth-shim+berth")
        .map(|m| (m.1, m.2))
        .context("no berth shim figures")?;
    for (label, one, ten) in &mems {
        println!(
            "  {label:18} one: RSS {:5.2} ({:4.2}x) private {:5.2} ({:4.2}x) | pod of 10: RSS {:5.2} ({:4.2}x) private {:5.2} ({:4.2}x)",
            mib(one.rss_kib),
            one.rss_kib as f64 / base.0.rss_kib as f64,
            mib(one.private_kib),
            one.private_kib as f64 / base.0.private_kib as f64,
            mib(ten.rss_kib),
            ten.rss_kib as f64 / base.1.rss_kib as f64,
            mib(ten.private_kib),
            ten.private_kib as f64 / base.1.private_kib as f64,
        );
    }

    println!("ctr run --rm /bin/true, {runs} runs each, taking turns (ms, mean ± sd)");
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); cfgs.len()];
    for i in 0..runs + 2 {
        for (k, cfg) in cfgs.iter().enumerate() {
            let id = format!("rm{i}");
            let t0 = Instant::now();
            cfg.c
                .ctr_run(&["--rm"], &id, &["/bin/true"])
                .ok()
                .with_context(|| cfg.label)?;
            // The first two rounds warm up (image unpacked, binaries paged in).
            if i >= 2 {
                times[k].push(t0.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let (bm, _) = mean_sd(&times[cfgs.len() - 1]);
    for (k, cfg) in cfgs.iter().enumerate() {
        let (m, sd) = mean_sd(&times[k]);
        println!("  {:18} {m:6.1} ± {sd:4.1}  ({:4.2}x)", cfg.label, m / bm);
    }
    println!("(ratios: berth-shim+berth = 1.00; > 1 means bigger or slower than berth's shim)");
    drop(cfgs);
    Ok(())
}

fn main() -> Result<()> {
    let top = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let berth_path = std::env::var_os("BERTH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| top.join("target/release/berth"));
    let berth = Runtime {
        path: fs::canonicalize(&berth_path)
            .with_context(|| format!("berth binary {}", berth_path.display()))?,
        name: "berth".into(),
    };
    let runc = Runtime {
        path: which("runc")?,
        name: "runc".into(),
    };
    let runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut failed = false;
    for (label, gen) in Generation::all() {
        match gen.and_then(|g| bench_generation(&g, &berth, &runc, runs)) {
            Ok(()) => {}
            Err(e) => {
                eprintln!("{label}: {e:#}");
                failed = true;
            }
        }
    }
    integration::images::cleanup();
    ensure!(!failed, "some generations could not be measured");
    Ok(())
}
