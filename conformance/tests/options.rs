//! runc's command-line options that shape the container: `--no-pivot` (MS_MOVE + chroot instead of
//! pivot_root) and `--no-new-keyring` (keep the caller's session keyring instead of a new `_ses.<id>`).
//! Both runc and berth behave alike here, so none of these is berth_only.

use conformance::*;
use std::fs;
use std::os::unix::fs::MetadataExt;

/// `/` of a container run with `extra` options: the rootfs's top-level names, the device and inode
/// of `/`, and a file only the rootfs has.
fn root_view(tag: &str, extra: &[&str]) {
    let mut b = bundle(tag);
    fs::write(b.rootfs().join("rootfs-marker"), "in the rootfs\n").unwrap();
    b.sh("cat /rootfs-marker; stat -c 'root=%d:%i' /; ls -a /");
    let id = b.new_id();
    let o = b.run_id(&id, extra);
    o.ok();
    assert_eq!(o.lines()[0], "in the rootfs", "{o:?}");
    let meta = fs::metadata(b.rootfs()).unwrap();
    assert_eq!(
        o.kv("root"),
        format!("{}:{}", meta.dev(), meta.ino()),
        "/ is not the bundle's rootfs: {o:?}"
    );
    let mut inside: Vec<String> = o.lines()[2..]
        .iter()
        .filter(|n| *n != "." && *n != "..")
        .cloned()
        .collect();
    inside.sort();
    let mut host: Vec<String> = fs::read_dir(b.rootfs())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    assert_eq!(
        inside, host,
        "the container's / lists other names than its rootfs"
    );
    b.assert_nothing_left(&id);
}

#[test]
fn no_pivot_runs_in_the_rootfs() {
    root_view("nopivot", &["--no-pivot"]);
}

#[test]
fn pivot_root_runs_in_the_rootfs() {
    root_view("pivot", &[]);
}

#[test]
fn no_pivot_with_create_and_start() {
    let mut b = bundle("nopivotcs");
    b.sh("cat /rootfs-marker > /from-container");
    fs::write(b.rootfs().join("rootfs-marker"), "marker\n").unwrap();
    let id = b.new_id();
    b.create_with(&id, &["--no-pivot"]).ok();
    b.start(&id).ok();
    assert!(b.wait_rootfs_file("/from-container", std::time::Duration::from_secs(10)));
    b.wait_status(&id, "stopped", std::time::Duration::from_secs(10));
    assert_eq!(b.read_rootfs("/from-container"), "marker\n");
    b.delete(&id).ok();
    b.assert_nothing_left(&id);
}

/// The container's /proc/keys (unmasked) after a run with `extra`, and the id.
fn keys(extra: &[&str]) -> (String, Out) {
    let mut b = bundle("keyring");
    if let Some(m) = b
        .config
        .pointer_mut("/linux/maskedPaths")
        .and_then(serde_json::Value::as_array_mut)
    {
        m.retain(|p| p != "/proc/keys");
    }
    b.args(&["cat", "/proc/keys"]);
    let id = b.new_id();
    let o = b.run_id(&id, extra);
    o.ok();
    b.assert_nothing_left(&id);
    (id, o)
}

#[test]
fn session_keyring_is_the_containers_own() {
    let (id, o) = keys(&[]);
    let desc = format!("_ses.{id}:");
    let line = o
        .lines()
        .into_iter()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 8 && f[7] == "keyring" && f[8] == desc
        })
        .unwrap_or_else(|| panic!("no keyring {desc} in /proc/keys: {o:?}"));
    // Its permissions, as runc sets them: everything for the possessor, and view, read, search and
    // link for its user.
    let f: Vec<&str> = line.split_whitespace().collect();
    let perm = u32::from_str_radix(f[4], 16).unwrap();
    const POS_ALL: u32 = 0x3f00_0000;
    const USR_VIEW_READ_SEARCH_LINK: u32 = 0x0001_0000 | 0x0002_0000 | 0x0008_0000 | 0x0010_0000;
    assert_eq!(
        perm & (POS_ALL | USR_VIEW_READ_SEARCH_LINK),
        POS_ALL | USR_VIEW_READ_SEARCH_LINK,
        "{line}"
    );
}

#[test]
fn no_new_keyring_keeps_the_callers_session_keyring() {
    let (id, o) = keys(&["--no-new-keyring"]);
    assert!(
        !o.stdout.contains(&format!("_ses.{id}:")),
        "a session keyring was made despite --no-new-keyring: {o:?}"
    );
}
