//! Thin wrappers over the system calls that neither `nix` nor `libc` wrap safely.
//!
//! Every `unsafe` block of berth's own code lives here, each one small and with the reason it is sound.
//! Everything else calls these safe functions.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `struct clone_args` of clone3(2), version 2 (with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What clone3 returned: in the parent the child's pid and a pidfd for it, in the child nothing.
pub enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

/// Fork the calling process with clone3(2), new namespaces in `flags`, and a pidfd for the child.
///
/// Like fork(2), the child continues in a copy of the address space. The caller must be single-threaded
/// (berth never starts threads before it clones), so no lock can be held by a thread that does not exist in
/// the child.
pub fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64 | cgroup_fd.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup_fd.map_or(0, |fd| fd as u64),
        ..Default::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; no stack is given, so the child runs on a
    // copy of the parent's stack like fork(2). The process is single-threaded (see above), so the child's
    // copy of the heap and of every lock is consistent.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: with CLONE_PIDFD the kernel stored a new, owned file descriptor in `pidfd`.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// fork(2) for the few places where a plain copy of the process is wanted (hooks are spawned through
/// `std::process::Command` instead).
pub fn fork() -> io::Result<Forked> {
    clone3(0, None)
}

/// A child parked in a new, still unmapped user namespace, for giving that namespace id maps from
/// outside (an idmapped mount needs a user namespace fd holding its mappings). The caller writes
/// `/proc/<pid>/{uid,gid}_map` and opens `/proc/<pid>/ns/user`; dropping the holder lets the child exit
/// and reaps it.
pub struct UsernsHolder {
    pub pid: i32,
    pidfd: OwnedFd,
    /// Closing it wakes the child (its read sees end of file), which exits.
    release: Option<OwnedFd>,
}

impl UsernsHolder {
    /// Clone the holder. The caller must be single-threaded (see `clone3`).
    pub fn spawn() -> io::Result<UsernsHolder> {
        let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        match clone3(libc::CLONE_NEWUSER as u64, None)? {
            Forked::Child => {
                drop(wr);
                let mut byte = 0u8;
                // SAFETY: read(2) into a valid one-byte buffer; it returns at end of file, when the parent
                // dropped its end (or died). _exit(2) ends the process without running destructors or exit
                // handlers, which belong to the parent's copy of the state; nothing else runs in this child.
                unsafe {
                    libc::read(rd.as_raw_fd(), (&mut byte as *mut u8).cast(), 1);
                    libc::_exit(0)
                }
            }
            Forked::Parent { pid, pidfd } => {
                drop(rd);
                Ok(UsernsHolder {
                    pid,
                    pidfd,
                    release: Some(wr),
                })
            }
        }
    }
}

impl Drop for UsernsHolder {
    fn drop(&mut self) {
        drop(self.release.take());
        let _ = waitid_pidfd(self.pidfd.as_fd(), libc::WEXITED);
    }
}

/// pidfd_open(2): a file descriptor that refers to process `pid` for as long as the fd lives.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// pidfd_send_signal(2): signal the process behind `pidfd`, which cannot be a recycled pid.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in a SI_USER one); integers otherwise.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// waitid(P_PIDFD): reap the child behind `pidfd` and return its wait status as an exit code
/// (`128 + signal` for a signal, as shells and runc report it).
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, options: libc::c_int) -> io::Result<Option<i32>> {
    // SAFETY: siginfo_t is plain data; zeroed is a valid value for it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is valid for writes; P_PIDFD takes the fd as the id.
    check_int(unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd.as_raw_fd() as libc::id_t,
            &mut info,
            options,
        )
    })?;
    // SAFETY: waitid filled `info` for a child that changed state (si_pid == 0 means none did, with
    // WNOHANG); si_status is valid for the CLD_* codes it reports.
    let (pid, code, status) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match code {
        libc::CLD_EXITED => status,
        _ => 128 + status,
    }))
}

/// close_range(2) with CLOSE_RANGE_CLOEXEC: mark every fd from `first` on close-on-exec.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: integers only; marking fds close-on-exec cannot invalidate memory.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })?;
    Ok(())
}

