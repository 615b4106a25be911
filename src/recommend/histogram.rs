//! A decaying histogram with exponentially growing buckets: the estimator
//! every usage sample is folded into.
//!
//! Layout (after the VPA recommender's, kubernetes/autoscaler
//! `vertical-pod-autoscaler/pkg/recommender/util/histogram_options.go`):
//! bucket 0 holds `[0, first)`, bucket `i ≥ 1` holds
//! `[first·ratio^(i-1), first·ratio^i)`, and the last bucket also takes
//! everything above. With `ratio = 1.05` a percentile read from the upper
//! edge of its bucket overstates the true value by at most 5 %, which errs
//! on the side of more resources.
//!
//! Weights are `f32` to keep a container's state small (see
//! `BENCHMARKS.md`); the total is kept in `f64`. Callers pass the weight of
//! each sample, usually `2^((t − reference) / half_life)`.

use serde::{Deserialize, Serialize};

/// Where the bucket edges are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketLayout {
    /// Upper edge of bucket 0, in the unit of the samples.
    pub first: f64,
    pub ratio: f64,
    pub buckets: usize,
}

/// CPU in millicores: 1m to about 1,000 cores.
pub const CPU_LAYOUT: BucketLayout = BucketLayout {
    first: 1.0,
    ratio: 1.05,
    buckets: 285,
};

/// Memory in bytes: 1 MiB to about 1 TiB.
pub const MEMORY_LAYOUT: BucketLayout = BucketLayout {
    first: 1_048_576.0,
    ratio: 1.05,
    buckets: 286,
};

impl BucketLayout {
    /// The bucket a value falls into.
    pub fn index(&self, value: f64) -> usize {
        if value.is_nan() || value < self.first {
            return 0;
        }
        // ln(value / first) / ln(ratio), + 1 because bucket 0 is [0, first).
        let i = ((value / self.first).ln() / self.ratio.ln()).floor() as usize + 1;
        i.min(self.buckets - 1)
    }

    /// Upper edge of bucket `i` (the last bucket's edge is its lower edge
    /// × ratio, an underestimate only for values beyond the layout).
    pub fn upper_edge(&self, i: usize) -> f64 {
        self.first * self.ratio.powi(i as i32)
    }
}

/// A histogram of weighted samples. Only the span of buckets from the
/// lowest to the highest one ever filled is stored: a container's usage
/// covers a few dozen of the layout's ~285 buckets, so this keeps its
/// state a fraction of the full layout's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecayingHistogram {
    /// Bucket index of `weights[0]`.
    first: u16,
    weights: Vec<f32>,
    total: f64,
}

impl DecayingHistogram {
    pub fn new(_layout: &BucketLayout) -> Self {
        DecayingHistogram {
            first: 0,
            weights: Vec::new(),
            total: 0.0,
        }
    }

    /// The stored slot of bucket `i`, widening the stored span to reach it.
    #[inline]
    fn slot(&mut self, i: usize) -> &mut f32 {
        let first = self.first as usize;
        if self.weights.is_empty() {
            self.first = i as u16;
            self.weights = vec![0.0];
        } else if i < first {
            let grow = first - i;
            self.weights.reserve_exact(grow);
            self.weights.splice(0..0, std::iter::repeat_n(0.0, grow));
            self.first = i as u16;
        } else if i >= first + self.weights.len() {
            let len = i - first + 1;
            self.weights.reserve_exact(len - self.weights.len());
            self.weights.resize(len, 0.0);
        }
        &mut self.weights[i - self.first as usize]
    }

    /// Adds one sample. Non-finite or negative values and non-positive
    /// weights are ignored: the caller counts them as data problems.
    #[inline]
    pub fn add(&mut self, layout: &BucketLayout, value: f64, weight: f64) {
        if !(value.is_finite() && value >= 0.0 && weight > 0.0) {
            return;
        }
        *self.slot(layout.index(value)) += weight as f32;
        self.total += weight;
    }

    pub fn is_empty(&self) -> bool {
        self.total <= 0.0
    }

    pub fn total_weight(&self) -> f64 {
        self.total
    }

    /// Adds another histogram of the same layout into this one.
    pub fn merge(&mut self, other: &DecayingHistogram) {
        for (k, w) in other.weights.iter().enumerate() {
            if *w != 0.0 {
                *self.slot(other.first as usize + k) += *w;
            }
        }
        self.total += other.total;
    }

    /// Multiplies every weight, e.g. to move the decay reference forward.
    pub fn scale(&mut self, factor: f64) {
        for w in self.weights.iter_mut() {
            *w = (*w as f64 * factor) as f32;
        }
        self.total *= factor;
    }

    /// The smallest bucket edge below which at least `p` (0–1) of the weight
    /// lies; `None` for an empty histogram.
    pub fn percentile(&self, layout: &BucketLayout, p: f64) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        let threshold = p.clamp(0.0, 1.0) * self.total;
        let mut cumulative = 0.0f64;
        let mut last_nonempty = 0;
        for (k, w) in self.weights.iter().enumerate() {
            let i = self.first as usize + k;
            if *w > 0.0 {
                last_nonempty = i;
            }
            cumulative += *w as f64;
            // The f32 sums can fall a hair short of the f64 total.
            if cumulative >= threshold * (1.0 - 1e-6) && *w > 0.0 {
                return Some(layout.upper_edge(i));
            }
        }
        Some(layout.upper_edge(last_nonempty))
    }

    /// Bytes of heap this histogram holds.
    pub fn heap_bytes(&self) -> usize {
        self.weights.capacity() * std::mem::size_of::<f32>()
    }
}

