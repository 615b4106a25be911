use std::time::Duration;

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::*;
use crate::daemon::fake_api;

fn at(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).expect("in range")
}

fn spec(holder: Option<&str>, renewed: Option<i64>, duration: Option<i32>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: holder.map(str::to_string),
        renew_time: renewed.map(|s| MicroTime(at(s))),
        acquire_time: renewed.map(|s| MicroTime(at(s))),
        lease_duration_seconds: duration,
        lease_transitions: Some(3),
        ..LeaseSpec::default()
    }
}

#[test]
fn decide_table() {
    let wait = |holder: &str, until: i64| Action::Wait {
        holder: holder.into(),
        until: at(until),
    };
    // (case, lease, now, expected)
    let cases: Vec<(&str, Option<LeaseSpec>, i64, Action)> = vec![
        ("no lease: create it", None, 0, Action::Create),
        (
            "released (no holder): take it",
            Some(spec(None, Some(0), Some(15))),
            1,
            Action::TakeOver,
        ),
        (
            "released (empty holder): take it",
            Some(spec(Some(""), Some(0), Some(15))),
            1,
            Action::TakeOver,
        ),
        (
            "ours: renew even if expired",
            Some(spec(Some("me"), Some(0), Some(15))),
            100,
            Action::Renew,
        ),
        (
            "ours and fresh: renew",
            Some(spec(Some("me"), Some(0), Some(15))),
            5,
            Action::Renew,
        ),
        (
            "another holder, fresh: wait",
            Some(spec(Some("other"), Some(0), Some(15))),
            14,
            wait("other", 15),
        ),
        (
            "another holder, exactly expired: take over",
            Some(spec(Some("other"), Some(0), Some(15))),
            15,
            Action::TakeOver,
        ),
        (
            "another holder, long expired: take over",
            Some(spec(Some("other"), Some(0), Some(15))),
            600,
            Action::TakeOver,
        ),
        (
            "another holder, never renewed: take over",
            Some(spec(Some("other"), None, Some(15))),
            0,
            Action::TakeOver,
        ),
        (
            "no duration: expired at once",
            Some(spec(Some("other"), Some(0), None)),
            0,
            Action::TakeOver,
        ),
        (
            "clock behind the renewal: still fresh",
            Some(spec(Some("other"), Some(10), Some(15))),
            0,
            wait("other", 25),
        ),
    ];
    for (case, lease, now, expected) in cases {
        assert_eq!(decide(lease.as_ref(), "me", at(now)), expected, "{case}");
    }
}

#[test]
fn written_specs_follow_client_go() {
    let d = Duration::from_secs(15);
    let created = next_spec(None, &Action::Create, "me", d, at(0)).expect("a spec");
    assert_eq!(created.holder_identity.as_deref(), Some("me"));
    assert_eq!(created.lease_transitions, Some(0));
    assert_eq!(created.lease_duration_seconds, Some(15));

    let mine = spec(Some("me"), Some(0), Some(15));
    let renewed = next_spec(Some(&mine), &Action::Renew, "me", d, at(5)).expect("a spec");
    assert_eq!(renewed.renew_time, Some(MicroTime(at(5))));
    assert_eq!(
        renewed.acquire_time,
        Some(MicroTime(at(0))),
        "acquireTime kept"
    );
    assert_eq!(renewed.lease_transitions, Some(3), "no transition on renew");

    let theirs = spec(Some("other"), Some(0), Some(15));
    let taken = next_spec(Some(&theirs), &Action::TakeOver, "me", d, at(20)).expect("a spec");
    assert_eq!(taken.holder_identity.as_deref(), Some("me"));
    assert_eq!(taken.acquire_time, Some(MicroTime(at(20))));
    assert_eq!(taken.lease_transitions, Some(4));

    let wait = Action::Wait {
        holder: "other".into(),
        until: at(15),
    };
    assert_eq!(next_spec(Some(&theirs), &wait, "me", d, at(1)), None);
}

fn elector(client: kube::Client, me: &str) -> LeaderElector {
    LeaderElector::new(
        client,
        "tailor",
        "tailor-leader",
        me,
        Duration::from_secs(15),
        Duration::from_secs(5),
    )
}

#[tokio::test]
async fn creates_the_lease_when_missing() {
    let store = fake_api::store_with(None);
    let (client, _) = fake_api::start(store.clone()).await;
    let mut e = elector(client, "pod-a");
    assert_eq!(
        e.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Leader)
    );
    assert!(e.is_leading());
    let s = store.lock().expect("lock");
    assert_eq!(s.holder().as_deref(), Some("pod-a"));
    assert_eq!(
        s.writes,
        vec![("POST".to_string(), Some("pod-a".to_string()))]
    );
}

#[tokio::test]
async fn renews_as_holder() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-a", 4, 15, 2)));
    let (client, _) = fake_api::start(store.clone()).await;
    let mut e = elector(client, "pod-a");
    assert_eq!(
        e.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Leader)
    );
    let s = store.lock().expect("lock");
    let lease = s.lease.clone().expect("a lease");
    assert_eq!(lease["spec"]["leaseTransitions"], 2);
    let renewed: Timestamp = lease["spec"]["renewTime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("renewTime");
    assert!(Timestamp::now() - SignedDuration::from_secs(2) < renewed);
    assert_eq!(s.writes.len(), 1);
}

#[tokio::test]
async fn waits_while_another_holder_is_fresh() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-b", 2, 15, 0)));
    let (client, _) = fake_api::start(store.clone()).await;
    let mut e = elector(client, "pod-a");
    assert_eq!(
        e.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Follower {
            holder: Some("pod-b".into())
        })
    );
    assert!(!e.is_leading());
    assert!(store.lock().expect("lock").writes.is_empty());
}

#[tokio::test]
async fn takes_over_when_expired() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-b", 60, 15, 1)));
    let (client, _) = fake_api::start(store.clone()).await;
    let mut e = elector(client, "pod-a");
    assert_eq!(
        e.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Leader)
    );
    let s = store.lock().expect("lock");
    assert_eq!(s.holder().as_deref(), Some("pod-a"));
    assert_eq!(
        s.lease
            .as_ref()
            .map(|l| l["spec"]["leaseTransitions"].clone()),
        Some(2.into())
    );
}

#[tokio::test]
async fn a_conflict_on_replace_means_follower() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-b", 60, 15, 1)));
    store.lock().expect("lock").conflict_next_put = true;
    let (client, _) = fake_api::start(store.clone()).await;
    let mut e = elector(client, "pod-a");
    assert_eq!(
        e.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Follower { holder: None })
    );
    assert!(!e.is_leading());
    assert_eq!(
        store.lock().expect("lock").holder().as_deref(),
        Some("pod-b")
    );
}

#[tokio::test]
async fn release_clears_the_holder_only_when_ours() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-a", 1, 15, 0)));
    let (client, _) = fake_api::start(store.clone()).await;
    let mut other = elector(client.clone(), "pod-b");
    assert_eq!(other.release().await.ok(), Some(false));
    assert_eq!(
        store.lock().expect("lock").holder().as_deref(),
        Some("pod-a")
    );
    let mut e = elector(client, "pod-a");
    assert_eq!(e.release().await.ok(), Some(true));
    assert_eq!(store.lock().expect("lock").holder(), None);
    // A released lease is free for anyone at once.
    assert_eq!(
        other.try_acquire_or_renew().await.ok(),
        Some(LeaderState::Leader)
    );
}
