//! A container's cgroup, found from its init process (`/proc/PID/cgroup` against the cgroup mounts, as
//! containerd's runc shim loads it, through the runtime's own host layout): metrics in containerd's types (cgroups v1 `Metrics` on hosts with
//! v1 controllers, hybrid ones included; v2 `Metrics` on pure v2 hosts) and OOM notifications (v1:
//! an eventfd registered on `memory.oom_control`; v2: inotify on `memory.events`, `oom_kill` rising).

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use containerd_shim_protos::cgroups::metrics as v1;
use containerd_shim_protos::cgroups_v2::metrics as v2;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

pub const V1_METRICS: &str = "io.containerd.cgroups.v1.Metrics";
pub const V2_METRICS: &str = "io.containerd.cgroups.v2.Metrics";

/// Where one container's cgroup lives in each hierarchy.
#[derive(Debug, Clone, Default)]
pub struct Cgroup {
    /// v1 controller → directory.
    pub v1: HashMap<String, PathBuf>,
    /// The unified hierarchy's directory.
    pub v2: Option<PathBuf>,
}

impl Cgroup {
    /// The cgroup of process `pid`.
    pub fn of_pid(pid: i32) -> Result<Cgroup> {
        let (v1, v2) = berth::cgroups::process_cgroup_dirs(pid)?;
        Ok(Cgroup {
            v1: v1.into_iter().collect(),
            v2,
        })
    }

    /// Whether metrics and OOM come from v1 (the host has a v1 memory controller).
    pub fn is_v1(&self) -> bool {
        self.v1.contains_key("memory")
    }

    fn v1_file(&self, ctrl: &str, file: &str) -> Option<String> {
        fs::read_to_string(self.v1.get(ctrl)?.join(file)).ok()
    }

    fn v2_file(&self, file: &str) -> Option<String> {
        fs::read_to_string(self.v2.as_ref()?.join(file)).ok()
    }

    /// Metrics as containerd's `Any` (type URL `io.containerd.cgroups.v{1,2}.Metrics`).
    pub fn metrics(&self) -> Result<Any> {
        let (type_url, value) = if self.is_v1() {
            (V1_METRICS, self.metrics_v1().write_to_bytes()?)
        } else if self.v2.is_some() {
            (V2_METRICS, self.metrics_v2().write_to_bytes()?)
        } else {
            bail!("no cgroup found for the container");
        };
        Ok(Any {
            type_url: type_url.to_string(),
            value,
            ..Default::default()
        })
    }

