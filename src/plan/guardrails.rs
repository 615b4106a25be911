//! The `guardrails:` config section: how far and how often tailor may change
//! workloads on its own. Every key has a default, a check in
//! [`Guardrails::validate`] that names the key and the fix, and a row in
//! `docs/guardrails.md`.
//!
//! Not for: deciding anything. [`super::plan`] reads these values; this file
//! only parses, checks and answers "is this instant frozen?".

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{duration_text, namespace_regex};

/// How far tailor goes on its own. The global mode is `guardrails.mode`; a
/// workload annotation may override it (see [`super::WorkloadView::mode`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Recommend only: every change is a [`super::Decision::Propose`].
    #[default]
    Observe,
    /// Apply only changes whose fingerprint a human approved. Fast-path
    /// increases (OOM kills, throttling) need no approval.
    Approve,
    /// Apply within the guardrails.
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Approve => "approve",
            Mode::Auto => "auto",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `guardrails:` config section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Guardrails {
    pub mode: Mode,
    /// Normal (not fast-path) changes being rolled out or verified at once,
    /// cluster-wide.
    pub max_in_flight: usize,
    /// Normal changes started per hour, at most one at a time (burst 1).
    pub changes_per_hour: u32,
    /// A decrease removes at most this fraction of the current value per
    /// change (0.25 = 25 %); increases go the whole way.
    pub max_decrease_ratio: f64,
    /// No normal change for this long after a change was confirmed.
    #[serde(with = "duration_text")]
    pub cooldown: Duration,
    /// How long a workload is held after tailor reverted a change (the
    /// rollout sets `held_until` from it).
    #[serde(with = "duration_text")]
    pub hold_after_revert: Duration,
    /// A change that only decreases is made only when the recommendation
    /// saves at least this much per month.
    pub min_monthly_savings_usd: f64,
    /// Allow changes to workloads running one replica (the rollout restarts
    /// the only pod).
    pub allow_single_replica: bool,
    /// Namespace regexes (anchored) tailor never changes.
    pub exclude_namespaces: Vec<String>,
    /// Weekly UTC windows with no normal changes.
    pub freeze_windows: Vec<FreezeWindow>,
    /// The kill switch: no change at all, fast paths included.
    pub paused: bool,
    /// This many OOM bumps within `leak_window` means a leak: stop raising
    /// memory and report it.
    pub leak_max_bumps: u32,
    #[serde(with = "duration_text")]
    pub leak_window: Duration,
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);
const DAY: Duration = Duration::from_secs(86_400);

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            mode: Mode::Observe,
            max_in_flight: 1,
            changes_per_hour: 6,
            max_decrease_ratio: 0.25,
            cooldown: DAY,
            hold_after_revert: 7 * DAY,
            min_monthly_savings_usd: 0.0,
            allow_single_replica: false,
            exclude_namespaces: Vec::new(),
            freeze_windows: Vec::new(),
            paused: false,
            leak_max_bumps: 3,
            leak_window: 7 * DAY,
        }
    }
}

/// A value that parses but cannot work: the key (dotted path under
/// `guardrails.`), what is wrong, and what to write instead. The config
/// layer maps it onto its own error with the file name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidGuardrail {
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for InvalidGuardrail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}; fix: {}", self.key, self.problem, self.fix)
    }
}

impl std::error::Error for InvalidGuardrail {}

