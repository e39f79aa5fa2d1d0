//! Statistics into libcgroups' `Stats` types. Like runc, a controller that is not there
//! (not mounted, not enabled, old kernel) leaves its part at the default instead of failing.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use libcgroups::stats::{
    BlkioDeviceStat, CpuUsage, HugeTlbStats, MemoryData, MemoryStats, PSIStats, Stats,
};

use super::{fsutil, Hierarchy};

fn psi(d: &Path, file: &str) -> Result<PSIStats> {
    if d.join(file).exists() {
        libcgroups::stats::psi_stats(&d.join(file))
            .with_context(|| format!("{}/{file}", d.display()))
    } else {
        Ok(PSIStats::default())
    }
}

fn owned_map(content: &str) -> HashMap<String, u64> {
    fsutil::flat_keyed(content)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn page_sizes() -> Result<Vec<String>> {
    libcgroups::stats::supported_page_sizes().context("cannot list huge page sizes")
}

// ---------------------------------------------------------------- v1

pub(crate) fn v1(v1: &BTreeMap<String, Hierarchy>, unified: Option<&Path>) -> Result<Stats> {
    let mut st = Stats::default();
    let dir = |c: &str| v1.get(c).map(|h| h.path.as_path()).filter(|p| p.exists());
    if let Some(d) = dir("cpu") {
        if let Some(s) = fsutil::read_opt(d, "cpu.stat")? {
            let t = &mut st.cpu.throttling;
            t.periods = fsutil::keyed_value(&s, "nr_periods").unwrap_or(0);
            t.throttled_periods = fsutil::keyed_value(&s, "nr_throttled").unwrap_or(0);
            t.throttled_time = fsutil::keyed_value(&s, "throttled_time").unwrap_or(0);
        }
    }
    if let Some(d) = dir("cpuacct") {
        st.cpu.usage = cpuacct(d)?;
    }
    if let Some(d) = dir("pids") {
        st.pids = libcgroups::stats::pid_stats(d)
            .with_context(|| format!("pids stats of {}", d.display()))?;
    }
    if let Some(d) = dir("memory") {
        st.memory = v1_memory(d)?;
    }
    if let Some(d) = dir("blkio") {
        st.blkio = v1_blkio(d)?;
    }
    if let Some(d) = dir("hugetlb") {
        for size in page_sizes()? {
            let f = |s: &str| format!("hugetlb.{size}.{s}");
            if !d.join(f("usage_in_bytes")).exists() {
                continue;
            }
            st.hugetlb.insert(
                size.clone(),
                HugeTlbStats {
                    usage: fsutil::read_u64(d, &f("usage_in_bytes"))?,
                    max_usage: fsutil::read_u64(d, &f("max_usage_in_bytes"))?,
                    fail_count: fsutil::read_u64(d, &f("failcnt"))?,
                },
            );
        }
    } else if let Some(u) = unified.filter(|u| u.exists()) {
        st.hugetlb = v2_hugetlb(u)?;
    }
    Ok(st)
}

fn cpuacct(d: &Path) -> Result<CpuUsage> {
    let mut u = CpuUsage {
        usage_total: fsutil::read_u64_opt(d, "cpuacct.usage")?.unwrap_or(0),
        ..Default::default()
    };
    let list = |f: &str| -> Result<Vec<u64>> {
        Ok(fsutil::read_opt(d, f)?
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default())
    };
    u.per_core_usage_total = list("cpuacct.usage_percpu")?;
    u.per_core_usage_user = list("cpuacct.usage_percpu_user")?;
    u.per_core_usage_kernel = list("cpuacct.usage_percpu_sys")?;
    if let Some(s) = fsutil::read_opt(d, "cpuacct.stat")? {
        // USER_HZ ticks -> nanoseconds
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let hz = if hz > 0 { hz as u64 } else { 100 };
        let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000 / hz);
        u.usage_user = ns(fsutil::keyed_value(&s, "user").unwrap_or(0));
        u.usage_kernel = ns(fsutil::keyed_value(&s, "system").unwrap_or(0));
    }
    Ok(u)
}

fn v1_memory_data(d: &Path, prefix: &str) -> Result<MemoryData> {
    let f = |s: &str| format!("{prefix}.{s}");
    if !d.join(f("usage_in_bytes")).exists() {
        return Ok(MemoryData::default());
    }
    Ok(MemoryData {
        usage: fsutil::read_u64(d, &f("usage_in_bytes"))?,
        max_usage: fsutil::read_u64_opt(d, &f("max_usage_in_bytes"))?.unwrap_or(0),
        fail_count: fsutil::read_u64_opt(d, &f("failcnt"))?.unwrap_or(0),
        limit: fsutil::read_u64_opt(d, &f("limit_in_bytes"))?.unwrap_or(0),
    })
}

fn v1_memory(d: &Path) -> Result<MemoryStats> {
    let stats = owned_map(&fsutil::read(d, "memory.stat")?);
    Ok(MemoryStats {
        memory: v1_memory_data(d, "memory")?,
        memswap: v1_memory_data(d, "memory.memsw")?,
        kernel: v1_memory_data(d, "memory.kmem")?,
        kernel_tcp: v1_memory_data(d, "memory.kmem.tcp")?,
        cache: stats
            .get("total_cache")
            .or(stats.get("cache"))
            .copied()
            .unwrap_or(0),
        hierarchy: fsutil::read_opt(d, "memory.use_hierarchy")?.is_some_and(|s| s.trim() == "1"),
        stats,
        psi: PSIStats::default(),
    })
}

