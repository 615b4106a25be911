//! Delivery: one task per sink takes notifications from the sink's bounded
//! queue in order and sends each until it is accepted, rejected, or too old.
//!
//! - Retries: transport errors, timeouts, 408, 429 and 5xx. Other 4xx are
//!   final (a wrong URL or a payload the receiver refuses does not get
//!   better by resending).
//! - Waits: exponential backoff with "equal jitter" (half the delay fixed,
//!   half random; Marc Brooker, "Exponential Backoff And Jitter", AWS
//!   Architecture Blog, 2015), or exactly what `Retry-After` asks (Slack
//!   sends it with 429: api.slack.com/apis/rate-limits), seconds or an
//!   HTTP date (RFC 9110 §10.2.3).
//! - A notification older than `give_up_after` is dropped and counted; so
//!   is one that a wait would carry past that.
//! - Each sink is rate-limited by a `governor` bucket of `max_per_minute`.
//!
//! The decisions ([`classify`], [`backoff`], [`retry_after`]) are pure and
//! tested by table; the task around them only sends and waits.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::config::{DeliveryConfig, SinkKind};
use super::message::Message;
use super::payload::Payload;
use super::signing;
use super::sink::Sink;
use super::stats::{DropReason, SinkStats};

/// A notification waiting in a sink's queue.
#[derive(Debug)]
pub struct Queued {
    pub payload: Arc<Payload>,
    pub enqueued: Instant,
}

/// What to do after one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Delivered,
    /// Final refusal (most 4xx).
    Rejected,
    /// Try again, after this long if the receiver said so.
    Retry(Option<Duration>),
}

