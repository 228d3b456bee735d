//! Child processes for tests: bounded runs of tools, and long-lived servers supervised by a watchdog that
//! stops them when the test process goes away.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Upper bound for one tool invocation (kcat, python, a peer, the storage tool).
pub(crate) const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Runs `cmd` with `stdin` fed (or closed), collecting stdout/stderr; kills it and panics after `timeout`.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("weir-testkit: cannot run {desc}: {e}"));
    let writer = stdin.map(|data| feed_stdin(&mut child, data.to_vec()));
    let out_t = read_to_end(child.stdout.take().expect("piped stdout"));
    let err_t = read_to_end(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status: ExitStatus = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_t.join().unwrap_or_default();
                panic!(
                    "weir-testkit: {desc} did not finish within {timeout:?}; stderr: {}",
                    String::from_utf8_lossy(&stderr)
                );
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => panic!("weir-testkit: waiting for {desc}: {e}"),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}

/// Writes `data` to the child's piped stdin on a thread, then closes it. A child that exits without reading
/// everything (a fatal error) only makes the write fail, quietly.
pub(crate) fn feed_stdin(child: &mut Child, data: Vec<u8>) -> JoinHandle<()> {
    let mut w = child.stdin.take().expect("piped stdin");
    std::thread::spawn(move || {
        let _ = w.write_all(&data);
    })
}

/// Reads a child's pipe to its end on a thread.
pub(crate) fn read_to_end(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = pipe.read_to_end(&mut v);
        v
    })
}

/// A free loopback port: bound to port 0 and released. Another process can take it before it is used, so
/// whoever binds it must retry with a fresh one on "address in use".
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("weir-testkit: cannot bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

extern "C" {
    // From the C library std already links against; avoids a `libc` dependency.
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The watchdog around a server process. `$1` = log file, `$2` = a path to remove once the server is gone
/// (or ""), the rest = the command. Prints the server's pid, then waits for it and exits with its status.
/// A background reader blocks on our stdin (fd 3, because asynchronous lists get /dev/null as stdin) and
/// SIGKILLs the server when the pipe closes (the owner dropped it, or the test process died), then removes
/// `$2` unless a file `$2/keep` exists.
const WATCHDOG: &str = r#"log=$1; cleanup=$2; shift 2
exec 3<&0
"$@" </dev/null 3<&- >>"$log" 2>&1 &
pid=$!
echo "$pid"
( while read -r _ <&3; do :; done
  kill -KILL "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  if [ -n "$cleanup" ] && [ ! -e "$cleanup/keep" ]; then rm -rf "$cleanup"; fi ) </dev/null >/dev/null 2>&1 &
exec 3<&-
wait "$pid"
"#;

/// A long-lived server process under a `/bin/sh` watchdog: killed (SIGKILL) when this is dropped, and also
/// when the test process dies without dropping it (a `static` cluster, an abort, a runner's timeout).
#[derive(Debug)]
pub(crate) struct Supervised {
    /// The watchdog; the server is its child, so the server's pid cannot be reused while this is unreaped.
    watchdog: std::process::Child,
    /// Closing this tells the watchdog to kill the server and clean up.
    stdin: Option<std::process::ChildStdin>,
    pid: i32,
}

impl Supervised {
    /// Starts `program args...` with stdout and stderr appended to `log`; `cleanup` (if any) is removed by the
    /// watchdog once the server is gone after the pipe closed.
    pub(crate) fn spawn(
        program: &std::path::Path,
        args: &[std::ffi::OsString],
        env: &[(&str, &str)],
        log: &std::path::Path,
        cleanup: Option<&std::path::Path>,
    ) -> Result<Supervised, String> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("weir-testkit-watchdog")
            .arg(log)
            .arg(cleanup.map(|p| p.as_os_str()).unwrap_or_default())
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut watchdog = cmd.spawn().map_err(|e| format!("cannot spawn /bin/sh: {e}"))?;
        let stdin = watchdog.stdin.take();
        let mut line = String::new();
        let stdout = watchdog.stdout.take().expect("piped stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .map_err(|e| format!("reading the watchdog: {e}"))?;
        match line.trim().parse() {
            Ok(pid) => Ok(Supervised { watchdog, stdin, pid }),
            Err(_) => {
                let _ = watchdog.kill();
                let _ = watchdog.wait();
                Err(format!("the watchdog printed {line:?} instead of a pid"))
            }
        }
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// The server's exit status if it has exited.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.watchdog.try_wait().ok().flatten()
    }

    /// Kills the server with SIGKILL (a crash, as far as the server can tell) and waits until it is gone.
    /// Cleanup waits for the drop, so the server's files can be reused by a restart.
    pub(crate) fn kill(&mut self) {
        if self.exited().is_none() {
            // SAFETY: an FFI call with plain integers. The server is the watchdog's unreaped child, so the pid
            // still names it.
            unsafe { kill(self.pid, SIGKILL) };
        }
        let _ = self.watchdog.wait();
    }

    /// Asks the server to shut down (SIGTERM, what an operator's stop script sends) and waits up to `timeout`
    /// for it to exit. On timeout it is killed (SIGKILL) and the error says so.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        if let Some(status) = self.exited() {
            return Ok(status);
        }
        // SAFETY: as in `kill`: plain integers, and the pid names the watchdog's unreaped child.
        unsafe { kill(self.pid, SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!("did not exit within {timeout:?} of SIGTERM; killed"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill();
        drop(self.stdin.take());
    }
}
