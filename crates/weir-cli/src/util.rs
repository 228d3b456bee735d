//! Shared helpers: errors and exit codes, brokers, -X properties, delimiters, progress bars.

use std::fmt;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use weir::config::ClientConfig;

/// Default bootstrap list when neither `-b` nor `$WEIR_BROKERS` is given.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// A command's failure: `Usage` (bad arguments or configuration, exit 2) or `Failed` (exit 1).
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => f.write_str(m),
        }
    }
}

impl From<weir::Error> for CliError {
    fn from(e: weir::Error) -> Self {
        match e {
            weir::Error::Config(_) => CliError::Usage(e.to_string()),
            _ => CliError::Failed(e.to_string()),
        }
    }
}

/// Prints `weir: <message>` on stderr and returns the exit code.
pub fn report(e: CliError) -> ExitCode {
    eprintln!("weir: {e}");
    match e {
        CliError::Usage(_) => ExitCode::from(2),
        CliError::Failed(_) => ExitCode::from(1),
    }
}

/// `-b`, else `$WEIR_BROKERS`, else [`DEFAULT_BROKERS`].
pub fn resolve_brokers(flag: Option<String>) -> String {
    flag.or_else(|| {
        std::env::var("WEIR_BROKERS")
            .ok()
            .filter(|s| !s.trim().is_empty())
    })
    .unwrap_or_else(|| DEFAULT_BROKERS.to_string())
}

/// Splits `-X key=value`.
pub fn parse_prop(p: &str) -> Result<(&str, &str), CliError> {
    match p.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(CliError::Usage(format!("-X {p:?}: expected KEY=VALUE"))),
    }
}

/// Applies each `key=value` with `set`, turning failures into usage errors that name the property.
pub fn apply_props<E: fmt::Display>(
    props: &[String],
    mut set: impl FnMut(&str, &str) -> Result<(), E>,
) -> Result<(), CliError> {
    for p in props {
        let (k, v) = parse_prop(p)?;
        set(k, v).map_err(|e| CliError::Usage(format!("-X {k}={v}: {e}")))?;
    }
    Ok(())
}

/// Sets each named option given (`(flag, property, value)`) with `set`; an error names the flag.
pub fn apply_named(
    named: &[(&str, &str, Option<u64>)],
    mut set: impl FnMut(&str, &str) -> weir::Result<()>,
) -> Result<(), CliError> {
    for &(flag, key, value) in named {
        if let Some(v) = value {
            set(key, &v.to_string()).map_err(|e| CliError::Usage(format!("{flag} {v}: {e}")))?;
        }
    }
    Ok(())
}

/// A [`ClientConfig`] for admin commands: brokers plus `-X` client properties (unknown keys are errors).
pub fn client_config(brokers: &str, props: &[String]) -> Result<ClientConfig, CliError> {
    let mut cfg = ClientConfig::new(brokers);
    apply_props(props, |k, v| cfg.set(k, v))?;
    if cfg.bootstrap_servers.is_empty() {
        return Err(CliError::Usage("no brokers given (-b)".into()));
    }
    Ok(cfg)
}

/// Rows under a header, columns padded to their widest cell and separated by two spaces (no trailing spaces).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Interprets the escapes `\t \n \r \\` in a delimiter given on the command line.
pub fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = match b[i + 1] {
                b'n' => Some(b'\n'),
                b't' => Some(b'\t'),
                b'r' => Some(b'\r'),
                b'\\' => Some(b'\\'),
                _ => None,
            };
            if let Some(c) = c {
                out.push(c);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A records-per-second spinner on stderr when stderr is a terminal and `-q` was not given.
pub fn progress(quiet: bool, verb: &str) -> Option<ProgressBar> {
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {verb} {{human_pos}} records ({{rate}}) {{elapsed}} {{msg}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_spinner())
    .with_key("rate", |s: &ProgressState, w: &mut dyn fmt::Write| {
        let _ = write!(w, "{:.0}/s", s.per_sec());
    });
    pb.set_style(style);
    pb.enable_steady_tick(Duration::from_millis(125));
    Some(pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_and_escapes() {
        assert_eq!(parse_prop("a.b=c=d").unwrap(), ("a.b", "c=d"));
        assert!(parse_prop("novalue").is_err());
        assert_eq!(unescape(r"\t|\n\\\x"), b"\t|\n\\\\x".to_vec());
        assert!(client_config("x:1", &["no.such=1".into()]).is_err());
        assert!(client_config("x:1", &["client.id=me".into()]).is_ok());
    }

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["A", "LONGER"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(t, "A    LONGER\nxyz  1\nq\n");
    }
}
