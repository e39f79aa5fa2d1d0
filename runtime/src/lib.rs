//! berth: an OCI runtime-spec container runtime, a drop-in for runc.
//!
//! The modules follow the order a container is born:
//! `config` (parse) → `validate` (the plan) → `launch` (prepare, clone, drive) → `init` (the child:
//! `namespaces`, `rootfs`/`mounts`/`devices`, `terminal`, `process`/`capabilities`/`seccomp`) → exec;
//! `netdev` moves `linux.netDevices` into the container's network namespace from the parent.
//! Around them: `state` and `container` (what berth records, live status), `cgroups`, `hooks`, `sync`
//! (the parent/child channel), `logging`, `sys` (every unsafe syscall wrapper), and `commands` (one file
//! per verb).

pub mod attach;
pub mod capabilities;
pub mod cgroups;
pub mod cli;
pub mod commands;
pub mod config;
pub mod container;
pub mod devices;
pub mod exec;
pub mod hooks;
pub mod init;
pub mod launch;
pub mod logging;
pub mod lsm;
pub mod mounts;
pub mod namespaces;
pub mod netdev;
pub mod process;
pub mod procfs;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod seccomp_listener;
pub mod state;
pub mod sync;
pub mod sys;
pub mod terminal;
pub mod validate;
