//! runc's `--log` and `--log-format`: errors (and with `--debug`, debug lines) appended
//! to the log file as runc's logrus writes them, so an engine reads them back:
//! containerd's runc shim takes the last `"level":"error"` message of `log.json` as the
//! reason a command failed, conmon does the same with its `--log` file.
//!
//! json: `{"level":"error","msg":"…","time":"2026-12-07T10:00:00Z"}` a line;
//! text: `time="…" level=error msg="…"`. Errors go to stderr too, as runc prints them.

use std::io::Write;
use std::path::PathBuf;

use crate::args::LogFormat;

pub struct Logger {
    file: Option<PathBuf>,
    format: LogFormat,
    debug: bool,
}

impl Logger {
    pub fn new(file: Option<PathBuf>, format: LogFormat, debug: bool) -> Logger {
        Logger {
            file,
            format,
            debug,
        }
    }

    /// One line of the log in its format.
    pub fn line(&self, level: &str, msg: &str) -> String {
        let time = paas_runtime::now_rfc3339();
        match self.format {
            LogFormat::Json => {
                serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
            }
            LogFormat::Text => {
                let quoted = serde_json::Value::String(msg.to_string()).to_string();
                format!("time=\"{time}\" level={level} msg={quoted}")
            }
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        let line = self.line(level, msg);
        // The log is best effort: an unwritable log must not hide the error itself,
        // which goes to stderr anyway.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            match &self.file {
                Some(_) => self.write("debug", msg),
                None => eprintln!("{}", self.line("debug", msg)),
            }
        }
    }

    /// A failure: to the log file and to stderr.
    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        eprintln!("paas-runtime: {msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_written_as_runc_writes_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        let log = Logger::new(Some(path.clone()), LogFormat::Json, false);
        log.debug("not written without --debug");
        log.error("container \"x\" does not exist");
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));

        let text_log = Logger::new(None, LogFormat::Text, true);
        let line = text_log.line("error", "a \"quoted\" word");
        assert!(
            line.ends_with(r#"level=error msg="a \"quoted\" word""#),
            "{line}"
        );
        assert!(line.starts_with("time=\""));
    }
}
