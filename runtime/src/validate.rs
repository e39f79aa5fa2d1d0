//! Validate: turn a parsed Spec into berth's `Plan`, once. Every field is checked here and fails with its
//! name before anything exists (no state dir, cgroup, mount or process); everything later works on the
//! plan, never on raw JSON.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Hook, LinuxPersonality, LinuxPersonalityDomain, LinuxResources, MemoryPolicyFlagType,
    MemoryPolicyModeType, Spec,
};

use crate::cgroups::CgroupConfig;
use crate::devices::{self, Device};
use crate::hooks;
use crate::mounts::{self, Mount};
use crate::namespaces::{Kind, Namespaces};
use crate::process::ProcessPlan;
use crate::seccomp::SeccompProgram;

/// The hook phases berth runs, by their config.json names (also what `features` reports).
pub const HOOK_PHASES: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The hooks of config.json, by phase.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    #[allow(deprecated)]
    pub fn from_spec(spec: &Spec) -> Result<Hooks> {
        let Some(h) = spec.hooks() else {
            return Ok(Hooks::default());
        };
        let get = |v: &Option<Vec<Hook>>| v.clone().unwrap_or_default();
        let hooks = Hooks {
            prestart: get(h.prestart()),
            create_runtime: get(h.create_runtime()),
            create_container: get(h.create_container()),
            start_container: get(h.start_container()),
            poststart: get(h.poststart()),
            poststop: get(h.poststop()),
        };
        let lists = [
            &hooks.prestart,
            &hooks.create_runtime,
            &hooks.create_container,
            &hooks.start_container,
            &hooks.poststart,
            &hooks.poststop,
        ];
        for (phase, list) in HOOK_PHASES.iter().zip(lists) {
            hooks::validate(phase, list)?;
        }
        Ok(hooks)
    }
}

/// `linux.memoryPolicy` as set_mempolicy(2) arguments.
#[derive(Clone, Debug)]
pub struct MemoryPolicy {
    pub mode: i32,
    pub nodes: Vec<usize>,
}

/// Everything `create` needs, checked.
#[derive(Clone, Debug)]
pub struct Plan {
    pub id: String,
    pub bundle: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub root_readonly: bool,
    pub namespaces: Namespaces,
    pub mounts: Vec<Mount>,
    pub rootfs_propagation: u64,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    pub devices: Vec<Device>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub sysctl: Vec<(String, String)>,
    pub process: ProcessPlan,
    pub cgroup: CgroupConfig,
    pub resources: Option<LinuxResources>,
    pub seccomp: Option<SeccompProgram>,
    pub personality: Option<u64>,
    pub memory_policy: Option<MemoryPolicy>,
    /// `linux.netDevices`, in the order of their host names.
    pub net_devices: Vec<crate::netdev::NetDevice>,
    pub hooks: Hooks,
}

/// Command-line options that shape the plan.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub systemd_cgroup: bool,
}

