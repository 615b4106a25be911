//! The Prometheus HTTP API client: authentication, rate limiting, bounded
//! retries, query accounting, and a decoder that hands each series to the
//! caller as it is parsed instead of building the whole result in memory.
//!
//! Requests are built and sent by `prometheus-http-query`; responses are
//! decoded here (see [`decode`]) so a chunk of thousands of series never
//! exists as a tree of maps and strings.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::MetricsError;
use crate::config::PrometheusConfig;

/// A series' labels.
pub type Labels = BTreeMap<String, String>;

/// One series' samples: (unix seconds, value).
pub type Samples = [(i64, f64)];

/// Receives each decoded series.
pub type SeriesSink<'a> = dyn FnMut(&Labels, &Samples) + 'a;

/// Counters of what a run cost the backend.
#[derive(Debug, Default)]
pub struct QueryStats {
    pub queries: AtomicU64,
    pub retries: AtomicU64,
    pub failures: AtomicU64,
    pub response_bytes: AtomicU64,
    pub series: AtomicU64,
    pub samples: AtomicU64,
    /// Samples the backend reports having touched (`stats=all`), if it does.
    pub samples_touched: AtomicU64,
}

/// A snapshot of [`QueryStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct QueryCounts {
    pub queries: u64,
    pub retries: u64,
    pub failures: u64,
    pub response_bytes: u64,
    pub series: u64,
    pub samples: u64,
    pub samples_touched: u64,
}

/// A Prometheus-compatible backend.
#[derive(Clone)]
pub struct PromClient {
    inner: prometheus_http_query::Client,
    url: String,
    timeout: Duration,
    retries: u32,
    limiter: Arc<DefaultDirectRateLimiter>,
    stats: Arc<QueryStats>,
    want_stats: bool,
}

impl fmt::Debug for PromClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PromClient")
            .field("url", &self.url)
            .finish()
    }
}

