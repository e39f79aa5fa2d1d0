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

impl Cli {
    /// Parse the command line as runc's (urfave/cli) does: a flag given twice takes its last value
    /// (`exec --cwd /a --cwd /b`), where clap would refuse it.
    pub fn parse_runc_style() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        fn override_self(c: clap::Command) -> clap::Command {
            c.args_override_self(true).mut_subcommands(override_self)
        }
        let matches = override_self(Cli::command()).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
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
    /// Show the processes running in a container.
    Ps(PsArgs),
    /// List the containers under --root.
    List(ListArgs),
    /// Suspend every process of a container (freeze its cgroup).
    Pause(IdArg),
    /// Resume the processes of a paused container.
    Resume(IdArg),
    /// Print a container's resource usage statistics and OOM events as JSON.
    Events(EventsArgs),
    /// Change a running container's resource limits.
    Update(Box<UpdateArgs>),
    /// Print what this runtime supports (runtime-spec features JSON).
    Features,
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
    /// Run the process in an existing sub-cgroup of the container's: [CONTROLLER[,CONTROLLER]:]PATH
    /// (repeatable on cgroup v1; a PATH without controllers is for every hierarchy).
    #[arg(long)]
    pub cgroup: Vec<String>,
}

/// `table` or `json`, for `ps` and `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: table (ps's own output, filtered) or json (the pids).
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    pub id: String,
    /// Arguments for ps(1) (default: -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Output format: table or json.
    #[arg(short, long, value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Print the container ids only.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    pub id: String,
    /// Time between two stats events (a Go duration: 5s, 500ms, 1m30s).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print the stats once and exit.
    #[arg(long)]
    pub stats: bool,
}

/// runc's `update` flags. Values are parsed by the verb, so that a bad one is reported with the
/// flag's name (exit code 1, as runc).
#[derive(Args, Debug, Default)]
pub struct UpdateArgs {
    pub id: String,
    /// A file holding a linux.resources JSON object, or - for stdin; the other flags are then ignored.
    #[arg(short, long)]
    pub resources: Option<String>,
    /// Block IO weight (10-1000).
    #[arg(long = "blkio-weight", allow_hyphen_values = true)]
    pub blkio_weight: Option<String>,
    /// CPU CFS period (us).
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// CPU CFS quota (us) per period; -1 for none.
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU CFS burst (us).
    #[arg(long = "cpu-burst", allow_hyphen_values = true)]
    pub cpu_burst: Option<String>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", allow_hyphen_values = true)]
    pub cpu_share: Option<String>,
    /// CPU realtime period (us).
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime runtime (us) per period.
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// 1: SCHED_IDLE for the cgroup, 0: normal.
    #[arg(long = "cpu-idle", allow_hyphen_values = true)]
    pub cpu_idle: Option<String>,
    /// CPUs the container may use (e.g. 0-2,4).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may use.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a unit: 64m, 1g); -1 for none.
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory soft limit (bytes or with a unit).
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory + swap limit (bytes or with a unit); -1 for unlimited swap.
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids; -1 for none.
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
    /// Obsolete (ignored, as runc does).
    #[arg(long = "kernel-memory", hide = true)]
    pub kernel_memory: Option<String>,
    /// Obsolete (ignored, as runc does).
    #[arg(long = "kernel-memory-tcp", hide = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT L3 cache schema (not supported by berth).
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported by berth).
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}
