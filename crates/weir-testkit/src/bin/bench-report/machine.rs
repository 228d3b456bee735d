//! Facts about the machine a run happens on: CPUs, CPU model, memory, kernel, date.

use std::process::Command;

/// `(name, value)` pairs for the report's machine table; what cannot be read is left out.
pub fn facts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(n) = std::thread::available_parallelism() {
        out.push(("nproc".to_owned(), n.get().to_string()));
    }
    if let Some(lscpu) = run("lscpu", &[]) {
        for (key, name) in [("Model name", "cpu"), ("Hypervisor vendor", "hypervisor")] {
            if let Some(v) = field(&lscpu, key) {
                out.push((name.to_owned(), v));
            }
        }
    }
    if let Some(kib) = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| field(&m, "MemTotal"))
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
    {
        out.push(("memory".to_owned(), format!("{:.1} GiB", kib / 1024.0 / 1024.0)));
    }
    if let Some(k) = run("uname", &["-sr"]) {
        out.push(("kernel".to_owned(), k.trim().to_owned()));
    }
    if let Some(d) = run("date", &["-u", "+%Y-%m-%d %H:%M UTC"]) {
        out.push(("date".to_owned(), d.trim().to_owned()));
    }
    out
}

/// The value of `key: value` in `text`, trimmed.
fn field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(key)?
            .trim_start()
            .strip_prefix(':')
            .map(|v| v.trim().to_owned())
    })
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_value_fields() {
        let text = "CPU(s):     2\nModel name:   AMD EPYC 9B14\nMemTotal:  24000 kB\n";
        assert_eq!(field(text, "Model name").as_deref(), Some("AMD EPYC 9B14"));
        assert_eq!(field(text, "MemTotal").as_deref(), Some("24000 kB"));
        assert_eq!(field(text, "Flags"), None);
    }
}
