//! The two local images, built once per test process by images/build-image.sh (no registry anywhere).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use anyhow::{anyhow, Result};

use crate::cmd::Cmd;
use crate::scratch::Scratch;

pub const BUSYBOX: &str = "localhost/busybox:latest";
pub const PAUSE: &str = "localhost/pause:latest";

pub struct Images {
    /// Holds the tarballs; removed when the process ends (`cleanup`).
    area: Mutex<Option<Scratch>>,
    pub busybox: PathBuf,
    pub pause: PathBuf,
}

static IMAGES: OnceLock<std::result::Result<Images, String>> = OnceLock::new();

/// The directory with build-image.sh and make-bundle.sh.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("images")
}

/// Builds `OUT.tar` for `name` with `cmd` (see build-image.sh).
pub fn build(out: &Path, name: &str, entrypoint: bool, cmd: &[&str]) -> Result<()> {
    let mut c = Cmd::new(scripts_dir().join("build-image.sh"));
    if entrypoint {
        c = c.arg("--entrypoint");
    }
    c.arg(out).arg(name).args(cmd).ok()?;
    Ok(())
}

/// The busybox (`sh`) and pause (`/bin/sleep infinity`) image tarballs of this process.
pub fn get() -> Result<&'static Images> {
    IMAGES
        .get_or_init(|| {
            let make = || -> Result<Images> {
                let t0 = std::time::Instant::now();
                let area = Scratch::new("images")?;
                let busybox = area.join("busybox.tar");
                let pause = area.join("pause.tar");
                build(&busybox, BUSYBOX, false, &["sh"])?;
                build(&pause, PAUSE, true, &["/bin/sleep", "infinity"])?;
                eprintln!("[integ] images built in {:.2?}", t0.elapsed());
                Ok(Images {
                    area: Mutex::new(Some(area)),
                    busybox,
                    pause,
                })
            };
            make().map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|e| anyhow!("building the local images: {e}"))
}

/// Removes the image tarballs (call at the end of the run).
pub fn cleanup() {
    if let Some(Ok(imgs)) = IMAGES.get() {
        imgs.area.lock().unwrap().take();
    }
}
