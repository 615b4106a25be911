//! How values are written in the human formats (table and Markdown): short,
//! aligned, with `→` for a change and `…` where text is cut. Machine formats
//! write exact integers instead and do not use this module.

use crate::domain::Resources;
use crate::recommend::Recommendation;
use crate::units::{Bytes, MilliCores};

use super::SkippedSeries;

/// Shortens `text` to at most `width` chars, cutting from the middle so both
/// the namespace and the distinctive end of a name stay visible.
pub fn truncate_middle(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let keep = width - 1;
    let head = keep.div_ceil(2);
    let tail = keep - head;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(len - tail));
    out
}

/// Shortens `text` to at most `width` chars, cutting from the end.
pub fn truncate_end(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Free text (a skip reason) on one line: line breaks become spaces.
pub fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn workload(rec: &Recommendation) -> String {
    format!(
        "{}/{}",
        rec.target.workload.namespace, rec.target.workload.name
    )
}

/// A CPU value as Kubernetes writes it, or `none` when not set.
pub fn cpu(value: Option<MilliCores>) -> String {
    value.map_or_else(|| "none".to_string(), |m| m.to_string())
}

/// A memory value, or `none` when not set. Exact binary (`512Mi`) or
/// decimal (`1G`) quantities are written as such; anything else is rounded
/// to one decimal of the nearest binary unit and marked `~`, because a
/// ten-digit byte count does not fit a table and is not read by anyone.
pub fn memory(value: Option<Bytes>) -> String {
    let Some(bytes) = value else {
        return "none".to_string();
    };
    let exact = bytes.to_string();
    if bytes.0 < Bytes::KIB || !exact.bytes().all(|c| c.is_ascii_digit()) {
        return exact;
    }
    const DECIMAL: [(u64, &str); 6] = [
        (1_000_000_000_000_000_000, "E"),
        (1_000_000_000_000_000, "P"),
        (1_000_000_000_000, "T"),
        (1_000_000_000, "G"),
        (1_000_000, "M"),
        (1_000, "k"),
    ];
    for (unit, suffix) in DECIMAL {
        if bytes.0 % unit == 0 {
            return format!("{}{suffix}", bytes.0 / unit);
        }
    }
    const BINARY: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut value = bytes.as_f64() / Bytes::KIB as f64;
    for (i, suffix) in BINARY.iter().enumerate() {
        // 1023.95 would print as "1024.0"; move up a unit instead.
        if value < 1023.95 || i == BINARY.len() - 1 {
            return format!("~{value:.1}{suffix}");
        }
        value /= 1024.0;
    }
    exact
}

/// `old→new`, or just `old` when nothing changes.
pub fn change(current: String, recommended: String) -> String {
    if current == recommended {
        current
    } else {
        format!("{current}→{recommended}")
    }
}

pub fn cpu_request_change(rec: &Recommendation) -> String {
    change(
        cpu(rec.current.cpu_request),
        cpu(rec.recommended.cpu_request),
    )
}

pub fn memory_request_change(rec: &Recommendation) -> String {
    change(
        memory(rec.current.memory_request),
        memory(rec.recommended.memory_request),
    )
}

/// `cpu 1→500m, memory 2Gi→1Gi`, naming only the limits that change;
/// `None` when neither does.
pub fn limits_change(current: &Resources, recommended: &Resources) -> Option<String> {
    let mut parts = Vec::new();
    if current.cpu_limit != recommended.cpu_limit {
        parts.push(format!(
            "cpu {}",
            change(cpu(current.cpu_limit), cpu(recommended.cpu_limit))
        ));
    }
    if current.memory_limit != recommended.memory_limit {
        parts.push(format!(
            "memory {}",
            change(
                memory(current.memory_limit),
                memory(recommended.memory_limit)
            )
        ));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Whole cents, or `None` for NaN and infinities.
fn cents(usd: f64) -> Option<i64> {
    usd.is_finite().then(|| (usd * 100.0).round() as i64)
}

/// Dollars with an explicit sign: `+41.20`, `-3.10`, `0.00`.
pub fn signed_amount(usd: f64) -> String {
    match cents(usd) {
        None => "n/a".to_string(),
        Some(0) => "0.00".to_string(),
        Some(c) => {
            let sign = if c > 0 { '+' } else { '-' };
            format!(
                "{sign}{}.{:02}",
                c.unsigned_abs() / 100,
                c.unsigned_abs() % 100
            )
        }
    }
}

/// `$512.40`, or `-$3.10` when negative.
pub fn dollars(usd: f64) -> String {
    match cents(usd) {
        None => "$n/a".to_string(),
        Some(c) => {
            let sign = if c < 0 { "-" } else { "" };
            format!(
                "{sign}${}.{:02}",
                c.unsigned_abs() / 100,
                c.unsigned_abs() % 100
            )
        }
    }
}

/// `+$211.30`, `-$3.10`, `$0.00`: a saving, signed.
pub fn signed_dollars(usd: f64) -> String {
    match cents(usd) {
        Some(c) if c > 0 => format!("+{}", dollars(usd)),
        _ => dollars(usd),
    }
}

/// A history length in its largest exact unit: `7d`, `36h`, `90m`, `45s`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0 => "0s".to_string(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `NaN sample dropped (12), counter reset (3)`.
pub fn skipped_series(skipped: &[SkippedSeries]) -> String {
    skipped
        .iter()
        .map(|s| format!("{} ({})", s.reason, s.count))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_width_and_marks_the_cut() {
        assert_eq!(truncate_middle("abcdefghij", 10), "abcdefghij");
        assert_eq!(truncate_middle("abcdefghij", 7), "abc…hij");
        assert_eq!(truncate_middle("abcdefghij", 6), "abc…ij");
        assert_eq!(truncate_middle("abcdefghij", 1), "…");
        assert_eq!(truncate_middle("abcdefghij", 0), "");
        assert_eq!(truncate_end("abcdefghij", 5), "abcd…");
        assert_eq!(truncate_end("a→b", 3), "a→b");
    }

    #[test]
    fn memory_cells_are_short() {
        let cases = [
            (None, "none"),
            (Some(Bytes(0)), "0"),
            (Some(Bytes(512)), "512"),
            (Some(Bytes::mib(512)), "512Mi"),
            (Some(Bytes::gib(1)), "1Gi"),
            (Some(Bytes(1_000_000_000)), "1G"),
            (Some(Bytes(5_000)), "5k"),
            (Some(Bytes(325_058_561)), "~310.0Mi"),
            (Some(Bytes(Bytes::GIB - 1)), "~1.0Gi"),
        ];
        for (input, expected) in cases {
            assert_eq!(memory(input), expected, "{input:?}");
        }
    }

    #[test]
    fn money_is_signed_to_the_cent() {
        let cases = [
            (41.2, "+41.20", "$41.20", "+$41.20"),
            (-3.1, "-3.10", "-$3.10", "-$3.10"),
            (-0.001, "0.00", "$0.00", "$0.00"),
            (0.005, "+0.01", "$0.01", "+$0.01"),
            (f64::NAN, "n/a", "$n/a", "$n/a"),
        ];
        for (usd, amount, plain, signed) in cases {
            assert_eq!(signed_amount(usd), amount, "{usd}");
            assert_eq!(dollars(usd), plain, "{usd}");
            assert_eq!(signed_dollars(usd), signed, "{usd}");
        }
    }

    #[test]
    fn durations_use_the_largest_exact_unit() {
        assert_eq!(duration(7 * 86_400), "7d");
        assert_eq!(duration(36 * 3_600), "36h");
        assert_eq!(duration(90 * 60), "90m");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(0), "0s");
    }

    #[test]
    fn limits_change_names_only_what_changes() {
        let current = Resources {
            cpu_limit: Some(MilliCores(1000)),
            memory_limit: Some(Bytes::gib(2)),
            ..Resources::default()
        };
        let same_memory = Resources {
            cpu_limit: None,
            ..current
        };
        assert_eq!(limits_change(&current, &current), None);
        assert_eq!(
            limits_change(&current, &same_memory).as_deref(),
            Some("cpu 1→none")
        );
        let both = Resources {
            cpu_limit: Some(MilliCores(500)),
            memory_limit: Some(Bytes::gib(1)),
            ..current
        };
        assert_eq!(
            limits_change(&current, &both).as_deref(),
            Some("cpu 1→500m, memory 2Gi→1Gi")
        );
    }
}