/// The step after an HTTP status; `retry_after` is the header's value.
pub fn classify(status: u16, retry_after_header: Option<&str>, now_unix: i64) -> Step {
    match status {
        200..=299 => Step::Delivered,
        408 | 429 | 500..=599 => {
            Step::Retry(retry_after_header.and_then(|h| retry_after(h, now_unix)))
        }
        _ => Step::Rejected,
    }
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP date (a date in the
/// past is no wait). `None` when unreadable.
pub fn retry_after(value: &str, now_unix: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .ok()?
        .timestamp();
    Some(Duration::from_secs(
        u64::try_from(at - now_unix).unwrap_or(0),
    ))
}

/// The wait before retry number `attempt` (1 for the first retry): the
/// delay doubles from `initial` up to `max`; half of it is fixed and half
/// is `random` (in `[0, 1)`) times the other half.
pub fn backoff(attempt: u32, initial: Duration, max: Duration, random: f64) -> Duration {
    let factor = 2f64.powi(i32::try_from(attempt.saturating_sub(1).min(62)).unwrap_or(62));
    let delay = initial.mul_f64(factor).min(max);
    let half = delay / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// A number in `[0, 1)`, different at every call: the jitter. The standard
/// library's randomly keyed hasher is enough for spreading retries.
pub fn random_unit() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = RandomState::new().hash_one(n) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Everything the sink's task needs.
pub struct SinkWorker {
    pub sink: Sink,
    pub client: reqwest::Client,
    pub delivery: DeliveryConfig,
    pub stats: Arc<SinkStats>,
    limiter: DefaultDirectRateLimiter,
}

impl SinkWorker {
    pub fn new(
        sink: Sink,
        client: reqwest::Client,
        delivery: DeliveryConfig,
        stats: Arc<SinkStats>,
    ) -> Self {
        let per_minute = NonZeroU32::new(delivery.max_per_minute).unwrap_or(NonZeroU32::MIN);
        SinkWorker {
            sink,
            client,
            delivery,
            stats,
            limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
        }
    }

    /// Delivers what arrives, in order, until the queue is closed and empty.
    pub async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        while let Some(queued) = queue.recv().await {
            let outcome = self.deliver(&queued).await;
            self.stats.finished(outcome);
            match outcome {
                Ok(()) => {
                    tracing::debug!(sink = %self.sink.name, id = %queued.payload.id, "notification delivered")
                }
                Err(reason) => tracing::warn!(
                    sink = %self.sink.name,
                    id = %queued.payload.id,
                    event = %queued.payload.event,
                    reason = reason.as_str(),
                    last_error = self.stats.last_error().as_deref().unwrap_or(""),
                    "notification dropped"
                ),
            }
        }
    }

    /// The request body for this sink.
    pub fn body(kind: SinkKind, payload: &Payload) -> bytes::Bytes {
        let value = match kind {
            SinkKind::Webhook => serde_json::to_value(payload),
            SinkKind::Slack => Ok(super::slack::render(&Message::from_payload(payload))),
            SinkKind::Teams => Ok(super::teams::render(&Message::from_payload(payload))),
        };
        // Serializing plain structs and `Value`s cannot fail.
        let value = value.expect("a payload serializes");
        bytes::Bytes::from(serde_json::to_vec(&value).expect("a JSON value serializes"))
    }

    async fn deliver(&self, queued: &Queued) -> Result<(), DropReason> {
        let deadline = queued.enqueued + self.delivery.give_up_after;
        let body = Self::body(self.sink.kind, &queued.payload);
        let mut attempt: u32 = 0;
        loop {
            if tokio::time::timeout_at(deadline, self.limiter.until_ready())
                .await
                .is_err()
            {
                return Err(DropReason::Deadline);
            }
            attempt += 1;
            let sent = tokio::time::timeout_at(deadline, self.send(body.clone())).await;
            let step = match sent {
                Err(_) => {
                    self.stats
                        .set_last_error("no answer before give_up_after".into());
                    return Err(DropReason::Deadline);
                }
                Ok(Ok(response)) => {
                    let status = response.status().as_u16();
                    let header = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let step = classify(status, header.as_deref(), unix_now());
                    if step != Step::Delivered {
                        // The receiver's answer helps (Slack says `invalid_blocks`);
                        // it never holds our URL or secret.
                        let text = response.text().await.unwrap_or_default();
                        self.stats.set_last_error(format!(
                            "HTTP {status}: {}",
                            super::message::truncate(text.trim(), 200)
                        ));
                    }
                    step
                }
                Ok(Err(e)) => {
                    // Without the URL: it may carry the credential.
                    self.stats.set_last_error(e.without_url().to_string());
                    Step::Retry(None)
                }
            };
            let wait = match step {
                Step::Delivered => return Ok(()),
                Step::Rejected => return Err(DropReason::Rejected),
                Step::Retry(Some(asked)) => asked,
                Step::Retry(None) => backoff(
                    attempt,
                    self.delivery.retry_initial,
                    self.delivery.retry_max,
                    random_unit(),
                ),
            };
            if Instant::now() + wait > deadline {
                return Err(DropReason::Deadline);
            }
            self.stats.retried();
            tokio::time::sleep(wait).await;
        }
    }

    async fn send(&self, body: bytes::Bytes) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .client
            .post(self.sink.url.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.sink.secret {
            // Signed at each attempt, so a retry carries a fresh timestamp.
            let now = unix_now();
            request = request
                .header(signing::TIMESTAMP_HEADER, now.to_string())
                .header(
                    signing::SIGNATURE_HEADER,
                    signing::sign(secret.expose().as_bytes(), now, &body),
                );
        }
        request.body(body).send().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_steps() {
        let now = 1_700_000_000;
        #[rustfmt::skip]
        let cases = [
            (200, None, Step::Delivered),
            (204, None, Step::Delivered),
            (400, None, Step::Rejected),
            (403, None, Step::Rejected),
            (404, Some("5"), Step::Rejected),
            (302, None, Step::Rejected),
            (408, None, Step::Retry(None)),
            (429, None, Step::Retry(None)),
            (429, Some("30"), Step::Retry(Some(Duration::from_secs(30)))),
            (429, Some("Tue, 14 Nov 2023 22:14:20 GMT"), Step::Retry(Some(Duration::from_secs(60)))),
            (429, Some("Tue, 14 Nov 2023 22:00:00 GMT"), Step::Retry(Some(Duration::ZERO))),
            (429, Some("soon"), Step::Retry(None)),
            (500, None, Step::Retry(None)),
            (503, Some("2"), Step::Retry(Some(Duration::from_secs(2)))),
        ];
        for (status, header, step) in cases {
            assert_eq!(classify(status, header, now), step, "{status} {header:?}");
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_half_jitter() {
        let s = Duration::from_secs;
        let initial = s(1);
        let max = s(60);
        assert_eq!(backoff(1, initial, max, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(1, initial, max, 1.0), s(1));
        assert_eq!(backoff(2, initial, max, 1.0), s(2));
        assert_eq!(backoff(4, initial, max, 0.0), s(4));
        assert_eq!(backoff(7, initial, max, 1.0), s(60));
        assert_eq!(backoff(u32::MAX, initial, max, 0.5), s(45));
        let r: Vec<f64> = (0..1000).map(|_| random_unit()).collect();
        assert!(r.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = r.iter().sum::<f64>() / r.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
