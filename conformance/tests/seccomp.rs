//! config-linux.md `seccomp`: the filter's effect seen from inside.

use conformance::*;
use serde_json::{json, Value};

fn seccomp(syscalls: Value) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })
}

#[test]
fn errno_action_with_errno_ret() {
    let mut b = bundle("seccomperrno");
    b.set(
        "/linux/seccomp",
        seccomp(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
        ),
    );
    b.sh("grep ^Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; [ -d /tmp/x ] && echo created || echo not-created; touch /tmp/f && echo touch-ok");
    let o = b.run_ok();
    let l = o.lines();
    assert_eq!(status_map(&l[0])["Seccomp"], "2", "{o:?}");
    assert!(
        l[1].contains("Permission denied"),
        "errnoRet 13 must give EACCES: {o:?}"
    );
    assert_eq!(l[2..], ["not-created", "touch-ok"]);
}

#[test]
fn errno_action_defaults_to_eperm() {
    let mut b = bundle("seccompeperm");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])),
    );
    b.sh("mkdir /tmp/x 2>&1; true");
    let o = b.run_ok();
    assert!(o.stdout.contains("Operation not permitted"), "{o:?}");
}

#[test]
fn kill_action_kills_the_caller() {
    let mut b = bundle("seccompkill");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["sync"], "action": "SCMP_ACT_KILL"}])),
    );
    // A child shell runs sync (busybox may run it in-process) and dies of
    // SIGSYS (31): status 159 in the parent.
    b.sh("sh -c sync; echo status=$?");
    let o = b.run_ok();
    assert_eq!(o.kv("status"), "159", "{o:?}");
}

#[test]
fn argument_conditions() {
    let mut b = bundle("seccompargs");
    b.set(
        "/linux/seccomp",
        seccomp(json!([
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}
        ])),
    );
    b.sh("touch /tmp/f; chmod 755 /tmp/f && echo 755-ok; chmod 777 /tmp/f 2>/dev/null && echo 777-ok || echo 777-denied; stat -c %a /tmp/f");
    assert_eq!(b.run_ok().lines(), ["755-ok", "777-denied", "755"]);
}

#[test]
fn masked_eq_condition() {
    let mut b = bundle("seccompmasked");
    // deny chmod/fchmodat when the mode has the setuid bit (04000)
    b.set(
        "/linux/seccomp",
        seccomp(json!([
            {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}
        ])),
    );
    b.sh("touch /tmp/f; chmod 4755 /tmp/f 2>/dev/null && echo suid-ok || echo suid-denied; chmod 700 /tmp/f && echo plain-ok");
    assert_eq!(b.run_ok().lines(), ["suid-denied", "plain-ok"]);
}

#[test]
fn seccomp_applies_to_non_root_without_no_new_privileges() {
    let mut b = bundle("seccompnonnp");
    b.set("/process/noNewPrivileges", json!(false));
    b.set("/process/user", json!({"uid": 1000, "gid": 1000}));
    b.set(
        "/linux/seccomp",
        seccomp(
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
        ),
    );
    b.sh("grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; mkdir /tmp/x 2>&1; true");
    let o = b.run_ok();
    let st = status_map(&o.stdout);
    assert_eq!(st["Seccomp"], "2");
    assert_eq!(st["NoNewPrivs"], "0");
    assert!(o.stdout.contains("Permission denied"), "{o:?}");
}

#[test]
fn no_seccomp_section_means_no_filter() {
    let mut b = bundle("seccompnone");
    b.sh("grep ^Seccomp: /proc/self/status");
    assert_eq!(status_map(&b.run_ok().stdout)["Seccomp"], "0");
}

#[test]
fn unknown_seccomp_action_fails() {
    let mut b = bundle("seccompbadact");
    b.set(
        "/linux/seccomp",
        seccomp(json!([{"names": ["mkdir"], "action": "SCMP_ACT_NONSENSE"}])),
    );
    let id = b.new_id();
    b.create(&id).fails_naming(&["SCMP_ACT_NONSENSE", "action"]);
    b.assert_nothing_left(&id);
}

