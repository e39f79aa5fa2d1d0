//! `berth events [--stats] [--interval 5s] ID`: a container's resource usage and OOM kills as runc's
//! JSON events, one per line on stdout:
//!
//! * `{"type":"stats","id":ID,"data":{...}}` with runc 1.1's stats object (types/events.go: cpu,
//!   cpuset, memory, pids, blkio, hugetlb, intel_rdt, network_interfaces), built from the cgroups
//!   module's statistics;
//! * `{"type":"oom","id":ID}` each time the cgroup's OOM kill counter rises.
//!
//! `--stats` prints one stats event and exits. Otherwise a stats event follows every interval (the
//! first after one interval, as runc), OOM events as they happen (v1: an eventfd on
//! memory.oom_control, v2: inotify on memory.events; the counter is also checked at every
//! interval), until the container's init exits: then the last OOM kills are reported and berth exits
//! 0 (runc waits for the cgroup to be removed).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use serde::Serialize;

use crate::cgroups::{Cgroup, Mode};
use crate::cli::EventsArgs;
use crate::container::{Container, Status};

pub fn run(root: &Path, a: &EventsArgs) -> Result<()> {
    let c = Container::load(root, &a.id)?;
    let interval =
        parse_go_duration(&a.interval).with_context(|| format!("--interval {:?}", a.interval))?;
    if interval.is_zero() {
        bail!(
            "--interval {:?}: the interval must be greater than 0",
            a.interval
        );
    }
    if c.status() == Status::Stopped {
        bail!("container {:?} is not running", a.id);
    }
    let pidfd = c
        .pidfd()
        .with_context(|| format!("container {:?} is not running", a.id))?;
    let cg = Cgroup::open(&c.state.cgroup)?;
    let id = c.state.id.as_str();
    if a.stats {
        let data = collect(&cg, &c, &pidfd)?;
        return emit(&Event::stats(id, data));
    }

    let watch = OomWatch::new(&cg);
    let mut oom = OomCounter::new(&cg);
    let mut next = Instant::now() + interval;
    loop {
        let timeout = next.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = watch.fd() {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => r.context("poll")?,
        };
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (exited, woken) = (ready(0), ready(1));
        if woken {
            watch.drain();
            oom.check(&cg, id, true)?;
        }
        if exited {
            // The init is gone: report the OOM kills that may have ended it, then stop.
            oom.check(&cg, id, false)?;
            return Ok(());
        }
        if Instant::now() >= next {
            match collect(&cg, &c, &pidfd) {
                Ok(data) => emit(&Event::stats(id, data))?,
                Err(e) => crate::warn!("events: cannot read the stats of {id:?}: {e:#}"),
            }
            oom.check(&cg, id, false)?;
            while next <= Instant::now() {
                next += interval;
            }
        }
    }
}

// ---------------------------------------------------------------- output

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<StatsJson>>,
}

impl<'a> Event<'a> {
    fn stats(id: &'a str, data: StatsJson) -> Self {
        Event {
            typ: "stats",
            id,
            data: Some(Box::new(data)),
        }
    }
}

