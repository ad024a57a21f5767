//! What the CLI prints: aligned tables and key/value blocks for people, JSON for scripts
//! (`--json`), and a spinner on stderr while waiting for the controller.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// A table with an upper-case header row; columns are separated by two spaces and padded
/// to the widest cell (the last column is not padded).
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_uppercase()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i + 1 < columns {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `Label:  value` lines with the values aligned.
/// `n` bytes in the largest power of 1024 it reaches, up to 1024⁴: the value in that unit
/// and the power (0 = bytes, 1 = Ki, 2 = Mi, 3 = Gi, 4 = Ti). Callers print the unit their
/// command's readers know (`8.5 MB` for a database, `1.5G` for a volume).
pub fn scale_1024(n: u64) -> (f64, usize) {
    let power = (1..=4usize)
        .rev()
        .find(|p| n >= 1u64 << (10 * p))
        .unwrap_or(0);
    (n as f64 / (1u64 << (10 * power)) as f64, power)
}

pub fn key_values(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    pairs
        .iter()
        .map(|(k, v)| format!("{:<width$}  {v}\n", format!("{k}:")))
        .collect()
}

/// Pretty JSON of any API value, with a final newline.
pub fn json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("API values serialize");
    text.push('\n');
    text
}

/// Prints to stdout; a closed pipe (`paas apps | head -1`) is not an error worth a panic.
pub fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `error` for the front of an error line: red and bold when stderr is a terminal and
/// `NO_COLOR` is not set, plain otherwise (pipes, scripts, CI logs).
pub fn error_label() -> &'static str {
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    if colour {
        "\x1b[1;31merror\x1b[0m"
    } else {
        "error"
    }
}

/// A spinner on stderr while a call runs; shown only when stderr is a terminal and the
/// output is not JSON. Cleared when dropped.
pub struct Spinner(ProgressBar);

impl Spinner {
    pub fn start(message: &'static str, json: bool) -> Self {
        if json || !std::io::stderr().is_terminal() {
            return Spinner(ProgressBar::hidden());
        }
        let bar = ProgressBar::new_spinner().with_message(message);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(100));
        Spinner(bar)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut table = Table::new(&["name", "release", "url"]);
        table.row(vec!["hello".into(), "v2".into(), "http://hello".into()]);
        table.row(vec!["a-longer-name".into(), "-".into(), "http://x".into()]);
        assert_eq!(
            table.render(),
            "NAME           RELEASE  URL\n\
             hello          v2       http://hello\n\
             a-longer-name  -        http://x\n"
        );
    }

    #[test]
    fn key_values_align() {
        let text = key_values(&[("Status", "up".into()), ("Web URL", "http://x".into())]);
        assert_eq!(text, "Status:   up\nWeb URL:  http://x\n");
    }
}
