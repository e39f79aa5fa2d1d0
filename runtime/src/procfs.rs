//! procfs, reached only through verified handles.
//!
//! Every file berth writes under /proc — id maps, `setgroups`, `oom_score_adj`, `timens_offsets`,
//! sysctls, LSM attributes — is opened through pathrs' `ProcfsHandle`: a private, detached procfs
//! instance (fsopen, else a clone of /proc taken before the container's mounts exist), checked to be
//! a real procfs root, whose lookups never cross a mount. No mount in the container, and no mount
//! raced in while berth works (CVE-2025-52881), can redirect such a write to another file; a path
//! string like "/proc/sys/..." resolved in the container's mount namespace could be.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

/// The process's procfs handle (pathrs caches it: one per process, `subset=pid` where possible).
fn handle() -> Result<ProcfsHandle> {
    ProcfsHandle::new().context("opening a private procfs handle")
}

fn describe(base: ProcfsBase, file: &str) -> String {
    match base {
        ProcfsBase::ProcPid(pid) => format!("/proc/{pid}/{file}"),
        ProcfsBase::ProcSelf => format!("/proc/self/{file}"),
        ProcfsBase::ProcThreadSelf => format!("/proc/thread-self/{file}"),
        ProcfsBase::ProcRoot => format!("/proc/{file}"),
        _ => format!("/proc/.../{file}"),
    }
}

fn write_at(proc: &ProcfsHandle, base: ProcfsBase, file: &str, data: &[u8]) -> Result<()> {
    let mut f = proc
        .open(base, file, OpenFlags::O_WRONLY | OpenFlags::O_CLOEXEC)
        .with_context(|| format!("opening {}", describe(base, file)))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", describe(base, file)))
}

/// Open (and keep, for the rest of the process) the procfs handle now, while no mount of the
/// container's can stand in /proc's place: the init and an exec'd process call this before they
/// build or join the container's mounts.
pub fn open_early() -> Result<()> {
    handle().map(drop)
}

/// Write `data` to `/proc/<pid>/<file>` (in one write(2), as the id map files require).
pub fn write_pid(pid: i32, file: &str, data: &[u8]) -> Result<()> {
    write_at(&handle()?, ProcfsBase::ProcPid(pid as u32), file, data)
}

/// Write `data` to `/proc/thread-self/<file>`.
pub fn write_self(file: &str, data: &[u8]) -> Result<()> {
    write_at(&handle()?, ProcfsBase::ProcThreadSelf, file, data)
}

/// Read `/proc/thread-self/<file>` (None when it does not exist).
pub fn read_self(file: &str) -> Result<Option<String>> {
    let mut f = match handle()?.open(
        ProcfsBase::ProcThreadSelf,
        file,
        OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC,
    ) {
        Ok(f) => f,
        Err(e) if e.kind() == pathrs::error::ErrorKind::OsError(Some(libc::ENOENT)) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(e).with_context(|| format!("opening /proc/thread-self/{file}"));
        }
    };
    let mut s = String::new();
    f.read_to_string(&mut s)
        .with_context(|| format!("reading /proc/thread-self/{file}"))?;
    Ok(Some(s))
}

/// The path an fd of this process refers to, as readlink(/proc/thread-self/fd/N) gives it.
pub fn fd_path(fd: std::os::fd::RawFd) -> Result<std::path::PathBuf> {
    handle()?
        .readlink(ProcfsBase::ProcThreadSelf, format!("fd/{fd}"))
        .with_context(|| format!("readlink /proc/thread-self/fd/{fd}"))
}

/// A whole (not `subset=pid`) procfs of the container's namespaces, for `linux.sysctl`. Opened by the
/// init before the container's mounts are made; it reaches global /proc files, so it is dropped as
/// soon as the sysctls are written (and is close-on-exec).
pub struct Sysctls(ProcfsHandle);

impl Sysctls {
    pub fn open() -> Result<Sysctls> {
        ProcfsHandleBuilder::new()
            .unmasked()
            .build()
            .map(Sysctls)
            .context("linux.sysctl: opening a private procfs")
    }

    /// Write one sysctl (`net.ipv4.ip_forward` or `net/ipv4/ip_forward`).
    pub fn write(&self, key: &str, value: &str) -> Result<()> {
        let file = Path::new("sys").join(key.replace('.', "/"));
        let file = file.to_string_lossy();
        write_at(&self.0, ProcfsBase::ProcRoot, &file, value.as_bytes())
            .with_context(|| format!("linux.sysctl {key}={value}"))
    }
}
