//! The task service: one implementation of containerd's Task API, served under both
//! `containerd.task.v2.Task` (containerd 1.6, and 2.x talking to a shim that answered with a bare
//! address) and `containerd.task.v3.Task` (2.x after a `BootstrapResult` of version 3). The two services
//! are the same messages under two names, so the generated v3 method table is registered twice, the
//! second time with its service name rewritten: one `Service`, two routes.
//!
//! Each handler looks the container and process up under one lock and acts on the process state machine
//! (`process.rs`); runtime commands run outside the lock. Exits arrive through [`Service::on_exit`], from
//! the reaper.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use containerd_shim_protos::api::{self, *};
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::empty::Empty;
use containerd_shim_protos::protobuf::{EnumOrUnknown, Message, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::ttrpc::{self, Code, MethodHandler, TtrpcContext};
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::eventfd::EventFd;

use crate::cgroup::{Cgroup, OomWatch};
use crate::events::{timestamp, Event, Publisher};
use crate::io::{ConsoleSocket, ProcIo};
use crate::mount;
use crate::options::RuntimeOptions;
use crate::process::{Container, Process, State};
use crate::reaper::{Exit, Exits, Subscription};
use crate::runtime::{read_pid_file, resolve, Runtime};

type R<T> = ttrpc::Result<T>;

fn status(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}
fn not_found(msg: impl Into<String>) -> ttrpc::Error {
    status(Code::NOT_FOUND, msg)
}
/// Container `id` of the shim's table, or NOT_FOUND.
fn container<'a>(g: &'a HashMap<String, Container>, id: &str) -> R<&'a Container> {
    g.get(id)
        .ok_or_else(|| not_found(format!("container {id} not found")))
}

fn container_mut<'a>(g: &'a mut HashMap<String, Container>, id: &str) -> R<&'a mut Container> {
    g.get_mut(id)
        .ok_or_else(|| not_found(format!("container {id} not found")))
}

/// The init (empty `exec_id`) or an exec of `c`, or NOT_FOUND.
fn process<'a>(c: &'a Container, exec_id: &str) -> R<&'a Process> {
    c.process(exec_id)
        .ok_or_else(|| not_found(format!("process {exec_id} not found")))
}

fn precondition(msg: impl Into<String>) -> ttrpc::Error {
    status(Code::FAILED_PRECONDITION, msg)
}
fn internal(e: anyhow::Error) -> ttrpc::Error {
    status(Code::UNKNOWN, format!("{e:#}"))
}

/// Runtime errors that mean "the process is gone", which containerd expects as NotFound.
fn kill_error(e: anyhow::Error) -> ttrpc::Error {
    let s = format!("{e:#}");
    let gone = [
        "not running",
        "process already finished",
        "no such process",
        "does not exist",
    ];
    if gone.iter().any(|g| s.contains(g)) {
        not_found(format!("process already finished: {s}"))
    } else {
        internal(e)
    }
}

/// OOM watches registered in the main loop's epoll (keys from 16 up; 0..16 are the loop's own fds).
pub struct OomRegistry {
    pub epoll: Epoll,
    next: AtomicU64,
    watches: Mutex<HashMap<u64, (String, OomWatch)>>,
}

impl OomRegistry {
    pub fn new(epoll: Epoll) -> OomRegistry {
        OomRegistry {
            epoll,
            next: AtomicU64::new(16),
            watches: Mutex::new(HashMap::new()),
        }
    }

    fn add(&self, id: &str, w: OomWatch) -> Option<u64> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        self.epoll
            .add(w.fd(), EpollEvent::new(EpollFlags::EPOLLIN, key))
            .ok()?;
        self.watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (id.to_string(), w));
        Some(key)
    }

    fn remove(&self, key: u64) {
        let w = self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        if let Some((_, w)) = w {
            let _ = self.epoll.delete(w.fd());
        }
    }

    /// The container whose watch `key` fired with a real OOM.
    pub fn fired(&self, key: u64) -> Option<String> {
        let mut g = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        let (id, w) = g.get_mut(&key)?;
        w.fired().then(|| id.clone())
    }
}

pub struct Service {
    pub namespace: String,
    containers: Mutex<HashMap<String, Container>>,
    cv: Condvar,
    pub exits: Exits,
    publisher: Publisher,
    defaults: RuntimeOptions,
    oom: Arc<OomRegistry>,
    shutdown: Arc<EventFd>,
    me: Weak<Service>,
}

/// Whether config.json gives the container a pid namespace of its own.
fn own_pid_namespace(bundle: &Path) -> bool {
    let Ok(b) = std::fs::read(bundle.join("config.json")) else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) else {
        return true;
    };
    v["linux"]["namespaces"].as_array().is_some_and(|ns| {
        ns.iter()
            .any(|n| n["type"] == "pid" && n["path"].as_str().map(str::is_empty).unwrap_or(true))
    })
}

