//! How far one change moves a container's values toward the recommendation:
//! increases go the whole way, a decrease removes at most
//! `max_decrease_ratio` of the current value, and a limit never ends below
//! its request.
//!
//! `None` means "not set": an unset request reserves 0, an unset limit is
//! unbounded. So removing a limit is an increase, and setting one where
//! there was none is a decrease with no current value to take a share of.

use crate::domain::Resources;
use crate::units::{Bytes, MilliCores};

/// A stepped-down value is rounded up to these, like the recommendation.
pub const CPU_STEP: MilliCores = MilliCores(5);
pub const MEMORY_STEP: Bytes = Bytes::mib(1);

/// Which moves a change may make.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stepping {
    /// Normal change: decreases limited to this fraction of the current value.
    Limited { max_decrease_ratio: f64 },
    /// Fast path: increases only; decreases are dropped.
    IncreasesOnly,
}

/// The values one change sets, from `current` toward `recommended`.
pub fn step(current: &Resources, recommended: &Resources, stepping: Stepping) -> Resources {
    let cpu = |c: Option<MilliCores>, r: Option<MilliCores>, kind| {
        value(c.map(|v| v.0), r.map(|v| v.0), kind, stepping, CPU_STEP.0).map(MilliCores)
    };
    let mem = |c: Option<Bytes>, r: Option<Bytes>, kind| {
        value(
            c.map(|v| v.0),
            r.map(|v| v.0),
            kind,
            stepping,
            MEMORY_STEP.0,
        )
        .map(Bytes)
    };
    let mut to = Resources {
        cpu_request: cpu(current.cpu_request, recommended.cpu_request, Kind::Request),
        cpu_limit: cpu(current.cpu_limit, recommended.cpu_limit, Kind::Limit),
        memory_request: mem(
            current.memory_request,
            recommended.memory_request,
            Kind::Request,
        ),
        memory_limit: mem(current.memory_limit, recommended.memory_limit, Kind::Limit),
    };
    to.cpu_limit = limit_at_least_request(to.cpu_limit, to.cpu_request);
    to.memory_limit = limit_at_least_request(to.memory_limit, to.memory_request);
    to
}

fn limit_at_least_request<T: Ord + Copy>(limit: Option<T>, request: Option<T>) -> Option<T> {
    match (limit, request) {
        (Some(limit), Some(request)) => Some(limit.max(request)),
        (limit, _) => limit,
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Request,
    Limit,
}

/// A value as a point on one scale: an unset request is 0, an unset limit
/// is above every number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Finite(u64),
    Unbounded,
}

fn level(v: Option<u64>, kind: Kind) -> Level {
    match (v, kind) {
        (Some(v), _) => Level::Finite(v),
        (None, Kind::Request) => Level::Finite(0),
        (None, Kind::Limit) => Level::Unbounded,
    }
}

/// True when `to` is more than `from` on the value's scale.
pub fn is_increase(from: Option<u64>, to: Option<u64>, is_limit: bool) -> bool {
    let kind = if is_limit { Kind::Limit } else { Kind::Request };
    level(to, kind) > level(from, kind)
}

fn value(
    current: Option<u64>,
    recommended: Option<u64>,
    kind: Kind,
    stepping: Stepping,
    rounding: u64,
) -> Option<u64> {
    let (from, to) = (level(current, kind), level(recommended, kind));
    if to >= from {
        // Increases go the whole way; equal levels keep the current text.
        return if to > from { recommended } else { current };
    }
    let ratio = match stepping {
        Stepping::IncreasesOnly => return current,
        Stepping::Limited { max_decrease_ratio } => clamp_ratio(max_decrease_ratio),
    };
    let Level::Finite(from) = from else {
        // A limit set where there was none: no current value to take a
        // share of, and it is the policy's limit, so it goes as recommended.
        return recommended;
    };
    let target = match to {
        Level::Finite(v) => v,
        Level::Unbounded => return current,
    };
    let removable = ((from as f64) * ratio).floor();
    let removable = if removable >= from as f64 {
        from
    } else {
        removable as u64
    };
    let floor = round_up(from - removable, rounding);
    let stepped = target.max(floor).min(from);
    if stepped == from {
        current
    } else {
        Some(stepped)
    }
}

