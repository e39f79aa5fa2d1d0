//! Events to containerd: `containerd.services.events.ttrpc.v1.Events/Forward` on containerd's ttrpc
//! socket (TTRPC_ADDRESS), one request per event, in order, from one thread. A failed send (containerd
//! restarting) is retried with back-off on a new connection, so an exit that happens while containerd is
//! away still reaches it when it comes back.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use containerd_shim_protos::events::task as ev;
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::event::Envelope;
use containerd_shim_protos::shim::events::ForwardRequest;
use containerd_shim_protos::topics;
use containerd_shim_protos::ttrpc::{MessageHeader, Request, Response};

/// How long one event is retried before it is given up (logged).
const GIVE_UP: Duration = Duration::from_secs(300);

pub enum Event {
    Create(ev::TaskCreate),
    Start(ev::TaskStart),
    Exit(ev::TaskExit),
    Oom(ev::TaskOOM),
    ExecAdded(ev::TaskExecAdded),
    ExecStarted(ev::TaskExecStarted),
    Paused(ev::TaskPaused),
    Resumed(ev::TaskResumed),
    Delete(ev::TaskDelete),
}

impl Event {
    /// (topic, type URL, encoded message). Type URLs are written out rather than taken from protobuf
    /// reflection, which would build descriptors (memory) for a constant string.
    fn encode(&self) -> Result<(&'static str, &'static str, Vec<u8>)> {
        Ok(match self {
            Event::Create(e) => (
                topics::TASK_CREATE_EVENT_TOPIC,
                "containerd.events.TaskCreate",
                e.write_to_bytes()?,
            ),
            Event::Start(e) => (
                topics::TASK_START_EVENT_TOPIC,
                "containerd.events.TaskStart",
                e.write_to_bytes()?,
            ),
            Event::Exit(e) => (
                topics::TASK_EXIT_EVENT_TOPIC,
                "containerd.events.TaskExit",
                e.write_to_bytes()?,
            ),
            Event::Oom(e) => (
                topics::TASK_OOM_EVENT_TOPIC,
                "containerd.events.TaskOOM",
                e.write_to_bytes()?,
            ),
            Event::ExecAdded(e) => (
                topics::TASK_EXEC_ADDED_EVENT_TOPIC,
                "containerd.events.TaskExecAdded",
                e.write_to_bytes()?,
            ),
            Event::ExecStarted(e) => (
                topics::TASK_EXEC_STARTED_EVENT_TOPIC,
                "containerd.events.TaskExecStarted",
                e.write_to_bytes()?,
            ),
            Event::Paused(e) => (
                topics::TASK_PAUSED_EVENT_TOPIC,
                "containerd.events.TaskPaused",
                e.write_to_bytes()?,
            ),
            Event::Resumed(e) => (
                topics::TASK_RESUMED_EVENT_TOPIC,
                "containerd.events.TaskResumed",
                e.write_to_bytes()?,
            ),
            Event::Delete(e) => (
                topics::TASK_DELETE_EVENT_TOPIC,
                "containerd.events.TaskDelete",
                e.write_to_bytes()?,
            ),
        })
    }
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
        ..Default::default()
    }
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<(SystemTime, Event)>,
}

impl Publisher {
    /// Starts the publishing thread for containerd's ttrpc `address` (unix:// or a bare path).
    pub fn start(address: &str, namespace: &str) -> Result<Publisher> {
        let (tx, rx) = channel();
        let path = address.trim_start_matches("unix://").to_string();
        let ns = namespace.to_string();
        std::thread::Builder::new()
            .name("events".into())
            .stack_size(128 << 10)
            .spawn(move || run(rx, &path, &ns))
            .context("starting the event publisher")?;
        Ok(Publisher { tx })
    }

    pub fn publish(&self, e: Event) {
        let _ = self.tx.send((SystemTime::now(), e));
    }
}

fn run(rx: Receiver<(SystemTime, Event)>, path: &str, ns: &str) {
    let mut conn: Option<UnixStream> = None;
    let mut stream_id = 1u32;
    for (at, e) in rx {
        let payload = match forward_request(at, &e, ns) {
            Ok(p) => p,
            Err(err) => {
                crate::log::warn(&format!("encoding an event: {err:#}"));
                continue;
            }
        };
        let first = Instant::now();
        let mut backoff = Duration::from_millis(50);
        loop {
            if conn.is_none() {
                conn = UnixStream::connect(path).ok();
            }
            if let Some(c) = conn.as_mut() {
                match send(c, stream_id, &payload, ns) {
                    Ok(()) => {
                        stream_id = stream_id.wrapping_add(2);
                        break;
                    }
                    Err(err) => {
                        conn = None;
                        if first.elapsed() > GIVE_UP {
                            crate::log::warn(&format!("giving up an event: {err:#}"));
                            break;
                        }
                    }
                }
            } else if first.elapsed() > GIVE_UP {
                crate::log::warn(&format!("giving up an event: cannot connect to {path}"));
                break;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

fn forward_request(at: SystemTime, e: &Event, ns: &str) -> Result<Vec<u8>> {
    let (topic, type_url, value) = e.encode()?;
    let req = ForwardRequest {
        envelope: MessageField::some(Envelope {
            timestamp: MessageField::some(timestamp(at)),
            namespace: ns.to_string(),
            topic: topic.to_string(),
            event: MessageField::some(Any {
                type_url: type_url.to_string(),
                value,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Ok(req.write_to_bytes()?)
}

/// One ttrpc request/response on `c`.
fn send(c: &mut UnixStream, stream_id: u32, payload: &[u8], ns: &str) -> Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut kv = containerd_shim_protos::ttrpc::proto::KeyValue::new();
    kv.key = "containerd-namespace-ttrpc".into();
    kv.value = ns.into();
    let req = Request {
        service: "containerd.services.events.ttrpc.v1.Events".into(),
        method: "Forward".into(),
        payload: payload.to_vec(),
        timeout_nano: 10_000_000_000,
        metadata: vec![kv],
        ..Default::default()
    };
    let body = req.write_to_bytes()?;
    let header: Vec<u8> = MessageHeader::new_request(stream_id, body.len() as u32).into();
    c.write_all(&header)?;
    c.write_all(&body)?;
    let mut h = [0u8; 10];
    c.read_exact(&mut h)
        .context("reading the response header")?;
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    if len > 4 << 20 {
        bail!("response of {len} bytes");
    }
    let mut buf = vec![0u8; len];
    c.read_exact(&mut buf).context("reading the response")?;
    let resp = Response::parse_from_bytes(&buf)?;
    if let Some(st) = resp.status.as_ref() {
        if st.code.value() != 0 {
            bail!("containerd refused the event: {}", st.message);
        }
    }
    Ok(())
}
