//! `berth update ID [--resources FILE|-] [--memory 64m ...]`: change the resource limits of a
//! created, running or paused container.
//!
//! The request (a linux.resources JSON object, or runc's flags) is merged into the spec stored in
//! the container's state directory, the sections it touches are validated with the cgroups
//! module's checks and written (device rules are never touched, as in runc), and only then is the
//! merged spec stored. A bad value fails with an error naming it and changes nothing: values are
//! parsed and checked first, and if the kernel refuses one half-way the cgroups module puts back
//! every file the update may have written.
//!
//! What can change is runc 1.1's set: memory limit/reservation/swap/checkBeforeUpdate, every cpu
//! field, blockIO.weight, pids.limit, unified. Other fields of a resources file are ignored with a
//! warning (devices silently: containerd sends the whole linux.resources).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, Spec};

use crate::cgroups::{split_updatable, Cgroup};
use crate::cli::UpdateArgs;
use crate::container::{Container, Status};
use crate::state::{self, StateDir};

pub fn run(root: &Path, a: &UpdateArgs) -> Result<()> {
    let dir = StateDir::open(root, &a.id)?;
    let c = Container::load(root, &a.id)?;
    let request = request(a)?;
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by berth");
    }
    match c.status() {
        Status::Created | Status::Running | Status::Paused => {}
        Status::Stopped => bail!("container {:?} is not running", a.id),
        Status::Creating => bail!("container {:?} is still being created", a.id),
    }
    let (request, ignored) = split_updatable(&request);
    let ignored: Vec<&str> = ignored.into_iter().filter(|f| *f != "devices").collect();
    if !ignored.is_empty() {
        crate::warn!(
            "update: ignoring linux.resources {} (berth, like runc, only updates memory limit/reservation/swap, cpu, blockIO.weight, pids and unified)",
            ignored.join(", ")
        );
    }
    let mut spec = state::read_config(&dir.dir)?;
    let stored = stored_resources(&spec);
    let (merged, delta) = merge(&stored, &request);
    if delta == LinuxResources::default() {
        return Ok(());
    }
    Cgroup::open(&c.state.cgroup)?
        .update(&delta)
        .with_context(|| format!("updating the resources of container {:?}", a.id))?;
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux.set_resources(Some(merged));
    spec.set_linux(Some(linux));
    dir.write_config(&spec)
        .context("the cgroup was updated but storing the new resources failed")
}

fn stored_resources(spec: &Spec) -> LinuxResources {
    spec.linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default()
}

/// The requested resources: the JSON of --resources (other flags ignored, as runc), or the flags.
fn request(a: &UpdateArgs) -> Result<LinuxResources> {
    if let Some(src) = &a.resources {
        let mut text = String::new();
        if src == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the resources from stdin")?;
        } else {
            text = std::fs::read_to_string(src)
                .with_context(|| format!("reading the resources file {src}"))?;
        }
        let what = if src == "-" { "stdin" } else { src.as_str() };
        return parse_resources(&text).with_context(|| {
            format!("parsing the resources from {what} (a linux.resources JSON object)")
        });
    }
    let mut r = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    let mut cpu = LinuxCpu::default();
    if let Some(w) = int::<i64>("blkio-weight", &a.blkio_weight)?.filter(|w| *w != 0) {
        let w = u16::try_from(w).map_err(|_| {
            anyhow::anyhow!("invalid value for blkio-weight: {w} is out of range 10-1000")
        })?;
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
    cpu.set_period(int("cpu-period", &a.cpu_period)?);
    cpu.set_quota(int("cpu-quota", &a.cpu_quota)?);
    cpu.set_burst(int("cpu-burst", &a.cpu_burst)?);
    cpu.set_shares(int("cpu-share", &a.cpu_share)?);
    cpu.set_realtime_period(int("cpu-rt-period", &a.cpu_rt_period)?);
    cpu.set_realtime_runtime(int("cpu-rt-runtime", &a.cpu_rt_runtime)?);
    cpu.set_idle(int("cpu-idle", &a.cpu_idle)?);
    cpu.set_cpus(a.cpuset_cpus.clone().filter(|s| !s.is_empty()));
    cpu.set_mems(a.cpuset_mems.clone().filter(|s| !s.is_empty()));
    mem.set_limit(bytes("memory", &a.memory)?);
    mem.set_swap(bytes("memory-swap", &a.memory_swap)?);
    mem.set_reservation(bytes("memory-reservation", &a.memory_reservation)?);
    for (flag, v) in [
        ("kernel-memory", &a.kernel_memory),
        ("kernel-memory-tcp", &a.kernel_memory_tcp),
    ] {
        if v.as_deref().is_some_and(|s| !s.is_empty()) {
            crate::warn!(
                "update: --{flag} is ignored (kernel memory limits are obsolete, as in runc)"
            );
        }
    }
    if let Some(p) = int::<i64>("pids-limit", &a.pids_limit)? {
        r.set_pids(Some(LinuxPids::default().set_limit(p).to_owned()));
    }
    if cpu != LinuxCpu::default() {
        r.set_cpu(Some(cpu));
    }
    if mem != LinuxMemory::default() {
        r.set_memory(Some(mem));
    }
    Ok(r)
}

