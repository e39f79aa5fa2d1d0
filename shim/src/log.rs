//! The daemon's log: logrus-style text lines on stderr, which is containerd's `log` FIFO in the bundle
//! (containerd copies it into its own log). Only warnings and errors, or everything with `-debug`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static DEBUG: AtomicBool = AtomicBool::new(false);

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

fn line(level: &str, msg: &str) {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let l = format!(
        "time=\"{}.{:09}\" level={level} msg={} runtime=io.containerd.berth.v2\n",
        t.as_secs(),
        t.subsec_nanos(),
        serde_json::Value::String(msg.to_string())
    );
    let _ = std::io::stderr().write_all(l.as_bytes());
}

pub fn debug(msg: &str) {
    if DEBUG.load(Ordering::Relaxed) {
        line("debug", msg);
    }
}

pub fn warn(msg: &str) {
    line("warning", msg);
}
