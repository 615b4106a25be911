//! Notifications against a real HTTP receiver (axum on a loopback port,
//! started by each test): the bodies Slack, webhook and Teams sinks get,
//! signatures checked the way `docs/notifications.md` tells receivers to,
//! retries on 500 and 429 with `Retry-After`, drops after the deadline, a
//! hanging receiver that delays neither the caller nor other sinks nor the
//! daemon's loop, the digest and trouble notices from the daemon, and
//! `tailor notify test` from the real binary.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tailor::notify::config::{DeliveryConfig, NotifyEvent, SinkKind};
use tailor::notify::payload::{Context, Payload};
use tailor::notify::signing::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use tailor::notify::sink::{Secret, Sink};
use tailor::notify::stats::SinkCounts;
use tailor::notify::{Notifications, samples};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// What the receiver answers to the next request.
#[derive(Clone, Debug)]
enum Reply {
    Status(u16),
    /// 429 with this `Retry-After`.
    TooMany(&'static str),
    /// Hold the request until [`Receiver::release`].
    Hang,
}

#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
    /// The status the receiver answered (none while hanging).
    status: Option<u16>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    /// Answer every request with this once the script is empty.
    otherwise: Mutex<Option<Reply>>,
    release: tokio::sync::Notify,
    released: std::sync::atomic::AtomicBool,
    /// Verify signatures (on `/hook`) as docs/notifications.md says.
    verify: bool,
    ids: Mutex<HashSet<String>>,
    /// Added to the receiver's clock (seconds): a replay arriving later.
    clock_offset: AtomicI64,
}

struct Receiver {
    base: String,
    shared: Arc<Shared>,
}

impl Receiver {
    async fn start(verify: bool) -> Receiver {
        let shared = Arc::new(Shared {
            verify,
            ..Shared::default()
        });
        let app = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, shared }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn script(&self, replies: &[Reply]) {
        self.shared
            .script
            .lock()
            .unwrap()
            .extend(replies.iter().cloned());
    }

    fn otherwise(&self, reply: Reply) {
        *self.shared.otherwise.lock().unwrap() = Some(reply);
    }

    fn seen(&self) -> Vec<Received> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn seen_at(&self, path: &str) -> Vec<Received> {
        self.seen().into_iter().filter(|r| r.path == path).collect()
    }

    fn release(&self) {
        self.shared.released.store(true, Ordering::SeqCst);
        self.shared.release.notify_waiters();
    }

