//! Keep the container from reaching the berth binary through `/proc/<pid>/exe` (CVE-2019-5736).
//!
//! Until it calls execve, a process that berth puts into a container runs berth's own code, so its
//! `/proc/<pid>/exe` is the berth binary. berth makes such processes non-dumpable, which keeps out every
//! process without CAP_SYS_PTRACE in the host's user namespace; a container that has it (docker
//! `--cap-add SYS_PTRACE`) could still open the link, keep the fd, and write to the host's berth binary
//! once it stopped running. So whenever a not-yet-exec'd berth process shares a pid namespace with
//! container processes — every `exec`, and a `create` that joins an existing pid namespace or uses the
//! host's — berth first re-executes itself from a sealed memfd copy: the link then leads to an anonymous,
//! write-sealed copy, and the file on disk is out of reach. A container in a pid namespace of its own has
//! no other process in it until its program runs, so `create` takes the fast path there.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStringExt;

use anyhow::{Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

/// Whether this process already runs from a write-sealed copy.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    match fcntl(exe.as_raw_fd(), FcntlArg::F_GET_SEALS) {
        Ok(seals) => SealFlag::from_bits_truncate(seals).contains(SealFlag::F_SEAL_WRITE),
        Err(_) => false,
    }
}

/// Re-execute this process, with the same arguments and environment, from a sealed memfd copy of its
/// binary. Returns only on failure.
pub fn reexec() -> Result<std::convert::Infallible> {
    let memfd = memfd_create(
        c"berth",
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )
    .context("memfd_create for a sealed copy of berth")?;
    let mut copy = File::from(memfd);
    let mut exe = File::open("/proc/self/exe").context("opening /proc/self/exe")?;
    std::io::copy(&mut exe, &mut copy).context("copying berth into the memfd")?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(copy.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).context("sealing the memfd")?;
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_vec()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend(v.into_vec());
            CString::new(kv)
        })
        .collect::<Result<_, _>>()?;
    let err = nix::unistd::fexecve(copy.as_raw_fd(), &argv, &envp).unwrap_err();
    Err(err).context("re-executing berth from its sealed copy")
}

/// Re-execute from a sealed copy unless already running from one.
pub fn ensure() -> Result<()> {
    if !running_sealed() {
        reexec()?;
    }
    Ok(())
}
