//! runc's command line, parsed with clap. This layer only parses; each verb lives in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logging::Format;

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "berth: an OCI runtime-spec container runtime (runc-compatible command line)"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalOpts {
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = "/run/berth")]
    pub root: PathBuf,
    /// Write log lines to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the log lines.
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    pub log_format: Format,
    /// Log debug messages.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility with runc (checkpointing is not supported).
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Accepted for compatibility with runc: auto, true or false (before the verb).
    #[arg(long = "rootless", id = "global_rootless", hide = true)]
    pub rootless: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start(IdArg),
    /// Print the state of a container as JSON.
    State(IdArg),
    /// Send a signal to a container's init process (default SIGTERM).
    Kill(KillArgs),
    /// Delete a container and everything it holds.
    Delete(DeleteArgs),
    /// Create and start a container, attached to it unless --detach.
    Run(RunArgs),
    /// Write a default config.json into a bundle.
    Spec(SpecArgs),
    /// Run a new process in a running container.
    Exec(Box<ExecArgs>),
}

#[derive(Args, Debug)]
pub struct IdArg {
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    pub id: String,
    /// Path to the bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the master side of the container's terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra file descriptors (from fd 3 on) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    pub id: String,
    /// Signal name (KILL, SIGKILL) or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
    /// Signal every process of the container, not only its init.
    #[arg(short, long)]
    pub all: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    pub id: String,
    /// Kill the container first if it is still running.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Do not wait for the container: print nothing and return once it started.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits (it is deleted by default).
    #[arg(long)]
    pub keep: bool,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Where to write config.json.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// A spec for a container run by an unprivileged user.
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    pub id: String,
    /// The command and its arguments (unless --process is given).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
    /// A process.json describing the process (runtime-spec `process` object).
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket that receives the master side of the terminal.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Return once the process started.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the process's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory of the process.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Add an environment variable (NAME=value).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// uid[:gid] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group ids.
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (to the bounding, effective, permitted and ambient sets).
    #[arg(short, long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many extra file descriptors (from fd 3 on) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// AppArmor profile (ignored where AppArmor is not enabled).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label (ignored where SELinux is not enabled).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Allow exec in a paused container.
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// runc's sub-cgroup option (not supported).
    #[arg(long, hide = true)]
    pub cgroup: Vec<String>,
}
