//! config.md `root`, `mounts`; config-linux.md rootfsPropagation, maskedPaths,
//! readonlyPaths. Checked through /proc/self/mountinfo and file operations
//! inside the container.

use conformance::*;
use serde_json::json;
use std::fs;

/// One parsed /proc/self/mountinfo line.
#[derive(Debug, Clone)]
struct MountInfo {
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    source: String,
    super_opts: Vec<String>,
}

fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pre, post) = l.split_once(" - ").expect("mountinfo separator");
            let f: Vec<&str> = pre.split_whitespace().collect();
            let p: Vec<&str> = post.split_whitespace().collect();
            MountInfo {
                point: f[4].replace("\\040", " "),
                opts: f[5].split(',').map(str::to_string).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: p[0].to_string(),
                source: p.get(1).unwrap_or(&"").to_string(),
                super_opts: p
                    .get(2)
                    .unwrap_or(&"")
                    .split(',')
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

/// Run the container printing its mountinfo (after `script`), return parsed lines.
fn mountinfo_with(b: &mut Bundle, script: &str) -> (Out, Vec<MountInfo>) {
    b.sh(&format!("{script} echo ==MI==; cat /proc/self/mountinfo"));
    let o = b.run_ok();
    let mi = o
        .stdout
        .split("==MI==\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (o, parse_mountinfo(&mi))
}

fn last_at<'a>(mi: &'a [MountInfo], point: &str) -> &'a MountInfo {
    mi.iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| {
            panic!(
                "no mount at {point}: {:#?}",
                mi.iter().map(|m| &m.point).collect::<Vec<_>>()
            )
        })
}

#[test]
fn default_filesystems_have_the_configured_types() {
    let mut b = bundle("defaultfs");
    let (_, mi) = mountinfo_with(&mut b, "");
    for (point, ty) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
    ] {
        assert_eq!(last_at(&mi, point).fstype, ty, "{point}");
    }
    let sys = last_at(&mi, "/sys");
    assert!(
        sys.opts.contains(&"ro".to_string()),
        "/sys must be ro as configured: {sys:?}"
    );
    let shm = last_at(&mi, "/dev/shm");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(
            shm.opts.contains(&o.to_string()),
            "/dev/shm lacks {o}: {shm:?}"
        );
    }
}

#[test]
fn mounts_appear_in_config_order_with_their_sources() {
    let mut b = bundle("mountorder");
    b.mount(json!({"destination": "/mnt/one", "type": "tmpfs", "source": "src-one"}));
    b.mount(json!({"destination": "/mnt/one/two", "type": "tmpfs", "source": "src-two"}));
    b.mount(json!({"destination": "/mnt/three", "type": "tmpfs", "source": "src-three"}));
    let (_, mi) = mountinfo_with(&mut b, "");
    let idx = |p: &str| {
        mi.iter()
            .rposition(|m| m.point == p)
            .unwrap_or_else(|| panic!("{p} not mounted"))
    };
    let order: Vec<usize> = [
        "/proc",
        "/dev",
        "/dev/pts",
        "/dev/shm",
        "/dev/mqueue",
        "/sys",
        "/mnt/one",
        "/mnt/one/two",
        "/mnt/three",
    ]
    .iter()
    .map(|p| idx(p))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "mounts not in config order: {order:?}"
    );
    assert_eq!(last_at(&mi, "/mnt/one").source, "src-one");
    assert_eq!(last_at(&mi, "/mnt/one/two").source, "src-two");
    assert_eq!(last_at(&mi, "/mnt/three").source, "src-three");
}

#[test]
fn tmpfs_size_mode_and_flags() {
    let mut b = bundle("tmpfsopts");
    b.mount(
        json!({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["size=1m", "mode=0710", "nosuid", "nodev", "noexec"]}),
    );
    let (o, mi) = mountinfo_with(&mut b, "stat -c %a /mnt/t;");
    assert_eq!(o.lines()[0], "710");
    let m = last_at(&mi, "/mnt/t");
    assert_eq!(m.fstype, "tmpfs");
    for f in ["nosuid", "nodev", "noexec"] {
        assert!(m.opts.contains(&f.to_string()), "{f} missing: {m:?}");
    }
    assert!(
        m.super_opts.contains(&"size=1024k".to_string()),
        "size not applied: {m:?}"
    );
}