/// The fds at and above 3 that this process has open (from /proc/self/fd, without the directory's
/// own fd).
pub fn open_fds() -> io::Result<Vec<RawFd>> {
    let mut dir = nix::dir::Dir::open(
        "/proc/self/fd",
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let own = dir.as_raw_fd();
    let mut fds = Vec::new();
    for entry in dir.iter() {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if let Ok(fd) = name.parse::<RawFd>() {
            if fd >= 3 && fd != own {
                fds.push(fd);
            }
        }
    }
    fds.sort_unstable();
    Ok(fds)
}

/// Clear close-on-exec on `fd`, so that it passes into the program execve starts.
pub fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(F_SETFD) takes an integer flag argument; on a closed fd it fails with EBADF.
    check_int(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
    Ok(())
}

/// execve(2)'s arguments, laid out before the call: the pointer arrays are built (allocated) here,
/// so that `execve` itself makes no system call but execve (none may run after a seccomp filter).
pub struct ExecArgs {
    path: std::ffi::CString,
    argv: Vec<std::ffi::CString>,
    envp: Vec<std::ffi::CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
}

impl ExecArgs {
    pub fn new(
        path: std::ffi::CString,
        argv: Vec<std::ffi::CString>,
        envp: Vec<std::ffi::CString>,
    ) -> ExecArgs {
        let ptrs = |v: &[std::ffi::CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        // The CStrings' heap buffers do not move when the Vecs holding them move.
        let (argv_ptrs, envp_ptrs) = (ptrs(&argv), ptrs(&envp));
        ExecArgs {
            path,
            argv,
            envp,
            argv_ptrs,
            envp_ptrs,
        }
    }

    pub fn path(&self) -> &CStr {
        &self.path
    }

    pub fn argv(&self) -> &[std::ffi::CString] {
        &self.argv
    }

    pub fn envp(&self) -> &[std::ffi::CString] {
        &self.envp
    }
}

/// execve(2) with arguments prepared in advance; returns only on failure, with the error.
pub fn execve(args: &ExecArgs) -> io::Error {
    // SAFETY: the path is a valid C string and both pointer arrays are null-terminated arrays of
    // pointers into C strings owned by `args`, which outlives the call.
    unsafe {
        libc::execve(
            args.path.as_ptr(),
            args.argv_ptrs.as_ptr(),
            args.envp_ptrs.as_ptr(),
        )
    };
    io::Error::last_os_error()
}

/// sendmsg(2) of one byte `tag` with `fd` as SCM_RIGHTS on the connected socket `sock`. The message
/// is laid out on the stack: nothing is allocated, and sendmsg is the only system call (it runs
/// after the seccomp filter, to hand the notify listener over).
pub fn send_fd(sock: BorrowedFd<'_>, tag: u8, fd: RawFd) -> io::Result<()> {
    #[repr(C)]
    union Cmsg {
        hdr: libc::cmsghdr,
        buf: [u8; 64],
    }
    let mut data = [tag];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cmsg = Cmsg { buf: [0; 64] };
    // SAFETY: msghdr is plain data; zeroed is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: CMSG_SPACE is a pure computation on a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    // SAFETY: `cmsg` is 64 bytes, aligned for cmsghdr, more than CMSG_SPACE(sizeof(int)) (24); the
    // CMSG_* macros address the header and data inside that buffer, which msghdr points to; the
    // kernel reads msg, iov and the buffer during the call only.
    unsafe {
        msg.msg_control = (&mut cmsg as *mut Cmsg).cast();
        msg.msg_controllen = space as _;
        let hdr = libc::CMSG_FIRSTHDR(&msg);
        (*hdr).cmsg_level = libc::SOL_SOCKET;
        (*hdr).cmsg_type = libc::SCM_RIGHTS;
        (*hdr).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(hdr).cast::<RawFd>(), fd);
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Flags of open_tree(2), move_mount(2), fsopen(2) and friends (the new mount API).
pub mod mount_api {
    pub const OPEN_TREE_CLONE: u32 = 1;
    pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
    pub const AT_RECURSIVE: u32 = 0x8000;
    pub const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;
    pub const AT_SYMLINK_NOFOLLOW: u32 = libc::AT_SYMLINK_NOFOLLOW as u32;
    pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
    pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
    pub const FSOPEN_CLOEXEC: u32 = 1;
    pub const FSMOUNT_CLOEXEC: u32 = 1;
    pub const FSCONFIG_SET_FLAG: u32 = 0;
    pub const FSCONFIG_SET_STRING: u32 = 1;
    pub const FSCONFIG_CMD_CREATE: u32 = 6;

    pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
    pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
    pub const MOUNT_ATTR_NODEV: u64 = 0x4;
    pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
    pub const MOUNT_ATTR__ATIME: u64 = 0x70;
    pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
    pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
    pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
    pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
    pub const MOUNT_ATTR_IDMAP: u64 = 0x10_0000;
    pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x20_0000;
}

/// `struct mount_attr` of mount_setattr(2).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountAttr {
    pub attr_set: u64,
    pub attr_clr: u64,
    pub propagation: u64,
    pub userns_fd: u64,
}

/// open_tree(2): a detached copy (`OPEN_TREE_CLONE`) of the mount at `path` relative to `dirfd`.
pub fn open_tree(dirfd: RawFd, path: &CStr, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: `path` is a valid C string for the duration of the call.
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd, path.as_ptr(), flags) })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// mount_setattr(2) on the mount (tree, with AT_RECURSIVE) at `path` relative to `dirfd`.
pub fn mount_setattr(dirfd: RawFd, path: &CStr, flags: u32, attr: &MountAttr) -> io::Result<()> {
    // SAFETY: `path` is a valid C string and `attr` a valid mount_attr of the size passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// move_mount(2): attach the mount `from` onto `to` (both fds, with the *_EMPTY_PATH flags).
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    use mount_api::*;
    let empty = c"";
    // SAFETY: both paths are valid (empty) C strings; the fds are borrowed for the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// fsopen(2): a filesystem context for `fstype`.
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: `fstype` is a valid C string.
    let fd = check(unsafe {
        libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), mount_api::FSOPEN_CLOEXEC)
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// fsconfig(2) with a key and an optional string value (FSCONFIG_SET_FLAG without one).
pub fn fsconfig_set(fs: BorrowedFd<'_>, key: &CStr, value: Option<&CStr>) -> io::Result<()> {
    let (cmd, value_ptr) = match value {
        Some(v) => (mount_api::FSCONFIG_SET_STRING, v.as_ptr()),
        None => (mount_api::FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: key and value are valid C strings (or null for a flag, as the call requires).
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            cmd,
            key.as_ptr(),
            value_ptr,
            0,
        )
    })?;
    Ok(())
}

