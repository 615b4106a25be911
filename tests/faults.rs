//! Bad backends: each fault gives a clear error or a counted skip, never a
//! panic and never a recommendation made from nothing. The faulty server is
//! a real HTTP listener on loopback that answers the way broken proxies and
//! overloaded backends do.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tailor::config::Config;
use tailor::scan::{self, ScanError};

/// What the faulty server does with every request.
#[derive(Clone)]
enum Behaviour {
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
        retry_after: Option<u32>,
    },
    Hang,
    /// The first route whose path prefix the request path starts with
    /// answers: (path prefix, status, content type, body).
    Routes(Vec<(&'static str, u16, &'static str, &'static str)>),
}

/// Serves `behaviour` on a free loopback port until the test ends.
fn faulty_server(behaviour: Behaviour) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let behaviour = behaviour.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let n = stream.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let path = request.split(' ').nth(1).unwrap_or("").to_string();
                let behaviour = match behaviour {
                    Behaviour::Routes(routes) => {
                        let (_, status, content_type, body) = routes
                            .into_iter()
                            .find(|r| path.starts_with(r.0))
                            .unwrap_or(("", 404, "text/plain", "404 page not found"));
                        Behaviour::Respond {
                            status,
                            content_type,
                            body: body.into(),
                            retry_after: None,
                        }
                    }
                    other => other,
                };
                match behaviour {
                    Behaviour::Hang => std::thread::sleep(Duration::from_secs(30)),
                    Behaviour::Routes(_) => unreachable!("resolved above"),
                    Behaviour::Respond {
                        status,
                        content_type,
                        body,
                        retry_after,
                    } => {
                        let extra =
                            retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                }
            });
        }
    });
    (url, hits)
}

