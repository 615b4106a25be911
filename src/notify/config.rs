//! The `notifications:` config section: sinks, links, digest, delivery.
//! Checked here without reading any file or variable: URLs and secrets are
//! resolved when the notifier starts (see [`super::sink`]), so a config can
//! be checked on a laptop that has none of the cluster's Secrets.
//!
//! Reference with every key: `docs/configuration.md` and
//! `docs/notifications.md`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration_text;
use crate::ports::EventKind;

/// `notifications:`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Where notifications go; none by default.
    pub sinks: Vec<SinkConfig>,
    /// Buttons on every message, from URL templates.
    pub links: Vec<LinkTemplate>,
    pub digest: DigestConfig,
    /// The metrics backend must fail this long before anyone is told.
    #[serde(with = "duration_text")]
    pub trouble_after: Duration,
    pub delivery: DeliveryConfig,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            sinks: Vec::new(),
            links: Vec::new(),
            digest: DigestConfig::default(),
            trouble_after: Duration::from_secs(5 * 60),
            delivery: DeliveryConfig::default(),
        }
    }
}

/// One receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Shown in logs and metrics (`sink` label) instead of the URL.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// The URL itself. Slack and Teams URLs carry their credential: prefer
    /// `url_file` (a mounted Secret) or `url_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file holding the URL (read at start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    /// An environment variable holding the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// `webhook` only: a file holding the HMAC-SHA256 signing secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    /// `webhook` only: an environment variable holding the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// Which notifications this sink receives.
    #[serde(default = "default_events")]
    pub events: Vec<NotifyEvent>,
}

/// How a sink wants its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Slack incoming webhook, Block Kit.
    Slack,
    /// The versioned JSON payload (`docs/webhook.schema.json`), signed.
    Webhook,
    /// Microsoft Teams workflow webhook, an Adaptive Card.
    Teams,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Slack => "slack",
            SinkKind::Webhook => "webhook",
            SinkKind::Teams => "teams",
        }
    }
}

/// What a notification is about: every agent event kind, and the digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    Proposed,
    Applied,
    FastPath,
    RolledOut,
    Confirmed,
    Reverting,
    Reverted,
    Skipped,
    Conflict,
    LeakSuspected,
    Trouble,
    Digest,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 12] = [
        NotifyEvent::Proposed,
        NotifyEvent::Applied,
        NotifyEvent::FastPath,
        NotifyEvent::RolledOut,
        NotifyEvent::Confirmed,
        NotifyEvent::Reverting,
        NotifyEvent::Reverted,
        NotifyEvent::Skipped,
        NotifyEvent::Conflict,
        NotifyEvent::LeakSuspected,
        NotifyEvent::Trouble,
        NotifyEvent::Digest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Proposed => "proposed",
            NotifyEvent::Applied => "applied",
            NotifyEvent::FastPath => "fast-path",
            NotifyEvent::RolledOut => "rolled-out",
            NotifyEvent::Confirmed => "confirmed",
            NotifyEvent::Reverting => "reverting",
            NotifyEvent::Reverted => "reverted",
            NotifyEvent::Skipped => "skipped",
            NotifyEvent::Conflict => "conflict",
            NotifyEvent::LeakSuspected => "leak-suspected",
            NotifyEvent::Trouble => "trouble",
            NotifyEvent::Digest => "digest",
        }
    }
}

impl From<EventKind> for NotifyEvent {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Proposed => NotifyEvent::Proposed,
            EventKind::Applied => NotifyEvent::Applied,
            EventKind::RolledOut => NotifyEvent::RolledOut,
            EventKind::Confirmed => NotifyEvent::Confirmed,
            EventKind::Reverting => NotifyEvent::Reverting,
            EventKind::Reverted => NotifyEvent::Reverted,
            EventKind::Skipped => NotifyEvent::Skipped,
            EventKind::Conflict => NotifyEvent::Conflict,
            EventKind::FastPath => NotifyEvent::FastPath,
            EventKind::LeakSuspected => NotifyEvent::LeakSuspected,
            EventKind::Trouble => NotifyEvent::Trouble,
        }
    }
}