pub fn plan(id: &str, bundle: &Path, spec: Spec, opts: &Options) -> Result<Plan> {
    let root = spec
        .root()
        .as_ref()
        .context("root: the config has no root (root.path is required)")?;
    let rootfs = bundle.join(root.path());
    if !rootfs.is_dir() {
        bail!("root.path {}: no such directory", rootfs.display());
    }
    let rootfs = rootfs
        .canonicalize()
        .with_context(|| format!("root.path {}", rootfs.display()))?;
    let process = spec
        .process()
        .as_ref()
        .context("process: the config has no process to run")?;
    let process = ProcessPlan::from_spec(process)?;
    if let Some(adj) = process.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            bail!("process.oomScoreAdj {adj} is out of range -1000..1000");
        }
    }
    let linux = spec.linux().clone().unwrap_or_default();

    let namespaces = Namespaces::from_spec(
        linux.namespaces().as_deref().unwrap_or(&[]),
        linux.uid_mappings().as_ref(),
        linux.gid_mappings().as_ref(),
        linux.time_offsets().as_ref(),
    )?;

    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| mounts::from_spec(i, m, bundle))
        .collect::<Result<Vec<_>>>()?;
    // Without a mount namespace the container inherits the runtime's (config-linux.md), and the
    // mounts are made there, as runc does. Making `/` read-only or changing its propagation would then
    // change the runtime's own mounts: refused (runc ignores root.readonly there, against config.md).
    let own_mount_namespace = namespaces.has(Kind::Mount);
    if !own_mount_namespace && root.readonly().unwrap_or(false) {
        bail!("root.readonly: making the root read-only needs a mount namespace of the container's own (linux.namespaces has no mount)");
    }

    let rootfs_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => 0,
        Some("shared") => libc::MS_SHARED,
        Some("rshared") => libc::MS_SHARED | libc::MS_REC,
        Some("slave") => libc::MS_SLAVE,
        Some("rslave") => libc::MS_SLAVE | libc::MS_REC,
        Some("private") => libc::MS_PRIVATE,
        Some("rprivate") => libc::MS_PRIVATE | libc::MS_REC,
        Some("unbindable") => libc::MS_UNBINDABLE,
        Some("runbindable") => libc::MS_UNBINDABLE | libc::MS_REC,
        Some(other) => bail!("linux.rootfsPropagation {other:?}: not a propagation mode"),
    };
    if rootfs_propagation != 0 && !own_mount_namespace {
        bail!("linux.rootfsPropagation: needs a mount namespace of the container's own (linux.namespaces has no mount)");
    }

    // The spec asks for absolute paths; runc takes a relative one from the container's `/` (its
    // init is there when it masks), and so does berth.
    let check_paths = |field: &str, v: &Option<Vec<String>>| -> Result<Vec<String>> {
        let mut v = v.clone().unwrap_or_default();
        for (i, p) in v.iter_mut().enumerate() {
            if p.is_empty() {
                bail!("linux.{field}[{i}]: empty path");
            }
            if !p.starts_with('/') {
                *p = format!("/{p}");
            }
        }
        Ok(v)
    };
    let masked_paths = check_paths("maskedPaths", linux.masked_paths())?;
    let readonly_paths = check_paths("readonlyPaths", linux.readonly_paths())?;

    let devices = devices::from_spec(linux.devices().as_deref().unwrap_or(&[]))?;

    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    let domainname = spec.domainname().clone().filter(|h| !h.is_empty());
    for (field, name) in [("hostname", &hostname), ("domainname", &domainname)] {
        // sethostname(2)/setdomainname(2) take at most __NEW_UTS_LEN (64) bytes.
        if let Some(n) = name.as_ref().filter(|n| n.len() > 64) {
            bail!(
                "{field}: {} bytes long, more than the kernel's limit of 64",
                n.len()
            );
        }
    }
    if (hostname.is_some() || domainname.is_some()) && !namespaces.has(Kind::Uts) {
        bail!("hostname/domainname: setting them needs a UTS namespace of the container's own (linux.namespaces has no uts)");
    }

    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    for (key, _) in &sysctl {
        check_sysctl(key, &namespaces)?;
        // As runc: the two ways to name the container would contradict each other.
        let k = key.replace('/', ".");
        if (k == "kernel.hostname" && hostname.is_some())
            || (k == "kernel.domainname" && domainname.is_some())
        {
            bail!(
                "linux.sysctl {key:?}: conflicts with the config's {} field",
                if k == "kernel.hostname" {
                    "hostname"
                } else {
                    "domainname"
                }
            );
        }
    }

    let resources = linux.resources().clone();
    let cgroup = CgroupConfig::new(linux.cgroups_path().as_deref(), id, opts.systemd_cgroup)?;

    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(SeccompProgram::compile)
        .transpose()?;

    let personality = personality(linux.personality().as_ref())?;

    let memory_policy = match linux.memory_policy() {
        Some(mp) => {
            let mut mode = memory_policy_mode(mp.mode());
            for f in mp.flags().iter().flatten() {
                mode |= memory_policy_flag(*f);
            }
            let nodes = match mp.nodes() {
                Some(n) => crate::process::parse_cpu_list("linux.memoryPolicy.nodes", n)?,
                None => Vec::new(),
            };
            Some(MemoryPolicy { mode, nodes })
        }
        None => None,
    };

    if linux.intel_rdt().is_some() {
        bail!("linux.intelRdt: Intel RDT (resctrl) is not supported by berth");
    }
    let net_devices = crate::netdev::from_spec(linux.net_devices().as_ref(), &namespaces)?;
    let mut process = process;
    let mount_label = crate::lsm::applicable(
        &mut process,
        linux.mount_label().as_deref().filter(|l| !l.is_empty()),
    );
    let mut mounts = mounts;
    for m in &mut mounts {
        if let crate::mounts::Source::Fs { fstype, .. } = &m.source {
            if let Some(ctx) = crate::lsm::mount_context(mount_label.as_deref(), fstype) {
                m.data.push(("context".to_owned(), Some(ctx)));
            }
        }
    }

    Ok(Plan {
        id: id.to_owned(),
        bundle: bundle.to_path_buf(),
        rootfs,
        root_readonly: root.readonly().unwrap_or(false),
        namespaces,
        mounts,
        rootfs_propagation,
        masked_paths,
        readonly_paths,
        devices,
        hostname,
        domainname,
        sysctl,
        process,
        cgroup,
        resources,
        seccomp,
        personality,
        memory_policy,
        net_devices,
        hooks: Hooks::from_spec(&spec)?,
        spec,
    })
}

