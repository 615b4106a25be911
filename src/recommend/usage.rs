//! Per-container estimator state, fed one sample at a time in any order of
//! series (pods) and time chunks, so usage never has to sit in memory.
//!
//! One [`UsageEstimator`] per workload container: every pod of the workload
//! adds its samples to the same estimator, as the VPA recommender does, so
//! pod churn and restarts do not split the history.
//!
//! The estimator also moves with time: [`UsageEstimator::advance`] slides it
//! to a later window (the daemon folds in only the hour since its last
//! refresh instead of re-reading the whole history). Decayed state is
//! rescaled to the new evaluation instant, as VPA's recommender moves its
//! reference time; maxima, counts, coverage and counters live in a ring of
//! UTC days and expire a whole day at a time.

use serde::{Deserialize, Serialize};

use super::histogram::{CPU_LAYOUT, DecayingHistogram, MEMORY_LAYOUT, decay_weight};

const DAY_S: i64 = 86_400;
const HOUR_S: i64 = 3_600;

/// Fixed parameters shared by every estimator of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    /// First instant of the history (unix seconds).
    pub start: i64,
    /// The evaluation instant: samples are weighted by their age before it.
    pub end: i64,
    pub half_life_s: f64,
    /// Samples within this many seconds of a container start are startup.
    pub startup_s: i64,
}

impl Window {
    #[inline]
    fn weight(&self, t: i64) -> f64 {
        decay_weight((self.end - t).max(0) as f64, self.half_life_s)
    }

    /// Days of the ring: every UTC day a sample of the window can fall in.
    fn ring_days(&self) -> usize {
        ((self.end - self.start).max(0) as usize).div_ceil(DAY_S as usize) + 2
    }
}

/// A sample at `t` covers the interval before `t`: it belongs to the hour
/// (and day) that interval ends in.
#[inline]
fn hour_of(t: i64) -> i64 {
    (t - 1).div_euclid(HOUR_S)
}

#[inline]
fn day_of(t: i64) -> i64 {
    (t - 1).div_euclid(DAY_S)
}

/// What one UTC day contributed, so it can expire as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Day {
    /// Days since the Unix epoch; [`Day::UNUSED`] for an empty slot.
    day: i64,
    /// One bit per hour of the day with at least one sample.
    hours_seen: u32,
    cpu_samples: u32,
    memory_samples: u32,
    restarts: u32,
    oom_kills: u32,
    throttled_periods: f32,
    periods: f32,
    /// Highest memory limit a container had when it was OOM-killed.
    oom_limit_bytes: f32,
    cpu_max_millicores: f64,
    memory_max_bytes: f64,
    startup_cpu_max_millicores: f64,
    startup_memory_max_bytes: f64,
}

impl Day {
    const UNUSED: i64 = i64::MIN;

    fn empty(day: i64) -> Self {
        Day {
            day,
            hours_seen: 0,
            cpu_samples: 0,
            memory_samples: 0,
            restarts: 0,
            oom_kills: 0,
            throttled_periods: 0.0,
            periods: 0.0,
            oom_limit_bytes: 0.0,
            cpu_max_millicores: 0.0,
            memory_max_bytes: 0.0,
            startup_cpu_max_millicores: 0.0,
            startup_memory_max_bytes: 0.0,
        }
    }

    fn used(&self) -> bool {
        self.day != Self::UNUSED
    }

    fn merge(&mut self, o: &Day) {
        self.hours_seen |= o.hours_seen;
        self.cpu_samples += o.cpu_samples;
        self.memory_samples += o.memory_samples;
        self.restarts += o.restarts;
        self.oom_kills += o.oom_kills;
        self.throttled_periods += o.throttled_periods;
        self.periods += o.periods;
        self.oom_limit_bytes = self.oom_limit_bytes.max(o.oom_limit_bytes);
        self.cpu_max_millicores = self.cpu_max_millicores.max(o.cpu_max_millicores);
        self.memory_max_bytes = self.memory_max_bytes.max(o.memory_max_bytes);
        self.startup_cpu_max_millicores = self
            .startup_cpu_max_millicores
            .max(o.startup_cpu_max_millicores);
        self.startup_memory_max_bytes = self
            .startup_memory_max_bytes
            .max(o.startup_memory_max_bytes);
    }
}

