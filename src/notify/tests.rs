//! Rendering: payloads, Slack blocks and Teams cards for every sample, the
//! digest's arithmetic, and the JSON Schema against every payload.

use serde_json::Value;

use super::config::{LinkTemplate, NotifyEvent};
use super::message::{Message, join_lines};
use super::payload::{Context, Payload, digest_document};
use super::samples;
use super::{new_id, slack, teams};

const AT: i64 = 1_790_000_000;

fn context() -> Context {
    Context {
        cluster: Some("prod-eu".into()),
        links: vec![
            LinkTemplate {
                name: "Grafana".into(),
                url: "https://grafana.example.com/d/tailor?var-namespace={namespace}&var-workload={name}".into(),
            },
            LinkTemplate {
                name: "Runbook".into(),
                url: "https://runbooks.example.com/tailor".into(),
            },
        ],
        digest_top: 10,
    }
}

fn payload(event: NotifyEvent) -> Payload {
    samples::payloads(AT, &context())
        .into_iter()
        .find(|p| p.event == event)
        .expect("a sample of each event")
}

pub(crate) fn schema() -> Value {
    serde_json::from_str(include_str!("../../docs/webhook.schema.json"))
        .expect("the schema is JSON")
}

#[test]
fn every_sample_payload_matches_the_published_schema() {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("a valid 2020-12 schema");
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let payloads = samples::payloads(AT, &context());
    assert_eq!(payloads.len(), 10);
    for p in payloads {
        let value = serde_json::to_value(&p).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", p.event);
    }
    // A payload the schema must refuse: a change without its numbers.
    let mut broken = serde_json::to_value(payload(NotifyEvent::Applied)).unwrap();
    broken["change"]["containers"][0]["after"]["cpu_request_millicores"] = "500m".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn a_revert_carries_the_numbers_the_evidence_and_the_hold() {
    let p = payload(NotifyEvent::Reverted);
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["event"], "reverted");
    assert_eq!(json["test"], true);
    assert_eq!(json["cluster"], "prod-eu");
    assert_eq!(json["workload"]["kind"], "Deployment");
    let c = &json["change"]["containers"][0];
    assert_eq!(c["before"]["cpu_request_millicores"], 2000);
    assert_eq!(c["after"]["cpu_request_millicores"], 500);
    assert_eq!(c["after"]["memory_request_bytes"], 1536u64 << 20);
    assert_eq!(json["change"]["savings_per_month_usd"], 187.45);
    assert_eq!(json["verdict"]["verdict"], "breach");
    let f = &json["verdict"]["findings"][0];
    assert_eq!(
        (f["signal"].as_str(), f["breach"].as_bool()),
        (Some("p99 latency"), Some(true))
    );
    assert_eq!(f["baseline"], 0.18);
    assert_eq!(f["observed"], 0.412);
    assert_eq!(json["revert"]["held_until"], "2026-09-28T14:13:20Z");
    assert_eq!(json["revert"]["regression_seen_at"], "2026-09-21T14:10:20Z");
    assert!(
        json["revert"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("SLO regression")
    );
    assert_eq!(
        json["links"][0]["url"],
        "https://grafana.example.com/d/tailor?var-namespace=shop&var-workload=web"
    );
    assert_eq!(json["links"].as_array().unwrap().len(), 2);
}

#[test]
fn trouble_has_no_change_and_says_since_when() {
    let p = payload(NotifyEvent::Trouble);
    assert!(p.change.is_none() && p.verdict.is_none() && p.digest.is_none());
    let t = p.trouble.as_ref().unwrap();
    assert_eq!(t.problem, "metrics-unreachable");
    assert_eq!(t.since, "2026-09-21T14:06:20Z");
    assert_eq!(
        p.title,
        "The metrics backend has been unreachable for 7 min"
    );
}

#[test]
fn the_digest_ranks_by_savings_and_lists_what_awaits_approval() {
    let d = digest_document(&samples::digest(AT), 2);
    assert_eq!(d.mode, "approve");
    assert_eq!(d.workloads_with_savings, 3);
    assert_eq!(d.total_savings_per_month_usd, 427.09);
    assert_eq!(d.total_extra_cost_per_month_usd, 8.35);
    let names: Vec<&str> = d.top.iter().map(|t| t.workload.name.as_str()).collect();
    assert_eq!(names, ["web", "ledger"]);
    assert_eq!(d.proposals.len(), 1);
    let change = &d.proposals[0].change;
    assert!(change.awaiting_approval);
    assert_eq!(change.fingerprint, "a41c9e0d55f2");
    assert_eq!(
        change.approve_command.as_deref(),
        Some("tailor approve shop/deployment/web")
    );
    let p = payload(NotifyEvent::Digest);
    assert!(p.workload.is_none());
    assert_eq!(
        p.title,
        "tailor digest: +$427.09/month available across 3 workloads"
    );
    // The Grafana link names a workload: the digest has none, so only the runbook.
    assert_eq!(p.links.len(), 1);
    assert_eq!(p.links[0].name, "Runbook");
}

fn blocks(value: &Value) -> &Vec<Value> {
    value["blocks"].as_array().expect("blocks")
}

#[test]
fn slack_messages_are_block_kit_within_slacks_limits() {
    for p in samples::payloads(AT, &context()) {
        let value = slack::render(&Message::from_payload(&p));
        let blocks = blocks(&value);
        assert!(!value["text"].as_str().unwrap().is_empty());
        assert!(blocks.len() <= 50, "{}", p.event);
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        assert!(
            blocks[0]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("[test]")
        );
        for b in blocks {
            let kind = b["type"].as_str().unwrap();
            assert!(
                ["header", "section", "context", "actions"].contains(&kind),
                "{kind}"
            );
            if let Some(text) = b["text"]["text"].as_str() {
                assert!(text.chars().count() <= 3000);
            }
            if let Some(fields) = b["fields"].as_array() {
                assert!(fields.len() <= 10);
            }
        }
    }
    let reverted = slack::render(&Message::from_payload(&payload(NotifyEvent::Reverted)));
    let text = serde_json::to_string(&reverted).unwrap();
    for needle in [
        "cpu 2→500m",
        "memory 4Gi→1536Mi",
        "+$187.45/month",
        "[BREACH] p99 latency",
        "Held until 2026-09-28T14:13:20Z",
        ":rotating_light:",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    let actions = blocks(&reverted).last().unwrap();
    assert_eq!(actions["type"], "actions");
    assert_eq!(
        actions["elements"][0]["url"],
        "https://grafana.example.com/d/tailor?var-namespace=shop&var-workload=web"
    );
    let digest = serde_json::to_string(&slack::render(&Message::from_payload(&payload(
        NotifyEvent::Digest,
    ))))
    .unwrap();
    assert!(
        digest.contains("tailor approve shop/deployment/web"),
        "{digest}"
    );
    assert!(
        digest.contains("1. shop/Deployment/web +$187.45/month"),
        "{digest}"
    );
}

#[test]
fn slack_text_is_escaped() {
    let mut p = payload(NotifyEvent::Applied);
    p.summary = "a <b> & c".into();
    let value = slack::render(&Message::from_payload(&p));
    assert_eq!(value["blocks"][1]["text"]["text"], "a &lt;b&gt; &amp; c");
}

#[test]
fn teams_messages_are_adaptive_cards_in_a_message_envelope() {
    for p in samples::payloads(AT, &context()) {
        let value = teams::render(&Message::from_payload(&p));
        assert_eq!(value["type"], "message");
        let attachment = &value["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let body = card["body"].as_array().unwrap();
        assert_eq!(body[0]["weight"], "Bolder");
        assert!(
            body.iter()
                .all(|b| ["TextBlock", "FactSet"].contains(&b["type"].as_str().unwrap()))
        );
    }
    let confirmed = teams::render(&Message::from_payload(&payload(NotifyEvent::Confirmed)));
    assert_eq!(
        confirmed["attachments"][0]["content"]["body"][0]["color"],
        "Good"
    );
    let text = serde_json::to_string(&confirmed).unwrap();
    assert!(
        text.contains("\"title\":\"Verdict\",\"value\":\"healthy\""),
        "{text}"
    );
    assert!(text.contains("Action.OpenUrl"), "{text}");
}

#[test]
fn long_lists_are_cut_with_a_count() {
    let lines: Vec<String> = (0..100).map(|i| format!("line number {i}")).collect();
    let text = join_lines(&lines, 200);
    assert!(text.chars().count() <= 200, "{}", text.len());
    assert!(text.ends_with("more"), "{text}");
    let n: usize = text.lines().count() - 1;
    assert!(text.ends_with(&format!("… and {} more", 100 - n)), "{text}");
    assert_eq!(join_lines(&lines[..2], 200), "line number 0\nline number 1");
}

#[test]
fn ids_are_unique() {
    let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
    assert_eq!(ids.len(), 1000);
}

/// The example in docs/notifications.md is a payload the schema accepts.
#[test]
fn the_documented_example_matches_the_schema() {
    let doc = include_str!("../../docs/notifications.md");
    let start = doc.find("```json\n").expect("a JSON example") + "```json\n".len();
    let end = start + doc[start..].find("```").expect("its end");
    let example: Value = serde_json::from_str(&doc[start..end]).expect("the example is JSON");
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&example)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let payload: Payload = serde_json::from_value(example).expect("the example is a Payload");
    assert_eq!(payload.event, NotifyEvent::Reverted);
}