fn invalid(
    key: impl Into<String>,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> InvalidGuardrail {
    InvalidGuardrail {
        key: key.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

impl Guardrails {
    /// The first problem as one line: `` `key`: problem; fix: … ``.
    pub fn validate(&self) -> Result<(), String> {
        self.check().map_err(|e| e.to_string())
    }

    /// The first problem, with the key and the fix apart.
    pub fn check(&self) -> Result<(), InvalidGuardrail> {
        if self.max_in_flight == 0 {
            return Err(invalid(
                "guardrails.max_in_flight",
                "0 changes in flight would never apply a change",
                "write at least 1 (the default); to stop changes set guardrails.mode: observe or guardrails.paused: true",
            ));
        }
        if self.changes_per_hour == 0 || self.changes_per_hour > 3_600 {
            return Err(invalid(
                "guardrails.changes_per_hour",
                format!(
                    "{} changes per hour is outside 1..3600",
                    self.changes_per_hour
                ),
                "write between 1 and 3600 (the default is 6); to stop changes set guardrails.mode: observe or guardrails.paused: true",
            ));
        }
        let ratio = self.max_decrease_ratio;
        if !(ratio > 0.0 && ratio < 1.0) {
            return Err(invalid(
                "guardrails.max_decrease_ratio",
                format!("the ratio {ratio} is outside (0, 1)"),
                "write a fraction above 0 and below 1, e.g. 0.25 (the default: a decrease removes at most 25 % of the current value per change)",
            ));
        }
        let usd = self.min_monthly_savings_usd;
        if !(usd.is_finite() && usd >= 0.0) {
            return Err(invalid(
                "guardrails.min_monthly_savings_usd",
                format!("{usd} is not an amount of dollars of zero or more"),
                "write 0 (the default: act on any waste) or a positive amount, e.g. 5",
            ));
        }
        for (i, pattern) in self.exclude_namespaces.iter().enumerate() {
            if let Err(e) = namespace_regex(pattern) {
                return Err(invalid(
                    format!("guardrails.exclude_namespaces[{i}]"),
                    format!("{pattern:?} is not a valid regex ({e})"),
                    "write a regex matched against the whole namespace name, e.g. `kube-.*` (regexes, not globs)",
                ));
            }
        }
        for (i, window) in self.freeze_windows.iter().enumerate() {
            window.check(&format!("guardrails.freeze_windows[{i}]"))?;
        }
        if self.leak_max_bumps == 0 {
            return Err(invalid(
                "guardrails.leak_max_bumps",
                "0 bumps would treat every OOM kill as a leak and never raise memory",
                "write at least 1, e.g. 3 (the default)",
            ));
        }
        if self.leak_window < MINUTE {
            return Err(invalid(
                "guardrails.leak_window",
                format!(
                    "the window {} is shorter than 1m, so the leak detector would never fire",
                    duration_text::format(self.leak_window)
                ),
                "write a window such as 7d (the default)",
            ));
        }
        if self.hold_after_revert < HOUR {
            return Err(invalid(
                "guardrails.hold_after_revert",
                format!(
                    "the hold {} is shorter than 1h, so a reverted change could be retried at once",
                    duration_text::format(self.hold_after_revert)
                ),
                "write at least 1h, e.g. 7d (the default)",
            ));
        }
        Ok(())
    }

    /// The first freeze window in effect at `now` (unix seconds), with its index.
    pub fn freeze_window_at(&self, now: i64) -> Option<(usize, &FreezeWindow)> {
        self.freeze_windows
            .iter()
            .enumerate()
            .find(|(_, w)| w.contains(now))
    }
}

/// A weekly window in UTC: on each of `days`, from `start` to `end`. A window
/// whose end is before its start runs past midnight into the next day
/// (`fri 22:00`–`02:00` covers Friday night); `24:00` ends at midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreezeWindow {
    pub days: Vec<Day>,
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl FreezeWindow {
    /// True when `now` (unix seconds) falls inside the window.
    pub fn contains(&self, now: i64) -> bool {
        let today = Day::of(now);
        let minute = now.rem_euclid(86_400) / 60;
        let (start, end) = (
            i64::from(self.start.minutes()),
            i64::from(self.end.minutes()),
        );
        if start < end {
            self.days.contains(&today) && (start..end).contains(&minute)
        } else if start > end {
            (self.days.contains(&today) && minute >= start)
                || (self.days.contains(&today.previous()) && minute < end)
        } else {
            false
        }
    }

    fn check(&self, at: &str) -> Result<(), InvalidGuardrail> {
        if self.days.is_empty() {
            return Err(invalid(
                format!("{at}.days"),
                "the window has no days",
                "list the days it applies to, e.g. `days: [sat, sun]`",
            ));
        }
        if self.start.minutes() >= 24 * 60 {
            return Err(invalid(
                format!("{at}.start"),
                "a window cannot start at 24:00",
                "write a start between 00:00 and 23:59",
            ));
        }
        if self.start == self.end {
            return Err(invalid(
                format!("{at}.end"),
                format!("the window starts and ends at {}", self.start),
                "for a whole day write `start: \"00:00\"` and `end: \"24:00\"`",
            ));
        }
        Ok(())
    }
}

/// `sat,sun 00:00-24:00 UTC`
impl fmt::Display for FreezeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = self.days.iter().map(|d| d.as_str()).collect();
        write!(f, "{} {}-{} UTC", days.join(","), self.start, self.end)
    }
}

/// A day of the week, written `mon` … `sun` (full names are accepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    #[serde(alias = "monday")]
    Mon,
    #[serde(alias = "tuesday")]
    Tue,
    #[serde(alias = "wednesday")]
    Wed,
    #[serde(alias = "thursday")]
    Thu,
    #[serde(alias = "friday")]
    Fri,
    #[serde(alias = "saturday")]
    Sat,
    #[serde(alias = "sunday")]
    Sun,
}

