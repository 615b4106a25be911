//! Sinks as configured, resolved: the URL and the secret read from their
//! file or environment variable once, at start. Both are [`Secret`]s: their
//! `Debug` and `Display` print `***`, so no log line or error can carry them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use super::NotifyError;
use super::config::{NotifyEvent, SinkConfig, SinkKind, check_url};

/// A value never printed: a webhook URL (Slack's and Teams' carry their
/// credential) or a signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (the request, the HMAC).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A sink ready to send to.
#[derive(Clone, Debug)]
pub struct Sink {
    pub name: String,
    pub kind: SinkKind,
    pub url: Secret,
    /// Signing secret (webhook sinks).
    pub secret: Option<Secret>,
    pub events: BTreeSet<NotifyEvent>,
}

impl Sink {
    /// A sink receiving every kind of notification (for `tailor notify test`
    /// flags and tests).
    pub fn new(name: &str, kind: SinkKind, url: Secret, secret: Option<Secret>) -> Self {
        Sink {
            name: name.to_string(),
            kind,
            url,
            secret,
            events: NotifyEvent::ALL.into_iter().collect(),
        }
    }

    /// Reads the URL and the secret `config` points at. `key` is the
    /// config path (`notifications.sinks[0]`) errors name.
    pub fn resolve(key: &str, config: &SinkConfig) -> Result<Sink, NotifyError> {
        let url = if let Some(url) = &config.url {
            url.clone()
        } else if let Some(path) = &config.url_file {
            read_file(&format!("{key}.url_file"), path)?
        } else if let Some(name) = &config.url_env {
            read_env(&format!("{key}.url_env"), name)?
        } else {
            return Err(NotifyError::Setup {
                key: format!("{key}.url_file"),
                problem: "the sink has no URL".into(),
                fix: "set url_file or url_env".into(),
            });
        };
        let url = url.trim().to_string();
        check_url(&format!("{key}.url"), &url).map_err(|e| NotifyError::Setup {
            key: e.key,
            problem: e.problem,
            fix: e.fix,
        })?;
        let secret = if let Some(path) = &config.secret_file {
            Some(read_file(&format!("{key}.secret_file"), path)?)
        } else if let Some(name) = &config.secret_env {
            Some(read_env(&format!("{key}.secret_env"), name)?)
        } else {
            None
        };
        if let Some(secret) = &secret
            && secret.is_empty()
        {
            return Err(NotifyError::Setup {
                key: format!("{key}.secret_file"),
                problem: "the secret is empty".into(),
                fix: "put a random secret of at least 32 characters there, e.g. the output of `openssl rand -hex 32`".into(),
            });
        }
        Ok(Sink {
            name: config.name.clone(),
            kind: config.kind,
            url: Secret(url),
            secret: secret.map(Secret),
            events: config.events.iter().copied().collect(),
        })
    }
}

/// A file's content without its trailing newline (what `kubectl create
/// secret --from-file` and most editors leave).
pub fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

fn read_file(key: &str, path: &Path) -> Result<String, NotifyError> {
    read_secret_file(path).map_err(|e| NotifyError::Setup {
        key: key.to_string(),
        problem: format!("cannot read {}: {e}", path.display()),
        fix: "mount the Secret holding it at that path, or fix the path".into(),
    })
}

fn read_env(key: &str, name: &str) -> Result<String, NotifyError> {
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(NotifyError::Setup {
            key: key.to_string(),
            problem: format!("the environment variable {name} is not set or empty"),
            fix: format!(
                "set {name} (e.g. `env: - name: {name}  valueFrom: secretKeyRef: …` in the pod spec)"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let sink = Sink::new(
            "s",
            SinkKind::Slack,
            Secret::new("https://hooks.example.com/T0/B0/XYZ"),
            Some(Secret::new("hunter2")),
        );
        let text = format!("{sink:?} {}", sink.url);
        assert!(!text.contains("XYZ") && !text.contains("hunter2"), "{text}");
    }

    #[test]
    fn urls_and_secrets_come_from_files_and_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        let secret = dir.path().join("secret");
        std::fs::write(&url, "https://example.com/hook\n").unwrap();
        std::fs::write(&secret, "s3cret\n").unwrap();
        let mut config = SinkConfig {
            name: "hook".into(),
            kind: SinkKind::Webhook,
            url: None,
            url_file: Some(url.clone()),
            url_env: None,
            secret_file: Some(secret.clone()),
            secret_env: None,
            events: vec![NotifyEvent::Reverted],
        };
        let sink = Sink::resolve("notifications.sinks[0]", &config).unwrap();
        assert_eq!(sink.url.expose(), "https://example.com/hook");
        assert_eq!(sink.secret.as_ref().map(Secret::expose), Some("s3cret"));
        assert_eq!(sink.events.len(), 1);

        config.secret_file = Some(dir.path().join("missing"));
        let e = Sink::resolve("notifications.sinks[0]", &config).unwrap_err();
        assert!(
            e.to_string().contains("notifications.sinks[0].secret_file"),
            "{e}"
        );

        std::fs::write(&url, "not a url").unwrap();
        let e = Sink::resolve("notifications.sinks[0]", &config).unwrap_err();
        assert!(e.to_string().contains("notifications.sinks[0].url"), "{e}");
        assert!(!e.to_string().contains("not a url"), "{e}");

        config.url_file = None;
        config.url_env = Some("TAILOR_TEST_SURELY_UNSET_VARIABLE".into());
        let e = Sink::resolve("notifications.sinks[0]", &config).unwrap_err();
        assert!(e.to_string().contains("url_env"), "{e}");
    }
}