fn emit(e: &Event<'_>) -> Result<()> {
    let mut line = serde_json::to_string(e)?;
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .context("writing an event to stdout")
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// runc's types.Stats (field names and omitempty rules of runc 1.1's types/events.go).
#[derive(Serialize, Default)]
struct StatsJson {
    cpu: CpuJson,
    cpuset: CpusetJson,
    memory: MemoryJson,
    pids: PidsJson,
    blkio: BlkioJson,
    hugetlb: BTreeMap<String, HugetlbJson>,
    intel_rdt: IntelRdtJson,
    network_interfaces: Option<Vec<NetworkInterface>>,
}

#[derive(Serialize, Default)]
struct CpuJson {
    usage: CpuUsageJson,
    throttling: ThrottlingJson,
}

#[derive(Serialize, Default)]
struct CpuUsageJson {
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_user: Vec<u64>,
    kernel: u64,
    user: u64,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ThrottlingJson {
    #[serde(skip_serializing_if = "is_zero")]
    periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    throttled_time: u64,
}

#[derive(Serialize, Default)]
struct CpusetJson {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cpus: Vec<u16>,
    cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mems: Vec<u16>,
    mem_hardwall: u64,
    mem_exclusive: u64,
    memory_migrate: u64,
    memory_spread_page: u64,
    memory_spread_slab: u64,
    memory_pressure: u64,
    sched_load_balance: u64,
    sched_relax_domain_level: i64,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct MemoryJson {
    #[serde(skip_serializing_if = "is_zero")]
    cache: u64,
    usage: MemoryEntry,
    swap: MemoryEntry,
    kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    raw: BTreeMap<String, u64>,
}

#[derive(Serialize, Default)]
struct MemoryEntry {
    limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

impl From<&MemoryData> for MemoryEntry {
    fn from(m: &MemoryData) -> Self {
        MemoryEntry {
            limit: m.limit,
            usage: m.usage,
            max: m.max_usage,
            failcnt: m.fail_count,
        }
    }
}

#[derive(Serialize, Default)]
struct PidsJson {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    limit: u64,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct BlkioJson {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty", rename = "ioQueueRecursive")]
    io_queued_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_service_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_wait_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_merged_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_time_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sectors_recursive: Vec<BlkioEntry>,
}

#[derive(Serialize)]
struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    minor: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    op: String,
    #[serde(skip_serializing_if = "is_zero")]
    value: u64,
}

fn blkio(v: &[BlkioDeviceStat]) -> Vec<BlkioEntry> {
    v.iter()
        .map(|s| BlkioEntry {
            major: s.major,
            minor: s.minor,
            op: s.op_type.clone().unwrap_or_default(),
            value: s.value,
        })
        .collect()
}

#[derive(Serialize, Default)]
struct HugetlbJson {
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

/// Intel RDT is not supported by berth: always empty, as runc prints it without RDT.
#[derive(Serialize, Default)]
struct IntelRdtJson {}

/// runc's NetworkInterface (no JSON tags in runc, hence the capitalised names).
#[derive(Serialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
struct NetworkInterface {
    name: String,
    rx_bytes: u64,
    rx_packets: u64,
    rx_errors: u64,
    rx_dropped: u64,
    tx_bytes: u64,
    tx_packets: u64,
    tx_errors: u64,
    tx_dropped: u64,
}

// ---------------------------------------------------------------- collection

fn collect(cg: &Cgroup, c: &Container, pidfd: &OwnedFd) -> Result<StatsJson> {
    let st = cg.stats()?;
    let mut out = convert(&st, cg.config().mode);
    let cpuset_dir = cg
        .paths()
        .into_iter()
        .find(|(ctrl, _)| match cg.config().mode {
            Mode::Unified => ctrl.is_empty(),
            _ => ctrl == "cpuset",
        })
        .map(|(_, p)| p);
    if let Some(d) = cpuset_dir {
        out.cpuset = cpuset(&d, cg.config().mode)?;
    }
    out.network_interfaces = network_interfaces(c.state.pid, pidfd);
    Ok(out)
}

fn convert(st: &Stats, mode: Mode) -> StatsJson {
    let u = &st.cpu.usage;
    let t = &st.cpu.throttling;
    let m = &st.memory;
    let mut swap = MemoryEntry::from(&m.memswap);
    if mode == Mode::Unified {
        // As runc: v2 counts swap alone, v1 memory+swap; report v1's meaning.
        swap.usage += m.memory.usage;
        if swap.limit != u64::MAX {
            swap.limit = swap.limit.saturating_add(m.memory.limit);
        }
    }
    StatsJson {
        cpu: CpuJson {
            usage: CpuUsageJson {
                total: u.usage_total,
                percpu: u.per_core_usage_total.clone(),
                percpu_kernel: u.per_core_usage_kernel.clone(),
                percpu_user: u.per_core_usage_user.clone(),
                kernel: u.usage_kernel,
                user: u.usage_user,
            },
            throttling: ThrottlingJson {
                periods: t.periods,
                throttled_periods: t.throttled_periods,
                throttled_time: t.throttled_time,
            },
        },
        cpuset: CpusetJson::default(),
        memory: MemoryJson {
            cache: m.cache,
            usage: MemoryEntry::from(&m.memory),
            swap,
            kernel: MemoryEntry::from(&m.kernel),
            kernel_tcp: MemoryEntry::from(&m.kernel_tcp),
            raw: m.stats.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        },
        pids: PidsJson {
            current: st.pids.current,
            limit: st.pids.limit,
        },
        blkio: BlkioJson {
            io_service_bytes_recursive: blkio(&st.blkio.service_bytes),
            io_serviced_recursive: blkio(&st.blkio.serviced),
            io_queued_recursive: blkio(&st.blkio.queued),
            io_service_time_recursive: blkio(&st.blkio.service_time),
            io_wait_time_recursive: blkio(&st.blkio.wait_time),
            io_merged_recursive: blkio(&st.blkio.merged),
            io_time_recursive: blkio(&st.blkio.time),
            sectors_recursive: blkio(&st.blkio.sectors),
        },
        hugetlb: st
            .hugetlb
            .iter()
            .map(|(size, h)| {
                (
                    size.clone(),
                    HugetlbJson {
                        usage: h.usage,
                        max: h.max_usage,
                        failcnt: h.fail_count,
                    },
                )
            })
            .collect(),
        intel_rdt: IntelRdtJson {},
        network_interfaces: None,
    }
}

/// A cpuset list ("0-2,4") as numbers.
fn parse_list(s: &str) -> Result<Vec<u16>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (
            a.parse()
                .with_context(|| format!("bad cpuset list {s:?}"))?,
            b.parse()
                .with_context(|| format!("bad cpuset list {s:?}"))?,
        );
        out.extend(a..=b);
    }
    Ok(out)
}

/// runc's cpuset stats: v1 reads the cpuset controller's files; v2 only has the effective lists.
fn cpuset(d: &Path, mode: Mode) -> Result<CpusetJson> {
    let read = |f: &str| -> Result<Option<String>> {
        match std::fs::read_to_string(d.join(f)) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", d.join(f).display())),
        }
    };
    let list = |f: &str| -> Result<Vec<u16>> {
        read(f)?
            .map(|s| parse_list(&s))
            .transpose()
            .map(Option::unwrap_or_default)
    };
    if mode == Mode::Unified {
        return Ok(CpusetJson {
            cpus: list("cpuset.cpus.effective")?,
            mems: list("cpuset.mems.effective")?,
            ..Default::default()
        });
    }
    let num = |f: &str| -> Result<u64> {
        Ok(read(&format!("cpuset.{f}"))?
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0))
    };
    Ok(CpusetJson {
        cpus: list("cpuset.cpus")?,
        cpu_exclusive: num("cpu_exclusive")?,
        mems: list("cpuset.mems")?,
        mem_hardwall: num("mem_hardwall")?,
        mem_exclusive: num("mem_exclusive")?,
        memory_migrate: num("memory_migrate")?,
        memory_spread_page: num("memory_spread_page")?,
        memory_spread_slab: num("memory_spread_slab")?,
        memory_pressure: num("memory_pressure")?,
        sched_load_balance: num("sched_load_balance")?,
        sched_relax_domain_level: read("cpuset.sched_relax_domain_level")?
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0),
    })
}