impl fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a sink receives unless its `events` says otherwise: what changed,
/// how it ended, risks, trouble, and the digest; not the intermediate steps
/// (rolled out, reverting) nor every proposal (the digest lists them).
pub fn default_events() -> Vec<NotifyEvent> {
    vec![
        NotifyEvent::Applied,
        NotifyEvent::FastPath,
        NotifyEvent::Confirmed,
        NotifyEvent::Reverted,
        NotifyEvent::Conflict,
        NotifyEvent::LeakSuspected,
        NotifyEvent::Trouble,
        NotifyEvent::Digest,
    ]
}

/// A button on messages: `url` may use `{namespace}`, `{kind}`, `{name}`,
/// `{change_id}` and `{cluster}`, each replaced percent-encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTemplate {
    /// The button's text, e.g. `Grafana` or `Runbook`.
    pub name: String,
    pub url: String,
}

/// The placeholders a link template may use.
pub const LINK_PLACEHOLDERS: [&str; 5] = ["namespace", "kind", "name", "change_id", "cluster"];

/// `notifications.digest`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    /// Time between two digests; `0s` turns the digest off.
    #[serde(with = "duration_text")]
    pub interval: Duration,
    /// Workloads listed by savings.
    pub top: usize,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            interval: Duration::from_secs(86_400),
            top: 10,
        }
    }
}

/// `notifications.delivery`: the queue and the retries, per sink.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Notifications waiting per sink; more are dropped (and counted).
    pub queue_size: usize,
    /// One HTTP request may take this long.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
    /// A notification not delivered this long after it was queued is
    /// dropped (and counted).
    #[serde(with = "duration_text")]
    pub give_up_after: Duration,
    /// The first retry waits about this long; each next one twice as long.
    #[serde(with = "duration_text")]
    pub retry_initial: Duration,
    /// No retry waits longer (except a `Retry-After` the receiver asked for).
    #[serde(with = "duration_text")]
    pub retry_max: Duration,
    /// Requests per minute per sink (a burst of as many is allowed).
    pub max_per_minute: u32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            queue_size: 256,
            timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(15 * 60),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_per_minute: 20,
        }
    }
}

/// A value in `notifications:` that cannot work: the key, what is wrong,
/// and what to write instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidNotifications {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for InvalidNotifications {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}; fix: {}", self.key, self.problem, self.fix)
    }
}

