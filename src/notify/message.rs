//! A payload as a chat message: title, facts, lists and links, in plain
//! words. Slack ([`super::slack`]) and Teams ([`super::teams`]) lay out the
//! same [`Message`], so both say the same thing.

use super::config::NotifyEvent;
use super::payload::{Payload, container_lines, describe_containers, dollars};

/// How a message should look: good news, bad news, or neither.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Good,
    Warning,
    Bad,
}

/// One titled list (containers, evidence, top savings, approvals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    pub heading: String,
    pub lines: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub summary: String,
    pub tone: Tone,
    /// Short label/value pairs (workload, $/month, change id, …).
    pub facts: Vec<(String, String)>,
    pub sections: Vec<Section>,
    /// Cluster, time, payload id.
    pub footer: String,
    pub links: Vec<(String, String)>,
}

impl Message {
    pub fn from_payload(p: &Payload) -> Message {
        let tone = match p.event {
            NotifyEvent::Confirmed => Tone::Good,
            NotifyEvent::Reverted
            | NotifyEvent::Reverting
            | NotifyEvent::Trouble
            | NotifyEvent::Conflict => Tone::Bad,
            NotifyEvent::FastPath | NotifyEvent::LeakSuspected => Tone::Warning,
            _ => Tone::Neutral,
        };
        let mut facts = Vec::new();
        let mut sections = Vec::new();
        if let Some(w) = &p.workload
            && p.trouble.is_none()
        {
            facts.push((
                "Workload".to_string(),
                format!("{}/{}/{}", w.namespace, w.kind, w.name),
            ));
        }
        if let Some(c) = &p.change {
            facts.push(("$/month".to_string(), dollars(c.savings_per_month_usd)));
            facts.push(("Change".to_string(), c.id.clone()));
            if let Some(mode) = &c.mode {
                facts.push(("Mode".to_string(), mode.clone()));
            }
            sections.push(Section {
                heading: "Before → after".to_string(),
                lines: container_lines(&c.containers),
            });
            if let Some(command) = &c.approve_command {
                sections.push(Section {
                    heading: "Awaiting approval".to_string(),
                    lines: vec![format!("{command}   (fingerprint {})", c.fingerprint)],
                });
            }
        }
        if let Some(v) = &p.verdict {
            facts.push(("Verdict".to_string(), v.verdict.clone()));
            let lines = v
                .findings
                .iter()
                .map(|f| {
                    let mark = if f.breach { "BREACH" } else { "ok" };
                    let p_value = match f.p_value {
                        Some(p) if p < 0.001 => ", p < 0.001".to_string(),
                        Some(p) => format!(", p = {p:.3}"),
                        None => String::new(),
                    };
                    format!("[{mark}] {}{p_value}", f.message)
                })
                .collect::<Vec<_>>();
            if !lines.is_empty() {
                sections.push(Section {
                    heading: "Evidence".to_string(),
                    lines,
                });
            }
        }
        if let Some(r) = &p.revert {
            let mut lines = vec![format!("Why: {}", r.reason)];
            if let Some(seen) = &r.regression_seen_at {
                lines.push(format!("Regression seen at {seen}"));
            }
            if let Some(at) = &r.reverted_at {
                lines.push(format!("Reverted at {at}"));
            }
            if let Some(until) = &r.held_until {
                lines.push(format!(
                    "Held until {until}: no change to this workload before then"
                ));
            }
            sections.push(Section {
                heading: "Revert".to_string(),
                lines,
            });
        }
        if let Some(t) = &p.trouble {
            facts.push(("Problem".to_string(), t.problem.clone()));
            facts.push(("Since".to_string(), t.since.clone()));
            sections.push(Section {
                heading: "Last error".to_string(),
                lines: vec![t.error.clone()],
            });
        }
        if let Some(d) = &p.digest {
            facts.push((
                "Available".to_string(),
                dollars(d.total_savings_per_month_usd),
            ));
            facts.push((
                "Workloads with savings".to_string(),
                d.workloads_with_savings.to_string(),
            ));
            if d.total_extra_cost_per_month_usd > 0.0 {
                facts.push((
                    "Increases needed".to_string(),
                    dollars(-d.total_extra_cost_per_month_usd),
                ));
            }
            facts.push(("Mode".to_string(), d.mode.clone()));
            sections.push(Section {
                heading: format!("Top {} by savings", d.top.len()),
                lines: d
                    .top
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        format!(
                            "{}. {}/{}/{} {}: {}",
                            i + 1,
                            t.workload.namespace,
                            t.workload.kind,
                            t.workload.name,
                            dollars(t.savings_per_month_usd),
                            describe_containers(&t.containers)
                        )
                    })
                    .collect(),
            });
            let (awaiting, others): (Vec<_>, Vec<_>) =
                d.proposals.iter().partition(|p| p.change.awaiting_approval);
            if !awaiting.is_empty() {
                sections.push(Section {
                    heading: format!("Awaiting approval ({})", awaiting.len()),
                    lines: awaiting
                        .iter()
                        .map(|p| {
                            format!(
                                "{} {} (change {}, fingerprint {}): {}",
                                p.change.approve_command.as_deref().unwrap_or_default(),
                                dollars(p.change.savings_per_month_usd),
                                p.change.id,
                                p.change.fingerprint,
                                describe_containers(&p.change.containers)
                            )
                        })
                        .collect(),
                });
            }
            if !others.is_empty() {
                sections.push(Section {
                    heading: format!("Proposed, not applied ({})", others.len()),
                    lines: others
                        .iter()
                        .map(|p| {
                            format!(
                                "{}/{}/{} {} ({}): {}",
                                p.workload.namespace,
                                p.workload.kind,
                                p.workload.name,
                                dollars(p.change.savings_per_month_usd),
                                p.change.mode.as_deref().unwrap_or("?"),
                                describe_containers(&p.change.containers)
                            )
                        })
                        .collect(),
                });
            }
        }
        let mut footer = Vec::new();
        if let Some(cluster) = &p.cluster {
            footer.push(format!("cluster {cluster}"));
        }
        footer.push(p.at.clone());
        footer.push(format!("id {}", p.id));
        let title = if p.test {
            format!("[test] {}", p.title)
        } else {
            p.title.clone()
        };
        Message {
            title,
            summary: p.summary.clone(),
            tone,
            facts,
            sections,
            footer: footer.join(" · "),
            links: p
                .links
                .iter()
                .map(|l| (l.name.clone(), l.url.clone()))
                .collect(),
        }
    }
}

/// At most `max` characters, with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Lines joined by `\n`, at most `max` characters; when they do not all
/// fit, the last line says how many were left out.
pub fn join_lines(lines: &[String], max: usize) -> String {
    let reserve = 1 + format!("… and {} more", lines.len()).chars().count();
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let sep = usize::from(i > 0);
        let len = line.chars().count();
        let room_after = if i + 1 == lines.len() { 0 } else { reserve };
        if used + sep + len + room_after > max {
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("… and {} more", lines.len() - i));
            return out;
        }
        if i > 0 {
            out.push('\n');
        }
        out.push_str(line);
        used += sep + len;
    }
    out
}