/// Everything tailor keeps about one container's usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageEstimator {
    cpu: DecayingHistogram,
    memory_peaks: DecayingHistogram,
    /// Decayed CPU sum and weight per UTC hour of day, for the busiest hour.
    hour_sum: [f32; 24],
    hour_weight: [f32; 24],
    first_sample: Option<i64>,
    /// The window's days, slot `day % len`.
    days: Vec<Day>,
    /// The latest OOM kill, when the source knows when it happened.
    #[serde(default)]
    last_oom_at: Option<i64>,
}

/// Why a sample was not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejected {
    NotFinite,
    Negative,
    OutsideWindow,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::NotFinite => "NaN or infinite sample dropped",
            Rejected::Negative => "negative sample dropped",
            Rejected::OutsideWindow => "sample outside the history window dropped",
        })
    }
}

impl UsageEstimator {
    pub fn new(window: &Window) -> Self {
        UsageEstimator {
            cpu: DecayingHistogram::new(&CPU_LAYOUT),
            memory_peaks: DecayingHistogram::new(&MEMORY_LAYOUT),
            hour_sum: [0.0; 24],
            hour_weight: [0.0; 24],
            first_sample: None,
            days: vec![Day::empty(Day::UNUSED); window.ring_days()],
            last_oom_at: None,
        }
    }

    fn check(window: &Window, t: i64, value: f64) -> Result<(), Rejected> {
        if !value.is_finite() {
            Err(Rejected::NotFinite)
        } else if value < 0.0 {
            Err(Rejected::Negative)
        } else if t < window.start || t > window.end {
            Err(Rejected::OutsideWindow)
        } else {
            Ok(())
        }
    }

    /// The ring slot of the day `t` falls in, emptied first when it still
    /// holds an older day. `None` for a day older than the slot's (a sample
    /// from before the ring's reach).
    fn day_mut(&mut self, t: i64) -> Option<&mut Day> {
        let day = day_of(t);
        let len = self.days.len() as i64;
        let slot = &mut self.days[day.rem_euclid(len) as usize];
        if slot.day < day {
            *slot = Day::empty(day);
        }
        (slot.day == day).then_some(slot)
    }

    fn used_days(&self) -> impl Iterator<Item = &Day> {
        self.days.iter().filter(|d| d.used())
    }

    /// The whole window's day totals.
    fn totals(&self) -> Day {
        let mut all = Day::empty(0);
        for d in self.used_days() {
            all.merge(d);
        }
        all
    }

    /// Counts the sample in its day; true when it is startup.
    fn mark_seen(
        &mut self,
        window: &Window,
        t: i64,
        since_start: Option<i64>,
    ) -> (bool, Option<&mut Day>) {
        self.first_sample = Some(self.first_sample.map_or(t, |f| f.min(t)));
        let startup = since_start.is_some_and(|age| age < window.startup_s);
        let mut day = self.day_mut(t);
        if let Some(d) = day.as_deref_mut() {
            d.hours_seen |= 1 << hour_of(t).rem_euclid(24);
        }
        (startup, day)
    }

    /// Adds a CPU sample: average cores used over the step ending at `t`.
    /// `since_start` is the container's age at `t`, when known.
    pub fn add_cpu(
        &mut self,
        window: &Window,
        t: i64,
        cores: f64,
        since_start: Option<i64>,
    ) -> Result<(), Rejected> {
        Self::check(window, t, cores)?;
        let millicores = cores * 1000.0;
        let (startup, day) = self.mark_seen(window, t, since_start);
        if let Some(d) = day {
            d.cpu_samples += 1;
            d.cpu_max_millicores = d.cpu_max_millicores.max(millicores);
            if startup {
                d.startup_cpu_max_millicores = d.startup_cpu_max_millicores.max(millicores);
            }
        }
        if startup {
            return Ok(());
        }
        let weight = window.weight(t);
        self.cpu.add(&CPU_LAYOUT, millicores, weight);
        let hour = (t.rem_euclid(DAY_S) / HOUR_S) as usize;
        self.hour_sum[hour] += (millicores * weight) as f32;
        self.hour_weight[hour] += weight as f32;
        Ok(())
    }