/// fsconfig(FSCONFIG_CMD_CREATE) then fsmount(2): the superblock as a detached mount with `attrs`.
pub fn fsmount(fs: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: null key and value are what FSCONFIG_CMD_CREATE takes.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            mount_api::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: integers only.
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            mount_api::FSMOUNT_CLOEXEC,
            attrs,
        )
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, prio) for the calling process.
pub fn ioprio_set_self(prio: i32) -> io::Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })?;
    Ok(())
}

/// `struct sched_attr` of sched_setattr(2).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub sched_policy: u32,
    pub sched_flags: u64,
    pub sched_nice: i32,
    pub sched_priority: u32,
    pub sched_runtime: u64,
    pub sched_deadline: u64,
    pub sched_period: u64,
}

/// sched_setattr(2) for the calling process.
pub fn sched_setattr_self(attr: &SchedAttr) -> io::Result<()> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `attr` is a valid sched_attr whose size field matches the struct passed.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })?;
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): give the container its own session keyring; returns its
/// serial number.
pub fn join_session_keyring(name: &CStr) -> io::Result<i32> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: `name` is a valid C string.
    let id = check(unsafe {
        libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr())
    })?;
    Ok(id as i32)
}

/// keyctl(KEYCTL_DESCRIBE, key): "type;uid;gid;perm;description".
pub fn keyctl_describe(key: i32) -> io::Result<String> {
    const KEYCTL_DESCRIBE: libc::c_int = 6;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: the pointer and length describe `buf`, valid for writes; the kernel writes at most
        // `buf.len()` bytes and returns the size the description needs (with its NUL).
        let n = check(unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_DESCRIBE,
                key,
                buf.as_mut_ptr(),
                buf.len(),
            )
        })? as usize;
        if n <= buf.len() {
            buf.truncate(n.saturating_sub(1));
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        buf.resize(n, 0);
    }
}