/// A linux.resources object; a field of the wrong type is named (`memory.limit: ...`).
fn parse_resources(text: &str) -> Result<LinuxResources> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    crate::config::normalize_pids(&mut value, true);
    crate::config::from_value(&value)
}

fn int<T: std::str::FromStr>(flag: &str, v: &Option<String>) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| anyhow::anyhow!("invalid value for {flag}: {s:?}: {e}")),
    }
}

fn bytes(flag: &str, v: &Option<String>) -> Result<Option<i64>> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some("-1") => Ok(Some(-1)),
        Some(s) => ram_in_bytes(s)
            .map(Some)
            .with_context(|| format!("invalid value for {flag}")),
    }
}

/// A size as runc (docker/go-units RAMInBytes) takes it: a decimal number, an optional space, and
/// an optional binary unit k/m/g/t/p with optional i and b ("64m", "1.5GiB", "512 kb", "100").
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let bad =
        || anyhow::anyhow!("invalid size: {s:?} (use bytes or a number with k, m, g, t or p)");
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(num_end);
    let int_ok = num
        .split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if num.is_empty() || num.matches('.').count() > 1 || !int_ok {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mut unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    if unit.ends_with('b') {
        unit.pop();
    }
    if unit.len() == 2 && unit.ends_with('i') {
        unit.pop();
    }
    let mult: f64 = match unit.as_str() {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    let v = value * mult;
    if v >= i64::MAX as f64 {
        bail!("invalid size: {s:?} is too large");
    }
    Ok(v as i64)
}

/// Merge `req` into `stored`: returns the merged resources (to store) and the part to write to the
/// cgroup (each section the request touches, whole as merged, since values depend on each other:
/// v2's swap is computed from the limit, cpu.max holds quota and period). Zero values and empty
/// strings mean "unchanged", as in runc.
fn merge(stored: &LinuxResources, req: &LinuxResources) -> (LinuxResources, LinuxResources) {
    let mut merged = stored.clone();
    let mut delta = LinuxResources::default();

    if let Some(m) = req.memory() {
        let mut out = merged.memory().unwrap_or_default();
        let nonzero = |v: Option<i64>| v.filter(|v| *v != 0);
        let mut touched = false;
        if let Some(l) = nonzero(m.limit()) {
            out.set_limit(Some(l));
            // runc: unlimited memory without a swap value means unlimited swap too
            if l == -1 && nonzero(m.swap()).is_none() {
                out.set_swap(Some(-1));
            }
            touched = true;
        }
        if let Some(s) = nonzero(m.swap()) {
            out.set_swap(Some(s));
            touched = true;
        }
        if let Some(r) = nonzero(m.reservation()) {
            out.set_reservation(Some(r));
            touched = true;
        }
        if let Some(c) = m.check_before_update() {
            out.set_check_before_update(Some(c));
            touched = true;
        }
        if touched {
            merged.set_memory(Some(out));
            delta.set_memory(Some(out));
        }
    }

    if let Some(c) = req.cpu() {
        let mut out = merged.cpu().clone().unwrap_or_default();
        let u = |v: Option<u64>| v.filter(|v| *v != 0);
        let i = |v: Option<i64>| v.filter(|v| *v != 0);
        if let Some(v) = u(c.shares()) {
            out.set_shares(Some(v));
        }
        if let Some(v) = u(c.period()) {
            out.set_period(Some(v));
        }
        if let Some(v) = i(c.quota()) {
            out.set_quota(Some(v));
        }
        if let Some(v) = u(c.realtime_period()) {
            out.set_realtime_period(Some(v));
        }
        if let Some(v) = i(c.realtime_runtime()) {
            out.set_realtime_runtime(Some(v));
        }
        if let Some(v) = c.burst() {
            out.set_burst(Some(v));
        }
        if let Some(v) = c.idle() {
            out.set_idle(Some(v));
        }
        if let Some(v) = c.cpus().clone().filter(|s| !s.is_empty()) {
            out.set_cpus(Some(v));
        }
        if let Some(v) = c.mems().clone().filter(|s| !s.is_empty()) {
            out.set_mems(Some(v));
        }
        if has_cpu_values(c) {
            merged.set_cpu(Some(out.clone()));
            delta.set_cpu(Some(out));
        }
    }

    if let Some(w) = req
        .block_io()
        .as_ref()
        .and_then(|b| b.weight())
        .filter(|w| *w != 0)
    {
        let mut out = merged.block_io().clone().unwrap_or_default();
        out.set_weight(Some(w));
        merged.set_block_io(Some(out));
        let mut d = LinuxBlockIo::default();
        d.set_weight(Some(w));
        delta.set_block_io(Some(d));
    }

    if let Some(p) = *req.pids() {
        merged.set_pids(Some(p));
        delta.set_pids(Some(p));
    }

    if let Some(u) = req.unified().as_ref().filter(|u| !u.is_empty()) {
        let mut out = merged.unified().clone().unwrap_or_default();
        out.extend(u.iter().map(|(k, v)| (k.clone(), v.clone())));
        merged.set_unified(Some(out));
        delta.set_unified(Some(u.clone()));
    }
    (merged, delta)
}

/// The request sets some cpu value (even one equal to the stored one: it is written again).
fn has_cpu_values(c: &LinuxCpu) -> bool {
    c.burst().is_some()
        || c.idle().is_some()
        || c.shares().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.cpus().as_deref().is_some_and(|s| !s.is_empty())
        || c.mems().as_deref().is_some_and(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_files_errors_name_the_field() {
        let e =
            parse_resources(r#"{"pids": {"limit": 5}, "memory": {"swap": 1, "limit": "lots"}}"#)
                .unwrap_err();
        assert!(
            format!("{e:#}").starts_with("memory.limit: invalid type"),
            "{e:#}"
        );
        assert!(parse_resources("{").is_err());
        assert_eq!(
            parse_resources(r#"{"pids": {"limit": 5}}"#)
                .unwrap()
                .pids()
                .unwrap()
                .limit(),
            5
        );
    }

    #[test]
    fn sizes_like_runc() {
        assert_eq!(ram_in_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1GiB").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("512 kb").unwrap(), 512 << 10);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        for bad in ["foo", "-5", "", "1x", "m", "1.2.3m", "1mm", ".5m"] {
            assert!(ram_in_bytes(bad).is_err(), "{bad} accepted");
        }
    }

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn merge_keeps_what_is_not_asked_and_writes_whole_sections() {
        let stored = res(serde_json::json!({
            "memory": {"limit": 100, "swap": 200, "swappiness": 5},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000},
            "pids": {"limit": 10},
            "devices": [{"allow": false, "access": "rwm"}]
        }));
        let req = res(serde_json::json!({"cpu": {"period": 200000}, "memory": {"limit": 0}}));
        let (merged, delta) = merge(&stored, &req);
        let cpu = merged.cpu().clone().unwrap();
        assert_eq!(
            (cpu.shares(), cpu.quota(), cpu.period()),
            (Some(512), Some(50000), Some(200000))
        );
        assert_eq!(delta.cpu(), merged.cpu());
        // zero is "unchanged": memory untouched, not written
        assert_eq!(merged.memory(), stored.memory());
        assert!(delta.memory().is_none() && delta.pids().is_none());
        assert_eq!(merged.devices(), stored.devices());
        assert!(delta.devices().is_none());
    }

    #[test]
    fn unlimited_memory_means_unlimited_swap_unless_given() {
        let stored = res(serde_json::json!({"memory": {"limit": 100, "swap": 200}}));
        let (m, _) = merge(&stored, &res(serde_json::json!({"memory": {"limit": -1}})));
        assert_eq!(m.memory().unwrap().swap(), Some(-1));
        let (m, _) = merge(
            &stored,
            &res(serde_json::json!({"memory": {"limit": -1, "swap": 300}})),
        );
        assert_eq!(m.memory().unwrap().swap(), Some(300));
    }

    #[test]
    fn flags_become_resources() {
        let a = UpdateArgs {
            id: "x".into(),
            memory: Some("64m".into()),
            memory_swap: Some("-1".into()),
            cpu_quota: Some("-1".into()),
            pids_limit: Some("20".into()),
            blkio_weight: Some("300".into()),
            cpuset_cpus: Some("0".into()),
            ..Default::default()
        };
        let r = request(&a).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.memory().unwrap().swap(), Some(-1));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(-1));
        assert_eq!(r.cpu().as_ref().unwrap().cpus().as_deref(), Some("0"));
        assert_eq!(r.pids().unwrap().limit(), 20);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
        for (flag, bad) in [("memory", "foo"), ("cpu-period", "-5"), ("pids-limit", "x")] {
            let mut a = UpdateArgs::default();
            match flag {
                "memory" => a.memory = Some(bad.into()),
                "cpu-period" => a.cpu_period = Some(bad.into()),
                _ => a.pids_limit = Some(bad.into()),
            }
            let err = format!("{:#}", request(&a).unwrap_err());
            assert!(err.contains(flag), "{err}");
        }
    }
}