/// `linux.personality` as personality(2)'s persona (for the init and for `exec`).
pub fn personality(p: Option<&LinuxPersonality>) -> Result<Option<u64>> {
    let Some(p) = p else { return Ok(None) };
    if p.flags().as_ref().is_some_and(|f| !f.is_empty()) {
        bail!("linux.personality.flags: no flags are supported");
    }
    Ok(Some(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    }))
}

/// Every `linux.memoryPolicy.mode` berth applies (see [`memory_policy_mode`]).
pub const MEMORY_POLICY_MODES: [MemoryPolicyModeType; 7] = [
    MemoryPolicyModeType::MpolDefault,
    MemoryPolicyModeType::MpolPreferred,
    MemoryPolicyModeType::MpolBind,
    MemoryPolicyModeType::MpolInterleave,
    MemoryPolicyModeType::MpolLocal,
    MemoryPolicyModeType::MpolPreferredMany,
    MemoryPolicyModeType::MpolWeightedInterleave,
];

/// Every `linux.memoryPolicy.flags` entry berth applies.
pub const MEMORY_POLICY_FLAGS: [MemoryPolicyFlagType; 3] = [
    MemoryPolicyFlagType::MpolFStaticNodes,
    MemoryPolicyFlagType::MpolFRelativeNodes,
    MemoryPolicyFlagType::MpolFNumaBalancing,
];

/// set_mempolicy(2)'s mode number.
fn memory_policy_mode(m: MemoryPolicyModeType) -> i32 {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

/// set_mempolicy(2)'s mode flag bit.
fn memory_policy_flag(f: MemoryPolicyFlagType) -> i32 {
    match f {
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
    }
}

/// Only namespaced sysctls are allowed, and only when the container has that namespace (runc's rules).
fn check_sysctl(key: &str, ns: &Namespaces) -> Result<()> {
    let k = key.replace('/', ".");
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&k.as_str()) || k.starts_with("fs.mqueue.") {
        if !ns.has(Kind::Ipc) {
            bail!("linux.sysctl {key:?}: needs an IPC namespace of the container's own");
        }
        return Ok(());
    }
    if k.starts_with("net.") {
        if !ns.has(Kind::Net) {
            bail!("linux.sysctl {key:?}: needs a network namespace of the container's own");
        }
        return Ok(());
    }
    if k == "kernel.hostname" || k == "kernel.domainname" {
        if !ns.has(Kind::Uts) {
            bail!("linux.sysctl {key:?}: needs a UTS namespace of the container's own");
        }
        return Ok(());
    }
    bail!("linux.sysctl {key:?}: not a namespaced sysctl, so it cannot be set for one container")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(kinds: &[Kind]) -> Namespaces {
        Namespaces {
            new: kinds.to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn sysctls_need_their_namespace() {
        assert!(check_sysctl("net.ipv4.ip_forward", &ns(&[Kind::Net])).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", &ns(&[])).is_err());
        assert!(check_sysctl("kernel.shmmax", &ns(&[Kind::Ipc])).is_ok());
        assert!(check_sysctl("fs.mqueue.msg_max", &ns(&[])).is_err());
        assert!(check_sysctl("vm.swappiness", &ns(&Kind::ALL)).is_err());
    }
}