impl PromClient {
    /// Builds a client from config: headers, bearer token or basic auth read
    /// from their files now, extra CA certificates, timeout.
    pub fn new(config: &PrometheusConfig) -> Result<Self, MetricsError> {
        let setup = |what: &str, e: &dyn fmt::Display| MetricsError::Setup(format!("{what}: {e}"));
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| setup(&format!("prometheus.headers: {name:?}"), &e))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| setup(&format!("prometheus.headers.{name}"), &e))?;
            headers.insert(name, value);
        }
        if let Some(path) = &config.bearer_token_file {
            let token = std::fs::read_to_string(path).map_err(|e| {
                setup(
                    &format!("prometheus.bearer_token_file {}", path.display()),
                    &e,
                )
            })?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                .map_err(|e| setup("prometheus.bearer_token_file holds an invalid token", &e))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(auth) = &config.basic_auth {
            let password = std::fs::read_to_string(&auth.password_file).map_err(|e| {
                setup(
                    &format!(
                        "prometheus.basic_auth.password_file {}",
                        auth.password_file.display()
                    ),
                    &e,
                )
            })?;
            let mut value = HeaderValue::from_str(&format!(
                "Basic {}",
                base64(
                    format!(
                        "{}:{}",
                        auth.username,
                        password.trim_end_matches(['\r', '\n'])
                    )
                    .as_bytes()
                )
            ))
            .map_err(|e| setup("prometheus.basic_auth", &e))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tailor/", env!("CARGO_PKG_VERSION")));
        if !config.compression {
            // Prometheus gzips a response whenever the client accepts it,
            // which nearly triples its CPU per query (measured in
            // BENCHMARKS.md): off unless asked for.
            builder = builder.no_gzip();
        }
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| setup(&format!("prometheus.ca_file {}", path.display()), &e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(&format!("prometheus.ca_file {}", path.display()), &e))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build().map_err(|e| setup("HTTP client", &e))?;
        let inner = prometheus_http_query::Client::from(http, &config.url)
            .map_err(|e| setup(&format!("prometheus.url {:?}", config.url), &e))?;
        let per_second =
            NonZeroU32::new(config.max_queries_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        Ok(PromClient {
            inner,
            url: crate::report::strip_credentials(&config.url),
            timeout: config.timeout,
            retries: config.retries,
            limiter: Arc::new(RateLimiter::direct(Quota::per_second(per_second))),
            stats: Arc::new(QueryStats::default()),
            want_stats: false,
        })
    }

    /// Asks the backend for `stats=all` (samples touched), for benchmarks.
    pub fn with_backend_stats(mut self) -> Self {
        self.want_stats = true;
        self
    }

    /// The backend URL without credentials, for reports and logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn counts(&self) -> QueryCounts {
        let s = &self.stats;
        QueryCounts {
            queries: s.queries.load(Ordering::Relaxed),
            retries: s.retries.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            response_bytes: s.response_bytes.load(Ordering::Relaxed),
            series: s.series.load(Ordering::Relaxed),
            samples: s.samples.load(Ordering::Relaxed),
            samples_touched: s.samples_touched.load(Ordering::Relaxed),
        }
    }

    /// An instant query at `at` (unix seconds); `sink` gets each series'
    /// labels and its one sample.
    pub async fn instant(
        &self,
        query: &str,
        at: i64,
        mut sink: impl FnMut(&Labels, &[(i64, f64)]),
    ) -> Result<(), MetricsError> {
        let body = self
            .send(query, |c, timeout_ms| {
                let mut b = c.query(query).at(at).timeout(timeout_ms);
                if self.want_stats {
                    b = b.stats();
                }
                b
            })
            .await?;
        self.decode(query, &body, &mut sink)
    }

    /// A range query over `[start, end]` every `step_s` seconds; `sink` gets
    /// each series with its samples.
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_s: i64,
        mut sink: impl FnMut(&Labels, &[(i64, f64)]),
    ) -> Result<(), MetricsError> {
        let body = self.fetch_range(query, start, end, step_s).await?;
        self.decode(query, &body, &mut sink)
    }

    /// Sends a range query and returns the raw body, to decode later with
    /// [`Self::decode_body`] (lets several queries be in flight at once).
    pub async fn fetch_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_s: i64,
    ) -> Result<bytes::Bytes, MetricsError> {
        self.send(query, |c, timeout_ms| {
            let mut b = c
                .query_range(query, start, end, step_s as f64)
                .timeout(timeout_ms);
            if self.want_stats {
                b = b.stats();
            }
            b
        })
        .await
    }

    /// The label sets of the series matching `selector` with samples in
    /// `[start, end]`, from the series API (`/api/v1/series`). The backend
    /// answers from its index alone (no sample is read), so this is how
    /// label-only lookups over a long window stay cheap. `start` and `end`
    /// are always sent: VictoriaMetrics requires them.
    pub async fn series(
        &self,
        selector: &str,
        start: i64,
        end: i64,
        mut sink: impl FnMut(&Labels),
    ) -> Result<(), MetricsError> {
        let what = format!("{SERIES_PATH}?match[]={selector}");
        let url = series_url(self.inner.base_url());
        let params = [
            ("match[]", selector.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ];
        let body = self
            .send(&what, |c, _| {
                SeriesRequest(c.inner().post(url.clone()).form(&params))
            })
            .await
            .map_err(|e| match e {
                MetricsError::Http { url, status, body } if matches!(status, 404 | 405 | 501) => {
                    MetricsError::Query {
                        url,
                        query: what.clone(),
                        kind: format!("HTTP {status}"),
                        message: format!(
                            "the backend does not serve the series API ({SERIES_PATH}), which \
                             workload discovery needs; point prometheus.url at the API root of \
                             Prometheus, Thanos Query, Mimir or VictoriaMetrics ({body})"
                        ),
                    }
                }
                e => e,
            })?;
        self.decode_as(&what, &body, Shape::SeriesList, &mut |l, _| sink(l))
    }

    /// Decodes a body from [`Self::fetch_range`], calling `sink` per series.
    pub fn decode_body(
        &self,
        query: &str,
        body: &[u8],
        mut sink: impl FnMut(&Labels, &[(i64, f64)]),
    ) -> Result<(), MetricsError> {
        self.decode(query, body, &mut sink)
    }

    /// Sends with rate limiting and bounded retries; returns the body of a
    /// JSON response (errors reported by the backend are decoded later).
    async fn send<B: Request>(
        &self,
        query: &str,
        build: impl Fn(&prometheus_http_query::Client, i64) -> B,
    ) -> Result<bytes::Bytes, MetricsError> {
        let timeout_ms = self.timeout.as_millis() as i64;
        let mut attempt = 0u32;
        loop {
            self.limiter.until_ready().await;
            self.stats.queries.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(build(&self.inner, timeout_ms)).await;
            match outcome {
                Ok(body) => return Ok(body),
                Err(Attempt::Final(e)) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                Err(Attempt::Retry(e, retry_after)) => {
                    if attempt >= self.retries {
                        self.stats.failures.fetch_add(1, Ordering::Relaxed);
                        return Err(e);
                    }
                    attempt += 1;
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    let wait = retry_after.unwrap_or_else(|| backoff(attempt));
                    tracing::warn!(url = %self.url, query, attempt, wait_ms = wait.as_millis() as u64, error = %e, "Prometheus query failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt<B: Request>(&self, request: B) -> Result<bytes::Bytes, Attempt> {
        let url = &self.url;
        let response = request.post_raw().await.map_err(|e| {
            let detail = error_chain(&e);
            let err = if detail.contains("timed out") || detail.contains("operation timed out") {
                MetricsError::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                }
            } else {
                MetricsError::Unreachable {
                    url: url.clone(),
                    detail,
                }
            };
            Attempt::Retry(err, None)
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(60)));
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let body = response.bytes().await.map_err(|e| {
            Attempt::Retry(
                MetricsError::Unreachable {
                    url: url.clone(),
                    detail: error_chain(&e),
                },
                None,
            )
        })?;
        self.stats
            .response_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        if status.is_success() || (is_json && status.is_client_error() && status.as_u16() != 429) {
            // Prometheus reports query errors (400 bad_data, 422 execution)
            // as JSON; the decoder turns them into a clear error.
            return Ok(body);
        }
        let snippet: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        let err = MetricsError::Http {
            url: url.clone(),
            status: status.as_u16(),
            body: snippet,
        };
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Attempt::Retry(err, retry_after))
        } else {
            Err(Attempt::Final(err))
        }
    }

    fn decode(
        &self,
        query: &str,
        body: &[u8],
        sink: &mut SeriesSink<'_>,
    ) -> Result<(), MetricsError> {
        self.decode_as(query, body, Shape::QueryResult, sink)
    }

    fn decode_as(
        &self,
        query: &str,
        body: &[u8],
        shape: Shape,
        sink: &mut SeriesSink<'_>,
    ) -> Result<(), MetricsError> {
        let outcome = decode_shape(body, shape, sink).map_err(|e| match e {
            DecodeError::Backend { kind, message } => MetricsError::Query {
                url: self.url.clone(),
                query: query.to_string(),
                kind,
                message,
            },
            DecodeError::Malformed(detail) => MetricsError::Malformed {
                url: self.url.clone(),
                detail,
            },
        })?;
        self.stats
            .series
            .fetch_add(outcome.series, Ordering::Relaxed);
        self.stats
            .samples
            .fetch_add(outcome.samples, Ordering::Relaxed);
        self.stats
            .samples_touched
            .fetch_add(outcome.samples_touched, Ordering::Relaxed);
        Ok(())
    }
}

enum Attempt {
    Retry(MetricsError, Option<Duration>),
    Final(MetricsError),
}

/// The two query builders of prometheus-http-query and the series request,
/// seen as one.
trait Request {
    type Error: std::error::Error;
    fn post_raw(self) -> impl Future<Output = Result<reqwest::Response, Self::Error>>;
}

impl Request for prometheus_http_query::InstantQueryBuilder {
    type Error = prometheus_http_query::Error;
    fn post_raw(self) -> impl Future<Output = Result<reqwest::Response, Self::Error>> {
        prometheus_http_query::InstantQueryBuilder::post_raw(self)
    }
}

impl Request for prometheus_http_query::RangeQueryBuilder {
    type Error = prometheus_http_query::Error;
    fn post_raw(self) -> impl Future<Output = Result<reqwest::Response, Self::Error>> {
        prometheus_http_query::RangeQueryBuilder::post_raw(self)
    }
}

/// The series API path, relative to the API root.
const SERIES_PATH: &str = "api/v1/series";

/// A series API request: form-encoded POST, which Prometheus, Thanos, Mimir
/// and VictoriaMetrics all accept, so long selectors never hit URL limits.
struct SeriesRequest(reqwest::RequestBuilder);

impl Request for SeriesRequest {
    type Error = reqwest::Error;
    fn post_raw(self) -> impl Future<Output = Result<reqwest::Response, Self::Error>> {
        self.0.send()
    }
}

/// `api/v1/series` under the configured root, the way prometheus-http-query
/// builds its own paths (a root with a path prefix keeps it).
fn series_url(base: &reqwest::Url) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}/{SERIES_PATH}"));
    url
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 10 s.
fn backoff(attempt: u32) -> Duration {
    let base = 500u64
        .saturating_mul(1 << attempt.min(5).saturating_sub(1))
        .min(10_000);
    // Cheap jitter from the clock's sub-second part; no RNG needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What decoding found besides the series it handed out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DecodeOutcome {
    pub series: u64,
    pub samples: u64,
    pub samples_touched: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The backend answered `"status": "error"`.
    Backend { kind: String, message: String },
    /// Not the Prometheus API's JSON.
    Malformed(String),
}

