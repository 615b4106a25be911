//! Starting a server binary on a free loopback port, waiting until it is
//! ready, and killing it on drop.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How often a port race is retried before giving up.
const PORT_ATTEMPTS: usize = 5;

/// Panics with the one instruction that fixes it when `binary` is not on PATH.
pub fn require(binary: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{package} is not installed: run scripts/test (it installs it with apt-get)"
    );
}

/// A port nobody listened on a moment ago. Another process may take it
/// before the server binds it: [`Server::start`] retries then.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0 for a free port");
    listener
        .local_addr()
        .expect("a bound listener has an address")
        .port()
}

/// Runs the server under `sh`, which stops it and removes its directory
/// when our end of its stdin closes: on drop, and also when the test binary
/// exits or dies without dropping (a shared server is never dropped).
const WATCHDOG: &str = r#"
dir=$1
shift
"$@" </dev/null &
server=$!
exec 3<&0
(
    cat <&3 >/dev/null
    kill "$server" 2>/dev/null
    while kill -0 "$server" 2>/dev/null; do sleep 0.1; done
    rm -rf "$dir"
) &
wait "$server"
"#;

/// How long a server may take to shut down once told to.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running server process; stopped (and reaped) on drop.
pub struct Server {
    /// The watchdog shell; it exits when the server does.
    child: Child,
    /// Closing it stops the server.
    stdin: Option<ChildStdin>,
    name: String,
    log: PathBuf,
    port: u16,
}

impl Server {
    /// Starts `command(port)` on a free port, its stdout and stderr going to
    /// `dir/<name>-<attempt>.log`, and waits up to `timeout` until
    /// `ready(url)`. `dir` is the server's own: it goes when the server does.
    /// Retries with another port when the port was taken meanwhile; panics
    /// with the log's tail when the server dies or never gets ready.
    pub fn start(
        name: &str,
        dir: &Path,
        timeout: Duration,
        mut command: impl FnMut(u16) -> Command,
        ready: impl Fn(&str) -> bool,
    ) -> Server {
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let log = dir.join(format!("{name}-{attempt}.log"));
            let out =
                File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
            let err = out
                .try_clone()
                .unwrap_or_else(|e| panic!("cloning {}: {e}", log.display()));
            let server_cmd = command(port);
            let mut cmd = Command::new("sh");
            cmd.args(["-c", WATCHDOG, "sh"])
                .arg(dir)
                .arg(server_cmd.get_program())
                .args(server_cmd.get_args());
            cmd.stdin(Stdio::piped()).stdout(out).stderr(err);
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("starting {name} ({server_cmd:?}): {e}"));
            let stdin = child.stdin.take();
            let mut server = Server {
                child,
                stdin,
                name: name.to_string(),
                log,
                port,
            };
            let deadline = Instant::now() + timeout;
            loop {
                if let Ok(Some(status)) = server.child.try_wait() {
                    let tail = server.log_tail();
                    if tail.contains("address already in use") && attempt < PORT_ATTEMPTS {
                        break;
                    }
                    panic!(
                        "{name} exited ({status}) before it was ready; its log ends with:\n{tail}"
                    );
                }
                if ready(&server.url()) {
                    return server;
                }
                if Instant::now() > deadline {
                    panic!(
                        "{name} was not ready after {timeout:?}; its log ends with:\n{}",
                        server.log_tail()
                    );
                }
                sleep(Duration::from_millis(50));
            }
        }
        unreachable!("the last attempt panics instead of retrying")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines the server logged, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log, 30)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of a file (empty when it cannot be read).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run(what: &str, cmd: &mut Command) -> std::process::Output {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: starting {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {cmd:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
