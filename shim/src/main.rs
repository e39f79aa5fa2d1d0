//! `containerd-shim-berth-v2`: the containerd runtime v2 shim of berth (runtime type
//! `io.containerd.berth.v2`). It drives any runc-compatible runtime through runc's command line
//! (`berth` by default, or the runtime options' `BinaryName`), one shim per pod (the CRI
//! `io.kubernetes.cri.sandbox-id` annotation) or per container.
//!
//! # Which crates, and why
//!
//! The wire types and the ttrpc server come from `containerd-shim-protos` 0.12 (rust-protobuf messages:
//! task API, bootstrap messages, events, cgroups v1/v2 metrics) on `ttrpc` 0.10's synchronous server.
//! The `containerd-shim` crate is deliberately not used: 0.12 answers `start` only in the 2.3 bootstrap
//! format and serves only task API v3, so containerd 1.6 cannot start it; 0.11 answers only the old
//! way, serves only v2 and ignores the bootstrap message. Either version would need its start path
//! replaced, and its runtime (publisher client threads, its own reaper and monitor, nix 0.31, tempfile,
//! signal-hook...) costs resident memory this shim is measured on. What the protos crate lacks is
//! written once here:
//! - `bootstrap.rs`: `start` in both protocols (1.6: options `Any` on stdin, bare address on stdout;
//!   2.3: `BootstrapParams` on stdin, `BootstrapResult` on stdout), socket per group, reuse of a live
//!   shim of the same group, `delete` of a bundle whose shim is gone, `-info`, `-v`;
//! - `service.rs`: one Task service, registered under both `containerd.task.v2.Task` and
//!   `containerd.task.v3.Task` (the same messages under two names);
//! - `events.rs`: a one-thread publisher speaking ttrpc to containerd directly;
//! - `reaper.rs`, `process.rs`, `io.rs`, `cgroup.rs`, `mount.rs`, `runtime.rs`, `options.rs`.
//!
//! # Memory
//!
//! No async runtime; the daemon is a main thread (signalfd + epoll: SIGCHLD reaping, OOM notifications,
//! shutdown), one event publisher thread, ttrpc's listener and per-connection threads (kept to one idle
//! handler each), and small-stack threads only where bytes must be copied (stdin, terminals). Container
//! stdout/stderr go straight into containerd's FIFOs or log files, with no copy at all. One malloc
//! arena. Protobuf reflection (descriptors) is never touched. The release binary (`make build`) is
//! linked statically and optimised for size: most of a shim's resident set is mapped code, and a
//! dynamic one would carry ld.so and the pages of the shared libc it faults in (about 1.6 MiB).

mod args;
mod bootstrap;
mod cgroup;
mod events;
mod io;
mod log;
mod mount;
mod options;
mod process;
mod reaper;
mod runtime;
mod service;
mod sys;

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// Environment of the daemon: the runtime options `start` received (JSON), and its socket path.
pub const OPTIONS_ENV: &str = "BERTH_SHIM_OPTIONS";
pub const SOCKET_ENV: &str = "BERTH_SHIM_SOCKET";
pub const NAME: &str = "containerd-shim-berth-v2";
pub const RUNTIME_TYPE: &str = "io.containerd.berth.v2";

fn main() {
    let flags = match args::parse(std::env::args().skip(1)) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{NAME}: {e:#}");
            std::process::exit(2);
        }
    };
    let r = if flags.version {
        println!(
            "{NAME}:\n  Version:  {}\n  Runtime type: {RUNTIME_TYPE}",
            env!("CARGO_PKG_VERSION")
        );
        Ok(())
    } else if flags.info {
        bootstrap::info()
    } else {
        match flags.action.as_str() {
            "start" => bootstrap::start(&flags),
            "delete" => bootstrap::delete(&flags),
            "serve" => serve(&flags),
            other => Err(anyhow::anyhow!(
                "unknown action {other:?}: want start, delete, -v or -info"
            )),
        }
    };
    if let Err(e) = r {
        eprintln!("{NAME}: {e:#}");
        std::process::exit(1);
    }
}

const SIGNALS: u64 = 0;
const SHUTDOWN: u64 = 1;

/// The daemon: started by `start` with the listening socket on fd 3.
fn serve(flags: &args::Flags) -> Result<()> {
    sys::single_malloc_arena();
    log::set_debug(flags.debug);
    bootstrap::log_to_fifo();
    nix::sys::prctl::set_child_subreaper(true).context("PR_SET_CHILD_SUBREAPER")?;
    // Signals are taken from a signalfd in the main loop: block them before any thread exists.
    let mut mask = SigSet::empty();
    for s in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        mask.add(s);
    }
    mask.thread_block().context("blocking signals")?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    let shutdown = Arc::new(
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .context("eventfd")?,
    );
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).context("epoll")?;
    epoll.add(sfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS))?;
    epoll.add(
        shutdown.as_fd(),
        EpollEvent::new(EpollFlags::EPOLLIN, SHUTDOWN),
    )?;
    let oom = Arc::new(service::OomRegistry::new(epoll));

    let ttrpc_address = std::env::var("TTRPC_ADDRESS").context("TTRPC_ADDRESS is not set")?;
    let defaults: options::RuntimeOptions = match std::env::var(OPTIONS_ENV) {
        Ok(s) => serde_json::from_str(&s).context(OPTIONS_ENV)?,
        Err(_) => Default::default(),
    };
    let publisher = events::Publisher::start(&ttrpc_address, &flags.namespace)?;
    let svc = service::Service::new(
        &flags.namespace,
        publisher,
        defaults,
        Arc::clone(&oom),
        Arc::clone(&shutdown),
    );
    let mut server = containerd_shim_protos::ttrpc::Server::new()
        .add_listener(3)
        .context("ttrpc listener on fd 3")?
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(3);
    for routes in svc.routes() {
        server = server.register_service(routes);
    }
    server.start().context("starting the ttrpc server")?;

    let mut events = [EpollEvent::empty(); 16];
    'main: loop {
        let n = match oom.epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        };
        for ev in &events[..n] {
            match ev.data() {
                SIGNALS => {
                    while let Ok(Some(si)) = sfd.read_signal() {
                        match si.ssi_signo as i32 {
                            libc::SIGCHLD => reaper::reap(|pid, st| svc.on_exit(pid, st)),
                            _ => break 'main,
                        }
                    }
                    // Coalesced SIGCHLDs: reap anyway.
                    reaper::reap(|pid, st| svc.on_exit(pid, st));
                }
                SHUTDOWN => {
                    let _ = shutdown.read();
                    if svc.is_empty() {
                        break 'main;
                    }
                }
                key => {
                    if let Some(id) = oom.fired(key) {
                        svc.oom(&id);
                    }
                }
            }
        }
    }
    // Let the Shutdown reply and queued events go out.
    std::thread::sleep(Duration::from_millis(50));
    if let Ok(p) = std::env::var(SOCKET_ENV) {
        let _ = std::fs::remove_file(p);
    }
    std::process::exit(0)
}