impl Day {
    const ALL: [Day; 7] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
    ];

    /// The UTC day of the week of `now` (unix seconds).
    pub fn of(now: i64) -> Day {
        // 1970-01-01 was a Thursday (index 3 from Monday).
        Self::from_index(now.div_euclid(86_400) + 3)
    }

    pub fn previous(self) -> Day {
        Self::from_index(self as i64 + 6)
    }

    fn from_index(i: i64) -> Day {
        // rem_euclid(7) is in 0..7, so the index is in range.
        Self::ALL[i.rem_euclid(7) as usize]
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
        }
    }
}

/// A time of day in UTC, written `HH:MM`, from `00:00` to `24:00`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(u16);

impl TimeOfDay {
    /// `None` past 24:00.
    pub fn new(hours: u16, minutes: u16) -> Option<Self> {
        let total = hours.checked_mul(60)?.checked_add(minutes)?;
        (minutes < 60 && total <= 24 * 60).then_some(TimeOfDay(total))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a time of day; write it as HH:MM in UTC, e.g. \"18:30\" (\"24:00\" is midnight at the end of the day)"
            )
        };
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(h) || m.len() != 2 || !digits(m) {
            return Err(bad());
        }
        let (h, m) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        TimeOfDay::new(h, m).ok_or_else(bad)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeOfDay::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Guardrails, String> {
        serde_yaml_ng::from_str::<Guardrails>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_the_design() {
        let g = Guardrails::default();
        assert_eq!(g.mode, Mode::Observe);
        assert_eq!((g.max_in_flight, g.changes_per_hour), (1, 6));
        assert_eq!(g.max_decrease_ratio, 0.25);
        assert_eq!((g.cooldown, g.hold_after_revert), (DAY, 7 * DAY));
        assert_eq!((g.leak_max_bumps, g.leak_window), (3, 7 * DAY));
        assert!(!g.allow_single_replica && !g.paused);
        assert_eq!(g.validate(), Ok(()));
        assert_eq!(parse("{}"), Ok(g));
    }

    #[test]
    fn a_full_section_parses_and_round_trips() {
        let yaml = r#"
mode: approve
max_in_flight: 2
changes_per_hour: 4
max_decrease_ratio: 0.1
cooldown: 12h
hold_after_revert: 14d
min_monthly_savings_usd: 5
allow_single_replica: true
exclude_namespaces: [kube-.*, monitoring]
freeze_windows:
  - {days: [fri], start: "18:00", end: "24:00"}
  - days: [saturday, sun]
    start: 00:00
    end: 24:00
paused: true
leak_max_bumps: 2
leak_window: 3d
"#;
        let g = parse(yaml).unwrap();
        assert_eq!(g.mode, Mode::Approve);
        assert_eq!(g.cooldown, 12 * HOUR);
        assert_eq!(g.freeze_windows[1].days, [Day::Sat, Day::Sun]);
        assert_eq!(g.freeze_windows[1].start, TimeOfDay(0));
        assert_eq!(g.freeze_windows[0].end, TimeOfDay(1440));
        assert_eq!(g.validate(), Ok(()));
        let text = serde_yaml_ng::to_string(&g).unwrap();
        assert_eq!(parse(&text), Ok(g));
    }

    #[test]
    fn bad_text_is_refused_with_the_form_to_write() {
        for (yaml, fragment) in [
            ("mode: yolo", "unknown variant `yolo`"),
            ("cooldwn: 1h", "unknown field `cooldwn`"),
            ("cooldown: 24", "has no unit"),
            (
                "freeze_windows: [{days: [mon], start: '25:00', end: '26:00'}]",
                "write it as HH:MM",
            ),
            (
                "freeze_windows: [{days: [mon], start: '9', end: '10:00'}]",
                "write it as HH:MM",
            ),
            (
                "freeze_windows: [{days: [funday], start: '09:00', end: '10:00'}]",
                "unknown variant `funday`",
            ),
        ] {
            let err = parse(yaml).expect_err(yaml);
            assert!(err.contains(fragment), "{yaml}: {err}");
        }
    }

    #[test]
    fn validation_names_the_key_and_the_fix() {
        let window = |start: u16, end: u16, days: Vec<Day>| FreezeWindow {
            days,
            start: TimeOfDay(start),
            end: TimeOfDay(end),
        };
        type Edit = fn(&mut Guardrails);
        let cases: Vec<(Edit, &str, &str)> = vec![
            (
                |g| g.max_in_flight = 0,
                "guardrails.max_in_flight",
                "at least 1",
            ),
            (
                |g| g.changes_per_hour = 0,
                "guardrails.changes_per_hour",
                "between 1 and 3600",
            ),
            (
                |g| g.max_decrease_ratio = 1.0,
                "guardrails.max_decrease_ratio",
                "e.g. 0.25",
            ),
            (
                |g| g.max_decrease_ratio = f64::NAN,
                "guardrails.max_decrease_ratio",
                "e.g. 0.25",
            ),
            (
                |g| g.min_monthly_savings_usd = -1.0,
                "guardrails.min_monthly_savings_usd",
                "positive amount",
            ),
            (
                |g| g.exclude_namespaces = vec!["(".into()],
                "guardrails.exclude_namespaces[0]",
                "regexes, not globs",
            ),
            (
                |g| g.leak_max_bumps = 0,
                "guardrails.leak_max_bumps",
                "at least 1",
            ),
            (
                |g| g.leak_window = Duration::ZERO,
                "guardrails.leak_window",
                "7d",
            ),
            (
                |g| g.hold_after_revert = MINUTE,
                "guardrails.hold_after_revert",
                "at least 1h",
            ),
        ];
        for (edit, key, fix) in cases {
            let mut g = Guardrails::default();
            edit(&mut g);
            let err = g.check().expect_err(key);
            assert_eq!(err.key, key);
            assert!(err.fix.contains(fix), "{key}: {}", err.fix);
            assert!(g.validate().is_err_and(|e| e.contains(key)));
        }
        for (w, key, fix) in [
            (
                window(0, 60, vec![]),
                "guardrails.freeze_windows[0].days",
                "[sat, sun]",
            ),
            (
                window(600, 600, vec![Day::Mon]),
                "guardrails.freeze_windows[0].end",
                "whole day",
            ),
            (
                window(1440, 60, vec![Day::Mon]),
                "guardrails.freeze_windows[0].start",
                "23:59",
            ),
        ] {
            let g = Guardrails {
                freeze_windows: vec![w],
                ..Guardrails::default()
            };
            let err = g.check().expect_err(key);
            assert_eq!(err.key, key);
            assert!(err.fix.contains(fix), "{key}: {}", err.fix);
        }
    }

    #[test]
    fn days_of_the_week_are_utc() {
        // 2024-06-07 was a Friday; 1970-01-01 a Thursday.
        let friday_noon = 1_717_761_600;
        assert_eq!(Day::of(friday_noon), Day::Fri);
        assert_eq!(Day::of(0), Day::Thu);
        assert_eq!(Day::of(-1), Day::Wed);
        assert_eq!(Day::Mon.previous(), Day::Sun);
    }

    #[test]
    fn windows_cover_their_hours_and_cross_midnight() {
        let friday_midnight = 1_717_718_400; // 2024-06-07 00:00 UTC
        let at = |day: i64, h: i64, m: i64| friday_midnight + day * 86_400 + h * 3_600 + m * 60;
        let evening = FreezeWindow {
            days: vec![Day::Fri],
            start: TimeOfDay(22 * 60),
            end: TimeOfDay(2 * 60),
        };
        assert!(!evening.contains(at(0, 21, 59)));
        assert!(evening.contains(at(0, 22, 0)));
        assert!(evening.contains(at(1, 1, 59)), "Saturday early hours");
        assert!(!evening.contains(at(1, 2, 0)));
        assert!(!evening.contains(at(-1, 23, 0)), "Thursday is not frozen");
        let weekend = FreezeWindow {
            days: vec![Day::Sat, Day::Sun],
            start: TimeOfDay(0),
            end: TimeOfDay(1440),
        };
        assert!(!weekend.contains(at(0, 23, 59)));
        assert!(weekend.contains(at(1, 0, 0)));
        assert!(weekend.contains(at(2, 23, 59)));
        assert!(!weekend.contains(at(3, 0, 0)));
        assert_eq!(weekend.to_string(), "sat,sun 00:00-24:00 UTC");
    }

    #[test]
    fn times_of_day_parse_and_print() {
        assert_eq!(TimeOfDay::parse("09:05"), Ok(TimeOfDay(545)));
        assert_eq!(TimeOfDay::parse("9:05"), Ok(TimeOfDay(545)));
        assert_eq!(TimeOfDay::parse("24:00"), Ok(TimeOfDay(1440)));
        for bad in ["24:01", "12:60", "12", "12:5", "-1:00", "ab:cd", ""] {
            assert!(TimeOfDay::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(TimeOfDay(545).to_string(), "09:05");
    }
}