#[test]
fn nested_missing_destination_is_created() {
    let mut b = bundle("mkdest");
    b.mount(json!({"destination": "/does/not/exist/yet", "type": "tmpfs", "source": "tmpfs"}));
    let (_, mi) = mountinfo_with(&mut b, "");
    assert_eq!(last_at(&mi, "/does/not/exist/yet").fstype, "tmpfs");
}

#[test]
fn relative_destination_is_relative_to_root() {
    // runtime-spec 1.1: relative destinations (deprecated) are relative to "/".
    let mut b = bundle("reldest");
    b.mount(json!({"destination": "mnt/relative", "type": "tmpfs", "source": "tmpfs"}));
    let (_, mi) = mountinfo_with(&mut b, "");
    assert_eq!(last_at(&mi, "/mnt/relative").fstype, "tmpfs");
}

#[test]
fn bind_mount_read_write_and_read_only() {
    let mut b = bundle("bind");
    let rw = b.path().join("rwdir");
    let ro = b.path().join("rodir");
    fs::create_dir(&rw).unwrap();
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("file"), "host content\n").unwrap();
    b.mount(
        json!({"destination": "/mnt/rw", "type": "bind", "source": rw, "options": ["bind", "rw"]}),
    );
    b.mount(
        json!({"destination": "/mnt/ro", "type": "bind", "source": ro, "options": ["bind", "ro"]}),
    );
    let (o, mi) = mountinfo_with(
        &mut b,
        "echo from-container > /mnt/rw/new; cat /mnt/ro/file; touch /mnt/ro/x 2>/dev/null && echo ro-writable || echo ro-denied;",
    );
    assert_eq!(o.lines()[..2], ["host content", "ro-denied"]);
    assert_eq!(
        fs::read_to_string(rw.join("new")).unwrap(),
        "from-container\n"
    );
    assert!(last_at(&mi, "/mnt/ro").opts.contains(&"ro".to_string()));
    assert!(last_at(&mi, "/mnt/rw").opts.contains(&"rw".to_string()));
}

#[test]
fn bind_mount_of_a_file_creates_the_destination() {
    let mut b = bundle("bindfile");
    let f = b.path().join("host-file.txt");
    fs::write(&f, "file content\n").unwrap();
    b.mount(json!({"destination": "/etc/new-dir/bound.txt", "type": "bind", "source": f, "options": ["bind", "ro"]}));
    b.sh("cat /etc/new-dir/bound.txt; [ -f /etc/new-dir/bound.txt ] && echo is-file");
    assert_eq!(b.run_ok().lines(), ["file content", "is-file"]);
}

#[test]
fn bind_mount_nosuid_nodev_noexec() {
    let mut b = bundle("bindflags");
    let d = b.path().join("flagdir");
    fs::create_dir(&d).unwrap();
    fs::copy(BUSYBOX, d.join("bb")).unwrap();
    b.mount(json!({"destination": "/mnt/flags", "type": "bind", "source": d, "options": ["bind", "nosuid", "nodev", "noexec"]}));
    let (o, mi) = mountinfo_with(
        &mut b,
        "/mnt/flags/bb true 2>/dev/null && echo exec-ok || echo exec-denied;",
    );
    assert_eq!(o.lines()[0], "exec-denied");
    let m = last_at(&mi, "/mnt/flags");
    for f in ["nosuid", "nodev", "noexec"] {
        assert!(m.opts.contains(&f.to_string()), "{f} missing: {m:?}");
    }
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    // The host's /dev has submounts (pts, shm, mqueue); only rbind brings them.
    let mut b = bundle("rbind");
    b.mount(json!({"destination": "/mnt/rbind", "type": "bind", "source": "/dev", "options": ["rbind", "ro"]}));
    b.mount(json!({"destination": "/mnt/bind", "type": "bind", "source": "/dev", "options": ["bind", "ro"]}));
    let (_, mi) = mountinfo_with(&mut b, "");
    let host_has_pts = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .contains(" /dev/pts ");
    assert!(host_has_pts, "test precondition: host /dev/pts is a mount");
    assert!(
        mi.iter().any(|m| m.point == "/mnt/rbind/pts"),
        "rbind lost the submount /dev/pts"
    );
    assert!(
        !mi.iter().any(|m| m.point == "/mnt/bind/pts"),
        "plain bind must not carry submounts"
    );
}