fn invalid(
    key: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> InvalidNotifications {
    InvalidNotifications {
        key: key.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

fn show(d: Duration) -> String {
    duration_text::format(d)
}

impl NotificationsConfig {
    /// Checks every value a type cannot; the first problem is the error.
    pub fn check(&self) -> Result<(), InvalidNotifications> {
        for (i, sink) in self.sinks.iter().enumerate() {
            check_sink(&format!("notifications.sinks[{i}]"), sink)?;
            if let Some(first) = self.sinks[..i].iter().position(|s| s.name == sink.name) {
                return Err(invalid(
                    format!("notifications.sinks[{i}].name"),
                    format!(
                        "the name {:?} is already used by notifications.sinks[{first}]",
                        sink.name
                    ),
                    "give every sink a unique name: metrics and logs tell sinks apart by it",
                ));
            }
        }
        for (i, link) in self.links.iter().enumerate() {
            check_link(&format!("notifications.links[{i}]"), link)?;
        }
        if self.digest.interval != Duration::ZERO && self.digest.interval < Duration::from_secs(60)
        {
            return Err(invalid(
                "notifications.digest.interval",
                format!(
                    "a digest every {} would flood the channel",
                    show(self.digest.interval)
                ),
                "write at least 1m, e.g. 24h (the default), or 0s to turn the digest off",
            ));
        }
        if self.digest.top == 0 || self.digest.top > 50 {
            return Err(invalid(
                "notifications.digest.top",
                format!("{} workloads is outside 1..50", self.digest.top),
                "write between 1 and 50, e.g. 10 (the default); Slack shows at most 50 blocks",
            ));
        }
        if self.trouble_after < Duration::from_secs(1) {
            return Err(invalid(
                "notifications.trouble_after",
                format!(
                    "{} would report every failed query",
                    show(self.trouble_after)
                ),
                "write at least 1s, e.g. 5m (the default)",
            ));
        }
        self.delivery.check()
    }
}

impl DeliveryConfig {
    fn check(&self) -> Result<(), InvalidNotifications> {
        let key = |k: &str| format!("notifications.delivery.{k}");
        if self.queue_size == 0 || self.queue_size > 100_000 {
            return Err(invalid(
                key("queue_size"),
                format!("{} is outside 1..100000", self.queue_size),
                "write between 1 and 100000, e.g. 256 (the default)",
            ));
        }
        if self.timeout < Duration::from_millis(100) {
            return Err(invalid(
                key("timeout"),
                format!("{} is too short for any HTTP request", show(self.timeout)),
                "write at least 100ms, e.g. 10s (the default)",
            ));
        }
        if self.retry_initial.is_zero() || self.retry_initial > self.retry_max {
            return Err(invalid(
                key("retry_initial"),
                format!(
                    "{} is not between 0 and retry_max {}",
                    show(self.retry_initial),
                    show(self.retry_max)
                ),
                "write a first wait above 0 and at most retry_max, e.g. 1s with 1m (the defaults)",
            ));
        }
        if self.give_up_after < self.timeout {
            return Err(invalid(
                key("give_up_after"),
                format!(
                    "{} is shorter than one request (timeout {}), so nothing would be retried",
                    show(self.give_up_after),
                    show(self.timeout)
                ),
                "write several times the timeout, e.g. 15m (the default)",
            ));
        }
        if self.max_per_minute == 0 {
            return Err(invalid(
                key("max_per_minute"),
                "0 requests per minute would never deliver anything",
                "write at least 1, e.g. 20 (the default; Slack accepts about one message per second per webhook)",
            ));
        }
        Ok(())
    }
}

fn check_sink(at: &str, sink: &SinkConfig) -> Result<(), InvalidNotifications> {
    if sink.name.trim().is_empty() {
        return Err(invalid(
            format!("{at}.name"),
            "the sink has no name",
            "give it a short unique name, e.g. `name: platform-slack`",
        ));
    }
    let sources = [
        sink.url.is_some(),
        sink.url_file.is_some(),
        sink.url_env.is_some(),
    ];
    match sources.iter().filter(|&&s| s).count() {
        0 => {
            return Err(invalid(
                format!("{at}.url_file"),
                "the sink has no URL",
                "set url_file to a file holding the URL (a mounted Secret), or url_env to a variable holding it",
            ));
        }
        1 => {}
        _ => {
            return Err(invalid(
                format!("{at}.url"),
                "more than one of url, url_file and url_env is set",
                "keep exactly one of them",
            ));
        }
    }
    if let Some(url) = &sink.url {
        check_url(&format!("{at}.url"), url)?;
    }
    for (key, name) in [("url_env", &sink.url_env), ("secret_env", &sink.secret_env)] {
        if let Some(name) = name
            && !is_env_name(name)
        {
            return Err(invalid(
                format!("{at}.{key}"),
                format!("{name:?} is not an environment variable name"),
                "write a name of letters, digits and `_`, e.g. TAILOR_SLACK_URL",
            ));
        }
    }
    if sink.events.is_empty() {
        return Err(invalid(
            format!("{at}.events"),
            "the sink receives nothing",
            "list the notifications it should receive, e.g. [applied, confirmed, reverted, trouble, digest], or remove the sink",
        ));
    }
    let secrets = usize::from(sink.secret_file.is_some()) + usize::from(sink.secret_env.is_some());
    match (sink.kind, secrets) {
        (SinkKind::Webhook, 0) => Err(invalid(
            format!("{at}.secret_file"),
            "a webhook sink has no signing secret, so its receiver could not reject forged or replayed requests",
            "set secret_file to a file holding a random secret (a mounted Secret), or secret_env; see docs/notifications.md",
        )),
        (SinkKind::Webhook, 1) => Ok(()),
        (SinkKind::Webhook, _) => Err(invalid(
            format!("{at}.secret_file"),
            "both secret_file and secret_env are set",
            "keep one of them",
        )),
        (_, 0) => Ok(()),
        (kind, _) => Err(invalid(
            format!(
                "{at}.{}",
                if sink.secret_file.is_some() {
                    "secret_file"
                } else {
                    "secret_env"
                }
            ),
            format!(
                "{} sinks are not signed (the URL is the credential)",
                kind.as_str()
            ),
            "remove the secret, or use `type: webhook` for a signed payload",
        )),
    }
}

/// A URL tailor can send to: http or https, with a host.
pub fn check_url(key: &str, url: &str) -> Result<(), InvalidNotifications> {
    // The URL may hold a credential: errors never quote it.
    let fix = "write the whole URL the receiver gave you, starting with https://";
    let parsed = reqwest::Url::parse(url.trim())
        .map_err(|e| invalid(key, format!("the value is not a URL ({e})"), fix))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("the scheme {:?} is not http or https", parsed.scheme()),
            fix,
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, "the URL has no host", fix));
    }
    Ok(())
}

