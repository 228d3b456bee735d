//! Running the `weir` binary in tests: with its stdin fed from another thread, bounded by a watchdog that kills
//! it (and fails the test) when it runs too long.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `weir ARGS...` with `stdin` and returns its output.
pub fn weir(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .env_remove("WEIR_BROKERS")
        .env("WEIR_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The command may exit before reading everything (e.g. on a fatal error): ignore EPIPE.
        let _ = input.write_all(&data);
    });
    let guard = Watchdog::new(child.id(), args);
    let out = child.wait_with_output().expect("wait for weir");
    writer.join().unwrap();
    guard.disarm();
    out
}

/// Upper bound for one weir invocation in these tests.
pub const WEIR_TIMEOUT: Duration = Duration::from_secs(60);

/// Kills a weir process that runs longer than [`WEIR_TIMEOUT`], so a hang fails the test instead of
/// stalling it; `disarm` panics if that happened.
pub struct Watchdog {
    done: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<bool>,
    what: String,
}

impl Watchdog {
    pub fn new(pid: u32, args: &[&str]) -> Watchdog {
        let (done, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || match rx.recv_timeout(WEIR_TIMEOUT) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                true
            }
            _ => false,
        });
        Watchdog {
            done,
            thread,
            what: args.join(" "),
        }
    }

    pub fn disarm(self) {
        let _ = self.done.send(());
        let fired = self.thread.join().unwrap();
        assert!(
            !fired,
            "`weir {}` did not finish within {WEIR_TIMEOUT:?} and was killed",
            self.what
        );
    }
}