/// Decodes a Prometheus API response (`vector`, `matrix` or `scalar`),
/// calling `sink` once per series. Sample values are parsed as Prometheus
/// writes them (`"1.5"`, `"NaN"`, `"+Inf"`); timestamps are rounded to whole
/// seconds.
pub fn decode(body: &[u8], sink: &mut SeriesSink<'_>) -> Result<DecodeOutcome, DecodeError> {
    decode_shape(body, Shape::QueryResult, sink)
}

/// What the `data` field of a response holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// A query result: `{"resultType": …, "result": [series…]}`.
    QueryResult,
    /// The series API's list of label sets: `[{"__name__": …, …}, …]`;
    /// each is handed to the sink with no samples.
    SeriesList,
}

fn decode_shape(
    body: &[u8],
    shape: Shape,
    sink: &mut SeriesSink<'_>,
) -> Result<DecodeOutcome, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut state = Envelope {
        shape,
        sink,
        outcome: DecodeOutcome::default(),
        status: None,
        error_kind: None,
        error: None,
        saw_data: false,
    };
    (&mut state)
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    match state.status.as_deref() {
        Some("success") if state.saw_data => Ok(state.outcome),
        Some("success") => Err(DecodeError::Malformed(
            "success response without data".into(),
        )),
        Some("error") => Err(DecodeError::Backend {
            kind: state.error_kind.unwrap_or_else(|| "unknown".into()),
            message: state.error.unwrap_or_default(),
        }),
        Some(other) => Err(DecodeError::Malformed(format!("unknown status {other:?}"))),
        None => Err(DecodeError::Malformed("no \"status\" field".into())),
    }
}

