//! Per-container estimator state, fed one sample at a time in any order of
//! series (pods) and time chunks, so usage never has to sit in memory.
//!
//! One [`UsageEstimator`] per workload container: every pod of the workload
//! adds its samples to the same estimator, as the VPA recommender does, so
//! pod churn and restarts do not split the history.

use serde::{Deserialize, Serialize};

use super::histogram::{CPU_LAYOUT, DecayingHistogram, MEMORY_LAYOUT, decay_weight};

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

    fn hours(&self) -> usize {
        ((self.end - self.start).max(0) as usize).div_ceil(3600)
    }
}

/// Everything tailor keeps about one container's usage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageEstimator {
    cpu: DecayingHistogram,
    memory_peaks: DecayingHistogram,
    cpu_max_millicores: f64,
    memory_max_bytes: f64,
    startup_cpu_max_millicores: f64,
    startup_memory_max_bytes: f64,
    /// Decayed CPU sum and weight per UTC hour of day, for the busiest hour.
    hour_sum: [f32; 24],
    hour_weight: [f32; 24],
    cpu_samples: u64,
    memory_samples: u64,
    first_sample: Option<i64>,
    /// One bit per hour of the window that has at least one sample.
    hours_seen: Vec<u64>,
    throttled_periods: f64,
    periods: f64,
    oom_kills: u32,
    restarts: u32,
    /// Highest memory limit a container had when it was OOM-killed.
    oom_limit_bytes: Option<f64>,
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
            cpu_max_millicores: 0.0,
            memory_max_bytes: 0.0,
            startup_cpu_max_millicores: 0.0,
            startup_memory_max_bytes: 0.0,
            hour_sum: [0.0; 24],
            hour_weight: [0.0; 24],
            cpu_samples: 0,
            memory_samples: 0,
            first_sample: None,
            hours_seen: vec![0; window.hours().div_ceil(64)],
            throttled_periods: 0.0,
            periods: 0.0,
            oom_kills: 0,
            restarts: 0,
            oom_limit_bytes: None,
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

    fn mark_seen(&mut self, window: &Window, t: i64) {
        self.first_sample = Some(self.first_sample.map_or(t, |f| f.min(t)));
        let hour = ((t - window.start) / 3600) as usize;
        if let Some(word) = self.hours_seen.get_mut(hour / 64) {
            *word |= 1 << (hour % 64);
        }
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
        self.mark_seen(window, t);
        self.cpu_samples += 1;
        self.cpu_max_millicores = self.cpu_max_millicores.max(millicores);
        if since_start.is_some_and(|age| age < window.startup_s) {
            self.startup_cpu_max_millicores = self.startup_cpu_max_millicores.max(millicores);
            return Ok(());
        }
        let weight = window.weight(t);
        self.cpu.add(&CPU_LAYOUT, millicores, weight);
        let hour = (t.rem_euclid(86_400) / 3600) as usize;
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
        self.mark_seen(window, t);
        self.memory_samples += 1;
        self.memory_max_bytes = self.memory_max_bytes.max(bytes);
        if since_start.is_some_and(|age| age < window.startup_s) {
            self.startup_memory_max_bytes = self.startup_memory_max_bytes.max(bytes);
            return Ok(());
        }
        self.memory_peaks
            .add(&MEMORY_LAYOUT, bytes, window.weight(t));
        Ok(())
    }

    /// Adds CFS period counts (increases over some interval).
    pub fn add_throttling(&mut self, throttled_periods: f64, periods: f64) {
        if throttled_periods.is_finite() && periods.is_finite() && periods > 0.0 {
            self.throttled_periods += throttled_periods.clamp(0.0, periods);
            self.periods += periods;
        }
    }

    /// Records restarts, and OOM kills with the memory limit at the time and,
    /// when known, the instant of the latest kill.
    pub fn add_restarts(
        &mut self,
        restarts: u32,
        oom_kills: u32,
        memory_limit_bytes: Option<f64>,
        at: Option<i64>,
    ) {
        self.restarts += restarts;
        self.oom_kills += oom_kills;
        if oom_kills > 0
            && let Some(at) = at
        {
            self.last_oom_at = Some(self.last_oom_at.map_or(at, |l| l.max(at)));
        }
        if oom_kills > 0
            && let Some(limit) = memory_limit_bytes.filter(|l| l.is_finite() && *l > 0.0)
        {
            self.oom_limit_bytes = Some(self.oom_limit_bytes.map_or(limit, |l| l.max(limit)));
        }
    }

    /// Folds another estimator of the same window into this one.
    pub fn merge(&mut self, other: &UsageEstimator) {
        self.cpu.merge(&other.cpu);
        self.memory_peaks.merge(&other.memory_peaks);
        self.cpu_max_millicores = self.cpu_max_millicores.max(other.cpu_max_millicores);
        self.memory_max_bytes = self.memory_max_bytes.max(other.memory_max_bytes);
        self.startup_cpu_max_millicores = self
            .startup_cpu_max_millicores
            .max(other.startup_cpu_max_millicores);
        self.startup_memory_max_bytes = self
            .startup_memory_max_bytes
            .max(other.startup_memory_max_bytes);
        for h in 0..24 {
            self.hour_sum[h] += other.hour_sum[h];
            self.hour_weight[h] += other.hour_weight[h];
        }
        self.cpu_samples += other.cpu_samples;
        self.memory_samples += other.memory_samples;
        self.first_sample = match (self.first_sample, other.first_sample) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for (mine, theirs) in self.hours_seen.iter_mut().zip(&other.hours_seen) {
            *mine |= theirs;
        }
        self.throttled_periods += other.throttled_periods;
        self.periods += other.periods;
        self.oom_kills += other.oom_kills;
        self.restarts += other.restarts;
        self.oom_limit_bytes = match (self.oom_limit_bytes, other.oom_limit_bytes) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.last_oom_at = self.last_oom_at.max(other.last_oom_at);
    }

    pub fn cpu_percentile_millicores(&self, p: f64) -> Option<f64> {
        self.cpu.percentile(&CPU_LAYOUT, p)
    }

    pub fn memory_peak_percentile_bytes(&self, p: f64) -> Option<f64> {
        self.memory_peaks.percentile(&MEMORY_LAYOUT, p)
    }

    pub fn cpu_max_millicores(&self) -> Option<f64> {
        (self.cpu_samples > 0).then_some(self.cpu_max_millicores)
    }

    pub fn memory_max_bytes(&self) -> Option<f64> {
        (self.memory_samples > 0).then_some(self.memory_max_bytes)
    }

    pub fn startup_cpu_max_millicores(&self) -> Option<f64> {
        (self.startup_cpu_max_millicores > 0.0).then_some(self.startup_cpu_max_millicores)
    }

    pub fn startup_memory_max_bytes(&self) -> Option<f64> {
        (self.startup_memory_max_bytes > 0.0).then_some(self.startup_memory_max_bytes)
    }

    /// Decayed mean CPU of the busiest UTC hour of the day, in millicores.
    pub fn busiest_hour_millicores(&self) -> Option<f64> {
        (0..24)
            .filter(|&h| self.hour_weight[h] > 0.0)
            .map(|h| self.hour_sum[h] as f64 / self.hour_weight[h] as f64)
            .max_by(f64::total_cmp)
    }

    pub fn cpu_samples(&self) -> u64 {
        self.cpu_samples
    }

    pub fn memory_samples(&self) -> u64 {
        self.memory_samples
    }

    /// Seconds from the first sample to the end of the window.
    pub fn history_seconds(&self, window: &Window) -> i64 {
        self.first_sample.map_or(0, |f| (window.end - f).max(0))
    }

    /// Share of the hours since the first sample that have samples.
    pub fn coverage(&self, window: &Window) -> f64 {
        let Some(first) = self.first_sample else {
            return 0.0;
        };
        let first_hour = ((first - window.start) / 3600) as usize;
        let total_hours = window.hours();
        if total_hours <= first_hour {
            return 1.0;
        }
        let seen = (first_hour..total_hours)
            .filter(|h| {
                self.hours_seen
                    .get(h / 64)
                    .is_some_and(|w| w & (1 << (h % 64)) != 0)
            })
            .count();
        seen as f64 / (total_hours - first_hour) as f64
    }

    pub fn throttled_ratio(&self) -> Option<f64> {
        (self.periods > 0.0).then(|| self.throttled_periods / self.periods)
    }

    pub fn oom_kills(&self) -> u32 {
        self.oom_kills
    }

    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    pub fn oom_limit_bytes(&self) -> Option<f64> {
        self.oom_limit_bytes
    }

    pub fn last_oom_at(&self) -> Option<i64> {
        self.last_oom_at
    }

    /// Heap plus inline bytes of this estimator (the benchmark's 4 KiB budget).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.cpu.heap_bytes()
            + self.memory_peaks.heap_bytes()
            + self.hours_seen.len() * 8
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

    #[test]
    fn state_fits_the_budget() {
        let e = UsageEstimator::new(&window());
        assert!(e.state_bytes() <= 4096, "{} bytes", e.state_bytes());
    }
}
