//! A minimal blocking HTTP/1.1 client over `std::net`, enough to talk to
//! servers on loopback: GET, a chunked streaming POST, and PromQL queries.
//! Tests use it instead of reqwest so the harness needs no async runtime.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one request may take: queries over weeks of data on a 2-core
/// machine are slow, imports of weeks of data slower.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET {base}{path}` where `base` is `http://host:port`.
pub fn get(base: &str, path: &str) -> io::Result<Response> {
    let mut stream = connect(base)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        host(base)
    )?;
    read_response(stream)
}

/// `POST {base}{path}` with a body streamed by `body` in chunks (chunked
/// transfer encoding), so it never has to exist in memory or on disk whole.
pub fn post_streaming(
    base: &str,
    path: &str,
    content_type: &str,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Response> {
    let mut stream = connect(base)?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        host(base)
    )?;
    let mut writer = BufWriter::with_capacity(1 << 16, Chunked(&mut stream));
    let sent = body(&mut writer).and_then(|()| writer.flush());
    drop(writer);
    if let Err(e) = sent {
        // The server may have answered (and closed) early: say what it said.
        let answer = read_response(stream).map(|r| format!("HTTP {}: {}", r.status, r.text()));
        return Err(io::Error::new(
            e.kind(),
            format!("sending the body failed: {e}; server: {answer:?}"),
        ));
    }
    stream.write_all(b"0\r\n\r\n")?;
    read_response(stream)
}

/// Writes each buffer it is handed as one HTTP chunk.
struct Chunked<W: Write>(W);

impl<W: Write> Write for Chunked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            write!(self.0, "{:x}\r\n", buf.len())?;
            self.0.write_all(buf)?;
            self.0.write_all(b"\r\n")?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn host(base: &str) -> &str {
    base.trim_start_matches("http://").trim_end_matches('/')
}

fn connect(base: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(host(base))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

fn read_response(mut stream: TcpStream) -> io::Result<Response> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad HTTP response: {what}"),
        )
    };
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("broken chunked body"))?;
    }
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One element of an instant vector.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// Runs an instant query at `time` (unix seconds) through the Prometheus
/// HTTP API, which VictoriaMetrics speaks too, and panics on any error.
pub fn query(base: &str, expr: &str, time: i64) -> Vec<Sample> {
    let path = format!("/api/v1/query?query={}&time={time}", encode(expr));
    let data = api(base, &path, expr);
    assert_eq!(data["resultType"], "vector", "{expr}: not a vector: {data}");
    let Some(result) = data["result"].as_array() else {
        panic!("{expr}: no result in {data}")
    };
    result
        .iter()
        .map(|r| {
            let labels = r["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let value = r["value"][1].as_str().and_then(|v| v.parse().ok());
            let Some(value) = value else {
                panic!("{expr}: no value in {r}")
            };
            Sample { labels, value }
        })
        .collect()
}

/// The single value of a query that must return exactly one element.
pub fn query_one(base: &str, expr: &str, time: i64) -> f64 {
    let samples = query(base, expr, time);
    assert_eq!(
        samples.len(),
        1,
        "{expr} at {time}: expected one element, got {samples:?}"
    );
    samples[0].value
}

/// The label sets of every series matching `selector` with samples in
/// `[start, end]` (`/api/v1/series`).
pub fn series(base: &str, selector: &str, start: i64, end: i64) -> Vec<BTreeMap<String, String>> {
    let path = format!(
        "/api/v1/series?match[]={}&start={start}&end={end}",
        encode(selector)
    );
    let data = api(base, &path, selector);
    let Some(all) = data.as_array() else {
        panic!("{selector}: series is not a list: {data}")
    };
    all.iter()
        .map(|m| {
            m.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

/// GETs an API path and returns `data` of a `"status":"success"` answer.
fn api(base: &str, path: &str, what: &str) -> serde_json::Value {
    let response =
        get(base, path).unwrap_or_else(|e| panic!("{what}: GET {base}{path} failed: {e}"));
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{what}: HTTP {} is not JSON ({e}): {}",
            response.status,
            response.text()
        )
    });
    assert!(
        response.status == 200 && body["status"] == "success",
        "{what}: HTTP {}: {body}",
        response.status
    );
    body["data"].clone()
}