#[test]
fn mount_propagation_options() {
    let mut b = bundle("mountprop");
    let d = b.path().join("propdir");
    fs::create_dir(&d).unwrap();
    b.mount(json!({"destination": "/mnt/shared", "type": "bind", "source": d, "options": ["rbind", "rshared"]}));
    b.mount(json!({"destination": "/mnt/private", "type": "bind", "source": d, "options": ["rbind", "rprivate"]}));
    b.mount(json!({"destination": "/mnt/unbindable", "type": "bind", "source": d, "options": ["rbind", "runbindable"]}));
    b.set("/linux/rootfsPropagation", json!("shared"));
    let (_, mi) = mountinfo_with(&mut b, "");
    let sh = last_at(&mi, "/mnt/shared");
    assert!(
        sh.optional.iter().any(|o| o.starts_with("shared:")),
        "rshared not applied: {sh:?}"
    );
    let pr = last_at(&mi, "/mnt/private");
    assert!(
        pr.optional
            .iter()
            .all(|o| !o.starts_with("shared:") && !o.starts_with("master:")),
        "rprivate not applied: {pr:?}"
    );
    let ub = last_at(&mi, "/mnt/unbindable");
    assert!(
        ub.optional.iter().any(|o| o == "unbindable"),
        "runbindable not applied: {ub:?}"
    );
}

fn root_propagation(prop: &str) -> MountInfo {
    let mut b = bundle(&format!("rootprop-{prop}"));
    b.set("/linux/rootfsPropagation", json!(prop));
    let (_, mi) = mountinfo_with(&mut b, "");
    last_at(&mi, "/").clone()
}

/// runc 1.1 leaves "/" private for rootfsPropagation=shared (runtime-tools'
/// linux_rootfs_propagation_shared fails on runc for the same reason).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 does not make the container's / shared"
)]
fn berth_only_rootfs_propagation_shared() {
    let r = root_propagation("shared");
    assert!(r.optional.iter().any(|o| o.starts_with("shared:")), "{r:?}");
}

#[test]
fn rootfs_propagation_private() {
    let r = root_propagation("private");
    assert!(
        r.optional
            .iter()
            .all(|o| !o.starts_with("shared:") && !o.starts_with("master:")),
        "{r:?}"
    );
}

#[test]
fn rootfs_propagation_slave() {
    // A slave of a shared host mount shows `master:N`; the rootfs here lives on
    // the host's / mount, so check that one is shared first.
    let host = parse_mountinfo(&fs::read_to_string("/proc/self/mountinfo").unwrap());
    let host_root_shared = host
        .iter()
        .rev()
        .find(|m| m.point == "/")
        .is_some_and(|m| m.optional.iter().any(|o| o.starts_with("shared:")));
    let r = root_propagation("slave");
    assert!(
        r.optional.iter().all(|o| !o.starts_with("shared:")),
        "{r:?}"
    );
    if host_root_shared {
        assert!(r.optional.iter().any(|o| o.starts_with("master:")), "{r:?}");
    }
}

/// runc 1.1 fails to start with rootfsPropagation=unbindable (EINVAL binding
/// the rootfs onto itself).
#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 cannot start a container with unbindable rootfs propagation"
)]
fn berth_only_rootfs_propagation_unbindable() {
    let r = root_propagation("unbindable");
    assert!(r.optional.iter().any(|o| o == "unbindable"), "{r:?}");
}

#[test]
fn root_readonly_true() {
    let mut b = bundle("rootro");
    b.set("/root/readonly", json!(true));
    let (o, mi) = mountinfo_with(&mut b, "touch /x 2>/dev/null && echo writable || echo read-only; touch /tmp/x 2>/dev/null && echo tmp-writable || echo tmp-read-only; touch /dev/shm/x && echo shm-writable;");
    assert_eq!(
        o.lines()[..3],
        ["read-only", "tmp-read-only", "shm-writable"]
    );
    assert!(last_at(&mi, "/").opts.contains(&"ro".to_string()));
}

#[test]
fn root_readonly_false_is_writable() {
    let mut b = bundle("rootrw");
    b.set("/root/readonly", json!(false));
    b.sh("touch /written-by-container && echo ok");
    assert_eq!(b.run_ok().stdout.trim(), "ok");
    assert!(b.rootfs().join("written-by-container").exists());
}

#[test]
fn root_path_may_be_absolute() {
    let mut b = bundle("rootabs");
    let abs = b.rootfs();
    b.set("/root/path", json!(abs));
    b.args(&["echo", "absolute-root"]);
    assert_eq!(b.run_ok().stdout.trim(), "absolute-root");
}