/// The interfaces of the container's own network namespace (loopback left out), from the init's
/// /proc/PID/net/dev; None when the container shares our network namespace or has nothing but lo
/// (runc prints null then).
fn network_interfaces(pid: i32, pidfd: &OwnedFd) -> Option<Vec<NetworkInterface>> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/net").ok()?;
    if theirs == ours {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    // The pid was the init's when the pidfd was opened; if the init has exited since, it may name
    // another process now: drop what was read.
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).ok()? != 0 {
        return None;
    }
    let list = parse_net_dev(&text);
    (!list.is_empty()).then_some(list)
}

fn parse_net_dev(text: &str) -> Vec<NetworkInterface> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if name == "lo" || v.len() < 16 {
            continue;
        }
        out.push(NetworkInterface {
            name: name.to_string(),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    out
}

// ---------------------------------------------------------------- OOM

/// What wakes us up when the kernel reports memory pressure in the cgroup.
enum OomWatch {
    /// v1: eventfd registered with cgroup.event_control on memory.oom_control.
    EventFd(EventFd, #[allow(dead_code)] std::fs::File),
    /// v2: IN_MODIFY on memory.events.
    Inotify(Inotify),
    /// No memory controller (or registration failed): the counter is checked every interval.
    None,
}

impl OomWatch {
    fn new(cg: &Cgroup) -> OomWatch {
        let dir = |ctrl: &str| -> Option<PathBuf> {
            cg.paths()
                .into_iter()
                .find(|(c, _)| c == ctrl)
                .map(|(_, p)| p)
        };
        let res = match cg.config().mode {
            Mode::Unified => dir("").map(|d| Self::inotify(&d)),
            _ => dir("memory").map(|d| Self::eventfd(&d)),
        };
        match res {
            Some(Ok(w)) => w,
            Some(Err(e)) => {
                crate::debug!("events: no OOM notifications ({e:#}); checking at every interval");
                OomWatch::None
            }
            None => OomWatch::None,
        }
    }

    fn eventfd(d: &Path) -> Result<OomWatch> {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .context("eventfd")?;
        let ctl = std::fs::File::open(d.join("memory.oom_control"))
            .with_context(|| format!("opening {}/memory.oom_control", d.display()))?;
        let line = format!("{} {}", efd.as_fd().as_raw_fd(), ctl.as_raw_fd());
        std::fs::write(d.join("cgroup.event_control"), line)
            .with_context(|| format!("registering with {}/cgroup.event_control", d.display()))?;
        Ok(OomWatch::EventFd(efd, ctl))
    }

    fn inotify(d: &Path) -> Result<OomWatch> {
        let ino = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .context("inotify_init")?;
        ino.add_watch(&d.join("memory.events"), AddWatchFlags::IN_MODIFY)
            .with_context(|| format!("watching {}/memory.events", d.display()))?;
        Ok(OomWatch::Inotify(ino))
    }

    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match self {
            OomWatch::EventFd(e, _) => Some(e.as_fd()),
            OomWatch::Inotify(i) => Some(i.as_fd()),
            OomWatch::None => None,
        }
    }

    fn drain(&self) {
        match self {
            OomWatch::EventFd(e, _) => {
                let _ = e.read();
            }
            OomWatch::Inotify(i) => while matches!(i.read_events(), Ok(v) if !v.is_empty()) {},
            OomWatch::None => {}
        }
    }
}

/// The cgroup's OOM kill counter, and one `oom` event per kill seen.
struct OomCounter {
    last: Option<u64>,
}

impl OomCounter {
    fn new(cg: &Cgroup) -> OomCounter {
        OomCounter {
            last: cg.oom_kill_count().ok(),
        }
    }

    /// `notified`: the kernel just signalled an OOM. Without a kill counter (old kernels), that
    /// signal alone makes an event, as runc reports it.
    fn check(&mut self, cg: &Cgroup, id: &str, notified: bool) -> Result<()> {
        let oom = Event {
            typ: "oom",
            id,
            data: None,
        };
        match (cg.oom_kill_count(), self.last) {
            (Ok(now), Some(before)) => {
                // a burst of kills between two looks is reported kill by kill (bounded)
                for _ in 0..now.saturating_sub(before).min(64) {
                    emit(&oom)?;
                }
                self.last = Some(now);
            }
            (Ok(now), None) => self.last = Some(now),
            (Err(_), _) if notified && cg.paths().iter().all(|(_, p)| p.exists()) => emit(&oom)?,
            (Err(_), _) => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- durations

/// A Go duration (`time.ParseDuration`): "5s", "1.5h", "1m30s", "300ms", "-2us", "0".
pub fn parse_go_duration(s: &str) -> Result<Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        bail!("invalid duration {s:?}");
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_end);
        if num.is_empty() || num == "." {
            bail!("invalid duration {s:?}");
        }
        let value: f64 = num
            .parse()
            .with_context(|| format!("invalid duration {s:?}"))?;
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_end);
        let ns = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => bail!("missing unit in duration {s:?}"),
            u => bail!("unknown unit {u:?} in duration {s:?}"),
        };
        total += value * ns;
        rest = after;
    }
    if neg && total > 0.0 {
        // negative intervals are refused by the caller like zero
        return Ok(Duration::ZERO);
    }
    if total > u64::MAX as f64 {
        bail!("duration {s:?} is too long");
    }
    Ok(Duration::from_nanos(total.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_go_duration("5s").unwrap(), ms(5000));
        assert_eq!(parse_go_duration("100ms").unwrap(), ms(100));
        assert_eq!(parse_go_duration("1m30s").unwrap(), ms(90_000));
        assert_eq!(parse_go_duration("1.5h").unwrap(), ms(5_400_000));
        assert_eq!(
            parse_go_duration("250us").unwrap(),
            Duration::from_micros(250)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_go_duration("-1s").unwrap(), Duration::ZERO);
        for bad in ["", "5", "s", "5x", "1..2s", "five", "-"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn cpuset_lists() {
        assert_eq!(parse_list("0-2,4\n").unwrap(), vec![0, 1, 2, 4]);
        assert_eq!(parse_list("").unwrap(), Vec::<u16>::new());
        assert!(parse_list("a").is_err());
    }

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
";
        assert_eq!(
            parse_net_dev(text),
            vec![NetworkInterface {
                name: "eth0".into(),
                rx_bytes: 2000,
                rx_packets: 20,
                rx_errors: 1,
                rx_dropped: 2,
                tx_bytes: 3000,
                tx_packets: 30,
                tx_errors: 3,
                tx_dropped: 4,
            }]
        );
    }

    #[test]
    fn stats_json_has_runc_field_names() {
        let mut st = Stats::default();
        st.pids.current = 3;
        st.memory.memory.limit = 100;
        st.memory.memory.usage = 10;
        st.memory.memswap.limit = 50;
        st.memory.memswap.usage = 1;
        st.cpu.usage.usage_total = 7;
        let v = serde_json::to_value(convert(&st, Mode::Unified)).unwrap();
        assert_eq!(v["pids"], serde_json::json!({"current": 3}));
        assert_eq!(
            v["memory"]["usage"],
            serde_json::json!({"limit": 100, "usage": 10, "failcnt": 0})
        );
        // v2 swap is reported as memory+swap, like v1's memsw
        assert_eq!(
            v["memory"]["swap"],
            serde_json::json!({"limit": 150, "usage": 11, "failcnt": 0})
        );
        assert_eq!(
            v["cpu"],
            serde_json::json!({"usage": {"total": 7, "kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(v["blkio"], serde_json::json!({}));
        assert_eq!(v["intel_rdt"], serde_json::json!({}));
        assert!(v["network_interfaces"].is_null());
    }
}
