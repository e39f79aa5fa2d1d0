//! berth: an OCI runtime-spec container runtime.

pub mod seccomp;