#[test]
fn masked_paths() {
    let mut b = bundle("masked");
    let r = b.rootfs();
    fs::create_dir_all(r.join("masked-dir/sub")).unwrap();
    fs::write(r.join("masked-dir/secret"), "secret").unwrap();
    fs::write(r.join("masked-file"), "secret").unwrap();
    b.push("/linux/maskedPaths", json!("/masked-dir"));
    b.push("/linux/maskedPaths", json!("/masked-file"));
    b.push("/linux/maskedPaths", json!("/does-not-exist"));
    b.sh(
        "echo dir=[$(ls -A /masked-dir)]; echo file=[$(cat /masked-file)]; echo kcore=[$(head -c 10 /proc/kcore | wc -c)]; \
         touch /masked-dir/new 2>/dev/null && echo dir-writable || echo dir-read-only; \
         echo timer=[$(cat /proc/timer_list | wc -c)]",
    );
    let o = b.run_ok();
    assert_eq!(o.kv("dir"), "[]", "{o:?}");
    assert_eq!(o.kv("file"), "[]", "{o:?}");
    assert_eq!(o.kv("kcore"), "[0]", "{o:?}");
    assert_eq!(o.kv("timer"), "[0]", "{o:?}");
    assert!(o.stdout.contains("dir-read-only"), "{o:?}");
    // the host copy is untouched
    assert_eq!(fs::read_to_string(r.join("masked-file")).unwrap(), "secret");
}

#[test]
fn readonly_paths() {
    let mut b = bundle("ropaths");
    fs::create_dir_all(b.rootfs().join("ro-dir")).unwrap();
    fs::write(b.rootfs().join("ro-dir/f"), "readable").unwrap();
    b.push("/linux/readonlyPaths", json!("/ro-dir"));
    b.push("/linux/readonlyPaths", json!("/does-not-exist"));
    b.caps(&["CAP_SYS_ADMIN", "CAP_DAC_OVERRIDE"]);
    let (o, mi) = mountinfo_with(
        &mut b,
        "cat /ro-dir/f; echo; touch /ro-dir/new 2>/dev/null && echo writable || echo read-only; \
         (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo procsys-writable || echo procsys-read-only;",
    );
    assert_eq!(
        o.lines()[..3],
        ["readable", "read-only", "procsys-read-only"]
    );
    for p in [
        "/ro-dir",
        "/proc/sys",
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sysrq-trigger",
    ] {
        // Paths absent on this kernel are skipped by runtimes.
        if p.starts_with("/proc") && !std::path::Path::new(p).exists() {
            continue;
        }
        assert!(
            last_at(&mi, p).opts.contains(&"ro".to_string()),
            "{p} not read-only"
        );
    }
}

/// A directory under the bundle holding files owned by 1000:1000 and 1001:1001 on disk.
fn owned_files(b: &Bundle, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::chown;
    let d = b.path().join(name);
    fs::create_dir(&d).unwrap();
    fs::write(d.join("f1000"), "x").unwrap();
    fs::write(d.join("f1001"), "y").unwrap();
    chown(&d, Some(1000), Some(1000)).unwrap();
    chown(d.join("f1000"), Some(1000), Some(1000)).unwrap();
    chown(d.join("f1001"), Some(1001), Some(1001)).unwrap();
    d
}