fn scan_error(url: &str, timeout: Duration, retries: u32) -> ScanError {
    let mut config = Config::default();
    config.prometheus.url = url.to_string();
    config.prometheus.timeout = timeout;
    config.prometheus.retries = retries;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(scan::scan(&config, 1_790_812_800, &|_, _| {}))
        .expect_err("a broken backend must fail the scan")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

#[test]
fn unreachable_backend_names_the_url_and_the_fix() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let message = scan_error(&url, Duration::from_secs(2), 1).to_string();
    assert!(message.contains("unreachable"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("--prometheus-url"), "{message}");
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (url, hits) = faulty_server(Behaviour::Respond {
        status: 503,
        content_type: "text/plain",
        body: "upstream overloaded".into(),
        retry_after: None,
    });
    let message = scan_error(&url, Duration::from_secs(2), 2).to_string();
    assert!(
        message.contains("HTTP 503") && message.contains("upstream overloaded"),
        "{message}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3, "one try and two retries");
}

#[test]
fn rate_limited_backends_are_retried_after_the_delay_they_ask() {
    let (url, hits) = faulty_server(Behaviour::Respond {
        status: 429,
        content_type: "text/plain",
        body: "slow down".into(),
        retry_after: Some(1),
    });
    let started = std::time::Instant::now();
    let message = scan_error(&url, Duration::from_secs(2), 1).to_string();
    assert!(message.contains("HTTP 429"), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After honoured"
    );
}

#[test]
fn an_html_page_is_not_taken_for_data() {
    let (url, _) = faulty_server(Behaviour::Respond {
        status: 200,
        content_type: "text/html",
        body: "<html><body>Sign in</body></html>".into(),
        retry_after: None,
    });
    let message = scan_error(&url, Duration::from_secs(2), 0).to_string();
    assert!(
        message.contains("not the Prometheus API's JSON"),
        "{message}"
    );
}

#[test]
fn query_errors_carry_the_backend_message() {
    let (url, hits) = faulty_server(Behaviour::Respond {
        status: 422,
        content_type: "application/json",
        body: r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#.into(),
        retry_after: None,
    });
    let message = scan_error(&url, Duration::from_secs(2), 3).to_string();
    assert!(
        message.contains("too many samples") && message.contains("execution"),
        "{message}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a rejected query is not retried"
    );
}

#[test]
fn a_hanging_backend_times_out() {
    let (url, _) = faulty_server(Behaviour::Hang);
    let started = std::time::Instant::now();
    let message = scan_error(&url, Duration::from_secs(1), 0).to_string();
    assert!(message.contains("did not answer within"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

const EMPTY_VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;

#[test]
fn an_empty_cluster_gives_an_empty_report_not_zeros() {
    let (url, _) = faulty_server(Behaviour::Routes(vec![
        (
            "/api/v1/series",
            200,
            "application/json",
            r#"{"status":"success","data":[]}"#,
        ),
        ("/api/v1/query", 200, "application/json", EMPTY_VECTOR),
    ]));
    let mut config = Config::default();
    config.prometheus.url = url;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime
        .block_on(scan::scan(&config, 1_790_812_800, &|_, _| {}))
        .expect("an empty answer is a valid, empty cluster");
    assert!(outcome.recommendations.is_empty());
}

#[test]
fn a_backend_without_the_series_api_is_named() {
    // Answers queries, but not /api/v1/series (a query-only proxy).
    let (url, _) = faulty_server(Behaviour::Routes(vec![(
        "/api/v1/query",
        200,
        "application/json",
        EMPTY_VECTOR,
    )]));
    let message = scan_error(&url, Duration::from_secs(2), 0).to_string();
    assert!(
        message.contains("api/v1/series")
            && message.contains("HTTP 404")
            && message.contains("prometheus.url"),
        "{message}"
    );
}

fn tailor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tailor"))
}

#[test]
fn cli_failure_is_one_line_and_exit_code_1() {
    let output = tailor()
        .args(["recommend", "--no-progress", "--prometheus-url"])
        .arg(format!("http://127.0.0.1:{}", free_port()))
        .output()
        .expect("run tailor");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("tailor: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("unreachable"), "{stderr}");
}

#[test]
fn cli_rejects_bad_config_with_the_key_and_exit_code_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tailor.yaml");
    std::fs::write(&path, "history:\n  window: fortnight\n").expect("write");
    let output = tailor()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run tailor");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("history.window") && stderr.contains("14d"),
        "{stderr}"
    );

    std::fs::write(&path, "prometheus:\n  url: http://prometheus:9090\n").expect("write");
    let output = tailor()
        .args(["config", "check"])
        .arg(&path)
        .output()
        .expect("run tailor");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = tailor()
        .args([
            "recommend",
            "--history",
            "fortnight",
            "--prometheus-url",
            "http://x",
        ])
        .output()
        .expect("run tailor");
    assert_eq!(output.status.code(), Some(2), "clap rejects a bad duration");
    assert!(String::from_utf8_lossy(&output.stderr).contains("14d"));
}

/// The headers of the first request a scan sends, with `compression` set.
fn first_request(compression: bool) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("a request");
        let mut buf = [0u8; 65536];
        let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
        let n = stream.read(&mut buf).unwrap_or(0);
        let _ = write!(
            stream,
            "HTTP/1.1 400 X\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad"
        );
        String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase()
    });
    let mut config = Config::default();
    config.prometheus.url = url;
    config.prometheus.retries = 0;
    config.prometheus.compression = compression;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _ = runtime.block_on(scan::scan(&config, 1_790_812_800, &|_, _| {}));
    seen.join().expect("listener")
}

/// Prometheus gzips every response a client accepts compressed, at about
/// twice the CPU of the query itself: tailor asks only when told to.
#[test]
fn responses_are_asked_uncompressed_unless_configured() {
    let plain = first_request(false);
    assert!(
        plain.starts_with("post ") || plain.starts_with("get "),
        "{plain}"
    );
    assert!(!plain.contains("gzip"), "{plain}");
    let compressed = first_request(true);
    assert!(
        compressed
            .lines()
            .any(|l| l.starts_with("accept-encoding:") && l.contains("gzip")),
        "{compressed}"
    );
}
