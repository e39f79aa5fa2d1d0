//! `--log FILE --log-format text|json --debug`: runc-compatible log lines.
//!
//! JSON lines are `{"level":"error","msg":"...","time":"2026-01-02T03:04:05Z"}` like runc's logrus output:
//! containerd's runc shim reports the last `error` line of this file as the reason a command failed.
//! Errors always go to stderr too, as runc prints them.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    file: Option<Mutex<File>>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Set up logging once, from the global command-line options.
pub fn init(path: Option<&Path>, format: Format, debug: bool) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(Mutex::new(
            OpenOptions::new().create(true).append(true).open(p)?,
        )),
        None => None,
    };
    let _ = LOGGER.set(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

/// Format one line the way runc does.
pub fn format_line(format: Format, level: Level, msg: &str, time: &str) -> String {
    match format {
        Format::Json => {
            let line = serde_json::json!({ "level": level.name(), "msg": msg, "time": time });
            format!("{line}\n")
        }
        Format::Text => format!(
            "time=\"{time}\" level={} msg={}\n",
            level.name(),
            serde_json::Value::String(msg.to_owned())
        ),
    }
}

pub fn log(level: Level, msg: &str) {
    let Some(logger) = LOGGER.get() else {
        if level >= Level::Warn {
            eprintln!("berth: {}: {msg}", level.name());
        }
        return;
    };
    if level == Level::Debug && !logger.debug {
        return;
    }
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    match &logger.file {
        Some(file) => {
            let line = format_line(logger.format, level, msg, &time);
            if let Ok(mut f) = file.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None if level > Level::Info || logger.debug => {
            let line = format_line(logger.format, level, msg, &time);
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => {}
    }
}

/// Report the error a command failed with, as runc does: without `--log`, one log line on stderr
/// (`time="..." level=error msg="..."`, or JSON with `--log-format json`); with one, the line goes to
/// the log file and stderr gets the message, still marked as an error. Scripts and test suites look
/// for the word, managers for runc's wording of the message.
pub fn fatal(err: &anyhow::Error) {
    let msg = format!("{err:#}");
    match LOGGER.get() {
        Some(l) if l.file.is_some() => {
            log(Level::Error, &msg);
            eprintln!("berth: error: {msg}");
        }
        Some(l) => {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let line = format_line(l.format, Level::Error, &msg, &time);
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => eprintln!("berth: error: {msg}"),
    }
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::logging::debug_enabled() {
            $crate::logging::log($crate::logging::Level::Debug, &format!($($arg)*))
        }
    };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::logging::log($crate::logging::Level::Warn, &format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_runc_fields() {
        let line = format_line(
            Format::Json,
            Level::Error,
            "bad \"x\"",
            "2026-01-01T00:00:00Z",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "bad \"x\"");
        assert_eq!(v["time"], "2026-01-01T00:00:00Z");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn text_lines_quote_the_message() {
        let line = format_line(Format::Text, Level::Warn, "a b", "T");
        assert_eq!(line, "time=\"T\" level=warning msg=\"a b\"\n");
    }
}