/// Weight of a sample taken `age_seconds` before the reference instant.
#[inline]
pub fn decay_weight(age_seconds: f64, half_life_seconds: f64) -> f64 {
    (-age_seconds / half_life_seconds).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_cover_their_ranges() {
        assert!(CPU_LAYOUT.upper_edge(CPU_LAYOUT.buckets - 1) >= 1_000_000.0);
        assert!(MEMORY_LAYOUT.upper_edge(MEMORY_LAYOUT.buckets - 1) >= (1u64 << 40) as f64);
    }

    #[test]
    fn index_respects_edges() {
        let l = CPU_LAYOUT;
        assert_eq!(l.index(0.0), 0);
        assert_eq!(l.index(0.99), 0);
        assert_eq!(l.index(1.0), 1);
        assert_eq!(l.index(1.04), 1);
        assert_eq!(l.index(1.06), 2);
        assert_eq!(l.index(f64::NAN), 0);
        assert_eq!(l.index(1e12), l.buckets - 1);
        for i in 1..l.buckets - 1 {
            let lower = l.upper_edge(i - 1);
            let upper = l.upper_edge(i);
            assert_eq!(l.index(lower * 1.000_001), i, "lower edge of {i}");
            assert_eq!(l.index(upper * 0.999_999), i, "upper edge of {i}");
        }
    }

    #[test]
    fn percentile_is_within_one_bucket_above_the_truth() {
        let l = CPU_LAYOUT;
        let mut h = DecayingHistogram::new(&l);
        for v in 1..=1000 {
            h.add(&l, v as f64, 1.0);
        }
        for (p, truth) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0), (1.0, 1000.0)] {
            let got = h.percentile(&l, p).expect("non-empty");
            assert!(got >= truth, "p{p}: {got} < {truth}");
            assert!(
                got <= truth * 1.05 + 1.0,
                "p{p}: {got} too far above {truth}"
            );
        }
    }

    #[test]
    fn weights_shift_the_percentile() {
        let l = CPU_LAYOUT;
        let mut h = DecayingHistogram::new(&l);
        // Old samples at 1000m with tiny weight, recent ones at 100m.
        for _ in 0..100 {
            h.add(&l, 1000.0, decay_weight(14.0 * 86400.0, 86400.0));
            h.add(&l, 100.0, 1.0);
        }
        let p90 = h.percentile(&l, 0.9).expect("non-empty");
        assert!(p90 < 110.0, "recent samples dominate: {p90}");
    }

    #[test]
    fn bad_samples_are_ignored() {
        let l = MEMORY_LAYOUT;
        let mut h = DecayingHistogram::new(&l);
        h.add(&l, f64::NAN, 1.0);
        h.add(&l, f64::INFINITY, 1.0);
        h.add(&l, -5.0, 1.0);
        h.add(&l, 5.0, 0.0);
        assert!(h.is_empty());
        assert_eq!(h.percentile(&l, 0.5), None);
    }

    #[test]
    fn only_the_filled_span_is_stored_and_order_does_not_matter() {
        let l = CPU_LAYOUT;
        let values = [300.0, 120.0, 450.0, 0.5, 2000.0, 130.0];
        let mut up = DecayingHistogram::new(&l);
        let mut down = DecayingHistogram::new(&l);
        for v in values {
            up.add(&l, v, 1.0);
        }
        for v in values.iter().rev() {
            down.add(&l, *v, 1.0);
        }
        for p in [0.1, 0.5, 0.9, 1.0] {
            assert_eq!(up.percentile(&l, p), down.percentile(&l, p));
        }
        assert_eq!(up.percentile(&l, 0.0), Some(l.upper_edge(0)));
        assert_eq!(up.percentile(&l, 1.0), Some(l.upper_edge(l.index(2000.0))));
        // Buckets 0 to index(2000): the span, not the layout.
        assert_eq!(up.weights.len(), l.index(2000.0) + 1);
        let mut narrow = DecayingHistogram::new(&l);
        narrow.add(&l, 100.0, 1.0);
        narrow.add(&l, 104.0, 1.0);
        // Two neighbouring buckets: two slots.
        assert_eq!(narrow.heap_bytes(), 8);
        // Merging widens to cover both.
        narrow.merge(&up);
        assert_eq!(narrow.total_weight(), 8.0);
        assert_eq!(narrow.percentile(&l, 1.0), up.percentile(&l, 1.0));
    }

    #[test]
    fn scale_keeps_percentiles() {
        let l = CPU_LAYOUT;
        let mut h = DecayingHistogram::new(&l);
        for v in 1..100 {
            h.add(&l, v as f64 * 10.0, 1.0);
        }
        let before = h.percentile(&l, 0.9);
        h.scale(0.25);
        assert_eq!(h.percentile(&l, 0.9), before);
    }
}
