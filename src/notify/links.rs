//! Links on messages (Grafana, runbook) from URL templates: `{namespace}`,
//! `{kind}`, `{name}`, `{change_id}` and `{cluster}` replaced by the
//! event's values, percent-encoded (RFC 3986 unreserved characters kept).

use super::config::LinkTemplate;
use super::payload::LinkDocument;

/// `template` with each `{placeholder}` replaced by `value(placeholder)`,
/// percent-encoded. A placeholder without a value is left as written.
pub fn fill(template: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    crate::config::fill_placeholders(template, |word| value(word).map(|v| percent_encode(&v)))
}

/// The links whose every placeholder has a value; the others are left out
/// (a workload link on the digest, which is about no single workload).
pub fn render(
    templates: &[LinkTemplate],
    value: &dyn Fn(&str) -> Option<String>,
) -> Vec<LinkDocument> {
    templates
        .iter()
        .filter(|t| {
            crate::config::placeholders(&t.url)
                .iter()
                .all(|p| value(p).is_some())
        })
        .map(|t| LinkDocument {
            name: t.name.clone(),
            url: fill(&t.url, value),
        })
        .collect()
}

/// RFC 3986 §2.3: only unreserved characters stay as they are.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_encoded() {
        let value = |p: &str| match p {
            "namespace" => Some("shop".to_string()),
            "name" => Some("web api/v2".to_string()),
            _ => None,
        };
        assert_eq!(
            fill("https://g/d?ns={namespace}&w={name}&x={kind}&{}", &value),
            "https://g/d?ns=shop&w=web%20api%2Fv2&x={kind}&{}"
        );
        let templates = [
            LinkTemplate {
                name: "Grafana".into(),
                url: "https://g/{namespace}/{name}".into(),
            },
            LinkTemplate {
                name: "Runbook".into(),
                url: "https://r/{change_id}".into(),
            },
        ];
        let links = render(&templates, &value);
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].url, "https://g/shop/web%20api%2Fv2");
    }
}