fn check_link(at: &str, link: &LinkTemplate) -> Result<(), InvalidNotifications> {
    if link.name.trim().is_empty() {
        return Err(invalid(
            format!("{at}.name"),
            "the link has no name",
            "write the button's text, e.g. `name: Grafana`",
        ));
    }
    for placeholder in crate::config::placeholders(&link.url) {
        if !LINK_PLACEHOLDERS.contains(&placeholder) {
            return Err(invalid(
                format!("{at}.url"),
                format!("unknown placeholder {{{placeholder}}}"),
                format!(
                    "use only {}",
                    LINK_PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    // Placeholders filled with a sample must give a URL.
    let sample = super::links::fill(&link.url, &|_| Some("x".to_string()));
    check_url(&format!("{at}.url"), &sample).map_err(|mut e| {
        e.problem = format!("{}: {:?}", e.problem, link.url);
        e.fix = "write a URL starting with https://, e.g. https://grafana.example.com/d/tailor?var-namespace={namespace}&var-workload={name}".into();
        e
    })
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> SinkConfig {
        SinkConfig {
            name: "hook".into(),
            kind: SinkKind::Webhook,
            url: Some("https://example.com/hook".into()),
            url_file: None,
            url_env: None,
            secret_file: Some("/s".into()),
            secret_env: None,
            events: default_events(),
        }
    }

    fn check(f: impl FnOnce(&mut NotificationsConfig)) -> Result<(), InvalidNotifications> {
        let mut c = NotificationsConfig {
            sinks: vec![webhook()],
            ..NotificationsConfig::default()
        };
        f(&mut c);
        c.check()
    }

    #[test]
    fn the_defaults_and_a_webhook_are_valid() {
        NotificationsConfig::default().check().unwrap();
        check(|_| {}).unwrap();
    }

    #[test]
    fn bad_values_name_the_key_and_the_fix() {
        type Edit = fn(&mut NotificationsConfig);
        #[rustfmt::skip]
        let cases: [(Edit, &str, &str); 14] = [
            (|c| c.sinks[0].name = " ".into(), "notifications.sinks[0].name", "unique name"),
            (|c| c.sinks.push(webhook()), "notifications.sinks[1].name", "unique"),
            (|c| c.sinks[0].url = None, "notifications.sinks[0].url_file", "url_env"),
            (|c| c.sinks[0].url_env = Some("X".into()), "notifications.sinks[0].url", "exactly one"),
            (|c| c.sinks[0].url = Some("hooks.slack.com/x".into()), "notifications.sinks[0].url", "https://"),
            (|c| { c.sinks[0].url = None; c.sinks[0].url_env = Some("1X".into()) }, "notifications.sinks[0].url_env", "TAILOR_SLACK_URL"),
            (|c| c.sinks[0].secret_file = None, "notifications.sinks[0].secret_file", "docs/notifications.md"),
            (|c| c.sinks[0].kind = SinkKind::Slack, "notifications.sinks[0].secret_file", "remove the secret"),
            (|c| c.links.push(LinkTemplate { name: "G".into(), url: "https://g/{workload}".into() }), "notifications.links[0].url", "{namespace}"),
            (|c| c.links.push(LinkTemplate { name: "G".into(), url: "{name}".into() }), "notifications.links[0].url", "https://"),
            (|c| c.digest.interval = Duration::from_secs(5), "notifications.digest.interval", "0s"),
            (|c| c.digest.top = 0, "notifications.digest.top", "between 1 and 50"),
            (|c| c.delivery.give_up_after = Duration::from_secs(1), "notifications.delivery.give_up_after", "several times"),
            (|c| c.delivery.max_per_minute = 0, "notifications.delivery.max_per_minute", "at least 1"),
        ];
        for (edit, key, fix) in cases {
            let e = check(edit).expect_err(key);
            assert_eq!(e.key, key, "{e}");
            assert!(e.fix.contains(fix), "{e}");
        }
    }

    #[test]
    fn a_url_in_an_error_is_never_quoted() {
        let e = check(|c| c.sinks[0].url = Some("ftp://hooks.example.com/T0/B0/SECRET".into()))
            .unwrap_err();
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
}
