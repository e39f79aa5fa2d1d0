//! Seccomp: translation of `linux.seccomp` (runtime-spec config-linux.md#seccomp) into classic
//! BPF, and installation in the container's init just before exec.
//!
//! # Semantics
//!
//! The behaviour follows runc 1.1 with libseccomp:
//! - `SCMP_ACT_KILL` is `SECCOMP_RET_KILL_THREAD`; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` carry
//!   `errnoRet` (default `EPERM`); `defaultErrnoRet` applies to a default `ERRNO`/`TRACE`.
//! - A rule whose action (with its errno) equals the default action is skipped, as runc does.
//! - The args of one syscall entry are AND-ed, except when two args share the same index: then
//!   every arg becomes a rule of its own and they are OR-ed (runc's "old behaviour").
//! - Syscall names unknown to every active ABI are ignored (see
//!   [`SeccompProgram::ignored_syscalls`]); a name known on one ABI only (e.g. `socketcall` on
//!   i386) applies to that ABI only.
//! - Architectures: the native ABI is always filtered; on x86_64 `SCMP_ARCH_X86` (i386 via
//!   `int 0x80`) and `SCMP_ARCH_X32` get their own rules with their own syscall numbers; on
//!   aarch64 `SCMP_ARCH_ARM` does. A syscall from an ABI that is not listed gets libseccomp's
//!   default bad-arch action, `KILL_THREAD` (runc never changes it). x32 syscalls (number with
//!   bit 30 set on `AUDIT_ARCH_X86_64`) never reach the x86_64 rules. Architectures that cannot
//!   occur on this host (e.g. `SCMP_ARCH_S390X` on x86_64) are accepted and have no effect.
//! - runc's `-ENOSYS` stub: when the default action is not ALLOW/LOG/TRACE and
//!   `defaultErrnoRet` is not `ENOSYS`, a syscall whose number is above the largest number named
//!   in the profile for a *listed* architecture returns `ENOSYS`, so that libcs fall back from
//!   syscalls newer than the profile (e.g. `clone3`).
//! - 32-bit ABIs (i386, arm) compare the low 32 bits of the args, as libseccomp does for
//!   32-bit architectures; 64-bit ABIs (including x32) compare all 64 bits.
//! - When rules with different actions match the same call, the most restrictive action wins
//!   (kernel order: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, NOTIFY, TRACE, LOG, ALLOW). The spec
//!   leaves that case undefined.
//!
//! # Design: stacked filters
//!
//! seccompiler compiles a rule set with ONE match action and ONE mismatch action. The profile is
//! therefore translated to a small stack of filters, and the kernel runs every filter and keeps
//! the most restrictive result:
//! - the base filter: "call matches any rule (of any action other than the default) -> ALLOW,
//!   else defaultAction" (omitted when the default is ALLOW);
//! - one filter per distinct non-ALLOW rule action A: "call matches a rule of action A -> A,
//!   else ALLOW".
//!
//! For a call that matches no rule, the base filter gives the default and all others ALLOW: the
//! result is the default. For a call that matches rules of action A only, the base gives ALLOW
//! and filter A gives A: the result is A. So the stack implements the spec exactly, including
//! ERRNO with errnos that differ from `defaultErrnoRet` (they are distinct actions and never
//! compete: the base returns its default only when no rule matched).
//!
//! seccompiler only generates the per-syscall rule chains. berth writes the program around
//! them: the architecture dispatch (seccompiler hard-codes "arch != native -> KILL_PROCESS"),
//! the x32 split, the `-ENOSYS` stub, and a binary search over syscall numbers so that a
//! ~300-syscall profile costs a handful of instructions per syscall instead of a linear scan.
//! seccompiler has no `SECCOMP_RET_USER_NOTIF`: a notify filter is generated with a placeholder
//! TRACE action whose return instructions are then patched to `SECCOMP_RET_USER_NOTIF` (the
//! only other return in such a rule chain is ALLOW, so the patch is unambiguous).
//!
//! A filter that would exceed the kernel's 4096 instructions is split into one filter per ABI
//! (each returns ALLOW for the ABIs it does not handle).
//!
//! Installing a stack needs one `seccomp(2)` call per filter, and every filter already installed
//! sees the next call. Before installing, berth evaluates each filter (with its own BPF
//! interpreter) on the exact `seccomp(2)` calls that will follow, and picks an order in which no
//! installed filter denies a later install. Only a profile that denies `seccomp(2)` in two
//! filters at once cannot be installed (reported as an error).

use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::RawFd;
#[cfg(test)]
use std::os::fd::{FromRawFd, OwnedFd};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

// ---------------------------------------------------------------------------------------------
// Kernel constants
// ---------------------------------------------------------------------------------------------

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// x32 syscalls are x86_64 syscalls with this bit set in the number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The kernel's limit on one filter (BPF_MAXINSNS).
const MAX_FILTER_LEN: usize = 4096;
/// The kernel's limit on all filters of a task: MAX_INSNS_PER_PATH, where every filter counts
/// its length plus 4.
const MAX_TOTAL_LEN: usize = (1 << 18) / 8;

/// `struct seccomp_data` offsets.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;

// Classic BPF opcodes (linux/bpf_common.h).
// BPF_LD | BPF_W | BPF_ABS
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_ALU_AND_K: u16 = 0x04 | 0x50;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGT_K: u16 = 0x05 | 0x20;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

/// Return value of the bad-arch action (libseccomp's default, `SCMP_ACT_KILL`).
const RET_BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_THREAD;
/// Data of the TRACE action that stands for NOTIFY in seccompiler's output.
const NOTIFY_PLACEHOLDER: u32 = 0xC0DE;
/// Syscalls per seccompiler chunk at the leaves of the binary search.
const BUCKET_SYSCALLS: usize = 8;

// ---------------------------------------------------------------------------------------------
// Actions, conditions, ABIs
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Notify,
    Trace(u16),
    Log,
    Allow,
}

impl Action {
    /// The filter return value.
    fn ret(self) -> u32 {
        match self {
            Action::KillProcess => libc::SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => libc::SECCOMP_RET_KILL_THREAD,
            Action::Trap => libc::SECCOMP_RET_TRAP,
            Action::Errno(e) => libc::SECCOMP_RET_ERRNO | u32::from(e),
            Action::Notify => libc::SECCOMP_RET_USER_NOTIF,
            Action::Trace(d) => libc::SECCOMP_RET_TRACE | u32::from(d),
            Action::Log => libc::SECCOMP_RET_LOG,
            Action::Allow => libc::SECCOMP_RET_ALLOW,
        }
    }

    /// The action handed to seccompiler (NOTIFY becomes a placeholder, patched afterwards).
    fn compiler_action(self) -> SeccompAction {
        match self {
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno(e) => SeccompAction::Errno(u32::from(e)),
            Action::Notify => SeccompAction::Trace(NOTIFY_PLACEHOLDER),
            Action::Trace(d) => SeccompAction::Trace(u32::from(d)),
            Action::Log => SeccompAction::Log,
            Action::Allow => SeccompAction::Allow,
        }
    }