#[test]
fn unknown_default_action_fails() {
    let mut b = bundle("seccompbaddef");
    let mut s = seccomp(json!([]));
    s["defaultAction"] = json!("SCMP_ACT_BOGUS");
    b.set("/linux/seccomp", s);
    let id = b.new_id();
    b.create(&id).fails_naming(&["SCMP_ACT_BOGUS", "action"]);
    b.assert_nothing_left(&id);
}

/// A seccomp agent for `linux.seccomp.listenerPath` (config-linux.md): it accepts one connection,
/// reads the container process state and the listener fd (SCM_RIGHTS), then answers every
/// notification with `errno` until the container is gone. Returns the state JSON it was sent and the
/// number of notifications it answered.
fn seccomp_agent(
    listener: std::os::unix::net::UnixListener,
    errno: i32,
) -> std::thread::JoinHandle<(Value, usize)> {
    use nix::libc;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let conn = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the runtime never connected to listenerPath"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        conn.set_nonblocking(false).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut space = nix::cmsg_space!([RawFd; 4]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .expect("recvmsg from the runtime");
        let mut fds = Vec::new();
        for c in msg.cmsgs().expect("control messages") {
            if let ControlMessageOwned::ScmRights(v) = c {
                fds.extend(v);
            }
        }
        let n = msg.bytes;
        let state: Value = serde_json::from_slice(&buf[..n]).expect("container process state JSON");
        assert_eq!(fds.len(), 1, "one fd (the listener) expected: {state}");
        // SAFETY: SCM_RIGHTS installed this fd in our table just now; nothing else owns it.
        let notify = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // struct seccomp_notif (80 bytes) and seccomp_notif_resp (24 bytes), linux/seccomp.h.
        const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
        const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
        let mut answered = 0;
        loop {
            let mut pfd = [PollFd::new(notify.as_fd(), PollFlags::POLLIN)];
            match poll(&mut pfd, PollTimeout::from(20_000u16)) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let revents = pfd[0].revents().unwrap_or(PollFlags::empty());
            if !revents.contains(PollFlags::POLLIN) {
                break; // POLLHUP: no process uses the filter any more
            }
            let mut req = [0u64; 10];
            // SAFETY: `req` is 80 bytes, the size of struct seccomp_notif the ioctl writes.
            if unsafe { libc::ioctl(notify.as_raw_fd(), NOTIF_RECV, req.as_mut_ptr()) } < 0 {
                continue; // the caller went away (ENOENT)
            }
            // id, val = 0, error = -errno, flags = 0
            let mut resp = [0u8; 24];
            resp[..8].copy_from_slice(&req[0].to_ne_bytes());
            resp[16..20].copy_from_slice(&(-errno).to_ne_bytes());
            // SAFETY: `resp` is a 24-byte struct seccomp_notif_resp the ioctl reads.
            unsafe { libc::ioctl(notify.as_raw_fd(), NOTIF_SEND, resp.as_ptr()) };
            answered += 1;
        }
        (state, answered)
    })
}

/// `SCMP_ACT_NOTIFY` with `listenerPath`: the runtime hands the listener and the container process
/// state to the agent, whose answer the container sees (runc has done this since 1.1).
#[test]
fn notify_action_hands_the_listener_to_the_agent() {
    let mut b = bundle("seccompnotify");
    let sock = b.rootfs().parent().unwrap().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = seccomp_agent(listener, 30); // EROFS
    let mut profile = seccomp(json!([
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}
    ]));
    profile["listenerPath"] = json!(sock.to_string_lossy());
    profile["listenerMetadata"] = json!("berth-conformance");
    b.set("/linux/seccomp", profile);
    b.sh("mkdir /tmp/x 2>&1; [ -d /tmp/x ] && echo created || echo not-created");
    let id = b.new_id();
    let o = b.run_id(&id, &[]);
    o.ok();
    assert!(o.stdout.contains("Read-only file system"), "{o:?}");
    assert!(o.stdout.contains("not-created"), "{o:?}");
    let (state, answered) = agent.join().expect("the agent thread");
    assert!(answered >= 1, "the agent answered nothing: {state}");
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "berth-conformance", "{state}");
    assert_eq!(state["state"]["id"], json!(id), "{state}");
    assert!(state["pid"].as_i64().is_some_and(|p| p > 0), "{state}");
    b.assert_nothing_left(&id);
}