fn round_up(value: u64, step: u64) -> u64 {
    if step == 0 {
        value
    } else {
        value.div_ceil(step).saturating_mul(step)
    }
}

/// A ratio outside [0, 1] (or NaN) from unvalidated guardrails is clamped:
/// never more than the whole value, never a negative step.
fn clamp_ratio(ratio: f64) -> f64 {
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITED: Stepping = Stepping::Limited {
        max_decrease_ratio: 0.25,
    };

    fn cpu(request: Option<u64>, limit: Option<u64>) -> Resources {
        Resources {
            cpu_request: request.map(MilliCores),
            cpu_limit: limit.map(MilliCores),
            ..Resources::default()
        }
    }

    #[test]
    fn decreases_take_at_most_a_quarter_rounded_up() {
        #[rustfmt::skip]
        let cases = [
            // current, recommended, stepped
            (1000, 100, 750),  // limited: 1000 - 250
            (1000, 900, 900),  // within the step: goes all the way
            (101, 10, 80),     // 101 - 25 = 76, rounded up to 80
            (102, 101, 101),   // the recommendation itself is not rounded
            (3, 1, 3),         // below one rounding step: no move
            (1000, 2000, 2000),// increases go the whole way
        ];
        for (current, recommended, stepped) in cases {
            let to = step(
                &cpu(Some(current), None),
                &cpu(Some(recommended), None),
                LIMITED,
            );
            assert_eq!(
                to.cpu_request,
                Some(MilliCores(stepped)),
                "{current} -> {recommended}"
            );
        }
    }

    #[test]
    fn memory_rounds_to_whole_mebibytes() {
        let current = Resources {
            memory_request: Some(Bytes(1000 * Bytes::MIB + 1)),
            ..Resources::default()
        };
        let recommended = Resources {
            memory_request: Some(Bytes::mib(100)),
            ..Resources::default()
        };
        let to = step(&current, &recommended, LIMITED);
        assert_eq!(to.memory_request, Some(Bytes::mib(751)));
    }

    #[test]
    fn unset_values_sit_at_the_ends_of_the_scale() {
        // Removing a limit is an increase; setting one is the policy's call.
        assert_eq!(
            step(&cpu(Some(100), Some(400)), &cpu(Some(100), None), LIMITED),
            cpu(Some(100), None)
        );
        assert_eq!(
            step(&cpu(Some(100), None), &cpu(Some(100), Some(200)), LIMITED),
            cpu(Some(100), Some(200))
        );
        assert_eq!(
            step(
                &cpu(Some(100), None),
                &cpu(Some(100), Some(200)),
                Stepping::IncreasesOnly
            ),
            cpu(Some(100), None)
        );
        // An unset request is 0: setting it is an increase.
        assert_eq!(
            step(
                &cpu(None, None),
                &cpu(Some(50), None),
                Stepping::IncreasesOnly
            ),
            cpu(Some(50), None)
        );
        assert!(is_increase(Some(5), None, true));
        assert!(!is_increase(Some(5), None, false));
    }

    #[test]
    fn fast_paths_drop_decreases() {
        let current = Resources {
            cpu_request: Some(MilliCores(500)),
            memory_request: Some(Bytes::mib(256)),
            memory_limit: Some(Bytes::mib(256)),
            ..Resources::default()
        };
        let recommended = Resources {
            cpu_request: Some(MilliCores(100)),
            memory_request: Some(Bytes::mib(400)),
            memory_limit: Some(Bytes::mib(512)),
            ..Resources::default()
        };
        let to = step(&current, &recommended, Stepping::IncreasesOnly);
        assert_eq!(to.cpu_request, Some(MilliCores(500)));
        assert_eq!(to.memory_request, Some(Bytes::mib(400)));
        assert_eq!(to.memory_limit, Some(Bytes::mib(512)));
    }

    #[test]
    fn a_limit_never_ends_below_its_request() {
        // The request rises the whole way, the limit only a step down.
        let to = step(
            &cpu(Some(100), Some(200)),
            &cpu(Some(300), Some(150)),
            LIMITED,
        );
        assert_eq!(to, cpu(Some(300), Some(300)));
        let to = step(
            &cpu(Some(100), Some(100)),
            &cpu(Some(400), Some(100)),
            Stepping::IncreasesOnly,
        );
        assert_eq!(to, cpu(Some(400), Some(400)));
    }
}