    pub fn metrics_v1(&self) -> v1::Metrics {
        let mut m = v1::Metrics::new();
        if let Some(cur) = self.v1_file("pids", "pids.current") {
            m.pids = MessageField::some(v1::PidsStat {
                current: num(&cur),
                limit: self
                    .v1_file("pids", "pids.max")
                    .map(|s| num(&s))
                    .unwrap_or(0),
                ..Default::default()
            });
        }
        if let Some(total) = self.v1_file("cpuacct", "cpuacct.usage") {
            let stat_s = self.v1_file("cpuacct", "cpuacct.stat").unwrap_or_default();
            let stat = kv(&stat_s);
            // cpuacct.stat counts USER_HZ ticks (100 per second).
            let tick_ns = 1_000_000_000 / 100;
            let usage = v1::CPUUsage {
                total: num(&total),
                user: stat.get("user").copied().unwrap_or(0) * tick_ns,
                kernel: stat.get("system").copied().unwrap_or(0) * tick_ns,
                per_cpu: self
                    .v1_file("cpuacct", "cpuacct.usage_percpu")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(num)
                    .collect(),
                ..Default::default()
            };
            let t_s = self.v1_file("cpu", "cpu.stat").unwrap_or_default();
            let t = kv(&t_s);
            let throttling = v1::Throttle {
                periods: t.get("nr_periods").copied().unwrap_or(0),
                throttled_periods: t.get("nr_throttled").copied().unwrap_or(0),
                throttled_time: t.get("throttled_time").copied().unwrap_or(0),
                ..Default::default()
            };
            m.cpu = MessageField::some(v1::CPUStat {
                usage: MessageField::some(usage),
                throttling: MessageField::some(throttling),
                ..Default::default()
            });
        }
        if let Some(stat) = self.v1_file("memory", "memory.stat") {
            let s = kv(&stat);
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            let entry = |prefix: &str| -> MessageField<v1::MemoryEntry> {
                let f = |n: &str| self.v1_file("memory", &format!("{prefix}.{n}"));
                match f("usage_in_bytes") {
                    None => MessageField::none(),
                    Some(u) => MessageField::some(v1::MemoryEntry {
                        usage: num(&u),
                        limit: f("limit_in_bytes").map(|v| num(&v)).unwrap_or(0),
                        max: f("max_usage_in_bytes").map(|v| num(&v)).unwrap_or(0),
                        failcnt: f("failcnt").map(|v| num(&v)).unwrap_or(0),
                        ..Default::default()
                    }),
                }
            };
            m.memory = MessageField::some(v1::MemoryStat {
                cache: g("cache"),
                rss: g("rss"),
                rss_huge: g("rss_huge"),
                mapped_file: g("mapped_file"),
                dirty: g("dirty"),
                writeback: g("writeback"),
                pg_pg_in: g("pgpgin"),
                pg_pg_out: g("pgpgout"),
                pg_fault: g("pgfault"),
                pg_maj_fault: g("pgmajfault"),
                inactive_anon: g("inactive_anon"),
                active_anon: g("active_anon"),
                inactive_file: g("inactive_file"),
                active_file: g("active_file"),
                unevictable: g("unevictable"),
                hierarchical_memory_limit: g("hierarchical_memory_limit"),
                hierarchical_swap_limit: g("hierarchical_memsw_limit"),
                total_cache: g("total_cache"),
                total_rss: g("total_rss"),
                total_rss_huge: g("total_rss_huge"),
                total_mapped_file: g("total_mapped_file"),
                total_dirty: g("total_dirty"),
                total_writeback: g("total_writeback"),
                total_pg_pg_in: g("total_pgpgin"),
                total_pg_pg_out: g("total_pgpgout"),
                total_pg_fault: g("total_pgfault"),
                total_pg_maj_fault: g("total_pgmajfault"),
                total_inactive_anon: g("total_inactive_anon"),
                total_active_anon: g("total_active_anon"),
                total_inactive_file: g("total_inactive_file"),
                total_active_file: g("total_active_file"),
                total_unevictable: g("total_unevictable"),
                usage: entry("memory"),
                swap: entry("memory.memsw"),
                kernel: entry("memory.kmem"),
                kernel_tcp: entry("memory.kmem.tcp"),
                ..Default::default()
            });
            let oc_s = self
                .v1_file("memory", "memory.oom_control")
                .unwrap_or_default();
            let oc = kv(&oc_s);
            m.memory_oom_control = MessageField::some(v1::MemoryOomControl {
                oom_kill_disable: oc.get("oom_kill_disable").copied().unwrap_or(0),
                under_oom: oc.get("under_oom").copied().unwrap_or(0),
                oom_kill: oc.get("oom_kill").copied().unwrap_or(0),
                ..Default::default()
            });
        }
        m
    }

    pub fn metrics_v2(&self) -> v2::Metrics {
        let mut m = v2::Metrics::new();
        if let Some(cur) = self.v2_file("pids.current") {
            m.pids = MessageField::some(v2::PidsStat {
                current: num(&cur),
                limit: self.v2_file("pids.max").map(|s| num(&s)).unwrap_or(0),
                ..Default::default()
            });
        }
        if let Some(stat) = self.v2_file("cpu.stat") {
            let s = kv(&stat);
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            m.cpu = MessageField::some(v2::CPUStat {
                usage_usec: g("usage_usec"),
                user_usec: g("user_usec"),
                system_usec: g("system_usec"),
                nr_periods: g("nr_periods"),
                nr_throttled: g("nr_throttled"),
                throttled_usec: g("throttled_usec"),
                nr_bursts: g("nr_bursts"),
                burst_usec: g("burst_usec"),
                ..Default::default()
            });
        }
        if let Some(stat) = self.v2_file("memory.stat") {
            let s = kv(&stat);
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            let f = |n: &str| self.v2_file(n).map(|v| num(&v)).unwrap_or(0);
            m.memory = MessageField::some(v2::MemoryStat {
                anon: g("anon"),
                file: g("file"),
                kernel_stack: g("kernel_stack"),
                slab: g("slab"),
                sock: g("sock"),
                shmem: g("shmem"),
                file_mapped: g("file_mapped"),
                file_dirty: g("file_dirty"),
                file_writeback: g("file_writeback"),
                anon_thp: g("anon_thp"),
                inactive_anon: g("inactive_anon"),
                active_anon: g("active_anon"),
                inactive_file: g("inactive_file"),
                active_file: g("active_file"),
                unevictable: g("unevictable"),
                slab_reclaimable: g("slab_reclaimable"),
                slab_unreclaimable: g("slab_unreclaimable"),
                pgfault: g("pgfault"),
                pgmajfault: g("pgmajfault"),
                workingset_refault: g("workingset_refault"),
                workingset_activate: g("workingset_activate"),
                workingset_nodereclaim: g("workingset_nodereclaim"),
                pgrefill: g("pgrefill"),
                pgscan: g("pgscan"),
                pgsteal: g("pgsteal"),
                pgactivate: g("pgactivate"),
                pgdeactivate: g("pgdeactivate"),
                pglazyfree: g("pglazyfree"),
                pglazyfreed: g("pglazyfreed"),
                thp_fault_alloc: g("thp_fault_alloc"),
                thp_collapse_alloc: g("thp_collapse_alloc"),
                usage: f("memory.current"),
                usage_limit: f("memory.max"),
                swap_usage: f("memory.swap.current"),
                swap_limit: f("memory.swap.max"),
                max_usage: f("memory.peak"),
                ..Default::default()
            });
        }
        if let Some(ev) = self.v2_file("memory.events") {
            let s = kv(&ev);
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            m.memory_events = MessageField::some(v2::MemoryEvents {
                low: g("low"),
                high: g("high"),
                max: g("max"),
                oom: g("oom"),
                oom_kill: g("oom_kill"),
                oom_group_kill: g("oom_group_kill"),
                ..Default::default()
            });
        }
        m
    }

