//! Leader election on a `coordination.k8s.io/v1` Lease, with the semantics
//! client-go's `leaderelection` uses: the holder renews `renewTime` every
//! `renew_every`; a candidate takes over only once the holder's
//! `renewTime + leaseDurationSeconds` has passed; every write is a
//! `replace` carrying the `resourceVersion` that was read, so of two
//! candidates racing for an expired lease one gets 409 and stays follower.
//!
//! [`decide`] is the pure part (tested by table); [`LeaderElector`] does
//! the reads and writes. Unlike client-go, expiry is judged from the
//! lease's `renewTime` against the local clock, so nodes' clocks must
//! agree to well within `lease_duration` (NTP does this).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// Whether this replica leads, as of the last successful look at the Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderState {
    Leader,
    /// Someone else holds a fresh lease (`None`: we lost a write race and
    /// do not know the winner yet).
    Follower {
        holder: Option<String>,
    },
}

impl LeaderState {
    pub fn is_leader(&self) -> bool {
        matches!(self, LeaderState::Leader)
    }
}

/// What to do with the Lease as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// There is no Lease: create it, holding it.
    Create,
    /// We hold it: push `renewTime` forward.
    Renew,
    /// Nobody holds it, or the holder let it expire: take it.
    TakeOver,
    /// Someone else holds a fresh lease until `until`.
    Wait { holder: String, until: Timestamp },
}

/// Decides from the Lease's spec (`None`: no Lease) who may lead at `now`.
pub fn decide(lease: Option<&LeaseSpec>, me: &str, now: Timestamp) -> Action {
    let Some(spec) = lease else {
        return Action::Create;
    };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return Action::TakeOver;
    }
    if holder == me {
        return Action::Renew;
    }
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return Action::TakeOver;
    };
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0));
    let until = renewed
        .0
        .checked_add(SignedDuration::from_secs(duration))
        .unwrap_or(renewed.0);
    if now >= until {
        Action::TakeOver
    } else {
        Action::Wait {
            holder: holder.to_string(),
            until,
        }
    }
}

/// The spec to write for `action` (not for `Wait`), from what was read.
pub fn next_spec(
    read: Option<&LeaseSpec>,
    action: &Action,
    me: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> Option<LeaseSpec> {
    let seconds = i32::try_from(lease_duration.as_secs().max(1)).unwrap_or(i32::MAX);
    let base = read.cloned().unwrap_or_default();
    match action {
        Action::Wait { .. } => None,
        Action::Create => Some(LeaseSpec {
            holder_identity: Some(me.to_string()),
            lease_duration_seconds: Some(seconds),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }),
        Action::Renew => Some(LeaseSpec {
            lease_duration_seconds: Some(seconds),
            renew_time: Some(MicroTime(now)),
            acquire_time: base.acquire_time.clone().or(Some(MicroTime(now))),
            ..base
        }),
        Action::TakeOver => {
            let previous = base.holder_identity.as_deref().unwrap_or("");
            let transitions = base.lease_transitions.unwrap_or(0);
            Some(LeaseSpec {
                holder_identity: Some(me.to_string()),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                // client-go counts a transition whenever the holder changes.
                lease_transitions: Some(if previous != me {
                    transitions.saturating_add(1)
                } else {
                    transitions
                }),
                ..base
            })
        }
    }
}

/// Why the Lease could not be read or written (a lost race is not an error:
/// it is [`LeaderState::Follower`]).
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease {namespace}/{name}: {source}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// One replica's candidacy for the Lease `namespace/lease_name`.
pub struct LeaderElector {
    api: Api<Lease>,
    namespace: String,
    lease_name: String,
    identity: String,
    lease_duration: Duration,
    renew_every: Duration,
    leading: bool,
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        identity: impl Into<String>,
        lease_duration: Duration,
        renew_every: Duration,
    ) -> Self {
        let namespace = namespace.into();
        LeaderElector {
            api: Api::namespaced(client, &namespace),
            namespace,
            lease_name: lease_name.into(),
            identity: identity.into(),
            lease_duration,
            renew_every,
            leading: false,
        }
    }

    /// This replica's identity: `$HOSTNAME` (the pod name), else `tailor-<pid>`.
    pub fn identity_from_env() -> String {
        std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| format!("tailor-{}", std::process::id()))
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How often the daemon should call [`Self::try_acquire_or_renew`].
    pub fn renew_every(&self) -> Duration {
        self.renew_every
    }

    /// Whether the last call made or kept us leader.
    pub fn is_leading(&self) -> bool {
        self.leading
    }

    fn error(&self, source: kube::Error) -> LeaderError {
        LeaderError::Api {
            namespace: self.namespace.clone(),
            name: self.lease_name.clone(),
            source,
        }
    }

    /// Reads the Lease and creates, renews or takes it over when allowed.
    pub async fn try_acquire_or_renew(&mut self) -> Result<LeaderState, LeaderError> {
        let result = self.acquire_or_renew().await;
        self.leading = matches!(result, Ok(LeaderState::Leader));
        result
    }

    async fn acquire_or_renew(&mut self) -> Result<LeaderState, LeaderError> {
        let read = self
            .api
            .get_opt(&self.lease_name)
            .await
            .map_err(|e| self.error(e))?;
        let now = Timestamp::now();
        let empty = LeaseSpec::default();
        let spec = read.as_ref().map(|l| l.spec.as_ref().unwrap_or(&empty));
        let action = decide(spec, &self.identity, now);
        let Some(next) = next_spec(spec, &action, &self.identity, self.lease_duration, now) else {
            let holder = match action {
                Action::Wait { holder, .. } => Some(holder),
                _ => None,
            };
            return Ok(LeaderState::Follower { holder });
        };
        let written = match read {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.lease_name.clone()),
                        namespace: Some(self.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(next),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(mut lease) => {
                lease.spec = Some(next);
                // `lease.metadata.resource_version` is the one we read: a
                // concurrent writer makes this 409.
                self.api
                    .replace(&self.lease_name, &PostParams::default(), &lease)
                    .await
            }
        };
        match written {
            Ok(_) => {
                if action != Action::Renew {
                    tracing::info!(identity = %self.identity, lease = %self.lease_name, "acquired leadership");
                }
                Ok(LeaderState::Leader)
            }
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_already_exists() => {
                tracing::info!(identity = %self.identity, lease = %self.lease_name, "another replica wrote the lease first");
                Ok(LeaderState::Follower { holder: None })
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Gives the lease up (on shutdown) so a follower takes over at once
    /// instead of waiting for it to expire. Does nothing unless we hold it;
    /// `Ok(true)`: we held it and cleared `holderIdentity`.
    pub async fn release(&mut self) -> Result<bool, LeaderError> {
        self.leading = false;
        let Some(mut lease) = self
            .api
            .get_opt(&self.lease_name)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(false);
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(false);
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(false);
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(identity = %self.identity, lease = %self.lease_name, "released leadership");
                Ok(true)
            }
            // Someone else wrote it since: it is not ours to clear any more.
            Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests;