/// `ls -ln` lines of a directory as (owner, group, name).
fn owners(ls: &str) -> Vec<(String, String, String)> {
    ls.lines()
        .filter(|l| l.starts_with('-') || l.starts_with('d'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[2].into(), f[3].into(), f[f.len() - 1].into())
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no idmapped mounts"
)]
fn berth_only_idmapped_bind_mount() {
    use std::os::unix::fs::MetadataExt;
    let mut b = bundle("idmap");
    let d = owned_files(&b, "idsrc");
    // On-disk 1000 (containerID) shows as 0 (hostID) through the mount; 1001 is not mapped.
    b.mount(
        json!({"destination": "/mnt/id", "type": "bind", "source": d, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
        "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]}),
    );
    let (o, mi) = mountinfo_with(
        &mut b,
        "ls -ln /mnt/id; echo from-container > /mnt/id/new; stat -c 'new=%u:%g' /mnt/id/new;",
    );
    let own = owners(&o.stdout);
    assert!(
        own.contains(&("0".into(), "0".into(), "f1000".into())),
        "{o:?}"
    );
    assert!(
        own.contains(&("65534".into(), "65534".into(), "f1001".into())),
        "an unmapped owner must show as the overflow id: {o:?}"
    );
    assert_eq!(o.kv("new"), "0:0");
    // Written by root through the mount: stored as 1000 on disk.
    let meta = fs::metadata(d.join("new")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1000, 1000));
    assert!(
        last_at(&mi, "/mnt/id")
            .opts
            .contains(&"idmapped".to_string()),
        "{:?}",
        last_at(&mi, "/mnt/id")
    );
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no idmapped mounts"
)]
fn berth_only_idmapped_bind_mount_in_a_user_namespace() {
    use std::os::unix::fs::MetadataExt;
    let mut b = bundle("idmapuserns");
    let d = owned_files(&b, "idsrc");
    b.namespace("user", None);
    b.set(
        "/linux/uidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.set(
        "/linux/gidMappings",
        json!([{"containerID": 0, "hostID": 200000, "size": 65536}]),
    );
    b.remove_mount("/sys/fs/cgroup");
    // The rootfs belongs to the host's root: the container's root cannot make the mount point.
    fs::create_dir(b.rootfs().join("mnt/id")).unwrap();
    // The volume's 1000 becomes host 200000: the container's root.
    b.mount(json!({"destination": "/mnt/id", "type": "bind", "source": d, "options": ["rbind", "ridmap", "ro"],
        "uidMappings": [{"containerID": 1000, "hostID": 200000, "size": 2}],
        "gidMappings": [{"containerID": 1000, "hostID": 200000, "size": 2}]}));
    let (o, mi) = mountinfo_with(
        &mut b,
        "ls -ln /mnt/id; touch /mnt/id/x 2>/dev/null && echo writable || echo read-only;",
    );
    let own = owners(&o.stdout);
    assert!(
        own.contains(&("0".into(), "0".into(), "f1000".into())),
        "{o:?}"
    );
    assert!(
        own.contains(&("1".into(), "1".into(), "f1001".into())),
        "{o:?}"
    );
    assert!(o.stdout.contains("read-only"), "{o:?}");
    let m = last_at(&mi, "/mnt/id");
    assert!(m.opts.contains(&"idmapped".to_string()), "{m:?}");
    assert!(m.opts.contains(&"ro".to_string()), "{m:?}");
    assert_eq!(fs::metadata(d.join("f1000")).unwrap().uid(), 1000);
}

#[test]
#[cfg_attr(
    not(berth_runtime),
    ignore = "berth_only: runc 1.1 has no idmapped mounts"
)]
fn berth_only_idmapped_mount_errors_name_the_mount() {
    let mut b = bundle("idmapbad");
    let d = owned_files(&b, "idsrc");
    let field = format!("mounts[{}]", b.config["mounts"].as_array().unwrap().len());
    // Overlapping ranges: the kernel refuses the map.
    b.mount(json!({"destination": "/mnt/id", "type": "bind", "source": d, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 0, "size": 10}, {"containerID": 5, "hostID": 100, "size": 10}],
        "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}));
    let id = b.new_id();
    let o = b.create(&id);
    o.fails_naming(&[&field]);
    assert!(o.stderr.contains("uidMappings"), "{o:?}");
    b.assert_nothing_left(&id);

    // A size of 0 is refused before anything exists.
    let mut b = bundle("idmapzero");
    b.mount(
        json!({"destination": "/mnt/id", "type": "bind", "source": d, "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 0, "size": 0}],
        "gidMappings": [{"containerID": 0, "hostID": 0, "size": 1}]}),
    );
    let id = b.new_id();
    b.create(&id)
        .fails_naming(&[&format!("{field}.uidMappings[0]")]);
    b.assert_nothing_left(&id);

    // sysfs does not support idmapped mounts.
    let mut b = bundle("idmapsysfs");
    b.mount(json!({"destination": "/mnt/id", "type": "bind", "source": "/sys/kernel", "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}));
    let id = b.new_id();
    let o = b.create(&id);
    o.fails_naming(&[&field]);
    assert!(
        o.stderr.contains("does not support idmapped mounts"),
        "{o:?}"
    );
    b.assert_nothing_left(&id);

    // Only bind mounts can be idmapped.
    let mut b = bundle("idmaptmpfs");
    b.mount(
        json!({"destination": "/mnt/id", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&[&field]);
    b.assert_nothing_left(&id);
}
