//! The generated containerd config is read back by each containerd generation itself
//! (`containerd --config F config dump`): the runtime handler's type and options, and every path, land
//! where the harness means them to.

use anyhow::{ensure, Result};
use integration::cmd::Cmd;
use integration::containerd::{render_config, Generation, Layout, Options, CRI_HANDLER};
use integration::runtime::{ShimKind, ShimRuntime};
use integration::scratch::Scratch;

#[test]
fn every_generation_reads_the_generated_config() -> Result<()> {
    let gens = Generation::all();
    ensure!(!gens.is_empty());
    for (label, g) in gens {
        let g = g?;
        let area = Scratch::new("config-test")?;
        let l = Layout::new(area.path());
        for (kind, cri) in [
            (ShimKind::Runc, true),
            (ShimKind::Runc, false),
            (ShimKind::Berth, true),
        ] {
            let shim = ShimRuntime {
                kind,
                runtime_type: kind.runtime_type().into(),
                binary_name: Some("/opt/integ/bin/some-runtime".into()),
                root: Some(l.runtime_root.clone()),
                systemd_cgroup: false,
                config_path: Some("/opt/integ/berth-shim.toml".into()),
            };
            let text = render_config(
                &g,
                &l,
                &Options {
                    cri,
                    own_netns: true,
                },
                &shim,
            )?;
            std::fs::write(&l.config, &text)?;
            let dump = Cmd::new(&g.containerd)
                .arg("--config")
                .arg(&l.config)
                .args(["config", "dump"])
                .ok()?;
            let d = dump.stdout;
            let has = |s: &str| d.contains(s);
            ensure!(
                has(&format!("version = {}", g.config_version)),
                "{label}: version:\n{d}"
            );
            ensure!(
                has(&l.socket.display().to_string()),
                "{label}: grpc address missing:\n{d}"
            );
            ensure!(
                has(&l.root.display().to_string()) && has(&l.state.display().to_string()),
                "{label}: root/state:\n{d}"
            );
            // containerd 1.6 hands a non-runc runtime only a ConfigPath; 2.x the options table itself.
            let via_path = kind == ShimKind::Berth && g.config_version == 2;
            if cri && via_path {
                ensure!(
                    has("/opt/integ/berth-shim.toml"),
                    "{label}: ConfigPath not read back:\n{d}"
                );
            }
            if cri {
                ensure!(
                    has(kind.runtime_type()),
                    "{label}: runtime_type not read back:\n{d}"
                );
            }
            if cri && !via_path {
                ensure!(
                    has("/opt/integ/bin/some-runtime"),
                    "{label}: BinaryName not read back:\n{d}"
                );
                ensure!(
                    has(&format!("runtimes.{CRI_HANDLER}")),
                    "{label}: handler table missing:\n{d}"
                );
                ensure!(
                    has("localhost/pause:latest"),
                    "{label}: sandbox image:\n{d}"
                );
                ensure!(
                    has("restrict_oom_score_adj = true"),
                    "{label}: restrict_oom_score_adj:\n{d}"
                );
            }
            if g.shim_socket_dir {
                ensure!(
                    has(&l.shim_sockets.display().to_string()),
                    "{label}: shim socket_dir:\n{d}"
                );
            }
        }
        eprintln!("{label}: config version {} read back", g.config_version);
    }
    Ok(())
}
