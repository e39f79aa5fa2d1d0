//! Scenarios through real container managers, each group on a manager of its own shared by the group's
//! scenarios: containerd + ctr and containerd's CRI plugin per containerd generation (Debian's, and the one
//! in $CONTAINERD_BIN_DIR if set), podman, and Docker. The runtime is $INTEG_RUNTIME (default runc).
//!
//! Test names carry the manager and its version, e.g. `containerd-1.6.20::ctr::run_rm_exit_code`.

mod scenarios;

use std::process::ExitCode;
use std::sync::Arc;

use integration::containerd::{Containerd, Generation, Options};
use integration::docker::Docker;
use integration::podman::Podman;
use integration::runtime::{Runtime, ShimKind, ShimRuntime};
use integration::{host, images, scratch, Shared, Teardown};
use libtest_mimic::{Arguments, Failed, Trial};

type Scenario<T> = fn(&T, &Runtime) -> anyhow::Result<()>;

fn trials_for<T: Teardown + 'static>(
    prefix: &str,
    shared: &Arc<Shared<T>>,
    rt: &Result<Runtime, String>,
    list: &[(&str, Scenario<T>)],
) -> Vec<Trial> {
    list.iter()
        .map(|(name, f)| {
            let shared = Arc::clone(shared);
            let rt = rt.clone();
            let f = *f;
            Trial::test(format!("{prefix}::{name}"), move || {
                let rt = rt.map_err(Failed::from)?;
                let m = shared.get().map_err(|e| Failed::from(format!("{e:#}")))?;
                f(&m, &rt).map_err(|e| Failed::from(format!("{e:#}")))
            })
        })
        .collect()
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let swept = scratch::sweep_stale();
    if !swept.is_empty() {
        // A killed run never removed what its managers wrote outside their directories.
        let more = host::remove_empty_outside_dirs();
        for n in swept.iter().chain(&more) {
            eprintln!("[integ] {n}");
        }
    }
    host::snapshot_outside_paths();
    let rt = Runtime::from_env().map_err(|e| format!("{e:#}"));
    if let Ok(r) = &rt {
        eprintln!(
            "[integ] runtime under test: {} ({})",
            r.name,
            r.path.display()
        );
    }
    let mut trials = Vec::new();
    let mut containerds: Vec<Arc<Shared<Containerd>>> = Vec::new();

    for (label, gen) in Generation::all() {
        match gen {
            Ok(g) => {
                eprintln!(
                    "[integ] {label}: {} (config version {})",
                    g.containerd.display(),
                    g.config_version
                );
                for kind in ShimKind::selected() {
                    let rt2 = rt.clone();
                    let g2 = g.clone();
                    let prefix = format!("{label}::{}", kind.label());
                    let shared = Arc::new(Shared::new(prefix.clone(), move || {
                        let rt = rt2.clone().map_err(anyhow::Error::msg)?;
                        Containerd::start(
                            &g2,
                            Options {
                                cri: true,
                                own_netns: true,
                            },
                            |root| ShimRuntime::new(kind, &rt, root),
                        )
                    }));
                    trials.extend(trials_for(
                        &format!("{prefix}::ctr"),
                        &shared,
                        &rt,
                        scenarios::ctr::LIST,
                    ));
                    trials.extend(trials_for(
                        &format!("{prefix}::cri"),
                        &shared,
                        &rt,
                        scenarios::cri::LIST,
                    ));
                    trials.extend(trials_for(
                        &format!("{prefix}::cri"),
                        &shared,
                        &rt,
                        scenarios::cri_stop::LIST,
                    ));
                    containerds.push(shared);
                    // Scenarios that stop or replace the daemon get a containerd of their own each.
                    trials.extend(scenarios::lifecycle::trials(&prefix, &g, kind, &rt));
                }
            }
            Err(e) => {
                let msg = format!("{e:#}");
                trials.push(Trial::test(format!("{label}::detect"), move || {
                    Err(Failed::from(msg))
                }));
            }
        }
    }
    trials.extend(scenarios::lifecycle::upgrade_trials(&rt));
    if std::env::var_os("CONTAINERD_BIN_DIR").is_none() {
        // Said in the output rather than passed silently.
        trials.push(
            Trial::test("containerd-bin-dir::unset (set CONTAINERD_BIN_DIR=/work/shared/bin/containerd-2.3.4)", || Ok(()))
                .with_ignored_flag(true),
        );
    }

    let rt2 = rt.clone();
    let podman = Arc::new(Shared::new("podman", move || {
        Podman::start(&rt2.clone().map_err(anyhow::Error::msg)?)
    }));
    trials.extend(trials_for("podman", &podman, &rt, scenarios::podman::LIST));
    let rt2 = rt.clone();
    let docker = Arc::new(Shared::new("docker", move || {
        Docker::start(&rt2.clone().map_err(anyhow::Error::msg)?)
    }));
    trials.extend(trials_for("docker", &docker, &rt, scenarios::docker::LIST));

    let t0 = std::time::Instant::now();
    let conclusion = libtest_mimic::run(&args, trials);
    eprintln!("[integ] scenarios took {:.1?}", t0.elapsed());

    let mut notes = Vec::new();
    for c in &containerds {
        notes.extend(
            c.shutdown()
                .into_iter()
                .map(|n| format!("{}: {n}", c.label)),
        );
    }
    notes.extend(
        podman
            .shutdown()
            .into_iter()
            .map(|n| format!("podman: {n}")),
    );
    notes.extend(
        docker
            .shutdown()
            .into_iter()
            .map(|n| format!("docker: {n}")),
    );
    images::cleanup();
    scratch::remove_base_if_empty();
    notes.extend(host::remove_created_outside_paths());
    for n in &notes {
        eprintln!("[integ teardown] {n}");
    }
    conclusion.exit_code()
}