struct Envelope<'s> {
    shape: Shape,
    sink: &'s mut SeriesSink<'s>,
    outcome: DecodeOutcome,
    status: Option<String>,
    error_kind: Option<String>,
    error: Option<String>,
    saw_data: bool,
}

impl<'de> DeserializeSeed<'de> for &mut Envelope<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for &mut Envelope<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Prometheus API response object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "status" => self.status = Some(map.next_value()?),
                "errorType" => self.error_kind = Some(map.next_value()?),
                "error" => self.error = Some(map.next_value()?),
                "data" => {
                    match self.shape {
                        Shape::QueryResult => map.next_value_seed(Data {
                            envelope: &mut *self,
                        })?,
                        Shape::SeriesList => map.next_value_seed(LabelSets {
                            envelope: &mut *self,
                        })?,
                    }
                    self.saw_data = true;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct Data<'e, 's> {
    envelope: &'e mut Envelope<'s>,
}

impl<'de> DeserializeSeed<'de> for Data<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Data<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the data object of a query response")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "result" => map.next_value_seed(ResultSeq {
                    envelope: &mut *self.envelope,
                })?,
                "stats" => {
                    let stats: Stats = map.next_value()?;
                    self.envelope.outcome.samples_touched += stats.samples.total_queryable_samples;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[derive(serde::Deserialize, Default)]
struct Stats {
    #[serde(default)]
    samples: StatsSamples,
}

#[derive(serde::Deserialize, Default)]
struct StatsSamples {
    #[serde(default, rename = "totalQueryableSamples")]
    total_queryable_samples: u64,
}

struct ResultSeq<'e, 's> {
    envelope: &'e mut Envelope<'s>,
}

impl<'de> DeserializeSeed<'de> for ResultSeq<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ResultSeq<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of series")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut samples = Vec::new();
        // Vector and matrix results are lists of series objects; scalar and
        // string results (never asked for) fail here as malformed.
        while let Some(series) = seq.next_element::<Series>()? {
            samples.clear();
            if let Some(v) = series.value {
                samples.push(v.into_pair());
            }
            samples.extend(series.values.into_iter().map(RawSample::into_pair));
            self.envelope.outcome.series += 1;
            self.envelope.outcome.samples += samples.len() as u64;
            (self.envelope.sink)(&series.metric, &samples);
        }
        Ok(())
    }
}

/// The series API's `data`: label sets, decoded one at a time.
struct LabelSets<'e, 's> {
    envelope: &'e mut Envelope<'s>,
}

impl<'de> DeserializeSeed<'de> for LabelSets<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for LabelSets<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the series API's list of label sets")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(labels) = seq.next_element::<Labels>()? {
            self.envelope.outcome.series += 1;
            (self.envelope.sink)(&labels, &[]);
        }
        Ok(())
    }
}

