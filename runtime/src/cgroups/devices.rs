//! Device cgroup rules: validation, runc's default allow list, v1 file format.

use anyhow::{bail, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// runc 1.1's default device rules, appended after linux.resources.devices for every container
/// (libcontainer/specconv AllowedDevices; checked against runc 1.1.5's devices.list on this host):
/// mknod of any char/block device, /dev/null, zero, full, random, urandom, tty, ptmx, the pts
/// range and tun/tap. /dev/console (5:1) is *not* in runc 1.1's list.
pub fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let r = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut d = LinuxDeviceCgroup::default();
        d.set_allow(true);
        d.set_typ(Some(typ));
        d.set_major(major);
        d.set_minor(minor);
        d.set_access(Some(access.to_string()));
        d
    };
    vec![
        r(C, None, None, "m"),
        r(B, None, None, "m"),
        r(C, Some(1), Some(3), "rwm"),    // /dev/null
        r(C, Some(1), Some(8), "rwm"),    // /dev/random
        r(C, Some(1), Some(7), "rwm"),    // /dev/full
        r(C, Some(5), Some(0), "rwm"),    // /dev/tty
        r(C, Some(1), Some(5), "rwm"),    // /dev/zero
        r(C, Some(1), Some(9), "rwm"),    // /dev/urandom
        r(C, Some(136), None, "rwm"),     // /dev/pts/*
        r(C, Some(5), Some(2), "rwm"),    // /dev/ptmx
        r(C, Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

/// Validate linux.resources.devices the way runc's specconv does: type a/b/c (absent = a),
/// access a non-empty subset of "rwm", major/minor >= 0 or absent/-1 (wildcard).
pub fn validate(rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for (i, d) in rules.iter().enumerate() {
        match d.typ() {
            None | Some(LinuxDeviceType::A | LinuxDeviceType::B | LinuxDeviceType::C) => {}
            Some(t) => bail!(
                "linux.resources.devices[{i}].type: {:?} is not a cgroup device type (a, b or c)",
                t.as_str()
            ),
        }
        let access = d.access().as_deref().unwrap_or("");
        if access.is_empty() {
            bail!("linux.resources.devices[{i}].access: cannot be empty");
        }
        if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            bail!("linux.resources.devices[{i}].access: {access:?} must only contain r, w and m");
        }
        for (name, v) in [("major", d.major()), ("minor", d.minor())] {
            if let Some(v) = v {
                if v < -1 {
                    bail!("linux.resources.devices[{i}].{name}: {v} is invalid");
                }
            }
        }
    }
    Ok(())
}

/// User rules followed by the defaults (runc order: the defaults cannot be overridden).
pub fn effective_rules(user: Option<&Vec<LinuxDeviceCgroup>>) -> Vec<LinuxDeviceCgroup> {
    let mut rules = user.cloned().unwrap_or_default();
    rules.extend(default_rules());
    rules
}

/// "c 1:3 rwm" as devices.allow/devices.deny expect it.
pub fn v1_line(d: &LinuxDeviceCgroup) -> String {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        _ => 'c',
    };
    let num = |v: Option<i64>| match v {
        None | Some(-1) => "*".to_string(),
        Some(n) => n.to_string(),
    };
    format!(
        "{typ} {}:{} {}",
        num(d.major()),
        num(d.minor()),
        d.access().as_deref().unwrap_or("rwm")
    )
}

/// The same rules with -1 majors/minors turned into "absent" (libcgroups' eBPF emulator only
/// understands absent as a wildcard) and an absent type made explicit "a".
pub fn normalized(rules: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    rules
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if d.major() == Some(-1) {
                d.set_major(None);
            }
            if d.minor() == Some(-1) {
                d.set_minor(None);
            }
            if d.typ().is_none() {
                d.set_typ(Some(LinuxDeviceType::A));
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_format_and_validation() {
        let lines: Vec<String> = default_rules().iter().map(v1_line).collect();
        assert_eq!(lines[0], "c *:* m");
        assert_eq!(lines[2], "c 1:3 rwm");
        assert_eq!(lines[8], "c 136:* rwm");
        let deny_all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        assert_eq!(v1_line(&deny_all), "a *:* rwm");
        validate(&[deny_all]).unwrap();
        let bad: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","access":"rwx"}"#).unwrap();
        let e = validate(&[bad]).unwrap_err().to_string();
        assert!(e.contains("devices[0].access"), "{e}");
        let empty: LinuxDeviceCgroup = serde_json::from_str(r#"{"allow":true}"#).unwrap();
        assert!(validate(&[empty]).is_err());
        let fifo: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"p","access":"r"}"#).unwrap();
        assert!(validate(&[fifo]).unwrap_err().to_string().contains(".type"));
    }
}
