//! Servers run in the foreground under a watchdog so that none outlives the process that
//! started it.
//!
//! The watchdog is a small `sh` script, the server's parent. It waits for end-of-file on its
//! standard input, whose write end only the owning process holds (close-on-exec, so no other
//! child inherits it). The kernel closes that pipe whenever the owner exits — normally, by a
//! panic, or killed — and the watchdog then stops the server, waits for it and deletes its
//! directory. A `PR_SET_PDEATHSIG` would not do: it fires when the *thread* that spawned the
//! child ends, and test threads end long before the test process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::RigError;

const WATCHDOG_SCRIPT: &str = r#"
dir=$1; mode=$2; stop_signal=$3; log=$4; shift 4
exec 3<&0 </dev/null
server=
if [ $# -gt 0 ]; then
  "$@" </dev/null >>"$log" 2>&1 3<&- &
  server=$!
fi
echo "${server:-0}"
exec >/dev/null
if [ "$mode" = attached ]; then
  cat <&3 >/dev/null &
else
  sleep 2147483647 &
fi
waiter=$!
trap 'kill "$waiter" 2>/dev/null' TERM INT HUP
wait "$waiter"
if [ -n "$server" ]; then
  kill -s "$stop_signal" "$server" 2>/dev/null
  # Up to 20 s for a clean stop, then SIGKILL. Polling /proc (a zombie counts as stopped)
  # instead of a killer subshell leaves no stray sleep behind.
  tries=0
  while [ -r "/proc/$server/stat" ]; do
    read -r stat < "/proc/$server/stat" 2>/dev/null || break
    state=${stat##*) }
    case "$state" in Z*|X*) break ;; esac
    tries=$((tries + 1))
    if [ "$tries" -ge 200 ]; then kill -s KILL "$server" 2>/dev/null; fi
    sleep 0.1
  done
  wait "$server"
fi
rm -rf "$dir"
"#;

/// Whether a supervised server lives as long as this process or outlives it until stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Stopped when the owning process exits, however it exits.
    OwningProcess,
    /// Keeps running after this process exits, until its watchdog gets SIGTERM
    /// (`cargo xtask servers down`).
    Detached,
}

/// How to run one server under the watchdog.
#[derive(Debug)]
pub(crate) struct ServerCommand<'a> {
    /// Directory the watchdog deletes once the server has stopped.
    pub(crate) dir: &'a Path,
    /// Where the server's standard output and error go.
    pub(crate) log: &'a Path,
    /// Signal that asks the server for a prompt clean shutdown.
    pub(crate) stop_signal: &'static str,
    /// Program and arguments; empty for a directory that only needs deleting.
    pub(crate) argv: Vec<String>,
}

/// A server (or just a directory) owned by a watchdog process.
#[derive(Debug)]
pub struct Supervised {
    watchdog: Child,
    /// Holding this keeps an attached watchdog waiting; dropping it starts the shutdown.
    keepalive: Option<ChildStdin>,
    server_pid: Option<u32>,
    dir: PathBuf,
    /// Set once the watchdog has been waited for.
    stopped: bool,
}

impl Supervised {
    pub(crate) fn spawn(command: ServerCommand<'_>, lifetime: Lifetime) -> Result<Self, RigError> {
        let mode = match lifetime {
            Lifetime::OwningProcess => "attached",
            Lifetime::Detached => "detached",
        };
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("imap-sync-rig-watchdog")
            .arg(command.dir)
            .arg(mode)
            .arg(command.stop_signal)
            .arg(command.log)
            .args(&command.argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Its own process group: a Ctrl-C in the terminal reaches the owner, whose exit then stops
        // the server in order, instead of reaching every server at once.
        std::os::unix::process::CommandExt::process_group(&mut sh, 0);
        let mut watchdog = sh
            .spawn()
            .map_err(RigError::io("starting the watchdog /bin/sh"))?;
        let stdout = watchdog.stdout.take().expect("stdout is piped");
        let mut first_line = String::new();
        BufReader::new(stdout)
            .read_line(&mut first_line)
            .map_err(RigError::io("reading the server pid from the watchdog"))?;
        let server_pid = match first_line.trim().parse::<u32>() {
            Ok(0) => None,
            Ok(pid) => Some(pid),
            Err(_) => {
                return Err(RigError::Io {
                    what: format!("the watchdog printed {first_line:?} instead of a pid"),
                    source: std::io::Error::other("watchdog failed"),
                });
            }
        };
        let keepalive = watchdog.stdin.take();
        Ok(Self {
            watchdog,
            keepalive,
            server_pid,
            dir: command.dir.to_path_buf(),
            stopped: false,
        })
    }

    /// The server's process id (the watchdog's child).
    pub fn server_pid(&self) -> Option<u32> {
        self.server_pid
    }

    /// The watchdog's process id: SIGTERM to it stops the server and deletes its directory.
    pub fn watchdog_pid(&self) -> u32 {
        self.watchdog.id()
    }

    /// The directory that goes away with the server.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True while the server process runs (a zombie counts as stopped).
    pub fn server_running(&self) -> bool {
        self.server_pid.is_some_and(process_running)
    }

    /// Leaves the server running after this process exits; returns the watchdog's pid.
    pub fn detach(mut self) -> u32 {
        let pid = self.watchdog.id();
        self.keepalive = None;
        std::mem::forget(self);
        pid
    }

    /// Stops the server, waits for it and for its directory to be deleted.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if self.keepalive.take().is_none() {
            // Detached watchdogs ignore end-of-file; they stop on SIGTERM.
            let _ = Command::new("/bin/sh")
                .args(["-c", "kill \"$0\" 2>/dev/null"])
                .arg(self.watchdog.id().to_string())
                .status();
        }
        let _ = self.watchdog.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// True if `pid` names a live process that is not a zombie.
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Polls `ready` until it returns true, the server dies, or `limit` passes.
pub(crate) fn wait_until(
    limit: Duration,
    supervised: &Supervised,
    mut ready: impl FnMut() -> bool,
) -> Result<(), WaitFailure> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if supervised.server_pid.is_some() && !supervised.server_running() {
            return Err(WaitFailure::Exited);
        }
        if start.elapsed() > limit {
            return Err(WaitFailure::TimedOut);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WaitFailure {
    Exited,
    TimedOut,
}

/// The last lines of a log, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