/// "8:0 Read 4096" lines (the "Total" line has no device and is skipped).
fn blkio_entries(d: &Path, file: &str) -> Result<Vec<BlkioDeviceStat>> {
    let Some(s) = fsutil::read_opt(d, file)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (dev, op, val) = match f.as_slice() {
            [dev, op, val] => (*dev, Some(op.to_string()), *val),
            [dev, val] => (*dev, None, *val),
            _ => continue,
        };
        let Some((maj, min)) = dev.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(value)) = (maj.parse(), min.parse(), val.parse()) else {
            continue;
        };
        out.push(BlkioDeviceStat {
            major,
            minor,
            op_type: op,
            value,
        });
    }
    Ok(out)
}

fn v1_blkio(d: &Path) -> Result<libcgroups::stats::BlkioStats> {
    let mut b = libcgroups::stats::BlkioStats::default();
    // CFQ/BFQ statistics when the kernel has them, else the throttling policy's counters
    let pick = |a: &str, b: &str| -> Result<Vec<BlkioDeviceStat>> {
        let v = blkio_entries(d, a)?;
        if v.is_empty() {
            blkio_entries(d, b)
        } else {
            Ok(v)
        }
    };
    b.service_bytes = pick(
        "blkio.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes_recursive",
    )?;
    b.serviced = pick(
        "blkio.io_serviced_recursive",
        "blkio.throttle.io_serviced_recursive",
    )?;
    b.time = blkio_entries(d, "blkio.time_recursive")?;
    b.sectors = blkio_entries(d, "blkio.sectors_recursive")?;
    b.service_time = blkio_entries(d, "blkio.io_service_time_recursive")?;
    b.wait_time = blkio_entries(d, "blkio.io_wait_time_recursive")?;
    b.queued = blkio_entries(d, "blkio.io_queued_recursive")?;
    b.merged = blkio_entries(d, "blkio.io_merged_recursive")?;
    Ok(b)
}

// ---------------------------------------------------------------- v2

pub(crate) fn v2(d: &Path) -> Result<Stats> {
    let mut st = Stats::default();
    if let Some(s) = fsutil::read_opt(d, "cpu.stat")? {
        let k = |key: &str| fsutil::keyed_value(&s, key).unwrap_or(0);
        st.cpu.usage.usage_total = k("usage_usec") * 1000;
        st.cpu.usage.usage_user = k("user_usec") * 1000;
        st.cpu.usage.usage_kernel = k("system_usec") * 1000;
        st.cpu.throttling.periods = k("nr_periods");
        st.cpu.throttling.throttled_periods = k("nr_throttled");
        st.cpu.throttling.throttled_time = k("throttled_usec") * 1000;
    }
    st.cpu.psi = psi(d, "cpu.pressure")?;
    if d.join("pids.current").exists() {
        st.pids = libcgroups::stats::pid_stats(d)
            .with_context(|| format!("pids stats of {}", d.display()))?;
    }
    if let Some(s) = fsutil::read_opt(d, "memory.stat")? {
        let events = fsutil::read_opt(d, "memory.events")?.unwrap_or_default();
        let swap_events = fsutil::read_opt(d, "memory.swap.events")?.unwrap_or_default();
        let stats = owned_map(&s);
        st.memory = MemoryStats {
            memory: MemoryData {
                usage: fsutil::read_u64(d, "memory.current")?,
                max_usage: fsutil::read_u64_opt(d, "memory.peak")?.unwrap_or(0),
                fail_count: fsutil::keyed_value(&events, "oom").unwrap_or(0),
                limit: fsutil::read_u64(d, "memory.max")?,
            },
            memswap: MemoryData {
                usage: fsutil::read_u64_opt(d, "memory.swap.current")?.unwrap_or(0),
                max_usage: fsutil::read_u64_opt(d, "memory.swap.peak")?.unwrap_or(0),
                fail_count: fsutil::keyed_value(&swap_events, "fail").unwrap_or(0),
                limit: fsutil::read_u64_opt(d, "memory.swap.max")?.unwrap_or(0),
            },
            cache: stats.get("file").copied().unwrap_or(0),
            hierarchy: true,
            stats,
            psi: psi(d, "memory.pressure")?,
            ..Default::default()
        };
    }
    if let Some(s) = fsutil::read_opt(d, "io.stat")? {
        for l in s.lines() {
            let mut f = l.split_whitespace();
            let Some((maj, min)) = f.next().and_then(|dev| dev.split_once(':')) else {
                continue;
            };
            let (Ok(major), Ok(minor)) = (maj.parse::<u64>(), min.parse::<u64>()) else {
                continue;
            };
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = v.parse() else { continue };
                let (list, op) = match k {
                    "rbytes" => (&mut st.blkio.service_bytes, "Read"),
                    "wbytes" => (&mut st.blkio.service_bytes, "Write"),
                    "rios" => (&mut st.blkio.serviced, "Read"),
                    "wios" => (&mut st.blkio.serviced, "Write"),
                    _ => continue,
                };
                list.push(BlkioDeviceStat {
                    major,
                    minor,
                    op_type: Some(op.to_string()),
                    value,
                });
            }
        }
    }
    st.blkio.psi = psi(d, "io.pressure")?;
    st.hugetlb = v2_hugetlb(d)?;
    Ok(st)
}

fn v2_hugetlb(d: &Path) -> Result<HashMap<String, HugeTlbStats>> {
    let mut out = HashMap::new();
    for size in page_sizes()? {
        let Some(cur) = fsutil::read_u64_opt(d, &format!("hugetlb.{size}.current"))? else {
            continue;
        };
        let events = fsutil::read_opt(d, &format!("hugetlb.{size}.events"))?.unwrap_or_default();
        out.insert(
            size,
            HugeTlbStats {
                usage: cur,
                max_usage: 0,
                fail_count: fsutil::keyed_value(&events, "max").unwrap_or(0),
            },
        );
    }
    Ok(out)
}
