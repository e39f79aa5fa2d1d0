//! berth's integration tests through real container managers.
//!
//! Every fixture starts its own manager (containerd of each generation, podman, dockerd) with all state
//! in a scratch area under /tmp/berth-integ, points it at the runtime under test ($INTEG_RUNTIME, default
//! `runc`), imports a locally built busybox image (images/build-image.sh, no registry), and on teardown
//! stops what it started (by pid), detaches mounts under its area, removes the cgroups its containers
//! caused and the files managers write outside their dirs. `tests/managers.rs` holds the scenarios.

pub mod cmd;
pub mod containerd;
pub mod cri;
pub mod docker;
pub mod host;
pub mod images;
pub mod podman;
pub mod pty;
pub mod runtime;
pub mod scratch;

use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Result};

/// Something that stops what it started.
pub trait Teardown: Send + Sync {
    fn teardown(&self) -> Vec<String>;
}

impl Teardown for containerd::Containerd {
    fn teardown(&self) -> Vec<String> {
        containerd::Containerd::teardown(self)
    }
}
impl Teardown for podman::Podman {
    fn teardown(&self) -> Vec<String> {
        podman::Podman::teardown(self)
    }
}
impl Teardown for docker::Docker {
    fn teardown(&self) -> Vec<String> {
        docker::Docker::teardown(self)
    }
}

type Starter<T> = Box<dyn Fn() -> Result<T> + Send + Sync>;

/// A manager shared by the scenarios of one group: started by the first scenario that needs it (so a
/// filtered run starts only what it uses), torn down by `shutdown` at the end of the run. A failed start is
/// remembered and reported to every scenario of the group.
pub struct Shared<T: Teardown> {
    pub label: String,
    start: Starter<T>,
    slot: Mutex<Option<std::result::Result<Arc<T>, String>>>,
}

impl<T: Teardown> Shared<T> {
    pub fn new(
        label: impl Into<String>,
        start: impl Fn() -> Result<T> + Send + Sync + 'static,
    ) -> Shared<T> {
        Shared {
            label: label.into(),
            start: Box::new(start),
            slot: Mutex::new(None),
        }
    }

    pub fn get(&self) -> Result<Arc<T>> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            let t0 = std::time::Instant::now();
            let r = (self.start)().map(Arc::new).map_err(|e| format!("{e:#}"));
            if r.is_ok() {
                eprintln!("[integ] {} started in {:.2?}", self.label, t0.elapsed());
            }
            *slot = Some(r);
        }
        match slot.as_ref().unwrap() {
            Ok(a) => Ok(Arc::clone(a)),
            Err(e) => Err(anyhow!("starting {} failed: {e}", self.label)),
        }
    }

    /// Stops the manager if it was started; returns teardown notes.
    pub fn shutdown(&self) -> Vec<String> {
        let taken = self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(Ok(a)) => a.teardown(),
            _ => Vec::new(),
        }
    }
}