    fn from_spec(action: LinuxSeccompAction, errno_ret: Option<u32>, field: &str) -> Result<Self> {
        let data = || -> Result<u16> {
            match errno_ret {
                None => Ok(libc::EPERM as u16),
                Some(e) => u16::try_from(e).map_err(|_| {
                    anyhow!("{field}: errno {e} does not fit the 16-bit seccomp data")
                }),
            }
        };
        Ok(match action {
            LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
                Action::KillThread
            }
            LinuxSeccompAction::ScmpActKillProcess => Action::KillProcess,
            LinuxSeccompAction::ScmpActTrap => Action::Trap,
            LinuxSeccompAction::ScmpActErrno => Action::Errno(data()?),
            LinuxSeccompAction::ScmpActNotify => Action::Notify,
            LinuxSeccompAction::ScmpActTrace => Action::Trace(data()?),
            LinuxSeccompAction::ScmpActLog => Action::Log,
            LinuxSeccompAction::ScmpActAllow => Action::Allow,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`
    MaskedEq(u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cond {
    index: u8,
    op: Op,
    value: u64,
}

impl Cond {
    /// libseccomp compares `(arg & mask) == value` without masking `value`: a value with bits
    /// outside the mask never matches (seccompiler would mask it, so such a condition is
    /// dropped before). 32-bit ABIs compare the low 32 bits only.
    fn satisfiable(&self, abi: Abi) -> bool {
        match self.op {
            Op::MaskedEq(mask) => {
                let outside = self.value & !mask;
                match abi.arg_len() {
                    SeccompCmpArgLen::Dword => outside as u32 == 0,
                    SeccompCmpArgLen::Qword => outside == 0,
                }
            }
            _ => true,
        }
    }
}

/// A syscall ABI that a filter can see on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Abi {
    X86_64,
    X32,
    I386,
    Aarch64,
    Arm,
}

impl Abi {
    fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    fn arg_len(self) -> SeccompCmpArgLen {
        match self {
            Abi::I386 | Abi::Arm => SeccompCmpArgLen::Dword,
            Abi::X86_64 | Abi::X32 | Abi::Aarch64 => SeccompCmpArgLen::Qword,
        }
    }

    fn scmp_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// The syscall numbers of `name` on this ABI (empty when the ABI has no such syscall).
    fn numbers(self, name: &str) -> Vec<u32> {
        fn id<T: FromStr>(name: &str, f: impl Fn(T) -> i32) -> Option<u32> {
            T::from_str(name)
                .ok()
                .and_then(|s| u32::try_from(f(s)).ok())
        }
        let x86_64 = || id(name, |s: syscalls::x86_64::Sysno| s.id());
        match self {
            Abi::X86_64 => x86_64().into_iter().collect(),
            Abi::X32 => {
                // x32 uses the x86_64 numbers, except for the syscalls that take a different
                // (compat) entry at 512+. Both numbers are filtered: the x86_64 one of those is
                // not wired for x32 (ENOSYS), so this costs nothing and can't leave a hole.
                let mut v: Vec<u32> = x86_64().into_iter().collect();
                if let Some(&(_, n)) = X32_SPECIFIC.iter().find(|(n, _)| *n == name) {
                    v.push(n);
                }
                v.into_iter().map(|n| n | X32_SYSCALL_BIT).collect()
            }
            Abi::I386 => id(name, |s: syscalls::x86::Sysno| s.id())
                .into_iter()
                .collect(),
            Abi::Aarch64 => id(name, |s: syscalls::aarch64::Sysno| s.id())
                .into_iter()
                .collect(),
            Abi::Arm => id(name, |s: syscalls::arm::Sysno| s.id())
                .or_else(|| {
                    ARM_PRIVATE
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|&(_, n)| n)
                })
                .into_iter()
                .collect(),
        }
    }
}

/// x32 syscalls with their own numbers (arch/x86/entry/syscalls/syscall_64.tbl, abi "x32"),
/// without `__X32_SYSCALL_BIT`.
const X32_SPECIFIC: &[(&str, u32)] = &[
    ("rt_sigaction", 512),
    ("rt_sigreturn", 513),
    ("ioctl", 514),
    ("readv", 515),
    ("writev", 516),
    ("recvfrom", 517),
    ("sendmsg", 518),
    ("recvmsg", 519),
    ("execve", 520),
    ("ptrace", 521),
    ("rt_sigpending", 522),
    ("rt_sigtimedwait", 523),
    ("rt_sigqueueinfo", 524),
    ("sigaltstack", 525),
    ("timer_create", 526),
    ("mq_notify", 527),
    ("kexec_load", 528),
    ("waitid", 529),
    ("set_robust_list", 530),
    ("get_robust_list", 531),
    ("vmsplice", 532),
    ("move_pages", 533),
    ("preadv", 534),
    ("pwritev", 535),
    ("rt_tgsigqueueinfo", 536),
    ("recvmmsg", 537),
    ("sendmmsg", 538),
    ("process_vm_readv", 539),
    ("process_vm_writev", 540),
    ("setsockopt", 541),
    ("getsockopt", 542),
    ("io_setup", 543),
    ("io_submit", 544),
    ("execveat", 545),
    ("preadv2", 546),
    ("pwritev2", 547),
];

/// ARM private syscalls (`__ARM_NR_BASE` = 0x0f0000), missing from the `syscalls` crate.
const ARM_PRIVATE: &[(&str, u32)] = &[
    ("breakpoint", 0x0f_0001),
    ("cacheflush", 0x0f_0002),
    ("usr26", 0x0f_0003),
    ("usr32", 0x0f_0004),
    ("set_tls", 0x0f_0005),
    ("get_tls", 0x0f_0006),
];

/// The machine the filter runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Host {
    X86_64,
    Aarch64,
}

impl Host {
    fn current() -> Result<Host> {
        if cfg!(target_arch = "x86_64") {
            Ok(Host::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Ok(Host::Aarch64)
        } else {
            bail!(
                "seccomp is not supported by berth on {}",
                std::env::consts::ARCH
            )
        }
    }

    fn native(self) -> Abi {
        match self {
            Host::X86_64 => Abi::X86_64,
            Host::Aarch64 => Abi::Aarch64,
        }
    }

    /// The ABIs a syscall can come from, native first.
    fn abis(self) -> &'static [Abi] {
        match self {
            Host::X86_64 => &[Abi::X86_64, Abi::X32, Abi::I386],
            Host::Aarch64 => &[Abi::Aarch64, Abi::Arm],
        }
    }

    /// The ABI of a spec architecture, None when it cannot occur on this host.
    fn abi_of(self, arch: Arch) -> Option<Abi> {
        let abi = match arch {
            Arch::ScmpArchNative => return Some(self.native()),
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX32 => Abi::X32,
            Arch::ScmpArchX86 => Abi::I386,
            Arch::ScmpArchAarch64 => Abi::Aarch64,
            Arch::ScmpArchArm => Abi::Arm,
            _ => return None,
        };
        self.abis().contains(&abi).then_some(abi)
    }

    fn seccomp_nr(self) -> i32 {
        match self {
            Host::X86_64 => 317,
            Host::Aarch64 => 277,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Translation of the spec (pure)
// ---------------------------------------------------------------------------------------------

/// One syscall entry of the profile, after validation.
#[derive(Clone, Debug)]
struct Entry {
    names: Vec<String>,
    action: Action,
    /// OR of AND-ed condition lists; `[[]]` is unconditional.
    alternatives: Vec<Vec<Cond>>,
}

#[derive(Clone, Debug)]
struct Translated {
    host: Host,
    default: Action,
    entries: Vec<Entry>,
    /// ABIs listed in `architectures` (after mapping to the host).
    listed: BTreeSet<Abi>,
    /// ABIs that get rules: native + listed.
    active: Vec<Abi>,
    enosys_stub: bool,
}

fn translate(spec: &LinuxSeccomp, host: Host) -> Result<Translated> {
    let default = Action::from_spec(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    if default == Action::Notify {
        // As runc: the init needs syscalls after installing the filter to hand over the
        // listener, and they would all wait for an agent that does not have the fd yet.
        bail!("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as the default action");
    }

    let mut listed = BTreeSet::new();
    for arch in spec.architectures().iter().flatten() {
        if let Some(abi) = host.abi_of(*arch) {
            listed.insert(abi);
        }
    }
    let active: Vec<Abi> = host
        .abis()
        .iter()
        .copied()
        .filter(|a| *a == host.native() || listed.contains(a))
        .collect();

    let mut entries = Vec::new();
    for (i, call) in spec.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let action = Action::from_spec(
            call.action(),
            call.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        for (k, name) in call.names().iter().enumerate() {
            if name.is_empty() {
                bail!("{field}.names[{k}]: empty syscall name");
            }
            if action == Action::Notify && name == "sendmsg" {
                // The process hands its listener over with sendmsg(2) (see `seccomp_listener`).
                bail!("{field}: SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall");
            }
        }
        let mut conds = Vec::new();
        let mut per_index = [0usize; 6];
        for (j, arg) in call.args().iter().flatten().enumerate() {
            let index = arg.index();
            if index > 5 {
                bail!(
                    "{field}.args[{j}].index: {index} is out of range (a syscall has args 0 to 5)"
                );
            }
            per_index[index] += 1;
            let op = match arg.op() {
                LinuxSeccompOperator::ScmpCmpNe => Op::Ne,
                LinuxSeccompOperator::ScmpCmpLt => Op::Lt,
                LinuxSeccompOperator::ScmpCmpLe => Op::Le,
                LinuxSeccompOperator::ScmpCmpEq => Op::Eq,
                LinuxSeccompOperator::ScmpCmpGe => Op::Ge,
                LinuxSeccompOperator::ScmpCmpGt => Op::Gt,
                LinuxSeccompOperator::ScmpCmpMaskedEq => Op::MaskedEq(arg.value()),
            };
            let value = match op {
                Op::MaskedEq(_) => arg.value_two().unwrap_or(0),
                _ => arg.value(),
            };
            conds.push(Cond {
                index: index as u8,
                op,
                value,
            });
        }
        // runc: args are AND-ed, unless several share an index; then each arg is a rule.
        let alternatives = if conds.is_empty() {
            vec![vec![]]
        } else if per_index.iter().any(|&n| n > 1) {
            conds.into_iter().map(|c| vec![c]).collect()
        } else {
            vec![conds]
        };
        entries.push(Entry {
            names: call.names().clone(),
            action,
            alternatives,
        });
    }

    // runc adds the rules in order and libseccomp keeps a syscall's first unconditional rule: a
    // later unconditional rule for the same name (another action) has no effect.
    let mut unconditional = BTreeSet::new();
    for e in entries.iter_mut().filter(|e| e.action != default) {
        if e.alternatives.iter().any(|alt| alt.is_empty()) {
            e.names.retain(|n| unconditional.insert(n.clone()));
        }
    }

    let uses_notify = entries
        .iter()
        .any(|e| e.action == Action::Notify && e.action != default && !e.names.is_empty());
    if uses_notify && spec.listener_path().is_none() {
        bail!("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
    }

    // runc's -ENOSYS stub applies unless the default is permissive or already ENOSYS.
    let enosys_stub = !matches!(default, Action::Allow | Action::Log | Action::Trace(_))
        && spec.default_errno_ret() != Some(libc::ENOSYS as u32);

    Ok(Translated {
        host,
        default,
        entries,
        listed,
        active,
        enosys_stub,
    })
}

/// What a filter of the stack does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// "matches any rule -> ALLOW, else default"
    Base,
    /// "matches a rule of this action -> action, else ALLOW"
    Action(Action),
}

/// Rules of one syscall number in one filter.
#[derive(Default)]
struct SysRules {
    unconditional: bool,
    alternatives: Vec<Vec<Cond>>,
}

impl Translated {
    /// The rules that apply (action differs from the default, as runc skips the others).
    fn effective(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(move |e| e.action != self.default)
    }

    fn rules(&self, purpose: Purpose, abi: Abi) -> BTreeMap<u32, SysRules> {
        let mut map: BTreeMap<u32, SysRules> = BTreeMap::new();
        for e in self.effective() {
            if let Purpose::Action(a) = purpose {
                if e.action != a {
                    continue;
                }
            }
            let alternatives: Vec<&Vec<Cond>> = e
                .alternatives
                .iter()
                .filter(|alt| alt.iter().all(|c| c.satisfiable(abi)))
                .collect();
            if alternatives.is_empty() {
                // Can never match (and an empty rule list would mean "unconditional").
                continue;
            }
            for name in &e.names {
                for nr in abi.numbers(name) {
                    let r = map.entry(nr).or_default();
                    for alt in &alternatives {
                        if alt.is_empty() {
                            r.unconditional = true;
                        } else if !r.alternatives.contains(alt) {
                            r.alternatives.push((*alt).clone());
                        }
                    }
                }
            }
        }
        map
    }

    /// Largest syscall number named in the profile for `abi` (runc's -ENOSYS stub bound).
    fn max_syscall(&self, abi: Abi) -> Option<u32> {
        self.entries
            .iter()
            .flat_map(|e| e.names.iter())
            .flat_map(|n| abi.numbers(n))
            .max()
    }

    fn ignored(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for name in self.entries.iter().flat_map(|e| e.names.iter()) {
            if self.active.iter().all(|a| a.numbers(name).is_empty()) && !out.contains(name) {
                out.push(name.clone());
            }
        }
        out
    }

    /// The filters of the stack, in the default install order (base last).
    fn purposes(&self) -> Vec<Purpose> {
        let mut actions: Vec<Action> = self
            .effective()
            .map(|e| e.action)
            .filter(|a| *a != Action::Allow)
            .collect();
        actions.sort();
        actions.dedup();
        // Least restrictive first, so that the stricter filters come later.
        actions.reverse();
        let mut out: Vec<Purpose> = actions.into_iter().map(Purpose::Action).collect();
        if self.default != Action::Allow {
            out.push(Purpose::Base);
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Code generation
// ---------------------------------------------------------------------------------------------

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// A tiny assembler with forward labels (reached by `ja`, whose offset is 32-bit).
#[derive(Default)]
struct Asm {
    code: Vec<sock_filter>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn push(&mut self, i: sock_filter) {
        self.code.push(i);
    }
    fn load(&mut self, offset: u32) {
        self.push(insn(BPF_LD_W_ABS, 0, 0, offset));
    }
    fn ret(&mut self, k: u32) {
        self.push(insn(BPF_RET_K, 0, 0, k));
    }
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }
    fn ja(&mut self, label: usize) {
        self.fixups.push((self.code.len(), label));
        self.push(insn(BPF_JMP_JA, 0, 0, 0));
    }
    /// `if A <op> k goto label` (any distance).
    fn jump_if(&mut self, code: u16, k: u32, label: usize) {
        self.push(insn(code, 0, 1, k));
        self.ja(label);
    }
    /// `if A <op> k return ret`
    fn ret_if(&mut self, code: u16, k: u32, ret: u32) {
        self.push(insn(code, 0, 1, k));
        self.ret(ret);
    }
    fn extend(&mut self, body: &[sock_filter]) {
        self.code.extend_from_slice(body);
    }
    fn finish(mut self) -> Result<Vec<sock_filter>> {
        for (at, label) in self.fixups {
            let target = self.labels[label].context("internal error: unbound BPF label")?;
            if target <= at {
                bail!("internal error: backward BPF jump");
            }
            self.code[at].k = u32::try_from(target - at - 1)?;
        }
        Ok(self.code)
    }
}

fn to_condition(c: &Cond, len: SeccompCmpArgLen) -> Result<SeccompCondition> {
    let op = match c.op {
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ge => SeccompCmpOp::Ge,
        Op::Gt => SeccompCmpOp::Gt,
        Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, len, op, c.value)
        .map_err(|e| anyhow!("seccomp condition on arg {}: {e}", c.index))
}

/// seccompiler's program for a few syscalls, without its architecture check.
fn chain_body(
    rules: &[(&u32, &SysRules)],
    abi: Abi,
    on_match: Action,
    on_mismatch: Action,
) -> Result<Vec<sock_filter>> {
    let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, r) in rules {
        let mut chain = Vec::new();
        if !r.unconditional {
            for alt in &r.alternatives {
                let conds = alt
                    .iter()
                    .map(|c| to_condition(c, abi.arg_len()))
                    .collect::<Result<Vec<_>>>()?;
                chain.push(SeccompRule::new(conds).map_err(|e| anyhow!("seccomp rule: {e}"))?);
            }
        }
        map.insert(i64::from(**nr), chain);
    }
    let filter = SeccompFilter::new(
        map,
        on_mismatch.compiler_action(),
        on_match.compiler_action(),
        TargetArch::x86_64,
    )
    .map_err(|e| anyhow!("seccompiler: {e}"))?;
    let prog: BpfProgram = filter.try_into().map_err(|e| anyhow!("seccompiler: {e}"))?;
    // seccompiler starts with "ld arch; jeq native, 1, 0; ret KILL_PROCESS": drop it, berth
    // dispatches on the architecture itself.
    let prelude_ok = prog.len() > 3
        && prog[0] == insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH)
        && prog[1].code == BPF_JMP_JEQ_K
        && prog[2] == insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_KILL_PROCESS);
    if !prelude_ok {
        bail!("internal error: unexpected seccompiler program layout");
    }
    let mut body = prog[3..].to_vec();
    if on_match == Action::Notify {
        let placeholder = Action::Notify.compiler_action();
        let placeholder = u32::from(placeholder);
        for i in body.iter_mut() {
            if i.code == BPF_RET_K && i.k == placeholder {
                i.k = libc::SECCOMP_RET_USER_NOTIF;
            }
        }
    }
    Ok(body)
}

/// Binary search over the syscall numbers, seccompiler chains at the leaves. `A` holds the
/// syscall number on entry; every leaf reloads what it needs and ends in a return.
fn emit_tree(
    asm: &mut Asm,
    buckets: &[Vec<(&u32, &SysRules)>],
    abi: Abi,
    on_match: Action,
    on_mismatch: Action,
) -> Result<()> {
    if buckets.len() == 1 {
        let body = chain_body(&buckets[0], abi, on_match, on_mismatch)?;
        asm.extend(&body);
        return Ok(());
    }
    let mid = buckets.len() / 2;
    let first_of_right = *buckets[mid][0].0;
    let right = asm.label();
    asm.jump_if(BPF_JMP_JGE_K, first_of_right, right);
    emit_tree(asm, &buckets[..mid], abi, on_match, on_mismatch)?;
    asm.bind(right);
    emit_tree(asm, &buckets[mid..], abi, on_match, on_mismatch)
}

/// The code for one ABI in one filter: self-contained, starts by loading the syscall number.
fn abi_section(t: &Translated, purpose: Purpose, abi: Abi) -> Result<Vec<sock_filter>> {
    let (on_match, on_mismatch) = match purpose {
        Purpose::Base => (Action::Allow, t.default),
        Purpose::Action(a) => (a, Action::Allow),
    };
    let mut asm = Asm::default();
    asm.load(DATA_NR);
    if purpose == Purpose::Base && t.enosys_stub && t.listed.contains(&abi) {
        if let Some(max) = t.max_syscall(abi) {
            asm.ret_if(BPF_JMP_JGT_K, max, Action::Errno(libc::ENOSYS as u16).ret());
        }
    }
    let rules = t.rules(purpose, abi);
    if rules.is_empty() {
        asm.ret(on_mismatch.ret());
    } else {
        let all: Vec<(&u32, &SysRules)> = rules.iter().collect();
        let buckets: Vec<Vec<(&u32, &SysRules)>> =
            all.chunks(BUCKET_SYSCALLS).map(|c| c.to_vec()).collect();
        emit_tree(&mut asm, &buckets, abi, on_match, on_mismatch)?;
    }
    asm.finish()
}

/// A whole filter: architecture dispatch, then the sections of the ABIs in `here`. Active
/// ABIs handled by other filters of the stack get ALLOW; ABIs not listed get the bad-arch
/// action.
fn assemble_filter(
    t: &Translated,
    sections: &[(Abi, Vec<sock_filter>)],
) -> Result<Vec<sock_filter>> {
    let target = |asm: &mut Asm, abi: Abi| {
        if let Some((_, body)) = sections.iter().find(|(a, _)| *a == abi) {
            asm.extend(body);
        } else if t.active.contains(&abi) {
            asm.ret(libc::SECCOMP_RET_ALLOW);
        } else {
            asm.ret(RET_BAD_ARCH);
        }
    };
    let mut asm = Asm::default();
    asm.load(DATA_ARCH);
    let mut groups: Vec<(u32, usize)> = Vec::new();
    for abi in t.host.abis() {
        let audit = abi.audit_arch();
        if groups.iter().any(|(a, _)| *a == audit) {
            continue;
        }
        let has_active = t
            .host
            .abis()
            .iter()
            .any(|b| b.audit_arch() == audit && t.active.contains(b));
        if has_active {
            let l = asm.label();
            asm.jump_if(BPF_JMP_JEQ_K, audit, l);
            groups.push((audit, l));
        }
    }
    asm.ret(RET_BAD_ARCH);
    for (audit, label) in groups {
        asm.bind(label);
        if audit == AUDIT_ARCH_X86_64 {
            // x32 shares AUDIT_ARCH_X86_64: split on the syscall number first, so that an x32
            // number can never be matched by (or slip past) the x86_64 rules.
            asm.load(DATA_NR);
            let x32 = asm.label();
            asm.jump_if(BPF_JMP_JGE_K, X32_SYSCALL_BIT, x32);
            target(&mut asm, Abi::X86_64);
            asm.bind(x32);
            target(&mut asm, Abi::X32);
        } else {
            let abi = *t
                .host
                .abis()
                .iter()
                .find(|a| a.audit_arch() == audit)
                .context("internal error: ABI group")?;
            target(&mut asm, abi);
        }
    }
    asm.finish()
}

#[derive(Clone, Debug)]
struct Filter {
    /// For error messages and debugging, e.g. "SCMP_ACT_ERRNO(1) rules [SCMP_ARCH_X86_64]".
    label: String,
    code: Vec<sock_filter>,
    notify: bool,
}

fn build_filters(t: &Translated) -> Result<Vec<Filter>> {
    let mut filters = Vec::new();
    let mut purposes = t.purposes();
    if !purposes.contains(&Purpose::Base) {
        purposes.push(Purpose::Base);
    }
    for purpose in purposes {
        // A profile that filters nothing is still installed, as runc installs it (the process is
        // in seccomp mode 2, and the filter checks the architecture): then the base filter only.
        if purpose == Purpose::Base && t.default == Action::Allow && !filters.is_empty() {
            continue;
        }
        let what = match purpose {
            Purpose::Base => format!("default action {:?}", t.default),
            Purpose::Action(a) => format!("rules with action {a:?}"),
        };
        let mut sections = Vec::new();
        let mut any_rule = false;
        for &abi in &t.active {
            any_rule |= !t.rules(purpose, abi).is_empty();
            sections.push((abi, abi_section(t, purpose, abi)?));
        }
        if !any_rule && purpose != Purpose::Base {
            // Every name of this action is unknown here: the filter would only say ALLOW.
            continue;
        }
        let notify = purpose == Purpose::Action(Action::Notify);
        let whole = assemble_filter(t, &sections)?;
        if whole.len() <= MAX_FILTER_LEN {
            filters.push(Filter {
                label: what,
                code: whole,
                notify,
            });
            continue;
        }
        if notify {
            // One listener per process: the notify rules must stay in a single filter.
            bail!(
                "seccomp profile too large: the SCMP_ACT_NOTIFY rules need {} BPF instructions (max {MAX_FILTER_LEN})",
                whole.len()
            );
        }
        // Too big: one filter per ABI, native last (the native one is the one that must
        // allow the remaining seccomp(2) calls, so keep it for the end).
        for (abi, body) in sections.into_iter().rev() {
            let name = abi.scmp_name();
            let code = assemble_filter(t, &[(abi, body)])?;
            if code.len() > MAX_FILTER_LEN {
                bail!(
                    "seccomp profile too large: {what} for {name} needs {} BPF instructions (max {MAX_FILTER_LEN})",
                    code.len()
                );
            }
            filters.push(Filter {
                label: format!("{what} [{name}]"),
                code,
                notify: false,
            });
        }
    }
    let total: usize = filters.iter().map(|f| f.code.len() + 4).sum();
    if total > MAX_TOTAL_LEN {
        bail!("seccomp profile too large: {total} BPF instructions in all (max {MAX_TOTAL_LEN})");
    }
    Ok(filters)
}

// ---------------------------------------------------------------------------------------------
// BPF interpreter (install ordering, tests)
// ---------------------------------------------------------------------------------------------

/// `struct seccomp_data`
#[derive(Clone, Copy, Debug, Default)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

impl SeccompData {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_ne_bytes());
        for (i, a) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        b
    }
}

/// Runs a seccomp filter the way the kernel does (only the instructions berth generates).
fn bpf_run(prog: &[sock_filter], data: &SeccompData) -> Result<u32> {
    bpf_exec(prog, data).map(|(ret, _)| ret)
}

/// [`bpf_run`], also counting the instructions executed.
fn bpf_exec(prog: &[sock_filter], data: &SeccompData) -> Result<(u32, usize)> {
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        steps += 1;
        let i = prog.get(pc).context("BPF program runs past its end")?;
        let branch = |cond: bool| pc + 1 + usize::from(if cond { i.jt } else { i.jf });
        pc = match i.code {
            BPF_LD_W_ABS => {
                let k = i.k as usize;
                if k & 3 != 0 || k + 4 > bytes.len() {
                    bail!("BPF load out of seccomp_data at {k}");
                }
                a = u32::from_ne_bytes(bytes[k..k + 4].try_into()?);
                pc + 1
            }
            BPF_ALU_AND_K => {
                a &= i.k;
                pc + 1
            }
            BPF_JMP_JA => pc + 1 + i.k as usize,
            BPF_JMP_JEQ_K => branch(a == i.k),
            BPF_JMP_JGT_K => branch(a > i.k),
            BPF_JMP_JGE_K => branch(a >= i.k),
            BPF_JMP_JSET_K => branch(a & i.k != 0),
            BPF_RET_K => return Ok((i.k, steps)),
            c => bail!("unsupported BPF opcode {c:#x}"),
        };
    }
}

#[cfg(test)]
/// The kernel's combination of stacked filters: the newest runs first, and a result replaces
/// the current one only if its action is strictly more restrictive.
fn combine(results_newest_first: impl Iterator<Item = u32>) -> u32 {
    let rank = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for r in results_newest_first {
        if rank(r) < rank(ret) {
            ret = r;
        }
    }
    ret
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// A profile translated from the spec, ready to install. Built in the parent during validation
/// (errors surface before any container exists), installed in the container's init just before
/// exec.
#[derive(Clone, Debug)]
pub struct SeccompProgram {
    host: Host,
    filters: Vec<Filter>,
    ignored: Vec<String>,
    /// TSYNC / LOG / SPEC_ALLOW, applied to every filter.
    flags: libc::c_ulong,
    wait_killable_recv: bool,
}

impl SeccompProgram {
    /// Translate `linux.seccomp` of config.json. Errors name the offending field.
    ///
    /// Unknown action, operator, architecture or flag names are already rejected by oci-spec
    /// when config.json is parsed.
    pub fn compile(spec: &LinuxSeccomp) -> Result<SeccompProgram> {
        Self::compile_for(spec, Host::current()?)
    }

    fn compile_for(spec: &LinuxSeccomp, host: Host) -> Result<SeccompProgram> {
        let t = translate(spec, host)?;
        let filters = build_filters(&t).context("linux.seccomp")?;
        let mut flags = 0;
        let mut wait_killable_recv = false;
        for flag in spec.flags().iter().flatten() {
            match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                    flags |= libc::SECCOMP_FILTER_FLAG_TSYNC
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                    flags |= libc::SECCOMP_FILTER_FLAG_LOG
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                    wait_killable_recv = true
                }
            }
        }
        Ok(SeccompProgram {
            host,
            filters,
            ignored: t.ignored(),
            flags,
            wait_killable_recv,
        })
    }

    /// true when any rule (or the default) uses SCMP_ACT_NOTIFY.
    ///
    /// A default SCMP_ACT_NOTIFY is rejected by [`SeccompProgram::compile`] (as runc does), so
    /// in practice this means: a rule does.
    pub fn uses_notify(&self) -> bool {
        self.filters.iter().any(|f| f.notify)
    }

    /// Syscall names of the profile that no filtered ABI knows; they were skipped (runc logs
    /// them at debug level).
    pub fn ignored_syscalls(&self) -> &[String] {
        &self.ignored
    }

    /// Number of stacked BPF filters that [`SeccompProgram::install`] loads (0: nothing to do).
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Instructions of each filter, in default install order.
    pub fn instruction_counts(&self) -> Vec<usize> {
        self.filters.iter().map(|f| f.code.len()).collect()
    }

    fn filter_flags(&self, f: &Filter) -> libc::c_ulong {
        let mut flags = self.flags;
        if f.notify {
            flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
            if self.wait_killable_recv {
                flags |= libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            }
            if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
                // TSYNC returns a thread id on failure, which collides with the listener fd.
                flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
            }
        }
        flags
    }

    /// The order in which every filter installed lets the later `seccomp(2)` calls through.
    fn install_order(&self, calls: &[SeccompData]) -> Result<Vec<usize>> {
        let allows = |f: usize, call: &SeccompData| -> Result<bool> {
            let r = bpf_run(&self.filters[f].code, call)?;
            let action = r & libc::SECCOMP_RET_ACTION_FULL;
            Ok(action == libc::SECCOMP_RET_ALLOW || action == libc::SECCOMP_RET_LOG)
        };
        let mut remaining: Vec<usize> = (0..self.filters.len()).collect();
        let mut order = Vec::new();
        while remaining.len() > 1 {
            let mut pick = None;
            for (pos, &f) in remaining.iter().enumerate() {
                let mut ok = true;
                for &g in &remaining {
                    if g != f && !allows(f, &calls[g])? {
                        ok = false;
                        break;
                    }
                }
                if ok {
                    pick = Some(pos);
                    break;
                }
            }
            let Some(pos) = pick else {
                let names: Vec<&str> = remaining
                    .iter()
                    .map(|&f| self.filters[f].label.as_str())
                    .collect();
                bail!(
                    "the seccomp profile denies seccomp(2) in more than one of its stacked filters ({}); berth cannot install it",
                    names.join(", ")
                );
            };
            order.push(remaining.remove(pos));
        }
        order.extend(remaining);
        Ok(order)
    }

    /// Lay the filters out for `seccomp(2)` (allocating everything they need), for `Prepared::install`.
    pub fn prepare(&self) -> Result<Prepared> {
        let programs: Vec<Vec<libc::sock_filter>> = self
            .filters
            .iter()
            .map(|f| {
                f.code
                    .iter()
                    .map(|i| libc::sock_filter {
                        code: i.code,
                        jt: i.jt,
                        jf: i.jf,
                        k: i.k,
                    })
                    .collect()
            })
            .collect();
        let lens = programs
            .iter()
            .map(|p| u16::try_from(p.len()).context("BPF program too long"))
            .collect::<Result<Vec<u16>>>()?;
        let flags: Vec<libc::c_ulong> = self.filters.iter().map(|f| self.filter_flags(f)).collect();
        // The install order is decided on the programs' final addresses (the Vecs' buffers do not
        // move when `programs` moves into `Prepared`).
        let fprogs: Vec<libc::sock_fprog> = programs
            .iter()
            .zip(&lens)
            .map(|(p, &len)| libc::sock_fprog {
                len,
                filter: p.as_ptr().cast_mut(),
            })
            .collect();
        let calls: Vec<SeccompData> = fprogs
            .iter()
            .zip(&flags)
            .map(|(p, &fl)| SeccompData {
                nr: self.host.seccomp_nr(),
                arch: self.host.native().audit_arch(),
                instruction_pointer: 0,
                args: [
                    u64::from(libc::SECCOMP_SET_MODE_FILTER),
                    fl,
                    p as *const libc::sock_fprog as u64,
                    0,
                    0,
                    0,
                ],
            })
            .collect();
        let order = self.install_order(&calls)?;
        let labels = self.filters.iter().map(|f| f.label.clone()).collect();
        let notify = self.filters.iter().map(|f| f.notify).collect();
        Ok(Prepared {
            _programs: programs,
            fprogs,
            flags,
            order,
            labels,
            notify,
        })
    }
}

/// Filters laid out for seccomp(2) by [`SeccompProgram::prepare`]: installing them makes no system
/// call but seccomp(2) and allocates nothing, so only execve need follow.
pub struct Prepared {
    /// The BPF code that `fprogs` point into.
    _programs: Vec<Vec<libc::sock_filter>>,
    fprogs: Vec<libc::sock_fprog>,
    flags: Vec<libc::c_ulong>,
    order: Vec<usize>,
    labels: Vec<String>,
    notify: Vec<bool>,
}

impl Prepared {
    /// Install in the calling (single-threaded) process. Needs no_new_privs or CAP_SYS_ADMIN.
    /// Returns the notify listener's fd number when the profile uses SCMP_ACT_NOTIFY (close-on-exec).
    ///
    /// Only `seccomp(2)` is called, and nothing is allocated, unless a filter is refused.
    pub fn install(&self) -> Result<Option<RawFd>> {
        let mut listener = None;
        for (n, &i) in self.order.iter().enumerate() {
            let ret = match seccomp_set_mode_filter(self.flags[i], &self.fprogs[i]) {
                Ok(r) => r,
                Err(e) => {
                    let hint = if e.raw_os_error() == Some(libc::EACCES) {
                        " (needs no_new_privs or CAP_SYS_ADMIN)"
                    } else {
                        ""
                    };
                    return Err(anyhow::Error::new(e).context(format!(
                        "seccomp(SECCOMP_SET_MODE_FILTER, {:#x}) for filter {} of {} ({}){hint}",
                        self.flags[i],
                        n + 1,
                        self.order.len(),
                        self.labels[i]
                    )));
                }
            };
            if self.notify[i] {
                // With SECCOMP_FILTER_FLAG_NEW_LISTENER seccomp(2) returns a new close-on-exec fd.
                listener = Some(ret as RawFd);
            }
        }
        Ok(listener)
    }
}

// ---------------------------------------------------------------------------------------------
// What `features` reports
// ---------------------------------------------------------------------------------------------

/// Every action berth translates (all of the spec's; see `Action::from_spec`).
pub const ACTIONS: [LinuxSeccompAction; 9] = [
    LinuxSeccompAction::ScmpActAllow,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActNotify,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActTrap,
];

/// Every argument operator berth translates (all of the spec's; see `translate`).
pub const OPERATORS: [LinuxSeccompOperator; 7] = [
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
    LinuxSeccompOperator::ScmpCmpNe,
];

/// The filter flags berth knows, with the seccomp(2) flag bits that test for each.
const FLAGS: [(LinuxSeccompFilterFlag, libc::c_ulong); 4] = [
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        libc::SECCOMP_FILTER_FLAG_TSYNC,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        libc::SECCOMP_FILTER_FLAG_LOG,
    ),
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    ),
    // only valid with a notify listener, which is how berth uses it
    (
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ),
];

/// Whether berth can filter syscalls on this machine's architecture.
pub fn supported() -> bool {
    Host::current().is_ok()
}

/// The architectures berth filters on this host (the native one first): a profile may list
/// others, which cannot occur here and have no effect.
pub fn host_archs() -> Vec<Arch> {
    let Ok(host) = Host::current() else {
        return Vec::new();
    };
    host.abis()
        .iter()
        .filter_map(|a| serde_json::from_value(serde_json::json!(a.scmp_name())).ok())
        .collect()
}

/// The filter flags berth knows.
pub fn known_flags() -> Vec<LinuxSeccompFilterFlag> {
    FLAGS.iter().map(|(f, _)| *f).collect()
}

/// The known filter flags this kernel accepts.
pub fn supported_flags() -> Vec<LinuxSeccompFilterFlag> {
    FLAGS
        .iter()
        .filter(|(_, bits)| kernel_accepts_flags(*bits))
        .map(|(f, _)| *f)
        .collect()
}

/// Probe seccomp(2) with `flags` and no program: the kernel checks the flags first (EINVAL when
/// it does not know one) and then fails to read the program (EFAULT). Nothing is installed.
fn kernel_accepts_flags(flags: libc::c_ulong) -> bool {
    // SAFETY: the program pointer is NULL, which the kernel only tries to copy from (and fails
    // with EFAULT); no memory of ours is read or written and no filter can be installed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            flags,
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`. The unused argument registers are zeroed:
/// the install-order check evaluates the filters on exactly these arguments.
fn seccomp_set_mode_filter(
    flags: libc::c_ulong,
    prog: &libc::sock_fprog,
) -> std::io::Result<libc::c_long> {
    let zero: libc::c_ulong = 0;
    // SAFETY: `prog` points to a valid sock_fprog whose instruction array outlives the call; the
    // kernel copies it and does not keep the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            flags,
            prog as *const libc::sock_fprog,
            zero,
            zero,
            zero,
        )
    };
    if ret < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn features_lists_are_what_compile_accepts() {
        for a in ACTIONS {
            let mut p = json!({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["getpid"], "action": a}]});
            if a == LinuxSeccompAction::ScmpActNotify {
                p["listenerPath"] = json!("/x");
            }
            compile(p).unwrap_or_else(|e| panic!("{a:?}: {e:#}"));
        }
        for op in OPERATORS {
            compile(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": op}]}]}),
            )
            .unwrap_or_else(|e| panic!("{op:?}: {e:#}"));
        }
        for (flag, _) in FLAGS {
            compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]})).unwrap();
        }
        // on x86_64: x86_64, x32, i386
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                host_archs(),
                [Arch::ScmpArchX86_64, Arch::ScmpArchX32, Arch::ScmpArchX86]
            );
        }
        // every kernel berth runs on (>= 5.x) has TSYNC and LOG; the probe installs nothing
        let sup = supported_flags();
        assert!(
            sup.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagTsync),
            "{sup:?}"
        );
        assert!(
            sup.contains(&LinuxSeccompFilterFlag::SeccompFilterFlagLog),
            "{sup:?}"
        );
    }

    fn spec(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).expect("test profile parses")
    }

    fn compile(v: serde_json::Value) -> Result<SeccompProgram> {
        SeccompProgram::compile_for(&spec(v), Host::X86_64)
    }

    fn translated(v: serde_json::Value) -> Translated {
        translate(&spec(v), Host::X86_64).unwrap()
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    fn errno(e: u32) -> u32 {
        libc::SECCOMP_RET_ERRNO | e
    }

    /// Result of the whole stack for one call (filters in default install order).
    fn run_stack(p: &SeccompProgram, d: &SeccompData) -> u32 {
        let results: Vec<u32> = p
            .filters
            .iter()
            .map(|f| bpf_run(&f.code, d).unwrap())
            .collect();
        combine(results.into_iter().rev())
    }

    fn call(abi: Abi, name: &str, args: [u64; 6]) -> SeccompData {
        let nr = abi.numbers(name);
        assert!(!nr.is_empty(), "{name} unknown on {abi:?}");
        SeccompData {
            nr: nr[0] as i32,
            arch: abi.audit_arch(),
            instruction_pointer: 0,
            args,
        }
    }

    #[test]
    fn seccomp_program_is_clone_debug_send() {
        fn check<T: Clone + std::fmt::Debug + Send + Sync>() {}
        check::<SeccompProgram>();
    }

    // ---- translation --------------------------------------------------------------------

    #[test]
    fn seccomp_action_mapping_and_errno_defaults() {
        let t = translated(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_KILL"},
                {"names": ["b"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["c"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["d"], "action": "SCMP_ACT_TRAP"},
                {"names": ["e"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["f"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["g"], "action": "SCMP_ACT_TRACE"},
                {"names": ["h"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["i"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["j"], "action": "SCMP_ACT_LOG"},
                {"names": ["k"], "action": "SCMP_ACT_NOTIFY"},
                {"names": ["l"], "action": "SCMP_ACT_ALLOW", "errnoRet": 9}
            ],
            "listenerPath": "/run/agent.sock"
        }));
        let actions: Vec<Action> = t.entries.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            vec![
                Action::KillThread,
                Action::KillThread,
                Action::KillProcess,
                Action::Trap,
                Action::Errno(1),
                Action::Errno(38),
                Action::Trace(1),
                Action::Trace(7),
                Action::Allow,
                Action::Log,
                Action::Notify,
                Action::Allow,
            ]
        );
        assert_eq!(t.default, Action::Errno(libc::EPERM as u16));
        assert_eq!(Action::KillThread.ret(), 0);
        assert_eq!(Action::KillProcess.ret(), 0x8000_0000);
        assert_eq!(Action::Errno(38).ret(), 0x0005_0026);
        assert_eq!(Action::Trace(7).ret(), 0x7ff0_0007);
        assert_eq!(Action::Notify.ret(), 0x7fc0_0000);
        assert_eq!(Action::Log.ret(), 0x7ffc_0000);

        let t = translated(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 12}));
        assert_eq!(t.default, Action::Errno(12));
        let t = translated(json!({"defaultAction": "SCMP_ACT_TRACE", "defaultErrnoRet": 3}));
        assert_eq!(t.default, Action::Trace(3));
        let t = translated(json!({"defaultAction": "SCMP_ACT_TRACE"}));
        assert_eq!(t.default, Action::Trace(1));
        // defaultErrnoRet means nothing for other actions.
        let t = translated(json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 3}));
        assert_eq!(t.default, Action::KillThread);
    }

    #[test]
    fn seccomp_arg_grouping_follows_runc() {
        let t = translated(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 2, "op": "SCMP_CMP_NE"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 5, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 0xff, "valueTwo": 3, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}
            ]
        }));
        let c = |index, op, value| Cond { index, op, value };
        // Distinct indexes: one rule, AND.
        assert_eq!(
            t.entries[0].alternatives,
            vec![vec![c(0, Op::Eq, 1), c(1, Op::Ne, 2)]]
        );
        // A repeated index: every arg is its own rule, OR (the index-2 arg too, as runc).
        assert_eq!(
            t.entries[1].alternatives,
            vec![
                vec![c(0, Op::Eq, 1)],
                vec![c(0, Op::Eq, 5)],
                vec![c(2, Op::MaskedEq(0xff), 3)]
            ]
        );
        assert_eq!(t.entries[2].alternatives, vec![Vec::<Cond>::new()]);

        // And the BPF agrees.
        let p = compile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 10, "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 2, "op": "SCMP_CMP_NE"}]},
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11, "args": [
                    {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]}
            ]
        }))
        .unwrap();
        let r = |name, a0, a1| run_stack(&p, &call(Abi::X86_64, name, [a0, a1, 0, 0, 0, 0]));
        assert_eq!(r("personality", 1, 3), errno(10));
        assert_eq!(r("personality", 1, 2), ALLOW);
        assert_eq!(r("personality", 0, 3), ALLOW);
        assert_eq!(r("getcwd", 0, 1), errno(11));
        assert_eq!(r("getcwd", 0, 5), errno(11));
        assert_eq!(r("getcwd", 0, 4), ALLOW);
    }

    #[test]
    fn seccomp_unknown_names_are_ignored_and_reported() {
        let v = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["getpid", "no_such_syscall", "socketcall", "set_tls"],
                          "action": "SCMP_ACT_ALLOW"}]
        });
        let p = compile(v.clone()).unwrap();
        // socketcall exists on i386 only, set_tls on arm only: with x86_64 alone, ignored.
        assert_eq!(
            p.ignored_syscalls(),
            ["no_such_syscall", "socketcall", "set_tls"]
        );
        assert_eq!(run_stack(&p, &call(Abi::X86_64, "getpid", [0; 6])), ALLOW);
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getppid", [0; 6])),
            errno(1)
        );

        let mut with_x86 = v.clone();
        with_x86["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        let p = compile(with_x86).unwrap();
        assert_eq!(p.ignored_syscalls(), ["no_such_syscall", "set_tls"]);
        assert_eq!(run_stack(&p, &call(Abi::I386, "socketcall", [0; 6])), ALLOW);

        let p = SeccompProgram::compile_for(&spec(v), Host::Aarch64).unwrap();
        assert_eq!(
            p.ignored_syscalls(),
            ["no_such_syscall", "socketcall", "set_tls"]
        );
    }

    #[test]
    fn seccomp_bad_fields_are_named() {
        let err = |v: serde_json::Value| format!("{:#}", compile(v).unwrap_err());
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                {"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(
            e.contains("linux.seccomp.syscalls[1].args[1].index: 6"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
        assert!(e.contains("linux.seccomp.syscalls[0].errnoRet"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}));
        assert!(e.contains("linux.seccomp.defaultErrnoRet"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}));
        assert!(e.contains("linux.seccomp.defaultAction"), "{e}");
        let e = err(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
            {"names": ["read", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        assert!(
            e.contains(
                "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the sendmsg syscall"
            ),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(e.contains("linux.seccomp.listenerPath"), "{e}");
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getpid", ""], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(e.contains("linux.seccomp.syscalls[0].names[1]"), "{e}");
        // Unknown names of actions/ops/arches are refused by the config parser already.
        let bad: Result<LinuxSeccomp, _> =
            serde_json::from_value(json!({"defaultAction": "SCMP_ACT_FOO"}));
        assert!(bad.is_err());
        // An architecture foreign to this host is valid, and inert.
        let p = compile(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_S390X", "SCMP_ARCH_AARCH64"]}))
        .unwrap();
        assert_eq!(p.filter_count(), 1);
    }

    #[test]
    fn seccomp_first_unconditional_rule_of_a_syscall_wins() {
        let t = translate(
            &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["uname"], "action": "SCMP_ACT_LOG"},
                {"names": ["uname", "getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]})),
            Host::current().unwrap(),
        )
        .unwrap();
        assert_eq!(t.entries[0].names, ["uname"]);
        assert_eq!(t.entries[1].names, ["getpid"]);
    }

    #[test]
    fn seccomp_filter_count_and_skipped_rules() {
        let count = |v: serde_json::Value| compile(v).unwrap().filter_count();
        // Nothing to filter: still one (allowing) filter, as runc installs one.
        assert_eq!(count(json!({"defaultAction": "SCMP_ACT_ALLOW"})), 1);
        assert_eq!(
            count(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]})),
            1
        );
        // Only unknown names.
        assert_eq!(
            count(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["nope"], "action": "SCMP_ACT_KILL"}]})),
            1
        );
        // A denylist: one filter for the action, no base.
        assert_eq!(
            count(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]})),
            1
        );
        // An allowlist: the base only.
        assert_eq!(
            count(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["getpid", "read"], "action": "SCMP_ACT_ALLOW"}]})),
            1
        );
        // Same action with the same errno as the default: skipped (as runc); a different errno
        // is a different action.
        let v = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5, "syscalls": [
            {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["reboot"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"}]});
        let p = compile(v).unwrap();
        assert_eq!(p.filter_count(), 4, "{:?}", p.filters);
        let r = |name| run_stack(&p, &call(Abi::X86_64, name, [0; 6]));
        assert_eq!(r("getpid"), ALLOW);
        assert_eq!(r("getcwd"), errno(5));
        assert_eq!(r("getppid"), errno(5));
        assert_eq!(r("clone3"), errno(38));
        assert_eq!(r("reboot"), libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(r("uname"), libc::SECCOMP_RET_LOG);
    }

    #[test]
    fn seccomp_architectures_and_x32() {
        let v = |arches: serde_json::Value| {
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches, "syscalls": [
                {"names": ["getcwd", "rt_sigaction"], "action": "SCMP_ACT_ERRNO", "errnoRet": 44}]})
        };
        let x32 = |nr: u32| SeccompData {
            nr: nr as i32,
            arch: AUDIT_ARCH_X86_64,
            ..Default::default()
        };
        let i386 = |name| call(Abi::I386, name, [0; 6]);

        // Native only: x32 and i386 calls hit the bad-arch action.
        let p = compile(v(json!([]))).unwrap();
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getcwd", [0; 6])),
            errno(44)
        );
        assert_eq!(run_stack(&p, &x32(79 | X32_SYSCALL_BIT)), RET_BAD_ARCH);
        assert_eq!(run_stack(&p, &x32(39 | X32_SYSCALL_BIT)), RET_BAD_ARCH);
        assert_eq!(run_stack(&p, &i386("getcwd")), RET_BAD_ARCH);
        assert_eq!(run_stack(&p, &i386("getpid")), RET_BAD_ARCH);
        // Arches that cannot run here.
        let arm = SeccompData {
            arch: AUDIT_ARCH_ARM,
            ..Default::default()
        };
        assert_eq!(run_stack(&p, &arm), RET_BAD_ARCH);

        // x32 listed: its own numbers, including the x32-specific ones.
        let p = compile(v(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]))).unwrap();
        assert_eq!(run_stack(&p, &x32(79 | X32_SYSCALL_BIT)), errno(44));
        assert_eq!(run_stack(&p, &x32(512 | X32_SYSCALL_BIT)), errno(44));
        assert_eq!(run_stack(&p, &x32(13 | X32_SYSCALL_BIT)), errno(44));
        assert_eq!(run_stack(&p, &x32(39 | X32_SYSCALL_BIT)), ALLOW);
        assert_eq!(run_stack(&p, &i386("getcwd")), RET_BAD_ARCH);
        // A native number never matches an x32 rule and the reverse.
        assert_eq!(run_stack(&p, &call(Abi::X86_64, "getpid", [0; 6])), ALLOW);
        assert_eq!(run_stack(&p, &x32(512)), ALLOW);

        // i386 listed: i386 numbers (getcwd is 183 there, 79 on x86_64).
        let p = compile(v(json!(["SCMP_ARCH_X86"]))).unwrap();
        assert_eq!(run_stack(&p, &i386("getcwd")), errno(44));
        assert_eq!(
            run_stack(
                &p,
                &SeccompData {
                    nr: 79,
                    arch: AUDIT_ARCH_I386,
                    ..Default::default()
                }
            ),
            ALLOW
        );
        assert_eq!(run_stack(&p, &x32(79 | X32_SYSCALL_BIT)), RET_BAD_ARCH);
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getcwd", [0; 6])),
            errno(44)
        );
    }

    #[test]
    fn seccomp_enosys_stub_follows_runc() {
        let v = |arches: serde_json::Value, default_errno: Option<u32>| {
            let mut v = json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": arches,
                "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"}]});
            if let Some(e) = default_errno {
                v["defaultErrnoRet"] = json!(e);
            }
            v
        };
        let nr = |n: u32| SeccompData {
            nr: n as i32,
            arch: AUDIT_ARCH_X86_64,
            ..Default::default()
        };
        // Listed: above exit_group (231) -> ENOSYS, below -> the default.
        let p = compile(v(json!(["SCMP_ARCH_X86_64"]), None)).unwrap();
        assert_eq!(run_stack(&p, &nr(435)), errno(38));
        assert_eq!(run_stack(&p, &nr(39)), errno(1));
        assert_eq!(run_stack(&p, &nr(231)), ALLOW);
        // No architectures: runc's stub has nothing to work on.
        let p = compile(v(json!([]), None)).unwrap();
        assert_eq!(run_stack(&p, &nr(435)), errno(1));
        // Permissive default or default ENOSYS: no stub.
        let p = compile(v(json!(["SCMP_ARCH_X86_64"]), Some(38))).unwrap();
        assert_eq!(run_stack(&p, &nr(435)), errno(38));
        assert_eq!(run_stack(&p, &nr(39)), errno(38));
    }

    #[test]
    fn seccomp_masked_eq_is_not_masked_on_the_value_side() {
        // libseccomp: (arg & 0xf0) == 0x0f can never hold.
        let p = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 240, "valueTwo": 15, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 240, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}]}]}))
        .unwrap();
        for a in [0u64, 0x0f, 0xff, 0xf0] {
            assert_eq!(
                run_stack(&p, &call(Abi::X86_64, "personality", [a, 0, 0, 0, 0, 0])),
                ALLOW
            );
        }
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getpid", [0x1f, 0, 0, 0, 0, 0])),
            errno(1)
        );
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getpid", [0x2f, 0, 0, 0, 0, 0])),
            ALLOW
        );
    }

    #[test]
    fn seccomp_notify_placeholder_is_patched() {
        let p = compile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
                         {"names": ["getcwd"], "action": "SCMP_ACT_TRACE", "errnoRet": 0xC0DE}]}),
        )
        .unwrap();
        assert!(p.uses_notify());
        assert_eq!(p.filter_count(), 2);
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getppid", [0; 6])),
            libc::SECCOMP_RET_USER_NOTIF
        );
        // A real TRACE with the placeholder's data is left alone (it's in another filter).
        assert_eq!(
            run_stack(&p, &call(Abi::X86_64, "getcwd", [0; 6])),
            libc::SECCOMP_RET_TRACE | 0xC0DE
        );
        let notify: Vec<bool> = p.filters.iter().map(|f| f.notify).collect();
        assert_eq!(notify.iter().filter(|n| **n).count(), 1);
        for f in &p.filters {
            let placeholder = f
                .code
                .iter()
                .any(|i| i.code == BPF_RET_K && i.k == (libc::SECCOMP_RET_TRACE | 0xC0DE));
            assert_eq!(placeholder, !f.notify);
        }
        assert!(!compile(json!({"defaultAction": "SCMP_ACT_ERRNO"}))
            .unwrap()
            .uses_notify());
    }

    /// Reference semantics of a profile, straight from the spec (and runc), without BPF: the
    /// set of acceptable filter results (several when rules of equally strict actions overlap).
    fn reference(t: &Translated, has_filters: bool, d: &SeccompData) -> Vec<u32> {
        if !has_filters {
            return vec![ALLOW];
        }
        let nr = d.nr as u32;
        let abi = t.host.abis().iter().copied().find(|a| {
            a.audit_arch() == d.arch
                && match a {
                    Abi::X86_64 => nr & X32_SYSCALL_BIT == 0 && nr < 0x8000_0000,
                    Abi::X32 => nr >= X32_SYSCALL_BIT,
                    _ => true,
                }
        });
        let Some(abi) = abi.filter(|a| t.active.contains(a)) else {
            return vec![RET_BAD_ARCH];
        };
        // libseccomp compares the low 32 bits on 32-bit ABIs.
        let bits32 = matches!(abi, Abi::I386 | Abi::Arm);
        let holds = |c: &Cond| {
            let (arg, value, mask) = match bits32 {
                true => (
                    d.args[c.index as usize] & 0xffff_ffff,
                    c.value & 0xffff_ffff,
                    match c.op {
                        Op::MaskedEq(m) => m & 0xffff_ffff,
                        _ => 0,
                    },
                ),
                false => (
                    d.args[c.index as usize],
                    c.value,
                    match c.op {
                        Op::MaskedEq(m) => m,
                        _ => 0,
                    },
                ),
            };
            match c.op {
                Op::Ne => arg != value,
                Op::Lt => arg < value,
                Op::Le => arg <= value,
                Op::Eq => arg == value,
                Op::Ge => arg >= value,
                Op::Gt => arg > value,
                Op::MaskedEq(_) => arg & mask == value,
            }
        };
        let mut matched: Vec<u32> = Vec::new();
        for e in &t.entries {
            if e.action == t.default {
                continue;
            }
            let named = e.names.iter().any(|n| abi.numbers(n).contains(&nr));
            if named && e.alternatives.iter().any(|alt| alt.iter().all(holds)) {
                matched.push(e.action.ret());
            }
        }
        if matched.is_empty() {
            let max = t.max_syscall(abi);
            if t.enosys_stub && t.listed.contains(&abi) && max.is_some_and(|m| nr > m) {
                return vec![errno(38)];
            }
            return vec![t.default.ret()];
        }
        let rank = |r: u32| (r & libc::SECCOMP_RET_ACTION_FULL) as i32;
        let best = matched.iter().map(|r| rank(*r)).min().unwrap();
        matched.retain(|r| rank(*r) == best);
        matched
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
            &v[self.below(v.len())]
        }
    }

    const NAMES: &[&str] = &[
        "read",
        "write",
        "getpid",
        "personality",
        "getcwd",
        "socket",
        "socketcall",
        "_llseek",
        "ioctl",
        "rt_sigaction",
        "clone3",
        "no_such_call",
        "seccomp",
        "set_tls",
        "openat",
        "mmap2",
        "fstatat64",
        "newfstatat",
        "exit_group",
    ];
    const VALUES: &[u64] = &[
        0,
        1,
        2,
        0xff00,
        0x7fff_ffff,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0002,
        u64::MAX,
    ];

    fn random_profile(rng: &mut Rng) -> serde_json::Value {
        let actions = [
            "SCMP_ACT_ALLOW",
            "SCMP_ACT_ERRNO",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_TRAP",
            "SCMP_ACT_TRACE",
            "SCMP_ACT_LOG",
            "SCMP_ACT_NOTIFY",
            "SCMP_ACT_KILL_THREAD",
        ];
        let ops = [
            "SCMP_CMP_NE",
            "SCMP_CMP_LT",
            "SCMP_CMP_LE",
            "SCMP_CMP_EQ",
            "SCMP_CMP_GE",
            "SCMP_CMP_GT",
            "SCMP_CMP_MASKED_EQ",
        ];
        let errnos = [None, Some(1), Some(38), Some(77)];
        let arches = [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_MIPS",
            "SCMP_ARCH_NATIVE",
        ];
        let mut syscalls = Vec::new();
        for _ in 0..rng.below(8) {
            let mut names = Vec::new();
            for _ in 0..1 + rng.below(3) {
                names.push(*rng.pick(NAMES));
            }
            let mut action = *rng.pick(&actions);
            if action == "SCMP_ACT_NOTIFY" && names.contains(&"sendmsg") {
                action = "SCMP_ACT_ERRNO";
            }
            let mut args = Vec::new();
            for _ in 0..rng.below(4) {
                args.push(json!({
                    "index": rng.below(3),
                    "value": *rng.pick(VALUES),
                    "valueTwo": *rng.pick(VALUES),
                    "op": *rng.pick(&ops),
                }));
            }
            let mut s = json!({"names": names, "action": action, "args": args});
            if let Some(e) = rng.pick(&errnos) {
                s["errnoRet"] = json!(e);
            }
            syscalls.push(s);
        }
        let mut default = *rng.pick(&actions);
        if default == "SCMP_ACT_NOTIFY" {
            default = "SCMP_ACT_ERRNO";
        }
        let mut listed = Vec::new();
        for _ in 0..rng.below(4) {
            listed.push(*rng.pick(&arches));
        }
        let mut v = json!({"defaultAction": default, "architectures": listed,
            "syscalls": syscalls, "listenerPath": "/run/agent"});
        if let Some(e) = rng.pick(&errnos) {
            v["defaultErrnoRet"] = json!(e);
        }
        v
    }

    fn check_equivalence(host: Host, seed: u64, profiles: usize) {
        let mut rng = Rng(seed);
        let mut checked = 0usize;
        for _ in 0..profiles {
            let v = random_profile(&mut rng);
            let s = spec(v.clone());
            let t = translate(&s, host).unwrap();
            let p = SeccompProgram::compile_for(&s, host).unwrap();
            assert!(
                !p.filters.is_empty(),
                "a profile always installs a filter: {v}"
            );
            let mut calls = Vec::new();
            for abi in host.abis() {
                let mut nrs: Vec<u32> = NAMES.iter().flat_map(|n| abi.numbers(n)).collect();
                nrs.extend([0, 1, 600, 5000, u32::MAX]);
                if *abi == Abi::X32 {
                    nrs.extend([X32_SYSCALL_BIT, X32_SYSCALL_BIT | 5000]);
                }
                for nr in nrs {
                    for _ in 0..3 {
                        let mut args = [0u64; 6];
                        for a in args.iter_mut().take(3) {
                            *a = *rng.pick(VALUES);
                        }
                        calls.push(SeccompData {
                            nr: nr as i32,
                            arch: abi.audit_arch(),
                            instruction_pointer: 0,
                            args,
                        });
                    }
                }
            }
            for arch in [
                AUDIT_ARCH_ARM,
                AUDIT_ARCH_I386,
                AUDIT_ARCH_X86_64,
                0x8000_0016,
            ] {
                calls.push(SeccompData {
                    nr: 3,
                    arch,
                    ..Default::default()
                });
            }
            for d in &calls {
                let want = reference(&t, !p.filters.is_empty(), d);
                let got = run_stack(&p, d);
                assert!(
                    want.contains(&got),
                    "profile {v}\ncall {d:?}\nwant one of {want:x?}, got {got:#x}"
                );
                checked += 1;
            }
        }
        assert!(checked > profiles * 50);
    }

    #[test]
    fn seccomp_stacked_filters_match_reference_semantics_x86_64() {
        check_equivalence(Host::X86_64, 0x9E37_79B9_7F4A_7C15, 400);
    }

    #[test]
    fn seccomp_stacked_filters_match_reference_semantics_aarch64() {
        check_equivalence(Host::Aarch64, 0xDEAD_BEEF_1234_5678, 200);
    }

    /// Cross-checks the syscall tables against the kernel headers of this machine.
    #[test]
    fn seccomp_syscall_tables_match_kernel_headers() {
        let parse = |path: &str, x32: bool| -> Vec<(String, u32)> {
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{path}: {e} (install linux-libc-dev)"));
            let mut out = Vec::new();
            for line in text.lines() {
                let mut w = line.split_whitespace();
                if w.next() != Some("#define") {
                    continue;
                }
                let (Some(name), Some(rest)) = (w.next(), w.next()) else {
                    continue;
                };
                let Some(name) = name.strip_prefix("__NR_") else {
                    continue;
                };
                let nr = if x32 {
                    if rest != "(__X32_SYSCALL_BIT" || w.next() != Some("+") {
                        continue;
                    }
                    let n = w.next().unwrap_or("").trim_end_matches(')');
                    n.parse::<u32>().ok().map(|n| n | X32_SYSCALL_BIT)
                } else {
                    rest.parse::<u32>().ok()
                };
                if let Some(nr) = nr {
                    out.push((name.to_string(), nr));
                }
            }
            assert!(out.len() > 300, "{path}: parsed only {}", out.len());
            out
        };
        let dir = "/usr/include/x86_64-linux-gnu/asm";
        for (file, abi, x32) in [
            ("unistd_64.h", Abi::X86_64, false),
            ("unistd_32.h", Abi::I386, false),
            ("unistd_x32.h", Abi::X32, true),
        ] {
            for (name, nr) in parse(&format!("{dir}/{file}"), x32) {
                if name == "break" {
                    // An i386 syscall that was never implemented; the table lacks it.
                    continue;
                }
                assert!(
                    abi.numbers(&name).contains(&nr),
                    "{file}: {name} = {nr:#x}, berth has {:x?}",
                    abi.numbers(&name)
                );
            }
        }
    }

    /// A Docker-like allowlist, generated: every x86_64 and i386 syscall except a deny set,
    /// with argument rules for personality, clone, socket and clone3.
    fn big_profile() -> serde_json::Value {
        const DENY: &[&str] = &[
            "acct",
            "add_key",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "clone",
            "clone3",
            "create_module",
            "delete_module",
            "finit_module",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "get_kernel_syms",
            "get_mempolicy",
            "init_module",
            "ioperm",
            "iopl",
            "kcmp",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "lookup_dcookie",
            "mbind",
            "mount",
            "mount_setattr",
            "move_mount",
            "move_pages",
            "name_to_handle_at",
            "nfsservctl",
            "open_by_handle_at",
            "open_tree",
            "perf_event_open",
            "personality",
            "pivot_root",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "query_module",
            "quotactl",
            "quotactl_fd",
            "reboot",
            "request_key",
            "set_mempolicy",
            "setns",
            "settimeofday",
            "socket",
            "stime",
            "swapoff",
            "swapon",
            "sysfs",
            "_sysctl",
            "umount",
            "umount2",
            "unshare",
            "uselib",
            "userfaultfd",
            "ustat",
            "vhangup",
            "vm86",
            "vm86old",
            "syslog",
            "lsm_set_self_attr",
        ];
        let mut names: Vec<String> = syscalls::x86_64::Sysno::iter()
            .map(|s| s.name().to_string())
            .chain(syscalls::x86::Sysno::iter().map(|s| s.name().to_string()))
            .filter(|n| !DENY.contains(&n.as_str()))
            .collect();
        names.sort();
        names.dedup();
        let mut syscalls = vec![json!({"names": names, "action": "SCMP_ACT_ALLOW"})];
        for persona in [0u64, 8, 0x20000, 0x20008, 0xffff_ffff] {
            syscalls.push(json!({"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": persona, "op": "SCMP_CMP_EQ"}]}));
        }
        // clone without namespace flags (the clone flags argument is arg0 on x86).
        syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0x7E02_0000u64, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}));
        syscalls.push(json!({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}));
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": syscalls,
        })
    }

    #[test]
    fn seccomp_big_profile_fits_the_kernel_limits() {
        let v = big_profile();
        let names = v["syscalls"][0]["names"].as_array().unwrap().len();
        assert!(names > 300, "{names}");
        let p = compile(v.clone()).unwrap();
        let counts = p.instruction_counts();
        assert!(p.filter_count() <= 4, "{counts:?}");
        assert!(counts.iter().all(|&c| c <= MAX_FILTER_LEN), "{counts:?}");
        let r = |name, a0| run_stack(&p, &call(Abi::X86_64, name, [a0, 0, 0, 0, 0, 0]));
        assert_eq!(r("read", 0), ALLOW);
        assert_eq!(r("mount", 0), errno(1));
        assert_eq!(r("personality", 8), ALLOW);
        assert_eq!(r("personality", 9), errno(1));
        assert_eq!(r("clone", 0x11), ALLOW);
        assert_eq!(r("clone", 0x2000_0000), errno(1));
        assert_eq!(r("socket", 1), ALLOW);
        assert_eq!(r("socket", 40), errno(1));
        assert_eq!(r("clone3", 0), errno(38));
        let i = |name| run_stack(&p, &call(Abi::I386, name, [0; 6]));
        assert_eq!(i("socketcall"), ALLOW);
        assert_eq!(i("mount"), errno(1));
        let x = |name| run_stack(&p, &call(Abi::X32, name, [0; 6]));
        assert_eq!(x("read"), ALLOW);
        assert_eq!(x("mount"), errno(1));
        // The split filters agree with the reference semantics on every syscall number.
        let t = translate(&spec(v), Host::X86_64).unwrap();
        let mut rng = Rng(42);
        for abi in Host::X86_64.abis() {
            let base = if *abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
            for nr in (0..600).map(|n| n | base) {
                let mut args = [0u64; 6];
                for a in args.iter_mut().take(3) {
                    *a = *rng.pick(VALUES);
                }
                let d = SeccompData {
                    nr: nr as i32,
                    arch: abi.audit_arch(),
                    instruction_pointer: 0,
                    args,
                };
                let want = reference(&t, true, &d);
                let got = run_stack(&p, &d);
                assert!(want.contains(&got), "{d:?}: want {want:x?}, got {got:#x}");
            }
        }
        // Executed instructions per syscall stay small thanks to the binary search.
        let steps = |d: &SeccompData| -> usize {
            p.filters
                .iter()
                .map(|f| bpf_exec(&f.code, d).unwrap().1)
                .sum()
        };
        let worst = [
            "read",
            "write",
            "futex",
            "epoll_pwait2",
            "mount",
            "personality",
        ]
        .iter()
        .map(|n| steps(&call(Abi::X86_64, n, [0; 6])))
        .max()
        .unwrap();
        assert!(worst < 120, "{worst} instructions for one syscall");
    }

    #[test]
    fn seccomp_install_order_avoids_denying_later_installs() {
        // seccomp(2) is denied by the ERRNO(50) filter: it must be installed last.
        let p = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 50},
            {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["uname"], "action": "SCMP_ACT_LOG"}]}))
        .unwrap();
        let calls: Vec<SeccompData> = (0..p.filter_count())
            .map(|i| SeccompData {
                nr: 317,
                arch: AUDIT_ARCH_X86_64,
                instruction_pointer: 0,
                args: [1, 0, 0x1000 + i as u64, 0, 0, 0],
            })
            .collect();
        let order = p.install_order(&calls).unwrap();
        let last = order.last().copied().unwrap();
        assert!(
            p.filters[last].label.contains("Errno(50)"),
            "{order:?} {:?}",
            p.filters
        );

        // Denied by two filters: cannot be installed.
        let p = compile(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3}]}))
        .unwrap();
        let calls: Vec<SeccompData> = (0..p.filter_count())
            .map(|_| SeccompData {
                nr: 317,
                arch: AUDIT_ARCH_X86_64,
                instruction_pointer: 0,
                args: [1, 0, 0x1000, 0, 0, 0],
            })
            .collect();
        // Base allows seccomp (it matches a rule), KILL filter denies it, ERRNO(3) allows it.
        assert!(p.install_order(&calls).is_ok());
        let p = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["seccomp"], "action": "SCMP_ACT_KILL_PROCESS",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}))
        .unwrap();
        let err = p.install_order(&calls).unwrap_err().to_string();
        assert!(err.contains("more than one"), "{err}");
    }

    // ---- real kernel -------------------------------------------------------------------

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Exited(i32),
        Signaled(i32),
    }

    /// Child exit code when install() failed.
    const INSTALL_FAILED: i32 = 100;

    /// Forks; the child installs `p` and exits with `body`'s code. `before` runs in the child
    /// ahead of the install (signal handlers), `parent` in the parent while the child runs.
    fn run_in_child(
        p: &SeccompProgram,
        before: impl FnOnce(),
        body: impl FnOnce(Option<OwnedFd>) -> i32,
        parent: impl FnOnce(libc::pid_t),
    ) -> Outcome {
        // SAFETY: the child only makes raw syscalls, runs install() (which allocates; glibc's
        // malloc is fork-safe) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain syscalls on valid arguments, in the forked child.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &no_core);
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
            }
            before();
            let code = match p.prepare().and_then(|f| f.install()) {
                // SAFETY: install() returned a new listener fd that nothing else owns.
                Ok(fd) => body(fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })),
                Err(_) => INSTALL_FAILED,
            };
            // SAFETY: leaves the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        parent(pid);
        let mut status = 0;
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        if libc::WIFEXITED(status) {
            Outcome::Exited(libc::WEXITSTATUS(status))
        } else {
            Outcome::Signaled(libc::WTERMSIG(status))
        }
    }

    fn child(p: &SeccompProgram, body: impl FnOnce() -> i32) -> Outcome {
        run_in_child(p, || {}, |_| body(), |_| {})
    }

    /// A raw syscall: Ok(return value) or Err(errno).
    fn sys(nr: libc::c_long, a: [u64; 3]) -> std::result::Result<i64, i32> {
        // SAFETY: only used with syscalls whose pointer arguments are valid or null.
        let r = unsafe { libc::syscall(nr, a[0], a[1], a[2], 0u64, 0u64, 0u64) };
        if r == -1 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            Ok(r)
        }
    }

    /// An i386 syscall through `int 0x80`: the kernel sees AUDIT_ARCH_I386.
    #[cfg(target_arch = "x86_64")]
    fn int80(nr: u32, a0: u32) -> i32 {
        let ret: u64;
        // SAFETY: int 0x80 takes eax and ebx and returns in eax; rbx is swapped in and out
        // because Rust reserves it; r8-r11 may be cleared by the compat entry.
        unsafe {
            std::arch::asm!(
                "xchg {a0}, rbx",
                "int 0x80",
                "xchg {a0}, rbx",
                a0 = inout(reg) u64::from(a0) => _,
                inlateout("rax") u64::from(nr) => ret,
                out("r8") _, out("r9") _, out("r10") _, out("r11") _,
            );
        }
        ret as u32 as i32
    }

    fn check(ok: bool, code: i32) -> i32 {
        if ok {
            0
        } else {
            code
        }
    }

    fn getcwd(size: u64) -> std::result::Result<i64, i32> {
        let mut buf = [0u8; 4096];
        sys(libc::SYS_getcwd, [buf.as_mut_ptr() as u64, size, 0])
    }

    #[test]
    fn seccomp_kernel_errno_on_default_allow() {
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                         {"names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1234}]})))
        .unwrap();
        let out = child(&p, || {
            let mut uts = [0u8; 512];
            let uname = sys(libc::SYS_uname, [uts.as_mut_ptr() as u64, 0, 0]);
            check(getcwd(4096) == Err(libc::EPERM), 1)
                | check(uname == Err(1234), 2)
                | check(sys(libc::SYS_getpid, [0; 3]).is_ok(), 3)
        });
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_allowlist_default_errno_and_enosys_stub() {
        let v = |arches: serde_json::Value| {
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99, "architectures": arches,
                "syscalls": [{"names": ["exit_group", "exit", "getpid", "rt_sigreturn", "write",
                                        "seccomp"], "action": "SCMP_ACT_ALLOW"}]})
        };
        let p = SeccompProgram::compile(&spec(v(json!(["SCMP_ARCH_X86_64"])))).unwrap();
        let out = child(&p, || {
            check(sys(libc::SYS_getppid, [0; 3]) == Err(99), 1)
                | check(sys(libc::SYS_getpid, [0; 3]).is_ok(), 2)
                // Above the largest listed syscall (seccomp, 317): ENOSYS, as runc.
                | check(sys(libc::SYS_clone3, [0; 3]) == Err(libc::ENOSYS), 4)
        });
        assert_eq!(out, Outcome::Exited(0));
        // No architectures listed: runc has no stub.
        let p = SeccompProgram::compile(&spec(v(json!([])))).unwrap();
        let out = child(&p, || check(sys(libc::SYS_clone3, [0; 3]) == Err(99), 1));
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_arg_conditions() {
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 40, "args": [
                {"index": 0, "value": 0xff00, "valueTwo": 0x0800, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 41, "args": [
                {"index": 0, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GT"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42, "args": [
                {"index": 1, "value": 7, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}]},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43, "args": [
                {"index": 1, "value": 11, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 13, "op": "SCMP_CMP_EQ"}]}
        ]})))
        .unwrap();
        let out = child(&p, || {
            let persona = |x: u64| sys(libc::SYS_personality, [x, 0, 0]);
            let null_getcwd = sys(libc::SYS_getcwd, [0, 7, 0]);
            check(persona(0xffff_ffff).is_ok(), 1)
                | check(persona(0x0800) == Err(40), 2)
                | check(persona(0x0001_0800) == Err(40), 3)
                | check(persona(0x1_0000_0005) == Err(41), 4)
                | check(persona(0x0000_0000).is_ok(), 5)
                // AND: both args must match.
                | check(getcwd(7) == Err(42), 6)
                | check(null_getcwd != Err(42), 7)
                // OR: same index twice.
                | check(getcwd(11) == Err(43), 8)
                | check(getcwd(13) == Err(43), 9)
                | check(getcwd(4096).is_ok(), 10)
        });
        assert_eq!(out, Outcome::Exited(0));
    }

    extern "C" fn on_sigsys(_: libc::c_int) {
        // SAFETY: async-signal-safe exit from the handler.
        unsafe { libc::_exit(42) }
    }

    #[test]
    fn seccomp_kernel_kill_trap_log() {
        let one = |action: &str| {
            SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getcwd"], "action": action}]})))
            .unwrap()
        };
        let trap_handler = || {
            // SAFETY: installs a handler that only calls _exit.
            unsafe {
                libc::signal(libc::SIGSYS, on_sigsys as *const () as libc::sighandler_t);
            }
        };
        for action in [
            "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL",
            "SCMP_ACT_KILL_THREAD",
        ] {
            // A SIGSYS handler does not help against KILL.
            let out = run_in_child(
                &one(action),
                trap_handler,
                |_| {
                    let _ = getcwd(4096);
                    7
                },
                |_| {},
            );
            assert_eq!(out, Outcome::Signaled(libc::SIGSYS), "{action}");
        }
        let out = run_in_child(
            &one("SCMP_ACT_TRAP"),
            trap_handler,
            |_| {
                let _ = getcwd(4096);
                7
            },
            |_| {},
        );
        assert_eq!(out, Outcome::Exited(42));
        let out = child(&one("SCMP_ACT_TRAP"), || {
            let _ = getcwd(4096);
            7
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
        let out = child(&one("SCMP_ACT_LOG"), || check(getcwd(4096).is_ok(), 1));
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_x32_cannot_bypass_x86_64_rules() {
        let v = |arches: serde_json::Value| {
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": arches,
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 44}]})
        };
        let x32_getcwd = || {
            let mut buf = [0u8; 4096];
            let nr = libc::SYS_getcwd | libc::c_long::from(X32_SYSCALL_BIT as i32);
            sys(nr, [buf.as_mut_ptr() as u64, 4096, 0])
        };
        // x32 not listed: the bad-arch action kills the caller.
        let p = SeccompProgram::compile(&spec(v(json!(["SCMP_ARCH_X86_64"])))).unwrap();
        let out = child(&p, || {
            let _ = x32_getcwd();
            7
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS));
        // x32 listed: the x32 getcwd obeys the getcwd rule (the kernel may not even run x32).
        let p = SeccompProgram::compile(&spec(v(json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]))))
            .unwrap();
        let out = child(&p, || {
            let x32_getpid = sys(libc::SYS_getpid | 0x4000_0000, [0; 3]);
            check(x32_getcwd() == Err(44), 1)
                | check(getcwd(4096) == Err(44), 2)
                | check(x32_getpid != Err(44), 3)
        });
        assert_eq!(out, Outcome::Exited(0));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn seccomp_kernel_i386_int80_obeys_x86_rules() {
        const I386_GETPID: u32 = 20;
        const I386_GETPPID: u32 = 64;
        const I386_GETUID: u32 = 24;
        const I386_PERSONALITY: u32 = 136;
        // No filter: int 0x80 works on this kernel (IA32 emulation).
        // SAFETY: getpid cannot fail.
        let me = unsafe { libc::getpid() };
        assert_eq!(
            int80(I386_GETPID, 0),
            me,
            "IA32 emulation is needed for this test"
        );

        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 45},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 47, "args": [
                    {"index": 0, "value": u64::MAX, "op": "SCMP_CMP_EQ"}]}]})))
        .unwrap();
        let out = child(&p, || {
            // SAFETY: getppid cannot fail.
            let ppid = unsafe { libc::getppid() };
            check(int80(I386_GETPID, 0) == -45, 1)
                | check(int80(I386_GETPPID, 0) == ppid, 2)
                // 32-bit ABI: the low 32 bits of the rule's value are compared.
                | check(int80(I386_PERSONALITY, 0xffff_ffff) == -47, 3)
                | check(int80(I386_PERSONALITY, 0xffff_fffe) != -47, 4)
                // The native rule has 64-bit semantics.
                | check(sys(libc::SYS_personality, [0xffff_ffff, 0, 0]) != Err(47), 5)
        });
        assert_eq!(out, Outcome::Exited(0));

        // Not listed: bad-arch action.
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO"}]})))
        .unwrap();
        let out = child(&p, || {
            int80(I386_GETPPID, 0);
            7
        });
        assert_eq!(out, Outcome::Signaled(libc::SIGSYS));

        // An allowlist: i386 syscalls outside it get the default action.
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 46, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["exit_group", "exit", "getppid", "getpid", "seccomp"],
                          "action": "SCMP_ACT_ALLOW"}]})))
        .unwrap();
        let out = child(&p, || {
            // SAFETY: getppid cannot fail.
            let ppid = unsafe { libc::getppid() };
            check(int80(I386_GETUID, 0) == -46, 1) | check(int80(I386_GETPPID, 0) == ppid, 2)
        });
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_notify_listener() {
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                      "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"},
                         {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]})))
        .unwrap();
        assert!(p.uses_notify());
        let mut pipe = [0; 2];
        // SAFETY: creates a pipe into a valid array.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        let (rd, wr) = (pipe[0], pipe[1]);
        let mut answered = false;
        let out = run_in_child(
            &p,
            || {},
            |fd| {
                let Some(fd) = fd else { return 1 };
                let n = std::os::fd::AsRawFd::as_raw_fd(&fd);
                let bytes = n.to_ne_bytes();
                // SAFETY: writes 4 bytes from a valid buffer.
                if unsafe { libc::write(wr, bytes.as_ptr().cast(), 4) } != 4 {
                    return 2;
                }
                // Blocks until the parent answers through the listener.
                check(sys(libc::SYS_getppid, [0; 3]) == Ok(4242), 3)
                    | check(getcwd(4096) == Err(libc::EPERM), 4)
            },
            |pid| {
                // SAFETY: the parent's copy of the write end is not needed (and would keep
                // the read below from seeing EOF if the child dies early).
                unsafe { libc::close(wr) };
                let result = (|| -> Result<()> {
                    let mut bytes = [0u8; 4];
                    // SAFETY: reads 4 bytes into a valid buffer.
                    let n = unsafe { libc::read(rd, bytes.as_mut_ptr().cast(), 4) };
                    anyhow::ensure!(n == 4, "read listener fd number: {n}");
                    let child_fd = i32::from_ne_bytes(bytes);
                    // SAFETY: raw pidfd syscalls on our own child.
                    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
                    anyhow::ensure!(pidfd >= 0, "pidfd_open");
                    // SAFETY: as above.
                    let listener =
                        unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, child_fd, 0) };
                    anyhow::ensure!(
                        listener >= 0,
                        "pidfd_getfd: {}",
                        std::io::Error::last_os_error()
                    );
                    // SAFETY: both fds are ours now.
                    let (_pidfd, listener) = unsafe {
                        (
                            OwnedFd::from_raw_fd(pidfd as i32),
                            OwnedFd::from_raw_fd(listener as i32),
                        )
                    };
                    let lfd = std::os::fd::AsRawFd::as_raw_fd(&listener);
                    let mut pfd = libc::pollfd {
                        fd: lfd,
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: polls one valid pollfd.
                    let ready = unsafe { libc::poll(&mut pfd, 1, 10_000) };
                    anyhow::ensure!(ready == 1, "no notification within 10 s");
                    // SAFETY: the kernel fills a zeroed seccomp_notif.
                    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
                    // SAFETY: SECCOMP_IOCTL_NOTIF_RECV with a valid seccomp_notif.
                    let r = unsafe { libc::ioctl(lfd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) };
                    anyhow::ensure!(r == 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
                    anyhow::ensure!(req.pid as i32 == pid, "notification from {}", req.pid);
                    anyhow::ensure!(
                        i64::from(req.data.nr) == libc::SYS_getppid,
                        "nr {}",
                        req.data.nr
                    );
                    let mut resp = libc::seccomp_notif_resp {
                        id: req.id,
                        val: 4242,
                        error: 0,
                        flags: 0,
                    };
                    // SAFETY: SECCOMP_IOCTL_NOTIF_SEND with a valid response.
                    let r = unsafe { libc::ioctl(lfd, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
                    anyhow::ensure!(r == 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
                    Ok(())
                })();
                if let Err(e) = &result {
                    eprintln!("notify test parent: {e:#}");
                    // SAFETY: kills our own child so that waitpid returns.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                answered = result.is_ok();
            },
        );
        // SAFETY: closes the read end we created (the write end was closed above).
        unsafe { libc::close(rd) };
        assert!(answered);
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_stack_install_order() {
        // Three filters; the ERRNO(50) one denies seccomp(2) and must go last.
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 50},
                {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"}]})))
        .unwrap();
        assert_eq!(p.filter_count(), 3);
        let out = child(&p, || {
            check(sys(libc::SYS_seccomp, [1, 0, 0]) == Err(50), 1)
        });
        assert_eq!(out, Outcome::Exited(0));
        // An allowlist without seccomp(2) plus other actions: the base goes last.
        let p = SeccompProgram::compile(&spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}]})))
        .unwrap();
        assert_eq!(p.filter_count(), 3);
        let out = child(&p, || {
            check(sys(libc::SYS_seccomp, [1, 0, 0]) == Err(libc::EPERM), 1)
                | check(sys(libc::SYS_clone3, [0; 3]) == Err(libc::ENOSYS), 2)
        });
        assert_eq!(out, Outcome::Exited(0));
    }

    #[test]
    fn seccomp_kernel_big_profile_runs_a_program() {
        let p = SeccompProgram::compile(&spec(big_profile())).unwrap();
        assert!(p.filter_count() > 1, "{:?}", p.instruction_counts());
        let out = child(&p, || {
            let mut target = *b"/tmp\0";
            let mount = sys(
                libc::SYS_mount,
                [target.as_mut_ptr() as u64, target.as_mut_ptr() as u64, 0],
            );
            if mount != Err(libc::EPERM) {
                return 1;
            }
            if sys(libc::SYS_clone3, [0; 3]) != Err(libc::ENOSYS) {
                return 2;
            }
            let msg = b"seccomp child writes\n";
            // SAFETY: writes from a valid buffer.
            if unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) } != msg.len() as isize {
                return 3;
            }
            let path = c"/bin/true";
            let argv = [path.as_ptr(), std::ptr::null()];
            // SAFETY: valid NUL-terminated path and argv; returns only on failure.
            unsafe { libc::execv(path.as_ptr(), argv.as_ptr()) };
            4
        });
        assert_eq!(out, Outcome::Exited(0));
    }
}