    /// Starts watching for OOM kills in this cgroup.
    pub fn watch_oom(&self) -> Result<OomWatch> {
        if let Some(dir) = self.v1.get("memory") {
            let efd =
                EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                    .context("eventfd")?;
            let ctl = fs::File::open(dir.join("memory.oom_control"))
                .with_context(|| format!("opening {}/memory.oom_control", dir.display()))?;
            fs::write(
                dir.join("cgroup.event_control"),
                format!("{} {}", efd.as_fd().as_raw_fd(), ctl.as_raw_fd()),
            )
            .with_context(|| format!("registering for OOM events in {}", dir.display()))?;
            return Ok(OomWatch::V1 {
                efd,
                _ctl: ctl,
                dir: dir.clone(),
            });
        }
        let Some(dir) = &self.v2 else {
            bail!("no memory cgroup to watch");
        };
        let ino =
            Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).context("inotify")?;
        let events = dir.join("memory.events");
        ino.add_watch(&events, AddWatchFlags::IN_MODIFY)
            .with_context(|| format!("watching {}", events.display()))?;
        let last = oom_kills(&events);
        Ok(OomWatch::V2 { ino, events, last })
    }
}

fn oom_kills(events: &Path) -> u64 {
    kv(&fs::read_to_string(events).unwrap_or_default())
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

/// One container's OOM notification source (registered in the main loop's epoll).
pub enum OomWatch {
    V1 {
        efd: EventFd,
        _ctl: fs::File,
        dir: PathBuf,
    },
    V2 {
        ino: Inotify,
        events: PathBuf,
        last: u64,
    },
}

impl OomWatch {
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match self {
            OomWatch::V1 { efd, .. } => efd.as_fd(),
            OomWatch::V2 { ino, .. } => ino.as_fd(),
        }
    }

    /// Drains the notification; true if it means an OOM (not the cgroup going away).
    pub fn fired(&mut self) -> bool {
        match self {
            OomWatch::V1 { efd, dir, .. } => {
                let _ = efd.read();
                // The eventfd also fires when the cgroup is removed.
                dir.join("memory.oom_control").exists()
            }
            OomWatch::V2 { ino, events, last } => {
                let _ = ino.read_events();
                let now = oom_kills(events);
                let fired = now > *last;
                *last = now;
                fired
            }
        }
    }
}

/// "key value" lines → map (numbers only).
fn kv(s: &str) -> HashMap<&str, u64> {
    s.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?, it.next()?.parse().ok()?))
        })
        .collect()
}

/// A number, "max" → 0 (no limit), as containerd reports it.
fn num(s: &str) -> u64 {
    s.trim().parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cgroup_has_metrics() {
        let cg = Cgroup::of_pid(std::process::id() as i32).unwrap();
        assert!(cg.is_v1() || cg.v2.is_some(), "{cg:?}");
        let any = cg.metrics().unwrap();
        if cg.is_v1() {
            assert_eq!(any.type_url, V1_METRICS);
            let m = v1::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(m.memory.usage.usage > 0, "{m:?}");
            assert!(m.cpu.usage.total > 0);
        } else {
            assert_eq!(any.type_url, V2_METRICS);
            let m = v2::Metrics::parse_from_bytes(&any.value).unwrap();
            assert!(m.memory.usage > 0 || m.cpu.usage_usec > 0, "{m:?}");
        }
    }

    #[test]
    fn kv_and_num() {
        let m = kv("cache 10\nrss 20\nbad x\n");
        assert_eq!(m.get("rss"), Some(&20));
        assert_eq!(m.get("bad"), None);
        assert_eq!(num("max\n"), 0);
        assert_eq!(num("123\n"), 123);
    }
}