    /// Adds a memory sample: the peak working set over the interval ending
    /// at `t`. `since_start` as for [`Self::add_cpu`].
    pub fn add_memory_peak(
        &mut self,
        window: &Window,
        t: i64,
        bytes: f64,
        since_start: Option<i64>,
    ) -> Result<(), Rejected> {
        Self::check(window, t, bytes)?;
        let (startup, day) = self.mark_seen(window, t, since_start);
        if let Some(d) = day {
            d.memory_samples += 1;
            d.memory_max_bytes = d.memory_max_bytes.max(bytes);
            if startup {
                d.startup_memory_max_bytes = d.startup_memory_max_bytes.max(bytes);
            }
        }
        if startup {
            return Ok(());
        }
        self.memory_peaks
            .add(&MEMORY_LAYOUT, bytes, window.weight(t));
        Ok(())
    }

    /// Adds CFS period counts: their increases over an interval ending at `t`.
    pub fn add_throttling(&mut self, t: i64, throttled_periods: f64, periods: f64) {
        if throttled_periods.is_finite()
            && periods.is_finite()
            && periods > 0.0
            && let Some(d) = self.day_mut(t)
        {
            d.throttled_periods += throttled_periods.clamp(0.0, periods) as f32;
            d.periods += periods as f32;
        }
    }

    /// Records restarts over an interval ending at `t`, and OOM kills with
    /// the memory limit at the time and, when known, the instant of the
    /// latest kill.
    pub fn add_restarts(
        &mut self,
        t: i64,
        restarts: u32,
        oom_kills: u32,
        memory_limit_bytes: Option<f64>,
        at: Option<i64>,
    ) {
        if oom_kills > 0
            && let Some(at) = at
        {
            self.last_oom_at = Some(self.last_oom_at.map_or(at, |l| l.max(at)));
        }
        let Some(d) = self.day_mut(t) else { return };
        d.restarts += restarts;
        d.oom_kills += oom_kills;
        if oom_kills > 0
            && let Some(limit) = memory_limit_bytes.filter(|l| l.is_finite() && *l > 0.0)
        {
            d.oom_limit_bytes = d.oom_limit_bytes.max(limit as f32);
        }
    }

    /// Slides the estimator from window `from` to the later window `to`:
    /// decayed state is rescaled to `to.end` (as if every sample had been
    /// weighted against it), and the days that end by `to.start` expire.
    /// Feeding the samples of `(from.end, to.end]` afterwards gives what one
    /// pass over `to` would, but for two things: expiry goes by whole UTC
    /// day (the day `to.start` falls in is kept whole), and samples older
    /// than the window still weigh in the decayed histograms, at most
    /// 2^-(window / half-life) of a new sample each (as in VPA's).
    pub fn advance(&mut self, from: &Window, to: &Window) {
        debug_assert_eq!(from.half_life_s, to.half_life_s);
        if to.ring_days() != self.days.len() {
            // A different window length: the ring cannot carry over.
            *self = UsageEstimator::new(to);
            return;
        }
        let factor = decay_weight((to.end - from.end).max(0) as f64, to.half_life_s);
        if factor != 1.0 {
            self.cpu.scale(factor);
            self.memory_peaks.scale(factor);
            for h in 0..24 {
                self.hour_sum[h] = (self.hour_sum[h] as f64 * factor) as f32;
                self.hour_weight[h] = (self.hour_weight[h] as f64 * factor) as f32;
            }
        }
        let first_day = day_of(to.start + 1);
        for d in self
            .days
            .iter_mut()
            .filter(|d| d.used() && d.day < first_day)
        {
            *d = Day::empty(Day::UNUSED);
        }
        if self.used_days().next().is_none() {
            // Nothing left in the window: start afresh.
            *self = UsageEstimator::new(to);
            return;
        }
        if self.last_oom_at.is_some_and(|t| t < to.start) {
            self.last_oom_at = None;
        }
    }

    /// Folds another estimator of the same window into this one.
    pub fn merge(&mut self, other: &UsageEstimator) {
        self.cpu.merge(&other.cpu);
        self.memory_peaks.merge(&other.memory_peaks);
        for h in 0..24 {
            self.hour_sum[h] += other.hour_sum[h];
            self.hour_weight[h] += other.hour_weight[h];
        }
        self.first_sample = match (self.first_sample, other.first_sample) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for theirs in other.days.iter().filter(|d| d.used()) {
            if let Some(mine) = self.day_mut(theirs.day * DAY_S + 1) {
                mine.merge(theirs);
            }
        }
        self.last_oom_at = self.last_oom_at.max(other.last_oom_at);
    }