#[derive(serde::Deserialize)]
struct Series {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    value: Option<RawSample>,
    #[serde(default)]
    values: Vec<RawSample>,
}

#[derive(serde::Deserialize)]
struct RawSample(f64, String);

impl RawSample {
    fn into_pair(self) -> (i64, f64) {
        (self.0.round() as i64, parse_value(&self.1))
    }
}

/// Prometheus sample text to f64; anything unparsable becomes NaN so the
/// estimators count and drop it.
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = (Vec<(Labels, Vec<(i64, f64)>)>, DecodeOutcome);

    fn collect(body: &str) -> Result<Decoded, DecodeError> {
        let mut out = Vec::new();
        let outcome = decode(body.as_bytes(), &mut |l, s| {
            out.push((l.clone(), s.to_vec()))
        })?;
        Ok((out, outcome))
    }

    #[test]
    fn decodes_a_matrix() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a","container":"app"},"values":[[1700000000,"0.5"],[1700000300.2,"NaN"],[1700000600,"+Inf"]]},
            {"metric":{"pod":"b"},"values":[[1700000000,"1e3"]]}]}}"#;
        let (series, outcome) = collect(body).expect("decodes");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].0["pod"], "a");
        assert_eq!(series[0].1[0], (1_700_000_000, 0.5));
        assert_eq!(series[0].1[1].0, 1_700_000_300);
        assert!(series[0].1[1].1.is_nan());
        assert_eq!(series[0].1[2].1, f64::INFINITY);
        assert_eq!(series[1].1, vec![(1_700_000_000, 1000.0)]);
        assert_eq!(
            outcome,
            DecodeOutcome {
                series: 2,
                samples: 4,
                samples_touched: 0
            }
        );
    }

    #[test]
    fn decodes_a_vector_with_stats() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"namespace":"shop"},"value":[1700000000.25,"3"]}],
            "stats":{"timings":{},"samples":{"totalQueryableSamples":42,"peakSamples":3}}}}"#;
        let (series, outcome) = collect(body).expect("decodes");
        assert_eq!(series[0].1, vec![(1_700_000_000, 3.0)]);
        assert_eq!(outcome.samples_touched, 42);
    }

    #[test]
    fn empty_results_are_fine() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(collect(body).expect("decodes").0.len(), 0);
    }

    #[test]
    fn backend_errors_keep_their_message() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            collect(body).err(),
            Some(DecodeError::Backend {
                kind: "bad_data".into(),
                message: "parse error at char 5".into()
            })
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":{"result":[{"metric":{},"values":[[1,"2"]]}]}"#,
            r#"{"data":{"result":[]}}"#,
            r#"{"status":"success","data":{"result":[{"metric":{},"values":[["x"]]}]}}"#,
        ] {
            assert!(
                matches!(collect(body), Err(DecodeError::Malformed(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn decodes_series_api_label_sets() {
        let decode_series = |body: &str| {
            let mut out = Vec::new();
            decode_shape(body.as_bytes(), Shape::SeriesList, &mut |l, s| {
                assert!(s.is_empty());
                out.push(l.clone());
            })
            .map(|outcome| (out, outcome))
        };
        let body = r#"{"status":"success","data":[
            {"__name__":"kube_pod_owner","namespace":"shop","pod":"web-1"},
            {"__name__":"kube_pod_owner","namespace":"shop","pod":"web-2"}]}"#;
        let (sets, outcome) = decode_series(body).expect("decodes");
        assert_eq!(sets.len(), 2);
        assert_eq!(sets[1]["pod"], "web-2");
        assert_eq!((outcome.series, outcome.samples), (2, 0));
        assert_eq!(
            decode_series(r#"{"status":"success","data":[]}"#)
                .expect("decodes")
                .0
                .len(),
            0
        );
        // A query result where label sets are expected, and errors.
        assert!(matches!(
            decode_series(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode_series(
                r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error"}"#
            ),
            Err(DecodeError::Backend { .. })
        ));
    }

    #[test]
    fn series_url_keeps_the_path_prefix() {
        let url = |base: &str| series_url(&reqwest::Url::parse(base).unwrap()).to_string();
        assert_eq!(url("http://p:9090"), "http://p:9090/api/v1/series");
        assert_eq!(url("http://p:9090/"), "http://p:9090/api/v1/series");
        assert_eq!(
            url("https://t/select/0/prometheus/"),
            "https://t/select/0/prometheus/api/v1/series"
        );
        assert_eq!(
            url("https://t/prom?x=1"),
            "https://t/prom/api/v1/series?x=1"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }
}