/// keyctl(KEYCTL_SETPERM, key, perm).
pub fn keyctl_setperm(key: i32, perm: u32) -> io::Result<()> {
    const KEYCTL_SETPERM: libc::c_int = 5;
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, key, perm) })?;
    Ok(())
}

/// set_mempolicy(2) with a node mask of `maxnode` bits.
pub fn set_mempolicy(mode: i32, nodemask: &[libc::c_ulong], maxnode: u64) -> io::Result<()> {
    let ptr = if nodemask.is_empty() {
        std::ptr::null()
    } else {
        nodemask.as_ptr()
    };
    // SAFETY: `nodemask` holds at least `maxnode` bits (the caller sizes it), or is null with maxnode 0.
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) })?;
    Ok(())
}

/// prctl(2) with integer arguments only (PR_SET_DUMPABLE, PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, ...).
pub fn prctl(option: libc::c_int, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the options used with this wrapper take integer arguments, never pointers.
    check_int(unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    })?;
    Ok(())
}

/// setsockopt(2) with an `int` value (options nix has no wrapper for, e.g. NETLINK_EXT_ACK).
pub fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the pointer and length describe `value`, an int valid for the call.
    check_int(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// An ioctl that takes no argument and returns an integer (e.g. NS_GET_NSTYPE).
pub fn ioctl_noarg(fd: BorrowedFd<'_>, request: libc::c_ulong) -> io::Result<libc::c_int> {
    // SAFETY: the requests used with this wrapper take no argument and only return an integer.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), request) })
}

/// ioctl(TIOCSCTTY): make `fd` (a terminal) the calling process's controlling terminal.
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// ioctl(TIOCGPTPEER): open the peer (slave) of pty master `master` without a path lookup.
pub fn pty_peer(master: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: TIOCGPTPEER takes the open flags as an integer and returns a new fd.
    let fd = check_int(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// ioctl(TIOCSPTLCK, 0) and ioctl(TIOCGPTN): unlock pty master `master` and return its number.
pub fn pty_unlock(master: BorrowedFd<'_>) -> io::Result<u32> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int through the pointer, which is valid.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int through the pointer, which is valid.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// ioctl(TIOCGWINSZ / TIOCSWINSZ): read or set a terminal's window size.
pub fn get_winsize(fd: BorrowedFd<'_>) -> io::Result<libc::winsize> {
    // SAFETY: winsize is plain data.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize through the pointer, which is valid.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok(ws)
}

pub fn set_winsize(fd: BorrowedFd<'_>, ws: &libc::winsize) -> io::Result<()> {
    // SAFETY: TIOCSWINSZ reads a winsize through the pointer, which is valid.
    check_int(unsafe {
        libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws as *const libc::winsize)
    })?;
    Ok(())
}

/// Reset every signal's disposition to the default and unblock all signals, so the container's
/// process starts clean (Rust ignores SIGPIPE at start-up, and ignored signals survive execve).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always valid; errors (for reserved signals) are harmless.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// personality(2) with a persona value (PER_LINUX, PER_LINUX32, ...).
pub fn personality(persona: u64) -> io::Result<()> {
    // SAFETY: integers only.
    check_int(unsafe { libc::personality(persona as libc::c_ulong) })?;
    Ok(())
}

/// setdomainname(2).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, valid for the call.
    check_int(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// The value of `errno` for the last failed call, for messages.
pub fn errno() -> io::Error {
    io::Error::last_os_error()
}