    pub fn cpu_percentile_millicores(&self, p: f64) -> Option<f64> {
        self.cpu.percentile(&CPU_LAYOUT, p)
    }

    pub fn memory_peak_percentile_bytes(&self, p: f64) -> Option<f64> {
        self.memory_peaks.percentile(&MEMORY_LAYOUT, p)
    }

    pub fn cpu_max_millicores(&self) -> Option<f64> {
        let t = self.totals();
        (t.cpu_samples > 0).then_some(t.cpu_max_millicores)
    }

    pub fn memory_max_bytes(&self) -> Option<f64> {
        let t = self.totals();
        (t.memory_samples > 0).then_some(t.memory_max_bytes)
    }

    pub fn startup_cpu_max_millicores(&self) -> Option<f64> {
        Some(self.totals().startup_cpu_max_millicores).filter(|m| *m > 0.0)
    }

    pub fn startup_memory_max_bytes(&self) -> Option<f64> {
        Some(self.totals().startup_memory_max_bytes).filter(|m| *m > 0.0)
    }

    /// Decayed mean CPU of the busiest UTC hour of the day, in millicores.
    pub fn busiest_hour_millicores(&self) -> Option<f64> {
        (0..24)
            .filter(|&h| self.hour_weight[h] > 0.0)
            .map(|h| self.hour_sum[h] as f64 / self.hour_weight[h] as f64)
            .max_by(f64::total_cmp)
    }

    pub fn cpu_samples(&self) -> u64 {
        self.used_days().map(|d| u64::from(d.cpu_samples)).sum()
    }

    pub fn memory_samples(&self) -> u64 {
        self.used_days().map(|d| u64::from(d.memory_samples)).sum()
    }

    /// The first sample still in the window (or the window's start).
    fn first_in(&self, window: &Window) -> Option<i64> {
        self.first_sample.map(|f| f.max(window.start))
    }

    /// Seconds from the first sample to the end of the window.
    pub fn history_seconds(&self, window: &Window) -> i64 {
        self.first_in(window).map_or(0, |f| (window.end - f).max(0))
    }

    /// Share of the hours since the first sample that have samples.
    pub fn coverage(&self, window: &Window) -> f64 {
        let Some(first) = self.first_in(window) else {
            return 0.0;
        };
        let (first_hour, last_hour) = (hour_of(first), hour_of(window.end));
        if last_hour < first_hour {
            return 1.0;
        }
        let seen: u32 = self
            .used_days()
            .map(|d| {
                let day_first = d.day * 24;
                let lo = (first_hour - day_first).clamp(0, 24);
                let hi = (last_hour + 1 - day_first).clamp(0, 24);
                let mask = if hi <= lo {
                    0
                } else {
                    ((1u64 << hi) - (1u64 << lo)) as u32
                };
                (d.hours_seen & mask).count_ones()
            })
            .sum();
        f64::from(seen) / (last_hour - first_hour + 1) as f64
    }

    pub fn throttled_ratio(&self) -> Option<f64> {
        let t = self.totals();
        (t.periods > 0.0).then(|| f64::from(t.throttled_periods) / f64::from(t.periods))
    }

    pub fn oom_kills(&self) -> u32 {
        self.used_days().map(|d| d.oom_kills).sum()
    }

    pub fn restarts(&self) -> u32 {
        self.used_days().map(|d| d.restarts).sum()
    }

    pub fn oom_limit_bytes(&self) -> Option<f64> {
        Some(f64::from(self.totals().oom_limit_bytes)).filter(|l| *l > 0.0)
    }

    pub fn last_oom_at(&self) -> Option<i64> {
        self.last_oom_at
    }

