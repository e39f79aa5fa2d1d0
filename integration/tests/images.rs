//! The image and bundle scripts: the image tarball is reproducible and both of its layouts (OCI layout
//! and docker-save manifest.json) describe the same blobs with the right digests; a bundle from
//! make-bundle.sh runs under the runtime under test.

use std::fs;
use std::path::Path;

use anyhow::{ensure, Context, Result};
use integration::cmd::Cmd;
use integration::images::{self, scripts_dir};
use integration::runtime::Runtime;
use integration::scratch::Scratch;
use serde_json::Value;

fn sha256(p: &Path) -> Result<String> {
    let out = Cmd::new("sha256sum").arg(p).ok()?;
    Ok(out
        .stdout
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string())
}

fn json(p: &Path) -> Result<Value> {
    serde_json::from_slice(&fs::read(p).with_context(|| format!("reading {}", p.display()))?)
        .with_context(|| format!("parsing {}", p.display()))
}

/// Unpacks `tar` into `dir` and checks every digest and cross-reference; returns the image config.
fn check_image(tar: &Path, dir: &Path, name: &str) -> Result<Value> {
    fs::create_dir_all(dir)?;
    Cmd::new("tar")
        .arg("-xf")
        .arg(tar)
        .arg("-C")
        .arg(dir)
        .ok()?;
    ensure!(json(&dir.join("oci-layout"))?["imageLayoutVersion"] == "1.0.0");
    let blob = |d: &str| {
        dir.join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };

    let index = json(&dir.join("index.json"))?;
    let m = &index["manifests"][0];
    ensure!(
        index["manifests"].as_array().map(Vec::len) == Some(1),
        "one manifest in index.json"
    );
    ensure!(
        m["annotations"]["io.containerd.image.name"] == name,
        "index annotations: {m}"
    );
    ensure!(
        m["annotations"]["org.opencontainers.image.ref.name"] == name,
        "index annotations: {m}"
    );
    let md = m["digest"].as_str().context("manifest digest")?;
    ensure!(
        format!("sha256:{}", sha256(&blob(md))?) == md,
        "manifest blob digest"
    );
    ensure!(
        m["size"].as_u64() == Some(fs::metadata(blob(md))?.len()),
        "manifest size"
    );

    let manifest = json(&blob(md))?;
    let cd = manifest["config"]["digest"]
        .as_str()
        .context("config digest")?;
    ensure!(
        format!("sha256:{}", sha256(&blob(cd))?) == cd,
        "config blob digest"
    );
    let ld = manifest["layers"][0]["digest"]
        .as_str()
        .context("layer digest")?;
    ensure!(
        format!("sha256:{}", sha256(&blob(ld))?) == ld,
        "layer blob digest"
    );
    let config = json(&blob(cd))?;
    // diff_id is the digest of the uncompressed layer.
    let raw = dir.join("layer.tar");
    let out = Cmd::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' > '{}'",
            blob(ld).display(),
            raw.display()
        ))
        .ok()?;
    drop(out);
    ensure!(
        config["rootfs"]["diff_ids"][0] == format!("sha256:{}", sha256(&raw)?),
        "diff_id"
    );
    let listing = Cmd::new("tar").arg("-tf").arg(&raw).ok()?.stdout;
    for want in [
        "bin/busybox",
        "bin/sh",
        "etc/passwd",
        "etc/group",
        "etc/hosts",
        "tmp/",
    ] {
        ensure!(listing.lines().any(|l| l == want), "layer lacks {want}");
    }

    // docker-save manifest.json: same config and layer, tagged.
    let docker = json(&dir.join("manifest.json"))?;
    ensure!(docker[0]["RepoTags"][0] == name, "RepoTags: {docker}");
    ensure!(docker[0]["Config"] == format!("blobs/sha256/{}", cd.trim_start_matches("sha256:")));
    ensure!(docker[0]["Layers"][0] == format!("blobs/sha256/{}", ld.trim_start_matches("sha256:")));
    Ok(config)
}

#[test]
fn busybox_image_is_reproducible_and_consistent() -> Result<()> {
    let area = Scratch::new("image-test")?;
    let (a, b) = (area.join("a.tar"), area.join("b.tar"));
    images::build(&a, "localhost/busybox:latest", false, &["sh"])?;
    images::build(&b, "localhost/busybox:latest", false, &["sh"])?;
    ensure!(sha256(&a)? == sha256(&b)?, "two builds differ");
    let config = check_image(&a, &area.join("x"), "localhost/busybox:latest")?;
    ensure!(
        config["config"]["Cmd"] == serde_json::json!(["sh"]),
        "Cmd: {config}"
    );
    Ok(())
}

#[test]
fn pause_image_has_sleep_entrypoint() -> Result<()> {
    let area = Scratch::new("image-test")?;
    let p = area.join("pause.tar");
    images::build(
        &p,
        "localhost/pause:latest",
        true,
        &["/bin/sleep", "infinity"],
    )?;
    let config = check_image(&p, &area.join("x"), "localhost/pause:latest")?;
    ensure!(
        config["config"]["Entrypoint"] == serde_json::json!(["/bin/sleep", "infinity"]),
        "{config}"
    );
    ensure!(config["config"].get("Cmd").is_none(), "{config}");
    Ok(())
}

#[test]
fn bundle_runs_under_the_runtime() -> Result<()> {
    let rt = Runtime::from_env()?;
    let area = Scratch::new("bundle-test")?;
    let bundle = area.join("bundle");
    Cmd::new(scripts_dir().join("make-bundle.sh"))
        .arg(&bundle)
        .args(["sh", "-c", "echo hi from $(hostname) as $(id -u); exit 4"])
        .ok()?;
    let config = json(&bundle.join("config.json"))?;
    ensure!(config["process"]["terminal"] == false);
    ensure!(config["process"]["args"][2] == "echo hi from $(hostname) as $(id -u); exit 4");
    // The container's cgroup is named after its id; an id of the scratch area's name puts it where the
    // area's teardown looks.
    let id = area.name();
    let out = Cmd::new(&rt.path)
        .arg("--root")
        .arg(area.join("root"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .run()?;
    ensure!(out.code == 4, "exit code: {out}");
    ensure!(out.stdout.contains("hi from berth as 0"), "output: {out}");
    Ok(())
}
