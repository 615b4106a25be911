//! Units in types: CPU in [`MilliCores`], memory in [`Bytes`], and the
//! Kubernetes [`Quantity`] text format both are written in.
//!
//! `MilliCores` and `Bytes` serialize as plain integers (the JSON output
//! contract); config files instead read Kubernetes quantities such as `250m`
//! or `1Gi` through [`de_cpu`] and [`de_memory`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// CPU in thousandths of a core (`1000` = one vCPU).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MilliCores(pub u64);

/// Memory in bytes.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Bytes(pub u64);

impl MilliCores {
    /// Cores as measured (`rate()` of a CPU-seconds counter), rounded up to a
    /// whole millicore. Negative and NaN inputs give zero, huge ones saturate.
    pub fn from_cores(cores: f64) -> Self {
        MilliCores(ceil_to_u64(cores * 1000.0))
    }

    pub fn cores(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// Rounds up to a multiple of `step` (a zero step leaves the value alone).
    pub fn round_up_to(self, step: MilliCores) -> Self {
        MilliCores(round_up(self.0, step.0))
    }
}

impl Bytes {
    pub const KIB: u64 = 1 << 10;
    pub const MIB: u64 = 1 << 20;
    pub const GIB: u64 = 1 << 30;

    pub const fn mib(n: u64) -> Self {
        Bytes(n * Self::MIB)
    }

    pub const fn gib(n: u64) -> Self {
        Bytes(n * Self::GIB)
    }

    /// Bytes as measured (a gauge sample), rounded up to a whole byte.
    pub fn from_f64(bytes: f64) -> Self {
        Bytes(ceil_to_u64(bytes))
    }

    pub fn as_f64(self) -> f64 {
        self.0 as f64
    }

    pub fn gib_f64(self) -> f64 {
        self.0 as f64 / Self::GIB as f64
    }

    /// Rounds up to a multiple of `step` (a zero step leaves the value alone).
    pub fn round_up_to(self, step: Bytes) -> Self {
        Bytes(round_up(self.0, step.0))
    }
}

fn ceil_to_u64(x: f64) -> u64 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= u64::MAX as f64 {
        u64::MAX
    } else {
        x.ceil() as u64
    }
}

fn round_up(value: u64, step: u64) -> u64 {
    if step == 0 {
        return value;
    }
    value.div_ceil(step).saturating_mul(step)
}

/// A parse failure, naming the offending text and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("{0:?} is not a Kubernetes quantity (examples: 250m, 0.5, 2, 512Mi, 1Gi, 1e3)")]
    Invalid(String),
    #[error("{0:?} is negative; CPU and memory quantities must be zero or more")]
    Negative(String),
    #[error("{0:?} is too large to represent")]
    TooLarge(String),
}

/// A Kubernetes resource quantity, kept exact. See
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/>.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    /// The value in nano-units (10^-9), the finest precision the API server keeps.
    nanos: u128,
}

impl Quantity {
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let _ = text;
        Err(QuantityError::Invalid(text.to_string()))
    }

    /// The value in thousandths, rounded up as the API server's `MilliValue`.
    pub fn millis_ceil(self) -> u128 {
        self.nanos.div_ceil(1_000_000)
    }

    /// The value in whole units, rounded up as the API server's `Value`.
    pub fn units_ceil(self) -> u128 {
        self.nanos.div_ceil(1_000_000_000)
    }
}

impl FromStr for MilliCores {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let q = Quantity::parse(s)?;
        u64::try_from(q.millis_ceil())
            .map(MilliCores)
            .map_err(|_| QuantityError::TooLarge(s.to_string()))
    }
}

impl FromStr for Bytes {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let q = Quantity::parse(s)?;
        u64::try_from(q.units_ceil())
            .map(Bytes)
            .map_err(|_| QuantityError::TooLarge(s.to_string()))
    }
}

/// Kubernetes canonical text: `250m`, or whole cores as `2`.
impl fmt::Display for MilliCores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// Kubernetes canonical text: the largest binary suffix that is exact
/// (`512Mi`, `1Gi`), else plain bytes.
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SUFFIXES: [&str; 6] = ["Ei", "Pi", "Ti", "Gi", "Mi", "Ki"];
        for (i, suffix) in SUFFIXES.iter().enumerate() {
            let unit = 1u64 << (10 * (6 - i));
            if self.0 != 0 && self.0 % unit == 0 {
                return write!(f, "{}{}", self.0 / unit, suffix);
            }
        }
        write!(f, "{}", self.0)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum QuantityInput {
    Text(String),
    Int(u64),
    Float(f64),
}

impl QuantityInput {
    fn into_text(self) -> String {
        match self {
            QuantityInput::Text(s) => s,
            QuantityInput::Int(n) => n.to_string(),
            QuantityInput::Float(x) => x.to_string(),
        }
    }
}

/// Reads a CPU quantity as Kubernetes does: `250m`, `0.25` and `1` (cores).
pub fn de_cpu<'de, D: Deserializer<'de>>(d: D) -> Result<MilliCores, D::Error> {
    let text = QuantityInput::deserialize(d)?.into_text();
    text.parse().map_err(serde::de::Error::custom)
}

/// Reads a memory quantity as Kubernetes does: `512Mi`, `1G`, `1073741824`.
pub fn de_memory<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    let text = QuantityInput::deserialize(d)?.into_text();
    text.parse().map_err(serde::de::Error::custom)
}

/// [`de_cpu`] for an optional field.
pub fn de_cpu_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MilliCores>, D::Error> {
    Option::<QuantityInput>::deserialize(d)?
        .map(|q| q.into_text().parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// [`de_memory`] for an optional field.
pub fn de_memory_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
    Option::<QuantityInput>::deserialize(d)?
        .map(|q| q.into_text().parse().map_err(serde::de::Error::custom))
        .transpose()
}