    /// Heap plus inline bytes of this estimator (the benchmark's 4 KiB budget).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.cpu.heap_bytes()
            + self.memory_peaks.heap_bytes()
            + std::mem::size_of_val(&*self.days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn window() -> Window {
        Window {
            start: 0,
            end: 14 * DAY,
            half_life_s: DAY as f64,
            startup_s: 300,
        }
    }

    #[test]
    fn rejects_bad_samples_and_counts_good_ones() {
        let w = window();
        let mut e = UsageEstimator::new(&w);
        assert_eq!(e.add_cpu(&w, 10, f64::NAN, None), Err(Rejected::NotFinite));
        assert_eq!(e.add_cpu(&w, 10, -1.0, None), Err(Rejected::Negative));
        assert_eq!(
            e.add_cpu(&w, 15 * DAY, 1.0, None),
            Err(Rejected::OutsideWindow)
        );
        assert_eq!(e.add_cpu(&w, 10, 0.5, None), Ok(()));
        assert_eq!(e.cpu_samples(), 1);
        assert_eq!(e.cpu_max_millicores(), Some(500.0));
    }

    #[test]
    fn startup_samples_count_for_maxima_only() {
        let w = window();
        let mut e = UsageEstimator::new(&w);
        for t in (0..14 * DAY).step_by(300) {
            e.add_cpu(&w, t, 0.1, Some(3600)).expect("valid");
        }
        e.add_cpu(&w, 7 * DAY, 4.0, Some(60)).expect("valid");
        assert!(e.cpu_percentile_millicores(0.99).expect("samples") < 110.0);
        assert_eq!(e.startup_cpu_max_millicores(), Some(4000.0));
        assert_eq!(e.cpu_max_millicores(), Some(4000.0));
    }

    #[test]
    fn busiest_hour_finds_the_daily_peak() {
        let w = window();
        let mut e = UsageEstimator::new(&w);
        for t in (0..14 * DAY).step_by(300) {
            let hour = (t % DAY) / 3600;
            let cores = if hour == 13 { 2.0 } else { 0.2 };
            e.add_cpu(&w, t, cores, None).expect("valid");
        }
        let busiest = e.busiest_hour_millicores().expect("samples");
        assert!((busiest - 2000.0).abs() < 1.0, "{busiest}");
        // p90 alone would starve the one busy hour a day (1/24 of samples).
        assert!(e.cpu_percentile_millicores(0.9).expect("samples") < 300.0);
    }

    #[test]
    fn coverage_counts_hours_with_samples() {
        let w = window();
        let mut e = UsageEstimator::new(&w);
        // Samples for the first 7 days only, then a gap to the end.
        for t in (0..7 * DAY).step_by(300) {
            e.add_memory_peak(&w, t, 1e8, None).expect("valid");
        }
        assert!((e.coverage(&w) - 0.5).abs() < 0.01, "{}", e.coverage(&w));
        assert_eq!(e.history_seconds(&w), 14 * DAY);
        // Hours are UTC hours of the interval each sample ends.
        let mut e = UsageEstimator::new(&w);
        e.add_cpu(&w, 3600, 0.1, None).expect("valid");
        e.add_cpu(&w, 3601, 0.1, None).expect("valid");
        let short = Window { end: 7200, ..w };
        assert_eq!(e.coverage(&short), 1.0);
    }

    #[test]
    fn merge_equals_feeding_one_estimator() {
        let w = window();
        let mut a = UsageEstimator::new(&w);
        let mut b = UsageEstimator::new(&w);
        let mut all = UsageEstimator::new(&w);
        for (i, t) in (0..14 * DAY).step_by(600).enumerate() {
            let v = (i % 17) as f64 / 10.0;
            let target = if i % 2 == 0 { &mut a } else { &mut b };
            target.add_cpu(&w, t, v, None).expect("valid");
            all.add_cpu(&w, t, v, None).expect("valid");
        }
        a.merge(&b);
        for p in [0.5, 0.9, 0.99] {
            assert_eq!(
                a.cpu_percentile_millicores(p),
                all.cpu_percentile_millicores(p)
            );
        }
        assert_eq!(a.cpu_samples(), all.cpu_samples());
    }

    /// A day of 5-minute CPU and hourly memory samples ending at `end`.
    fn feed(e: &mut UsageEstimator, w: &Window, from: i64, to: i64) {
        for t in (from + 300..=to).step_by(300) {
            let cores = 0.1
                + ((t / 300) % 37) as f64 / 100.0
                + if (t % DAY) / 3600 == 9 { 0.5 } else { 0.0 };
            e.add_cpu(w, t, cores, None).expect("valid");
            if t % 3600 == 0 {
                let bytes =
                    2e8 + ((t / 3600) % 29) as f64 * 1e6 + if t < 3 * DAY { 3e8 } else { 0.0 };
                e.add_memory_peak(w, t, bytes, None).expect("valid");
            }
        }
    }

    #[test]
    fn advancing_hour_by_hour_matches_one_pass_over_the_window() {
        let at = |end: i64| Window {
            start: end - 14 * DAY,
            end,
            half_life_s: DAY as f64,
            startup_s: 300,
        };
        // One pass over days 6..20.
        let last = at(20 * DAY);
        let mut one_pass = UsageEstimator::new(&last);
        feed(&mut one_pass, &last, last.start, last.end);
        one_pass.add_restarts(19 * DAY, 2, 1, Some(5e8), Some(19 * DAY - 60));
        one_pass.add_throttling(19 * DAY, 10.0, 100.0);

        // Days 0..14 in one pass, then hour by hour to day 20.
        let mut w = at(14 * DAY);
        let mut rolling = UsageEstimator::new(&w);
        feed(&mut rolling, &w, w.start, w.end);
        rolling.add_restarts(2 * DAY, 7, 7, Some(9e8), Some(2 * DAY));
        rolling.add_throttling(2 * DAY, 90.0, 100.0);
        while w.end < last.end {
            let next = at(w.end + 3600);
            rolling.advance(&w, &next);
            feed(&mut rolling, &next, w.end, next.end);
            if next.end == 19 * DAY {
                rolling.add_restarts(19 * DAY, 2, 1, Some(5e8), Some(19 * DAY - 60));
                rolling.add_throttling(19 * DAY, 10.0, 100.0);
            }
            w = next;
        }
        for p in [0.5, 0.9, 0.98] {
            let (a, b) = (
                rolling.cpu_percentile_millicores(p).expect("samples"),
                one_pass.cpu_percentile_millicores(p).expect("samples"),
            );
            assert!((a / b - 1.0).abs() <= 0.051, "cpu p{p}: {a} vs {b}");
            let (a, b) = (
                rolling.memory_peak_percentile_bytes(p).expect("samples"),
                one_pass.memory_peak_percentile_bytes(p).expect("samples"),
            );
            assert!((a / b - 1.0).abs() <= 0.051, "memory p{p}: {a} vs {b}");
        }
        let (a, b) = (
            rolling.busiest_hour_millicores().expect("samples"),
            one_pass.busiest_hour_millicores().expect("samples"),
        );
        // Days 0..6 still weigh in, at most 2^-6 of a new sample each.
        assert!((a / b - 1.0).abs() < 0.02, "busiest hour {a} vs {b}");
        // The early 500 MB peaks, the day-2 kills and throttling expired.
        assert_eq!(rolling.memory_max_bytes(), one_pass.memory_max_bytes());
        assert!(rolling.memory_max_bytes().expect("samples") < 3e8);
        assert_eq!(rolling.oom_kills(), 1);
        assert_eq!(rolling.restarts(), 2);
        assert_eq!(rolling.oom_limit_bytes(), Some(5e8));
        assert_eq!(rolling.throttled_ratio(), Some(0.1));
        assert_eq!(rolling.last_oom_at(), Some(19 * DAY - 60));
        assert_eq!(rolling.history_seconds(&last), 14 * DAY);
        assert!((rolling.coverage(&last) - 1.0).abs() < 0.01);
        // The ring keeps the day the window starts in whole: at most one
        // day of samples more than the exact window.
        assert_eq!(one_pass.cpu_samples(), 14 * 288);
        assert_eq!(rolling.cpu_samples(), 14 * 288);
    }

    #[test]
    fn a_container_silent_for_a_whole_window_starts_afresh() {
        let w = window();
        let mut e = UsageEstimator::new(&w);
        feed(&mut e, &w, 0, DAY);
        let later = Window {
            start: w.start + 15 * DAY,
            end: w.end + 15 * DAY,
            ..w
        };
        e.advance(&w, &later);
        assert_eq!(e, UsageEstimator::new(&later));
        assert_eq!(e.cpu_percentile_millicores(0.9), None);
    }

    #[test]
    fn state_fits_the_budget() {
        let e = UsageEstimator::new(&window());
        assert!(e.state_bytes() <= 4096, "{} bytes", e.state_bytes());
    }
}
