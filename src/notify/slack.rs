//! Slack incoming webhooks: a [`Message`] as Block Kit blocks, with a
//! plain `text` fallback for notifications and screen readers.
//!
//! Limits from Slack's Block Kit reference: a header's text is at most 150
//! characters, a section's text 3,000, a field 2,000 and a section at most
//! 10 fields, a button's URL 3,000, a message at most 50 blocks. Text in
//! `mrkdwn` escapes `&`, `<` and `>` (Slack's "Formatting text" guide).

use serde_json::{Value, json};

use super::message::{Message, Tone, join_lines, truncate};

const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
const FIELDS_MAX: usize = 10;
const BUTTONS_MAX: usize = 25;

/// `&`, `<`, `>` as Slack wants them in mrkdwn and plain text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn emoji(tone: Tone) -> &'static str {
    match tone {
        Tone::Neutral => ":information_source:",
        Tone::Good => ":white_check_mark:",
        Tone::Warning => ":warning:",
        Tone::Bad => ":rotating_light:",
    }
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// The JSON body of the webhook request.
pub fn render(message: &Message) -> Value {
    let mut blocks = vec![json!({
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": truncate(&format!("{} {}", emoji(message.tone), message.title), HEADER_MAX),
            "emoji": true,
        }
    })];
    if !message.summary.is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": mrkdwn(truncate(&escape(&message.summary), SECTION_MAX)),
        }));
    }
    if !message.facts.is_empty() {
        let fields: Vec<Value> = message
            .facts
            .iter()
            .take(FIELDS_MAX)
            .map(|(label, value)| {
                mrkdwn(truncate(
                    &format!("*{}*\n{}", escape(label), escape(value)),
                    FIELD_MAX,
                ))
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    for section in &message.sections {
        let lines: Vec<String> = section
            .lines
            .iter()
            .map(|l| format!("• {}", escape(l)))
            .collect();
        let heading = format!("*{}*\n", escape(&section.heading));
        let body = join_lines(&lines, SECTION_MAX - heading.chars().count());
        blocks.push(json!({"type": "section", "text": mrkdwn(format!("{heading}{body}"))}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [mrkdwn(truncate(&escape(&message.footer), SECTION_MAX))],
    }));
    if !message.links.is_empty() {
        let buttons: Vec<Value> = message
            .links
            .iter()
            .take(BUTTONS_MAX)
            .map(|(name, url)| {
                json!({
                    "type": "button",
                    "text": {"type": "plain_text", "text": truncate(name, 75)},
                    "url": url,
                })
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({
        "text": format!("{}: {}", escape(&message.title), escape(&message.summary)),
        "blocks": blocks,
    })
}
