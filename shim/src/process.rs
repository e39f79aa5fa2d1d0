//! One container process (the init or an exec) as a small state machine:
//! created → running → stopped → deleted (the last by removal from its container).
//!
//! The reaper moves a process to stopped ([`Process::exited`]); every request handler looks the process
//! up and asks it. While a Start is in flight (`starting`), the exit is recorded at once but its event
//! waits until the start event has gone out, so containerd always sees start before exit.

use std::collections::BTreeMap;
use std::path::PathBuf;

use containerd_shim_protos::api::Status as TaskStatus;

use crate::cgroup::Cgroup;
use crate::io::ProcIo;
use crate::reaper::Exit;
use crate::runtime::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Stopped,
}

pub struct Process {
    /// Empty for the init process.
    pub exec_id: String,
    /// 0 until the runtime reports it.
    pub pid: i32,
    pub state: State,
    pub exit: Option<Exit>,
    pub io: ProcIo,
    /// A Start is running: the exit event waits for the start event.
    pub starting: bool,
    /// The exec's OCI process (JSON), until it starts.
    pub spec: Vec<u8>,
}

impl Process {
    pub fn new(exec_id: &str, io: ProcIo) -> Process {
        Process {
            exec_id: exec_id.to_string(),
            pid: 0,
            state: State::Created,
            exit: None,
            io,
            starting: false,
            spec: Vec::new(),
        }
    }

    /// The reaper saw it end.
    pub fn exited(&mut self, e: Exit) {
        self.state = State::Stopped;
        self.exit = Some(e);
    }

    pub fn running(&self) -> bool {
        self.state == State::Running || self.starting
    }

    pub fn task_status(&self, paused: bool) -> TaskStatus {
        match self.state {
            State::Created => TaskStatus::CREATED,
            State::Running if paused => TaskStatus::PAUSED,
            State::Running => TaskStatus::RUNNING,
            State::Stopped => TaskStatus::STOPPED,
        }
    }
}

pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    pub init: Process,
    pub execs: BTreeMap<String, Process>,
    pub paused: bool,
    pub rootfs_mounted: bool,
    pub cgroup: Option<Cgroup>,
    /// Key of the OOM watch in the main loop, if any.
    pub oom_key: Option<u64>,
    /// The container shares another pid namespace: when its init ends, the rest is killed (a pid
    /// namespace of its own does that by itself).
    pub kill_all_on_exit: bool,
    /// The init exited while execs still ran, or while what it left in the container is being killed:
    /// its exit is made visible when the last exec is gone and the kill has returned, so containerd
    /// sees exec exits before the init's, and sees the init's only once nothing else of the container
    /// runs (what holds the container's stdout would otherwise keep containerd's IO wait, and with it
    /// the exit's handling, from ever finishing).
    pub init_exit_held: Option<Exit>,
    /// `RUNTIME kill --all ID 9` for the init's exit is running.
    pub killing_rest: bool,
}

impl Container {
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    pub fn execs_running(&self) -> bool {
        self.execs.values().any(Process::running)
    }
}
