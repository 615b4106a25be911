//! Headless Chromium driven over the DevTools protocol: load a page, read
//! the DOM with JavaScript, take a screenshot, and collect everything the
//! console and the network saw (console errors, uncaught exceptions,
//! Content-Security-Policy violations and failed loads, every URL
//! requested).
//!
//! Chromium is the Debian package `chromium`; `scripts/test` installs it.
//! When it is missing the tests that need it are skipped locally, but fail
//! under CI (`CI` set), where a missing browser is a broken setup.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long Chromium may take to start, and a page to load.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The Chromium binary, or `None` (with the reason printed) when it is not
/// installed and this is not CI. Under CI a missing browser panics.
pub fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromium is not installed but CI is set: scripts/test installs it with apt-get")
        }
        None => {
            eprintln!(
                "skipped: chromium is not installed (scripts/test installs it; under CI this fails)"
            );
            None
        }
    }
}

/// What the page did besides rendering.
#[derive(Clone, Debug, Default)]
pub struct PageLog {
    /// console.error / console.assert messages, uncaught exceptions, and
    /// browser log entries of level error (CSP violations, failed loads).
    pub errors: Vec<String>,
    /// Every URL the page requested, the page itself included.
    pub requests: Vec<String>,
}

/// A running headless Chromium with one page attached; killed on drop.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    /// The page's session on the browser socket, once attached.
    session: Option<String>,
    log: PageLog,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.socket.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and attaches to its
    /// first page.
    pub fn start(binary: &Path) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("tailor-chromium-")
            .tempdir()
            .expect("temp dir for the Chromium profile");
        let mut child = Command::new(binary)
            .args([
                "--headless",
                // CI runs as root, where Chromium refuses its sandbox.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting chromium");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so Chromium
                    // never blocks on a full pipe.
                    continue;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + START_TIMEOUT;
        let endpoint = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.split("DevTools listening on ").nth(1) {
                        break url.trim().to_string();
                    }
                    seen.push(line);
                }
                Err(_) => panic!(
                    "chromium did not open its DevTools endpoint within {START_TIMEOUT:?}; its stderr:\n{}",
                    seen.join("\n")
                ),
            }
        };
        // ws://127.0.0.1:PORT/devtools/browser/ID: the browser's socket;
        // the page is reached through a flat session on it.
        let host = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host:port")
            .to_string();
        let stream = TcpStream::connect(&host).expect("connecting to DevTools");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        let (socket, _) =
            tungstenite::client(endpoint.as_str(), stream).expect("DevTools handshake");
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            session: None,
            log: PageLog::default(),
            _profile: profile,
        };
        let targets = browser.call("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["targetId"].as_str())
            .unwrap_or_else(|| panic!("no page target in {targets}"))
            .to_string();
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        browser.session = Some(
            attached["sessionId"]
                .as_str()
                .expect("a session id")
                .to_string(),
        );
        for domain in ["Page", "Runtime", "Log", "Network"] {
            browser.call(&format!("{domain}.enable"), json!({}));
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// Reads one message, or `None` after the read timeout.
    fn read(&mut self) -> Option<Value> {
        match self.socket.read() {
            Ok(Message::Text(text)) => {
                let value: Value = serde_json::from_str(&text).expect("DevTools sends JSON");
                self.note(&value);
                Some(value)
            }
            Ok(_) => None,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("DevTools connection failed: {e}"),
        }
    }

    /// Records what an event says about errors and requests.
    fn note(&mut self, message: &Value) {
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                let text: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map_or_else(|| a["description"].to_string(), str::to_string)
                    })
                    .collect();
                self.log
                    .errors
                    .push(format!("console.error: {}", text.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                self.log.errors.push(format!(
                    "exception: {} {}",
                    details["text"].as_str().unwrap_or_default(),
                    details["exception"]["description"]
                        .as_str()
                        .unwrap_or_default()
                ));
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.log.errors.push(format!(
                    "log: {} {}",
                    params["entry"]["text"].as_str().unwrap_or_default(),
                    params["entry"]["url"].as_str().unwrap_or_default()
                ));
            }
            Some("Network.requestWillBeSent") => {
                if let Some(url) = params["request"]["url"].as_str() {
                    self.log.requests.push(url.to_string());
                }
            }
            _ => {}
        }
    }

    /// Sends a command and returns its result; events read meanwhile are
    /// recorded.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            request["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::Text(request.to_string().into()))
            .expect("sending a DevTools command");
        let deadline = Instant::now() + LOAD_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(message) = self.read()
                && message["id"] == id
            {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
        }
        panic!("{method}: no answer within {LOAD_TIMEOUT:?}")
    }

    /// Loads `file` and waits for its load event, then for `settle` more
    /// so late console messages are in.
    pub fn open(&mut self, file: &Path, settle: Duration) {
        let url = format!("file://{}", file.display());
        self.call("Page.navigate", json!({"url": url}));
        let deadline = Instant::now() + LOAD_TIMEOUT;
        loop {
            assert!(
                Instant::now() < deadline,
                "{url} did not load within {LOAD_TIMEOUT:?}"
            );
            if let Some(event) = self.read()
                && event["method"] == "Page.loadEventFired"
            {
                break;
            }
        }
        let until = Instant::now() + settle;
        while Instant::now() < until {
            self.read();
        }
    }

    /// Evaluates `expression` in the page and returns its value (JSON).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("evaluating {expression}: {details}");
        }
        result["result"]["value"].clone()
    }

    /// A PNG of the whole page (not only the viewport).
    pub fn screenshot(&mut self) -> Vec<u8> {
        let result = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let data = result["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("screenshot is base64")
    }

    pub fn log(&self) -> &PageLog {
        &self.log
    }
}
