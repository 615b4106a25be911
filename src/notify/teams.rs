//! Microsoft Teams workflow webhooks ("Post to a channel when a webhook
//! request is received"): a [`Message`] as an Adaptive Card (schema 1.4,
//! which Teams renders on desktop, web and mobile) inside the `message`
//! envelope with one `application/vnd.microsoft.card.adaptive` attachment.

use serde_json::{Value, json};

use super::message::{Message, Tone};

fn color(tone: Tone) -> &'static str {
    match tone {
        Tone::Neutral => "Default",
        Tone::Good => "Good",
        Tone::Warning => "Warning",
        Tone::Bad => "Attention",
    }
}

/// The JSON body of the webhook request.
pub fn render(message: &Message) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": message.title,
        "weight": "Bolder",
        "size": "Medium",
        "color": color(message.tone),
        "wrap": true,
    })];
    if !message.summary.is_empty() {
        body.push(json!({"type": "TextBlock", "text": message.summary, "wrap": true}));
    }
    if !message.facts.is_empty() {
        let facts: Vec<Value> = message
            .facts
            .iter()
            .map(|(title, value)| json!({"title": title, "value": value}))
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    for section in &message.sections {
        body.push(json!({
            "type": "TextBlock",
            "text": section.heading,
            "weight": "Bolder",
            "separator": true,
            "wrap": true,
        }));
        for line in &section.lines {
            body.push(json!({"type": "TextBlock", "text": format!("- {line}"), "wrap": true, "spacing": "None"}));
        }
    }
    body.push(json!({
        "type": "TextBlock",
        "text": message.footer,
        "isSubtle": true,
        "size": "Small",
        "wrap": true,
    }));
    let actions: Vec<Value> = message
        .links
        .iter()
        .map(|(title, url)| json!({"type": "Action.OpenUrl", "title": title, "url": url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            }
        }]
    })
}