fn exited_at(
    e: &Option<Exit>,
) -> MessageField<containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp> {
    match e {
        Some(e) => MessageField::some(timestamp(e.at)),
        None => MessageField::none(),
    }
}

fn path_str(p: &Path) -> R<&str> {
    p.to_str().ok_or_else(|| {
        status(
            Code::INVALID_ARGUMENT,
            format!("{} is not UTF-8", p.display()),
        )
    })
}

impl Service {
    pub fn new(
        namespace: &str,
        publisher: Publisher,
        defaults: RuntimeOptions,
        oom: Arc<OomRegistry>,
        shutdown: Arc<EventFd>,
    ) -> Arc<Service> {
        Arc::new_cyclic(|me| Service {
            namespace: namespace.to_string(),
            containers: Mutex::new(HashMap::new()),
            cv: Condvar::new(),
            exits: Exits::default(),
            publisher,
            defaults,
            oom,
            shutdown,
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish(&self, e: Event) {
        self.publisher.publish(e);
    }

    /// The method tables for task API v3 and v2 over this one service.
    pub fn routes(self: &Arc<Self>) -> Vec<HashMap<String, Box<dyn MethodHandler + Send + Sync>>> {
        let v3 = containerd_shim_protos::create_task(self.clone());
        let v2 = containerd_shim_protos::create_task(self.clone())
            .into_iter()
            .map(|(k, v)| {
                (
                    k.replacen("/containerd.task.v3.Task/", "/containerd.task.v2.Task/", 1),
                    v,
                )
            })
            .collect();
        vec![v3, v2]
    }

    // ---- exits -------------------------------------------------------------------------------

    /// The reaper saw `pid` end with `status`.
    pub fn on_exit(&self, pid: i32, status: u32) {
        let mut g = self.lock();
        let e = self.exits.stamp(pid, status);
        for c in g.values_mut() {
            if c.init.pid == pid && c.init.exit.is_none() && c.init_exit_held.is_none() {
                self.init_exited(c, e);
                return;
            }
            let exec = c
                .execs
                .iter()
                .find(|(_, x)| x.pid == pid && x.exit.is_none())
                .map(|(k, _)| k.clone());
            if let Some(exec_id) = exec {
                self.exec_exited(c, &exec_id, e);
                return;
            }
        }
        // Nobody knows this pid (yet): a runtime command, or a process whose pid file is being read.
        self.exits.record(e);
    }

    fn init_exited(&self, c: &mut Container, e: Exit) {
        if c.kill_all_on_exit {
            // The container shares a pid namespace: the rest of it goes too, as with the runc shim,
            // before the init's exit is published. The runtime command runs outside the lock (its own
            // exit comes through `on_exit`).
            c.killing_rest = self.spawn_kill_rest(c);
        }
        if c.execs_running() || c.killing_rest {
            c.init_exit_held = Some(e);
            return;
        }
        self.finish_init(c, e);
    }

    /// Starts `RUNTIME kill --all ID 9` for the exited init of `c`; when it returns (whatever it says:
    /// a failure is logged), the held exit is released. False if no thread could be started.
    fn spawn_kill_rest(&self, c: &Container) -> bool {
        let Some(me) = self.me.upgrade() else {
            return false;
        };
        let (rt, id) = (c.runtime.clone(), c.id.clone());
        std::thread::Builder::new()
            .stack_size(128 << 10)
            .spawn(move || {
                if let Err(e) = rt.kill(&me.exits, &id, 9, true) {
                    crate::log::warn(&format!(
                        "failed to kill init's children of {id}: OCI runtime killall failed: {e:#}"
                    ));
                }
                let mut g = me.lock();
                if let Some(c) = g.get_mut(&id) {
                    c.killing_rest = false;
                    me.release_held_init(c);
                }
                me.cv.notify_all();
            })
            .is_ok()
    }

    fn finish_init(&self, c: &mut Container, e: Exit) {
        c.init.exited(e);
        if !c.init.starting {
            self.publish_exit(&c.id, &c.init);
        }
        self.cv.notify_all();
    }

    fn exec_exited(&self, c: &mut Container, exec_id: &str, e: Exit) {
        if let Some(x) = c.execs.get_mut(exec_id) {
            x.exited(e);
            if !x.starting {
                self.publish_exit(&c.id, x);
            }
        }
        self.release_held_init(c);
        self.cv.notify_all();
    }

    fn release_held_init(&self, c: &mut Container) {
        if c.init_exit_held.is_some() && !c.execs_running() && !c.killing_rest {
            if let Some(e) = c.init_exit_held.take() {
                self.finish_init(c, e);
            }
        }
    }

    fn publish_exit(&self, container_id: &str, p: &Process) {
        let Some(e) = p.exit else { return };
        self.publish(Event::Exit(ev::TaskExit {
            container_id: container_id.to_string(),
            id: if p.exec_id.is_empty() {
                container_id.to_string()
            } else {
                p.exec_id.clone()
            },
            pid: p.pid as u32,
            exit_status: e.status,
            exited_at: MessageField::some(timestamp(e.at)),
            ..Default::default()
        }));
    }

    // ---- create ------------------------------------------------------------------------------

    fn do_create(&self, req: &CreateTaskRequest) -> R<u32> {
        berth::state::validate_id(&req.id)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("{e:#}")))?;
        if self.lock().contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        crate::log::debug(&format!("create {} in {}", req.id, req.bundle));
        let opts = match req.options.as_ref() {
            Some(a) if !a.type_url.is_empty() => {
                RuntimeOptions::from_any(&a.type_url, &a.value).map_err(internal)?
            }
            _ => self.defaults.clone(),
        };
        opts.save(&bundle).map_err(internal)?;
        let runtime = Runtime {
            binary: resolve(opts.binary()).map_err(internal)?,
            root: opts.root_for(&self.namespace),
            systemd_cgroup: opts.systemd_cgroup,
            log: bundle.join("log.json"),
        };
        let rootfs = bundle.join("rootfs");
        let mounted = !req.rootfs.is_empty();
        if mounted {
            mount::mount_all(&req.rootfs, &rootfs).map_err(internal)?;
        }
        let r = self.create_container(req, &bundle, runtime.clone(), mounted);
        if r.is_err() {
            let _ = runtime.delete(&self.exits, &req.id, true);
            if mounted {
                mount::unmount_all(&rootfs);
            }
        }
        r
    }

    fn create_container(
        &self,
        req: &CreateTaskRequest,
        bundle: &Path,
        runtime: Runtime,
        mounted: bool,
    ) -> R<u32> {
        let (mut io, stdio) = ProcIo::prepare(
            &req.stdin,
            &req.stdout,
            &req.stderr,
            req.terminal,
            &req.id,
            &self.namespace,
        )
        .map_err(internal)?;
        let console = if req.terminal {
            Some(ConsoleSocket::new().map_err(internal)?)
        } else {
            None
        };
        let pid_file = bundle.join("init.pid");
        let mut args = vec![
            "create",
            "--bundle",
            path_str(bundle)?,
            "--pid-file",
            path_str(&pid_file)?,
        ];
        if let Some(c) = &console {
            args.extend(["--console-socket", path_str(&c.path)?]);
        }
        args.push(&req.id);
        let mut running = runtime
            .spawn(&self.exits, &args, stdio, None)
            .map_err(internal)?;
        if let Some(c) = &console {
            match c.receive(&mut running) {
                Ok(m) => io.attach_console(m).map_err(internal)?,
                Err(e) => {
                    let (r, _) = running.finish_sub();
                    return Err(internal(
                        r.err().unwrap_or(e).context("OCI runtime create failed"),
                    ));
                }
            }
        }
        let (r, sub) = running.finish_sub();
        r.map_err(|e| internal(e.context("OCI runtime create failed")))?;
        let pid = read_pid_file(&pid_file).map_err(internal)?;
        let cgroup = Cgroup::of_pid(pid).ok();
        let oom_key = cgroup
            .as_ref()
            .and_then(|cg| cg.watch_oom().ok())
            .and_then(|w| self.oom.add(&req.id, w));
        let mut init = Process::new("", io);
        init.pid = pid;
        let mut c = Container {
            id: req.id.clone(),
            bundle: bundle.to_path_buf(),
            runtime,
            init,
            execs: Default::default(),
            paused: false,
            rootfs_mounted: mounted,
            cgroup,
            oom_key,
            kill_all_on_exit: !own_pid_namespace(bundle),
            init_exit_held: None,
            killing_rest: false,
        };
        let mut g = self.lock();
        self.publish(Event::Create(ev::TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(ev::TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            }),
            checkpoint: req.checkpoint.clone(),
            pid: pid as u32,
            ..Default::default()
        }));
        // It may have ended before its pid was known.
        if let Some(e) = sub.take(pid) {
            self.init_exited(&mut c, e);
        }
        g.insert(req.id.clone(), c);
        Ok(pid as u32)
    }

    // ---- start -------------------------------------------------------------------------------

    fn do_start(&self, req: &StartRequest) -> R<u32> {
        let (runtime, bundle, exec) = {
            let mut g = self.lock();
            let c = container_mut(&mut g, &req.id)?;
            let (runtime, bundle) = (c.runtime.clone(), c.bundle.clone());
            let p = c
                .process_mut(&req.exec_id)
                .ok_or_else(|| not_found(format!("process {} not found", req.exec_id)))?;
            if p.state != State::Created || p.starting {
                return Err(precondition(format!(
                    "process {} is not in the created state",
                    req.exec_id
                )));
            }
            p.starting = true;
            let exec = (!req.exec_id.is_empty()).then(|| {
                (
                    std::mem::take(&mut p.spec),
                    p.io.stdin.clone(),
                    p.io.stdout.clone(),
                    p.io.stderr.clone(),
                    p.io.terminal,
                )
            });
            (runtime, bundle, exec)
        };
        let r = match exec {
            None => self.start_init(&req.id, &runtime),
            Some(x) => self.start_exec(&req.id, &req.exec_id, &runtime, &bundle, x),
        };
        if r.is_err() {
            let mut g = self.lock();
            if let Some(c) = g.get_mut(&req.id) {
                if let Some(p) = c.process_mut(&req.exec_id) {
                    p.starting = false;
                    if !req.exec_id.is_empty() && p.state == State::Created {
                        // A failed exec never runs: stopped, so Wait and Delete work.
                        let e = self.exits.stamp(0, 255);
                        p.exited(e);
                    }
                }
                self.release_held_init(c);
            }
            self.cv.notify_all();
        }
        r
    }

    fn start_init(&self, id: &str, runtime: &Runtime) -> R<u32> {
        let r = runtime.start(&self.exits, id);
        let mut g = self.lock();
        let c = g
            .get_mut(id)
            .ok_or_else(|| not_found(format!("container {id} was deleted")))?;
        r.map_err(|e| internal(e.context("OCI runtime start failed")))?;
        c.init.starting = false;
        if c.init.exit.is_none() {
            c.init.state = State::Running;
        }
        self.publish(Event::Start(ev::TaskStart {
            container_id: id.to_string(),
            pid: c.init.pid as u32,
            ..Default::default()
        }));
        if c.init.exit.is_some() {
            self.publish_exit(id, &c.init);
        }
        self.cv.notify_all();
        Ok(c.init.pid as u32)
    }

    fn start_exec(
        &self,
        id: &str,
        exec_id: &str,
        runtime: &Runtime,
        bundle: &Path,
        (spec, stdin, stdout, stderr, terminal): (Vec<u8>, String, String, String, bool),
    ) -> R<u32> {
        let spec_file = bundle.join(format!(".exec-{exec_id}.json"));
        let pid_file = bundle.join(format!(".exec-{exec_id}.pid"));
        std::fs::write(&spec_file, &spec)
            .with_context(|| format!("writing {}", spec_file.display()))
            .map_err(internal)?;
        let result = (|| -> Result<(i32, ProcIo, Subscription<'_>)> {
            let (mut io, stdio) =
                ProcIo::prepare(&stdin, &stdout, &stderr, terminal, id, &self.namespace)?;
            let console = if terminal {
                Some(ConsoleSocket::new()?)
            } else {
                None
            };
            let spec_s = spec_file.to_string_lossy().into_owned();
            let pid_s = pid_file.to_string_lossy().into_owned();
            let mut args = vec![
                "exec",
                "--process",
                spec_s.as_str(),
                "--detach",
                "--pid-file",
                pid_s.as_str(),
            ];
            let sock_s = console
                .as_ref()
                .map(|c| c.path.to_string_lossy().into_owned());
            if let Some(s) = &sock_s {
                args.extend(["--console-socket", s.as_str()]);
            }
            args.push(id);
            let mut running = runtime.spawn(&self.exits, &args, stdio, None)?;
            if let Some(c) = &console {
                match c.receive(&mut running) {
                    Ok(m) => io.attach_console(m)?,
                    Err(e) => {
                        let (r, _) = running.finish_sub();
                        return Err(r.err().unwrap_or(e));
                    }
                }
            }
            let (r, sub) = running.finish_sub();
            r?;
            let pid = read_pid_file(&pid_file)?;
            Ok((pid, io, sub))
        })();
        let _ = std::fs::remove_file(&spec_file);
        let _ = std::fs::remove_file(&pid_file);
        let (pid, io, sub) = result.map_err(|e| internal(e.context("OCI runtime exec failed")))?;
        // The subscription lives until the pid is in the table, and both happen under the table's
        // lock, as `on_exit` does its lookup and record: the exit is either waiting in `sub` or
        // delivered to the exec afterwards, never dropped in between.
        let mut g = self.lock();
        let early = sub.take(pid);
        let c = g
            .get_mut(id)
            .ok_or_else(|| not_found(format!("container {id} was deleted")))?;
        let x = c
            .execs
            .get_mut(exec_id)
            .ok_or_else(|| not_found(format!("exec {exec_id} was deleted")))?;
        x.pid = pid;
        x.io = io;
        x.starting = false;
        match early {
            Some(e) => x.exited(e),
            None => x.state = State::Running,
        }
        self.publish(Event::ExecStarted(ev::TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid as u32,
            ..Default::default()
        }));
        if x.exit.is_some() {
            let x = &c.execs[exec_id];
            self.publish_exit(id, x);
            self.release_held_init(c);
        }
        self.cv.notify_all();
        Ok(pid as u32)
    }

    // ---- delete ------------------------------------------------------------------------------

    fn do_delete(&self, req: &DeleteRequest) -> R<DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut g = self.lock();
            let c = container_mut(&mut g, &req.id)?;
            let x = c
                .execs
                .get(&req.exec_id)
                .ok_or_else(|| not_found(format!("process {} not found", req.exec_id)))?;
            if x.running() {
                return Err(precondition(format!(
                    "cannot delete running process {}",
                    req.exec_id
                )));
            }
            let x = c.execs.remove(&req.exec_id).expect("looked up above");
            return Ok(DeleteResponse {
                pid: x.pid.max(0) as u32,
                exit_status: x.exit.map(|e| e.status).unwrap_or(0),
                exited_at: exited_at(&x.exit),
                ..Default::default()
            });
        }
        let (runtime, state, bundle, mounted) = {
            let g = self.lock();
            let c = container(&g, &req.id)?;
            if c.init.starting
                || (c.init.state == State::Running
                    && c.init.exit.is_none()
                    && c.init_exit_held.is_none())
            {
                return Err(precondition(format!(
                    "cannot delete running task {}",
                    req.id
                )));
            }
            (
                c.runtime.clone(),
                c.init.state,
                c.bundle.clone(),
                c.rootfs_mounted,
            )
        };
        if let Err(e) = runtime.delete(&self.exits, &req.id, state != State::Stopped) {
            let s = format!("{e:#}");
            if !(s.contains("does not exist") || s.contains("not found") || s.contains("no such")) {
                return Err(internal(e.context("OCI runtime delete failed")));
            }
        }
        if state == State::Created {
            // The forced delete killed the waiting init: give its exit a moment to arrive.
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut g = self.lock();
            while g
                .get(&req.id)
                .is_some_and(|c| c.init.exit.is_none() && c.init.pid > 0)
            {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                g = self
                    .cv
                    .wait_timeout(g, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        if mounted {
            mount::unmount_all(&bundle.join("rootfs"));
        }
        let mut g = self.lock();
        let c = g
            .remove(&req.id)
            .ok_or_else(|| not_found(format!("container {} not found", req.id)))?;
        drop(g);
        if let Some(k) = c.oom_key {
            self.oom.remove(k);
        }
        let exit = c.init.exit.or(c.init_exit_held);
        let resp = DeleteResponse {
            pid: c.init.pid.max(0) as u32,
            exit_status: exit.map(|e| e.status).unwrap_or(0),
            exited_at: exited_at(&exit),
            ..Default::default()
        };
        self.publish(Event::Delete(ev::TaskDelete {
            container_id: req.id.clone(),
            pid: resp.pid,
            exit_status: resp.exit_status,
            exited_at: resp.exited_at.clone(),
            id: req.id.clone(),
            ..Default::default()
        }));
        self.cv.notify_all();
        Ok(resp)
    }

    // ---- the rest ----------------------------------------------------------------------------

    fn do_kill(&self, req: &KillRequest) -> R<()> {
        let runtime = {
            let g = self.lock();
            let c = container(&g, &req.id)?;
            if !req.exec_id.is_empty() {
                let x = c
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| not_found(format!("process {} not found", req.exec_id)))?;
                if x.exit.is_some() {
                    return Err(not_found("process already finished"));
                }
                if x.pid <= 0 {
                    return Err(precondition(format!(
                        "process {} is not started",
                        req.exec_id
                    )));
                }
                let sig = nix::sys::signal::Signal::try_from(req.signal as i32).map_err(|_| {
                    status(
                        Code::INVALID_ARGUMENT,
                        format!("invalid signal {}", req.signal),
                    )
                })?;
                return match nix::sys::signal::kill(nix::unistd::Pid::from_raw(x.pid), sig) {
                    Ok(()) => Ok(()),
                    Err(nix::errno::Errno::ESRCH) => Err(not_found("process already finished")),
                    Err(e) => Err(internal(anyhow::anyhow!("kill {}: {e}", x.pid))),
                };
            }
            // Once the init has exited, only `--all` still has something to do: what the init left
            // in the container's cgroup (a shared pid namespace). containerd asks for exactly that
            // (WithProcessKill: SIGKILL, all) before it deletes an exited task, and the runc shim
            // passes it on to the runtime in every state.
            if (c.init.exit.is_some() || c.init_exit_held.is_some()) && !req.all {
                return Err(not_found("process already finished"));
            }
            c.runtime.clone()
        };
        runtime
            .kill(&self.exits, &req.id, req.signal, req.all)
            .map_err(kill_error)
    }

    fn do_exec(&self, req: &ExecProcessRequest) -> R<()> {
        berth::state::validate_id(&req.exec_id)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("exec id: {e:#}")))?;
        let mut g = self.lock();
        let c = container_mut(&mut g, &req.id)?;
        if c.execs.contains_key(&req.exec_id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("exec {} already exists", req.exec_id),
            ));
        }
        if c.init.state == State::Stopped || c.init_exit_held.is_some() {
            return Err(precondition(format!("container {} is not running", req.id)));
        }
        let io = ProcIo::requested(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        let mut x = Process::new(&req.exec_id, io);
        x.spec = req
            .spec
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        c.execs.insert(req.exec_id.clone(), x);
        self.publish(Event::ExecAdded(ev::TaskExecAdded {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        }));
        Ok(())
    }

    fn do_state(&self, req: &StateRequest) -> R<StateResponse> {
        let g = self.lock();
        let c = container(&g, &req.id)?;
        let p = process(c, &req.exec_id)?;
        let st = if req.exec_id.is_empty() && c.init_exit_held.is_some() {
            // Reported stopped only once its execs are gone (their exits first).
            p.task_status(c.paused)
        } else {
            p.task_status(c.paused && req.exec_id.is_empty())
        };
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                c.id.clone()
            } else {
                p.exec_id.clone()
            },
            bundle: c.bundle.display().to_string(),
            pid: p.pid.max(0) as u32,
            status: EnumOrUnknown::new(st),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status: p.exit.map(|e| e.status).unwrap_or(0),
            exited_at: exited_at(&p.exit),
            exec_id: req.exec_id.clone(),
            ..Default::default()
        })
    }

    fn do_wait(&self, req: &WaitRequest) -> R<WaitResponse> {
        let mut g = self.lock();
        loop {
            let c = container(&g, &req.id)?;
            let p = process(c, &req.exec_id)?;
            if let Some(e) = p.exit {
                return Ok(WaitResponse {
                    exit_status: e.status,
                    exited_at: MessageField::some(timestamp(e.at)),
                    ..Default::default()
                });
            }
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn do_pids(&self, req: &PidsRequest) -> R<PidsResponse> {
        let runtime = self.runtime_of(&req.id)?;
        let pids = runtime.ps(&self.exits, &req.id).map_err(internal)?;
        let g = self.lock();
        let execs: HashMap<i32, String> = g
            .get(&req.id)
            .map(|c| {
                c.execs
                    .values()
                    .map(|x| (x.pid, x.exec_id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let processes = pids
            .into_iter()
            .map(|pid| {
                let info = execs.get(&pid).and_then(|exec_id| {
                    let d = ProcessDetails {
                        exec_id: exec_id.clone(),
                        ..Default::default()
                    };
                    Some(Any {
                        type_url: "containerd.runc.v1.ProcessDetails".into(),
                        value: d.write_to_bytes().ok()?,
                        ..Default::default()
                    })
                });
                api::ProcessInfo {
                    pid: pid as u32,
                    info: info.into(),
                    ..Default::default()
                }
            })
            .collect();
        Ok(PidsResponse {
            processes,
            ..Default::default()
        })
    }

    fn runtime_of(&self, id: &str) -> R<Runtime> {
        let g = self.lock();
        let c = container(&g, id)?;
        Ok(c.runtime.clone())
    }

    fn set_paused(&self, id: &str, paused: bool) -> R<()> {
        let runtime = self.runtime_of(id)?;
        if paused {
            runtime.pause(&self.exits, id).map_err(internal)?;
        } else {
            runtime.resume(&self.exits, id).map_err(internal)?;
        }
        let mut g = self.lock();
        if let Some(c) = g.get_mut(id) {
            c.paused = paused;
        }
        self.publish(if paused {
            Event::Paused(ev::TaskPaused {
                container_id: id.to_string(),
                ..Default::default()
            })
        } else {
            Event::Resumed(ev::TaskResumed {
                container_id: id.to_string(),
                ..Default::default()
            })
        });
        Ok(())
    }

    fn do_stats(&self, req: &StatsRequest) -> R<StatsResponse> {
        let (cg, pid) = {
            let g = self.lock();
            let c = container(&g, &req.id)?;
            (c.cgroup.clone(), c.init.pid)
        };
        let cg = match cg {
            Some(cg) => cg,
            None => Cgroup::of_pid(pid).map_err(internal)?,
        };
        Ok(StatsResponse {
            stats: MessageField::some(cg.metrics().map_err(internal)?),
            ..Default::default()
        })
    }

    /// The OOM watch of container `id` fired.
    pub fn oom(&self, id: &str) {
        self.publish(Event::Oom(ev::TaskOOM {
            container_id: id.to_string(),
            ..Default::default()
        }));
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

impl containerd_shim_protos::Task for Service {
    fn state(&self, _: &TtrpcContext, req: StateRequest) -> R<StateResponse> {
        self.do_state(&req)
    }

    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> R<CreateTaskResponse> {
        let pid = self.do_create(&req)?;
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> R<StartResponse> {
        let pid = self.do_start(&req)?;
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> R<DeleteResponse> {
        self.do_delete(&req)
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> R<PidsResponse> {
        self.do_pids(&req)
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> R<Empty> {
        self.set_paused(&req.id, true).map(|_| Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> R<Empty> {
        self.set_paused(&req.id, false).map(|_| Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> R<Empty> {
        Err(status(
            Code::UNIMPLEMENTED,
            "checkpoint is not supported by the berth shim",
        ))
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> R<Empty> {
        self.do_kill(&req).map(|_| Empty::new())
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> R<Empty> {
        self.do_exec(&req).map(|_| Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> R<Empty> {
        let g = self.lock();
        let c = container(&g, &req.id)?;
        let p = process(c, &req.exec_id)?;
        p.io.resize(req.width, req.height).map_err(internal)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> R<Empty> {
        let g = self.lock();
        let c = container(&g, &req.id)?;
        let p = process(c, &req.exec_id)?;
        if req.stdin {
            p.io.close_stdin();
        }
        Ok(Empty::new())
    }

    fn update(&self, _: &TtrpcContext, req: UpdateTaskRequest) -> R<Empty> {
        let runtime = self.runtime_of(&req.id)?;
        let res = req
            .resources
            .as_ref()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        runtime
            .update(&self.exits, &req.id, &res)
            .map_err(internal)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> R<WaitResponse> {
        self.do_wait(&req)
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> R<StatsResponse> {
        self.do_stats(&req)
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> R<ConnectResponse> {
        let g = self.lock();
        let task_pid = g
            .get(&req.id)
            .map(|c| c.init.pid.max(0) as u32)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            ..Default::default()
        })
    }

    fn shutdown(&self, _: &TtrpcContext, _: ShutdownRequest) -> R<Empty> {
        if self.is_empty() {
            let _ = self.shutdown.write(1);
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::AtomicBool;

    use nix::sys::epoll::EpollCreateFlags;
    use nix::sys::eventfd::EfdFlags;

    /// A runc-compatible runtime of a few lines: records `start VERB ARGS` and `end VERB ARGS` in
    /// DIR/calls around a short sleep, and fails as runc words it while DIR/fail exists.
    const FAKE_RUNTIME: &str = r#"#!/bin/sh
dir=$(dirname "$0")
log=$4
shift 6
echo "start $*" >> "$dir/calls"
sleep 0.2
echo "end $*" >> "$dir/calls"
if [ -e "$dir/fail" ]; then
    echo '{"level":"error","msg":"container not running"}' >> "$log"
    exit 1
fi
"#;

    struct Fixture {
        dir: PathBuf,
        svc: Arc<Service>,
        stop: Arc<AtomicBool>,
        reaper: Option<std::thread::JoinHandle<()>>,
        _one: MutexGuard<'static, ()>,
    }

    impl Fixture {
        /// A service holding container `c1` (init `pid`, running, sharing a pid namespace) driven by
        /// the fake runtime, and a reaper thread standing in for the main loop.
        fn new(name: &str, pid: i32) -> Fixture {
            let one = crate::reaper::REAPING_TESTS
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let dir =
                std::env::temp_dir().join(format!("berth-shim-test-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let bin = dir.join("runtime");
            std::fs::write(&bin, FAKE_RUNTIME).unwrap();
            std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
            let publisher =
                Publisher::start(&dir.join("no-containerd.sock").display().to_string(), "t")
                    .unwrap();
            let oom = Arc::new(OomRegistry::new(
                Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap(),
            ));
            let shutdown =
                Arc::new(EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC).unwrap());
            let svc = Service::new("t", publisher, RuntimeOptions::default(), oom, shutdown);
            let mut init = Process::new("", ProcIo::requested("", "", "", false));
            init.pid = pid;
            init.state = State::Running;
            svc.lock().insert(
                "c1".into(),
                Container {
                    id: "c1".into(),
                    bundle: dir.clone(),
                    runtime: Runtime {
                        binary: bin,
                        root: dir.join("root"),
                        systemd_cgroup: false,
                        log: dir.join("log.json"),
                    },
                    init,
                    execs: Default::default(),
                    paused: false,
                    rootfs_mounted: false,
                    cgroup: None,
                    oom_key: None,
                    kill_all_on_exit: true,
                    init_exit_held: None,
                    killing_rest: false,
                },
            );
            let stop = Arc::new(AtomicBool::new(false));
            let (svc2, stop2) = (Arc::clone(&svc), Arc::clone(&stop));
            let reaper = std::thread::spawn(move || {
                while !stop2.load(Ordering::Relaxed) {
                    crate::reaper::reap(|p, s| svc2.on_exit(p, s));
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
            Fixture {
                dir,
                svc,
                stop,
                reaper: Some(reaper),
                _one: one,
            }
        }

        fn calls(&self) -> String {
            std::fs::read_to_string(self.dir.join("calls")).unwrap_or_default()
        }

        fn init_exit(&self) -> Option<Exit> {
            self.svc.lock()["c1"].init.exit
        }

        fn status(&self) -> api::Status {
            let r = StateRequest {
                id: "c1".into(),
                ..Default::default()
            };
            self.svc.do_state(&r).unwrap().status.enum_value().unwrap()
        }

        /// Waits (5 s at most) for the init's exit to become visible.
        fn wait_init_exit(&self) -> Exit {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(e) = self.init_exit() {
                    return e;
                }
                assert!(Instant::now() < deadline, "the init's exit never showed");
                std::thread::sleep(Duration::from_millis(5));
            }
        }

        fn kill(&self, all: bool) -> R<()> {
            self.svc.do_kill(&KillRequest {
                id: "c1".into(),
                signal: 9,
                all,
                ..Default::default()
            })
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Relaxed);
            if let Some(t) = self.reaper.take() {
                let _ = t.join();
            }
            if std::thread::panicking() {
                // A fake runtime command may still be running: let it finish writing first.
                std::thread::sleep(Duration::from_millis(500));
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn init_exit_of_a_shared_pid_namespace_shows_after_the_rest_is_killed() {
        let f = Fixture::new("killrest", 3_999_901);
        f.svc.on_exit(3_999_901, 137);
        // Held while `kill --all` runs: still running to containerd, Wait still blocks.
        assert!(f.init_exit().is_none());
        assert_eq!(f.status(), api::Status::RUNNING);
        let e = f.wait_init_exit();
        assert_eq!(e.status, 137);
        assert_eq!(f.status(), api::Status::STOPPED);
        let calls = f.calls();
        assert!(
            calls.contains("start kill --all c1 9\nend kill --all c1 9\n"),
            "calls: {calls:?}"
        );
    }

    #[test]
    fn init_exit_shows_even_when_the_runtime_cannot_kill_the_rest() {
        let f = Fixture::new("killrestfails", 3_999_902);
        std::fs::write(f.dir.join("fail"), "").unwrap();
        f.svc.on_exit(3_999_902, 0);
        assert_eq!(f.wait_init_exit().status, 0);
        assert!(f.calls().contains("end kill --all c1 9"));
    }

    #[test]
    fn kill_all_after_the_init_exited_still_reaches_the_runtime() {
        let f = Fixture::new("killall", 3_999_903);
        f.svc.on_exit(3_999_903, 0);
        f.wait_init_exit();
        let before = f.calls();
        // containerd's WithProcessKill before Delete: SIGKILL to everything left in the container.
        f.kill(true).unwrap();
        let after = f.calls();
        assert_eq!(
            &after[before.len()..],
            "start kill --all c1 9\nend kill --all c1 9\n"
        );
        // The runtime's "container not running" is containerd's NotFound.
        std::fs::write(f.dir.join("fail"), "").unwrap();
        match f.kill(true) {
            Err(ttrpc::Error::RpcStatus(s)) => assert_eq!(s.code(), Code::NOT_FOUND, "{s:?}"),
            other => panic!("kill --all of a stopped container: {other:?}"),
        }
        // A signal for the init alone: nothing left to signal, no runtime call.
        let n = f.calls().len();
        match f.kill(false) {
            Err(ttrpc::Error::RpcStatus(s)) => assert_eq!(s.code(), Code::NOT_FOUND),
            other => panic!("kill of an exited init: {other:?}"),
        }
        assert_eq!(f.calls().len(), n, "kill without --all reached the runtime");
    }
}
