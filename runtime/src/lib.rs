//! berth: an OCI runtime-spec container runtime.