    /// Waits (bounded, so a bug fails instead of hanging) until `done`.
    async fn until(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !done(&self.seen()) {
            assert!(Instant::now() < give_up, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The receiver's check from docs/notifications.md: the signature over
/// `<timestamp>.<body>`, the timestamp within 5 minutes of our clock, and
/// an id not seen before.
fn check_delivery(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp() + shared.clock_offset.load(Ordering::SeqCst);
    signing::verify(
        SECRET.as_bytes(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        body,
        now,
    )
    .map_err(|e| e.to_string())?;
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_string))
        .ok_or("no id")?;
    if !shared.ids.lock().unwrap().insert(id.clone()) {
        return Err(format!("id {id} already delivered: a replay"));
    }
    Ok(())
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = {
        let mut seen = shared.seen.lock().unwrap();
        seen.push(Received {
            path: uri.path().to_string(),
            headers: headers.clone(),
            body: body.clone(),
            at: Instant::now(),
            status: None,
        });
        seen.len() - 1
    };
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .or_else(|| shared.otherwise.lock().unwrap().clone())
        .unwrap_or(Reply::Status(200));
    let (status, response) = match reply {
        Reply::Hang => {
            while !shared.released.load(Ordering::SeqCst) {
                let notified = shared.release.notified();
                if shared.released.load(Ordering::SeqCst) {
                    break;
                }
                notified.await;
            }
            (200, StatusCode::OK.into_response())
        }
        Reply::TooMany(after) => (
            429,
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("Retry-After", after)],
                "rate_limited",
            )
                .into_response(),
        ),
        Reply::Status(code) if uri.path() == "/hook" && shared.verify && code == 200 => {
            match check_delivery(&shared, &headers, &body) {
                Ok(()) => (200, StatusCode::OK.into_response()),
                Err(why) => (401, (StatusCode::UNAUTHORIZED, why).into_response()),
            }
        }
        Reply::Status(code) => {
            let status = StatusCode::from_u16(code).expect("a status");
            (code, (status, "answer").into_response())
        }
    };
    shared.seen.lock().unwrap()[index].status = Some(status);
    response
}

fn delivery() -> DeliveryConfig {
    DeliveryConfig {
        queue_size: 64,
        timeout: Duration::from_secs(30),
        give_up_after: Duration::from_secs(60),
        retry_initial: Duration::from_millis(10),
        retry_max: Duration::from_millis(40),
        max_per_minute: 600,
    }
}

fn webhook(receiver: &Receiver, name: &str, path: &str) -> Sink {
    Sink::new(
        name,
        SinkKind::Webhook,
        Secret::new(receiver.url(path)),
        Some(Secret::new(SECRET)),
    )
}

fn start(sinks: Vec<Sink>, delivery: &DeliveryConfig) -> Notifications {
    let context = Context {
        digest_top: 10,
        ..Context::default()
    };
    Notifications::start(sinks, delivery, context).expect("notifications start")
}

fn counts(n: &Notifications, sink: &str) -> SinkCounts {
    n.counts()
        .into_iter()
        .find(|c| c.sink == sink)
        .expect("the sink")
}

/// Waits (bounded) until `sink` has nothing queued or in flight.
async fn settled(n: &Notifications, sink: &str) -> SinkCounts {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let c = counts(n, sink);
        if c.pending == 0 {
            return c;
        }
        assert!(Instant::now() < give_up, "{sink} never settled: {c:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sample(event: NotifyEvent) -> Payload {
    samples::payloads(1_790_000_000, &Context::default())
        .into_iter()
        .find(|p| p.event == event)
        .expect("a sample")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sink_gets_its_own_shape_of_every_event() {
    let receiver = Receiver::start(true).await;
    let n = start(
        vec![
            webhook(&receiver, "hook", "/hook"),
            Sink::new(
                "slack",
                SinkKind::Slack,
                Secret::new(receiver.url("/slack")),
                None,
            ),
            Sink::new(
                "teams",
                SinkKind::Teams,
                Secret::new(receiver.url("/teams")),
                None,
            ),
        ],
        &delivery(),
    );
    let payloads = samples::payloads(1_790_000_000, &Context::default());
    for p in &payloads {
        n.send(p.clone());
    }
    n.shutdown(Duration::from_secs(60)).await;
    for c in n.counts() {
        assert_eq!((c.sent, c.dropped()), (payloads.len() as u64, 0), "{c:?}");
    }

    let schema: Value = serde_json::from_str(include_str!("../docs/webhook.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let hooks = receiver.seen_at("/hook");
    assert_eq!(hooks.len(), payloads.len());
    for (got, sent) in hooks.iter().zip(&payloads) {
        assert_eq!(got.status, Some(200), "signature accepted");
        assert_eq!(got.headers["content-type"], "application/json");
        let body = got.json();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", sent.event);
        // In order, and exactly the payload.
        assert_eq!(body, serde_json::to_value(sent).unwrap());
    }
    let reverted = hooks
        .iter()
        .map(Received::json)
        .find(|b| b["event"] == "reverted")
        .unwrap();
    assert_eq!(reverted["verdict"]["findings"][0]["breach"], true);
    assert_eq!(
        reverted["change"]["containers"][0]["before"]["cpu_request_millicores"],
        2000
    );
    assert!(reverted["revert"]["held_until"].is_string());

    let slack = receiver.seen_at("/slack");
    assert_eq!(slack.len(), payloads.len());
    for (got, sent) in slack.iter().zip(&payloads) {
        assert!(
            got.headers.get(SIGNATURE_HEADER).is_none(),
            "Slack is not signed"
        );
        let body = got.json();
        assert_eq!(body["blocks"][0]["type"], "header", "{}", sent.event);
        assert!(body["text"].as_str().unwrap().contains(&sent.title));
    }
    let digest = slack.last().unwrap().json().to_string();
    assert!(
        digest.contains("tailor approve shop/deployment/web"),
        "{digest}"
    );

    let teams = receiver.seen_at("/teams");
    assert_eq!(teams.len(), payloads.len());
    for got in &teams {
        let body = got.json();
        assert_eq!(body["type"], "message");
        assert_eq!(body["attachments"][0]["content"]["type"], "AdaptiveCard");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_reject_forged_and_replayed_deliveries() {
    let receiver = Receiver::start(true).await;
    let n = start(vec![webhook(&receiver, "hook", "/hook")], &delivery());
    n.send(sample(NotifyEvent::Reverted));
    let c = settled(&n, "hook").await;
    assert_eq!((c.sent, c.dropped()), (1, 0), "{c:?}");
    let genuine = receiver.seen_at("/hook").remove(0);
    assert_eq!(genuine.status, Some(200));

    let client = reqwest::Client::new();
    let resend = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut request = client.post(receiver.url("/hook"));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.body(body).send()
    };
    let header = |name: &str| genuine.headers[name].to_str().unwrap().to_string();
    let (ts, sig) = (header(TIMESTAMP_HEADER), header(SIGNATURE_HEADER));

    // The same request again, seconds later: the id was seen.
    let replay = resend(
        vec![
            (TIMESTAMP_HEADER, ts.clone()),
            (SIGNATURE_HEADER, sig.clone()),
        ],
        genuine.body.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(replay.status(), 401);
    assert!(replay.text().await.unwrap().contains("replay"));

    // An altered body under the captured signature.
    let mut forged_body = genuine.json();
    forged_body["id"] = "new-id".into();
    forged_body["change"]["containers"][0]["after"]["memory_limit_bytes"] = 1.into();
    let forged = resend(
        vec![
            (TIMESTAMP_HEADER, ts.clone()),
            (SIGNATURE_HEADER, sig.clone()),
        ],
        serde_json::to_vec(&forged_body).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.text().await.unwrap().contains("does not match"));

    // Signed with another secret.
    let body = serde_json::to_vec(&forged_body).unwrap();
    let now = chrono::Utc::now().timestamp();
    let wrong = signing::sign(b"not the secret", now, &body);
    let other = resend(
        vec![
            (TIMESTAMP_HEADER, now.to_string()),
            (SIGNATURE_HEADER, wrong),
        ],
        body,
    )
    .await
    .unwrap();
    assert_eq!(other.status(), 401);

    // A capture replayed ten minutes later: too old, whatever its id.
    receiver.shared.ids.lock().unwrap().clear();
    receiver.shared.clock_offset.store(600, Ordering::SeqCst);
    let late = resend(
        vec![(TIMESTAMP_HEADER, ts), (SIGNATURE_HEADER, sig)],
        genuine.body.to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(late.status(), 401);
    assert!(late.text().await.unwrap().contains("away from now"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_final_refusals_are_not() {
    let receiver = Receiver::start(false).await;
    receiver.script(&[Reply::Status(500), Reply::Status(503), Reply::Status(200)]);
    let n = start(vec![webhook(&receiver, "hook", "/hook")], &delivery());
    n.send(sample(NotifyEvent::Applied));
    let c = settled(&n, "hook").await;
    assert_eq!((c.sent, c.retries, c.dropped()), (1, 2, 0), "{c:?}");
    let attempts = receiver.seen_at("/hook");
    let statuses: Vec<Option<u16>> = attempts.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    let ids: HashSet<String> = attempts
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "a retry is the same notification");
    for r in &attempts {
        let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
        let now = chrono::Utc::now().timestamp();
        signing::verify(
            SECRET.as_bytes(),
            header(TIMESTAMP_HEADER),
            header(SIGNATURE_HEADER),
            &r.body,
            now,
        )
        .expect("each attempt is signed");
    }

    receiver.script(&[Reply::Status(400)]);
    n.send(sample(NotifyEvent::Confirmed));
    let c = settled(&n, "hook").await;
    assert_eq!((c.sent, c.retries, c.dropped_rejected), (1, 2, 1), "{c:?}");
    assert_eq!(receiver.seen_at("/hook").len(), 4, "no retry after a 400");
    assert_eq!(c.last_error.as_deref(), Some("HTTP 400: answer"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_waits_what_retry_after_asks() {
    let receiver = Receiver::start(false).await;
    receiver.script(&[Reply::TooMany("1"), Reply::Status(200)]);
    // Backoff alone would retry within 40 ms.
    let n = start(
        vec![Sink::new(
            "slack",
            SinkKind::Slack,
            Secret::new(receiver.url("/slack")),
            None,
        )],
        &delivery(),
    );
    n.send(sample(NotifyEvent::Reverted));
    let c = settled(&n, "slack").await;
    assert_eq!((c.sent, c.retries), (1, 1), "{c:?}");
    let seen = receiver.seen_at("/slack");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].status, Some(429));
    let waited = seen[1].at.duration_since(seen[0].at);
    assert!(
        waited >= Duration::from_secs(1),
        "retried after {waited:?}, before Retry-After"
    );

    // A Retry-After beyond the deadline gives up at once instead of waiting.
    receiver.script(&[Reply::TooMany("3600")]);
    n.send(sample(NotifyEvent::Confirmed));
    let c = settled(&n, "slack").await;
    assert_eq!((c.sent, c.dropped_deadline), (1, 1), "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_is_dropped_and_counted_after_the_deadline() {
    let receiver = Receiver::start(false).await;
    receiver.otherwise(Reply::Status(500));
    let config = DeliveryConfig {
        give_up_after: Duration::from_millis(300),
        timeout: Duration::from_millis(200),
        ..delivery()
    };
    let n = start(vec![webhook(&receiver, "hook", "/hook")], &config);
    let mut registry = prometheus_client::registry::Registry::default();
    n.register_metrics(&mut registry);
    n.send(sample(NotifyEvent::Reverted));
    let c = settled(&n, "hook").await;
    assert_eq!((c.sent, c.dropped_deadline), (0, 1), "{c:?}");
    assert!(c.retries >= 1, "{c:?}");
    // The last attempt may be cut by the deadline before it reaches the receiver.
    let attempts = receiver.seen_at("/hook").len() as u64;
    assert!(
        (2..=c.retries + 1).contains(&attempts),
        "{attempts} attempts: {c:?}"
    );
    assert!(
        receiver
            .seen_at("/hook")
            .iter()
            .all(|r| r.status != Some(200))
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(r#"tailor_notifications_dropped_total{sink="hook",reason="deadline"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tailor_notifications_sent_total{sink="hook"} 0"#),
        "{text}"
    );
    assert!(!text.contains(&receiver.base), "no URL in metrics");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_holds_up_neither_the_caller_nor_other_sinks() {
    let stuck = Receiver::start(false).await;
    stuck.otherwise(Reply::Hang);
    let healthy = Receiver::start(false).await;
    let config = DeliveryConfig {
        queue_size: 3,
        ..delivery()
    };
    let n = start(
        vec![
            webhook(&stuck, "stuck", "/hook"),
            webhook(&healthy, "healthy", "/hook"),
        ],
        &config,
    );
    let payloads: Vec<Payload> = (0..10)
        .map(|_| sample(NotifyEvent::Applied))
        .map(|mut p| {
            p.id = tailor::notify::new_id();
            p
        })
        .collect();
    n.send(payloads[0].clone());
    stuck
        .until("the first request", |seen| seen.len() == 1)
        .await;
    // The caller (the agent's loop) goes on while that request hangs, one
    // event after the other; the healthy sink keeps up with each.
    for (i, p) in payloads.iter().enumerate().skip(1) {
        n.send(p.clone());
        healthy
            .until("the healthy sink", |seen| seen.len() > i)
            .await;
    }
    assert_eq!(stuck.seen().len(), 1);
    assert_eq!(stuck.seen()[0].status, None, "still hanging");
    let c = counts(&n, "stuck");
    assert_eq!(
        (c.pending, c.dropped_queue_full),
        (4, 6),
        "1 in flight, 3 queued, 6 dropped: {c:?}"
    );

    // The other sink got everything, in order, meanwhile.
    let h = settled(&n, "healthy").await;
    assert_eq!((h.sent, h.dropped()), (10, 0), "{h:?}");
    let ids: Vec<String> = healthy
        .seen()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    let sent: Vec<String> = payloads.iter().map(|p| p.id.clone()).collect();
    assert_eq!(ids, sent);
    assert_eq!(
        stuck.seen()[0].status,
        None,
        "still hanging after the healthy sink finished"
    );

    stuck.release();
    let c = settled(&n, "stuck").await;
    assert_eq!((c.sent, c.dropped_queue_full), (4, 6), "{c:?}");
    let got: Vec<String> = stuck
        .seen()
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, sent[..4]);
}

mod daemon {
    //! The daemon's loop with in-memory cluster and metrics ports, and the
    //! real notifier sending to the real receiver.

    use super::*;
    use tailor::agent::AgentSettings;
    use tailor::daemon::{RunOptions, notices::NoticeOptions};
    use tailor::domain::WorkloadRef;
    use tailor::guard::{ResourceSample, SliSample};
    use tailor::plan::WorkloadView;
    use tailor::ports::{
        AgentEvent, Cluster, PortError, ResourcePatch, RolloutStatus, SloSource, UsageSource,
    };
    use tailor::recommend::Recommendation;
    use tailor::rollout::RolloutRecord;

    struct EmptyCluster;

    impl Cluster for EmptyCluster {
        async fn workloads(&self) -> Result<Vec<WorkloadView>, PortError> {
            Ok(Vec::new())
        }
        async fn apply(&self, _: &ResourcePatch) -> Result<(), PortError> {
            Ok(())
        }
        async fn rollout_status(&self, w: &WorkloadRef) -> Result<RolloutStatus, PortError> {
            Err(PortError::NotFound(w.to_string()))
        }
        async fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, PortError> {
            Ok(Vec::new())
        }
        async fn save_rollout(&self, _: &RolloutRecord) -> Result<(), PortError> {
            Ok(())
        }
        async fn record_event(&self, _: &AgentEvent) -> Result<(), PortError> {
            Ok(())
        }
    }

    /// Usage from a backend that is down (`None`) or answers with these.
    struct Usage {
        answer: Option<Vec<Recommendation>>,
        calls: Arc<AtomicU64>,
    }

    impl Usage {
        fn reply(&self) -> Result<Vec<Recommendation>, PortError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.answer
                .clone()
                .ok_or_else(|| PortError::Unavailable("connection refused".into()))
        }
    }

    impl UsageSource for Usage {
        async fn recommendations(&self, _: i64) -> Result<Vec<Recommendation>, PortError> {
            self.reply()
        }
        async fn urgent(&self, _: i64, _: i64) -> Result<Vec<Recommendation>, PortError> {
            self.reply().map(|_| Vec::new())
        }
    }

    struct NoSlo;

    impl SloSource for NoSlo {
        async fn slis(
            &self,
            _: &WorkloadRef,
            _: i64,
            _: i64,
        ) -> Result<Option<Vec<SliSample>>, PortError> {
            Ok(None)
        }
        async fn resource_signals(
            &self,
            _: &WorkloadRef,
            _: i64,
            _: i64,
        ) -> Result<Vec<ResourceSample>, PortError> {
            Ok(Vec::new())
        }
    }

    fn options(notices: NoticeOptions) -> RunOptions {
        let mut options =
            RunOptions::new(Duration::from_millis(50), "127.0.0.1:0".parse().unwrap());
        options.notices = notices;
        options
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn trouble_is_told_and_the_loop_keeps_ticking_while_a_receiver_hangs() {
        let stuck = Receiver::start(false).await;
        stuck.otherwise(Reply::Hang);
        let healthy = Receiver::start(true).await;
        let n = start(
            vec![
                webhook(&stuck, "stuck", "/hook"),
                webhook(&healthy, "healthy", "/hook"),
            ],
            &delivery(),
        );
        let calls = Arc::new(AtomicU64::new(0));
        let usage = Usage {
            answer: None,
            calls: calls.clone(),
        };
        let notices = NoticeOptions {
            trouble_after: Duration::from_millis(200),
            ..NoticeOptions::default()
        };
        let shutdown = async {
            healthy
                .until("the trouble notice", |seen| !seen.is_empty())
                .await;
            stuck
                .until("the trouble notice", |seen| !seen.is_empty())
                .await;
            // Three more ticks (each asks the backend) while `stuck` holds it.
            let then = calls.load(Ordering::SeqCst);
            while calls.load(Ordering::SeqCst) < then + 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let summary = tailor::daemon::run(
            EmptyCluster,
            usage,
            NoSlo,
            n.clone(),
            AgentSettings::default(),
            None,
            options(notices),
            shutdown,
        )
        .await
        .expect("the daemon runs");
        assert!(summary.ticks >= 4, "{summary:?}");
        let stuck_seen = stuck.seen();
        assert_eq!(stuck_seen.len(), 1, "one notice, told once");
        assert_eq!(
            stuck_seen[0].status, None,
            "still hanging when the loop stopped"
        );
        let told = healthy.seen();
        assert_eq!(told.len(), 1, "told once, however many ticks failed");
        assert_eq!(told[0].status, Some(200));
        let body = told[0].json();
        assert_eq!(body["event"], "trouble");
        assert_eq!(body["trouble"]["problem"], "metrics-unreachable");
        assert_eq!(body["trouble"]["error"], "unavailable: connection refused");
        assert_eq!(body["workload"]["name"], "tailor");
        stuck.release();
        n.shutdown(Duration::from_secs(30)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_digest_lists_the_top_savings_in_observe_mode() {
        let receiver = Receiver::start(true).await;
        let mut sink = webhook(&receiver, "finops", "/hook");
        sink.events = [NotifyEvent::Digest].into_iter().collect();
        let n = start(vec![sink], &delivery());
        let usage = Usage {
            answer: Some(samples::digest(0).recommendations),
            calls: Arc::new(AtomicU64::new(0)),
        };
        let notices = NoticeOptions {
            digest_every: Some(Duration::from_secs(1)),
            ..NoticeOptions::default()
        };
        let shutdown = receiver.until("a digest", |seen| !seen.is_empty());
        tailor::daemon::run(
            EmptyCluster,
            usage,
            NoSlo,
            n.clone(),
            AgentSettings::default(),
            None,
            options(notices),
            shutdown,
        )
        .await
        .expect("the daemon runs");
        let digest = receiver.seen()[0].json();
        assert_eq!(digest["event"], "digest");
        assert_eq!(digest["digest"]["mode"], "observe");
        assert_eq!(digest["digest"]["total_savings_per_month_usd"], 427.09);
        assert_eq!(digest["digest"]["top"][0]["workload"]["name"], "web");
        assert_eq!(digest["digest"]["top"].as_array().unwrap().len(), 3);
        n.shutdown(Duration::from_secs(30)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailor_notify_test_sends_a_sample_of_each_to_the_flagged_sinks() {
    let receiver = Receiver::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
                .args(args)
                .output()
                .expect("tailor runs")
        })
    };
    let out = run(vec![
        "notify".into(),
        "test".into(),
        "--webhook-url".into(),
        receiver.url("/hook"),
        "--webhook-secret-file".into(),
        secret.display().to_string(),
        "--slack-url".into(),
        receiver.url("/slack"),
        "--teams-url".into(),
        receiver.url("/teams"),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sink in ["webhook", "slack", "teams"] {
        assert!(
            stdout.contains(&format!("{sink}: 10 sent, 0 retries, 0 not delivered")),
            "{stdout}"
        );
    }
    let hooks = receiver.seen_at("/hook");
    assert_eq!(hooks.len(), 10);
    assert!(
        hooks
            .iter()
            .all(|r| r.status == Some(200) && r.json()["test"] == true)
    );
    let events: HashSet<String> = hooks
        .iter()
        .map(|r| r.json()["event"].as_str().unwrap().to_string())
        .collect();
    for event in [
        "proposed",
        "applied",
        "fast-path",
        "confirmed",
        "reverted",
        "conflict",
        "leak-suspected",
        "trouble",
        "digest",
    ] {
        assert!(events.contains(event), "{event}: {events:?}");
    }

    // A receiver that refuses: exit 1 and the answer, never the URL.
    receiver.otherwise(Reply::Status(404));
    let out = run(vec![
        "notify".into(),
        "test".into(),
        "--slack-url".into(),
        receiver.url("/gone"),
    ])
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .contains("slack: 0 sent, 0 retries, 10 not delivered (last error: HTTP 404: answer)"),
        "{stdout}"
    );
    assert!(!stdout.contains("/gone") && !String::from_utf8_lossy(&out.stderr).contains("/gone"));

    // A webhook without a secret is refused before anything is sent.
    let out = run(vec![
        "notify".into(),
        "test".into(),
        "--webhook-url".into(),
        receiver.url("/hook"),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--webhook-secret-file"));
}
