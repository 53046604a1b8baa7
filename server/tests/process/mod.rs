//! The built `detcd` binary as a child process, for the tests that run it:
//! its stderr lines arrive on a channel, every wait is bounded, and it is
//! killed if a test lets go of it while it runs.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Bound on a process ending after a signal.
pub const STOP_WAIT: Duration = Duration::from_secs(20);

pub struct Detcd {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Detcd {
    /// Starts `detcd` with `args` and an empty environment.
    pub fn start<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Detcd {
        let mut child = Command::new(env!("CARGO_BIN_EXE_detcd"))
            .args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("detcd runs");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Detcd { child, lines, seen: Vec::new() }
    }

    /// Everything it logged so far.
    pub fn log(&mut self) -> String {
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }

    /// Waits (within `within`) for a stderr line containing `text`.
    pub fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.kill();
                    panic!("no line with {text:?} from detcd; its log:\n{}", self.seen.join("\n"));
                }
            }
        }
    }

    /// Panics with the log if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("detcd exited with {status}; log:\n{}", self.log());
        }
    }

    /// The exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("waiting on detcd")
    }

    /// Waits (within `within`) for it to exit by itself or after a signal.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("detcd did not exit within {within:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then its exit status (bounded).
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        assert!(sent.success(), "kill -TERM {pid} failed");
        self.wait_exit(STOP_WAIT)
    }

    /// SIGTERM, and a clean exit (status 0) is required.
    pub fn terminate_cleanly(&mut self) {
        let status = self.terminate();
        assert_eq!(status.code(), Some(0), "exit status {status}; log:\n{}", self.log());
    }

    /// SIGKILL (`Child::kill` on unix), then its exit status (bounded).
    pub fn sigkill(&mut self) -> ExitStatus {
        self.child.kill().expect("SIGKILL is sent");
        self.wait_exit(STOP_WAIT)
    }
}

impl Drop for Detcd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
