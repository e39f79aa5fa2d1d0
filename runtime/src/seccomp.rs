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
            if action == Action::Notify && name == "write" {
                // As runc: the init reports the listener fd with write(2).
                bail!("{field}: SCMP_ACT_NOTIFY cannot be used for the write syscall");
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

    let uses_notify = entries
        .iter()
        .any(|e| e.action == Action::Notify && e.action != default);
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
    for purpose in t.purposes() {
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
    let bytes = data.bytes();
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc).context("BPF program runs past its end")?;
        let branch = |cond: bool| pc + 1 + usize::from(if cond { i.jt } else { i.jf });
        pc = match i.code {
            BPF_LD_W_ABS => {
                let k = i.k as usize;
                if k % 4 != 0 || k + 4 > bytes.len() {
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
            BPF_RET_K => return Ok(i.k),
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

    /// Install in the calling (single-threaded) process. Needs no_new_privs or CAP_SYS_ADMIN.
    /// Returns the notify listener fd when the profile uses SCMP_ACT_NOTIFY (caller sends it to
    /// listenerPath).
    ///
    /// Only `seccomp(2)` is called between the first and the last filter.
    pub fn install(&self) -> Result<Option<OwnedFd>> {
        if self.filters.is_empty() {
            return Ok(None);
        }
        // Everything is prepared before the first filter is loaded.
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
        let fprogs: Vec<libc::sock_fprog> = programs
            .iter()
            .map(|p| {
                Ok(libc::sock_fprog {
                    len: u16::try_from(p.len()).context("BPF program too long")?,
                    filter: p.as_ptr().cast_mut(),
                })
            })
            .collect::<Result<_>>()?;
        let flags: Vec<libc::c_ulong> = self.filters.iter().map(|f| self.filter_flags(f)).collect();
        let calls: Vec<SeccompData> = fprogs
            .iter()
            .zip(&flags)
            .map(|(p, &fl)| SeccompData {
                nr: self.host.seccomp_nr(),
                arch: self.host.native().audit_arch(),
                instruction_pointer: 0,
                args: [
                    u64::from(libc::SECCOMP_SET_MODE_FILTER),
                    fl as u64,
                    p as *const libc::sock_fprog as u64,
                    0,
                    0,
                    0,
                ],
            })
            .collect();
        let order = self.install_order(&calls)?;
        let mut listener = None;
        for (n, &i) in order.iter().enumerate() {
            let ret = seccomp_set_mode_filter(flags[i], &fprogs[i]);
            let ret = match ret {
                Ok(r) => r,
                Err(e) => {
                    let hint = if e.raw_os_error() == Some(libc::EACCES) {
                        " (needs no_new_privs or CAP_SYS_ADMIN)"
                    } else {
                        ""
                    };
                    return Err(anyhow::Error::new(e).context(format!(
                        "seccomp(SECCOMP_SET_MODE_FILTER, {:#x}) for filter {} of {} ({}){hint}",
                        flags[i],
                        n + 1,
                        order.len(),
                        self.filters[i].label
                    )));
                }
            };
            if self.filters[i].notify {
                let fd = i32::try_from(ret).context("seccomp listener fd out of range")?;
                // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp(2) returns
                // a new file descriptor that nothing else owns.
                listener = Some(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        Ok(listener)
    }
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
