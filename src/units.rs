//! Units in types: CPU in [`MilliCores`], memory in [`Bytes`], and the
//! Kubernetes [`Quantity`] text format both are written in.
//!
//! `MilliCores` and `Bytes` serialize as plain integers (the JSON output
//! contract); config files instead read Kubernetes quantities such as `250m`
//! or `1Gi` through [`de_cpu`] and [`de_memory`].
//!
//! [`Quantity::parse`] reads a quantity the way the API server does, so a
//! limit in our config means what the same text means in a pod spec: exact
//! decimal arithmetic (`0.1` is exactly 100 000 000 nanos, never an `f64`),
//! nano precision with anything finer rounded up (`0.1n` is `1n`), and binary
//! suffixes capped at 2^63 - 1. CPU then rounds up to whole millicores and
//! memory to whole bytes, as the API server's `MilliValue()` and `Value()` do.
//! The few places where we are stricter than the API server are listed on
//! [`Quantity::parse`].
//!
//! Not for: arithmetic on quantities or negative values (requests and limits
//! are never negative, so negative text is an error here).

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

    /// Rounds up to a multiple of `step` (a zero step leaves the value alone;
    /// a result past `u64::MAX` saturates there).
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

    /// Rounds up to a multiple of `step` (a zero step leaves the value alone;
    /// a result past `u64::MAX` saturates there).
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity {
    /// The value in nano-units (10^-9), the finest precision the API server keeps.
    nanos: u128,
}

const NANOS_PER_UNIT: u128 = 1_000_000_000;

/// The API server silently caps binary-suffixed quantities at the largest
/// int64 (`maxAllowed` in quantity.go), so `9Ei` means 9223372036854775807.
const BINARY_CAP_UNITS: u128 = (1 << 63) - 1;
const BINARY_CAP_NANOS: u128 = BINARY_CAP_UNITS * NANOS_PER_UNIT;

impl Quantity {
    pub const ZERO: Quantity = Quantity { nanos: 0 };

    pub const fn from_nanos(nanos: u128) -> Self {
        Quantity { nanos }
    }

    /// The exact value in nano-units (10^-9).
    pub const fn nanos(self) -> u128 {
        self.nanos
    }

    /// Parses a quantity as the API server's `resource.ParseQuantity` does
    /// (k8s.io/apimachinery/pkg/api/resource, `parseQuantityString` and
    /// `ParseQuantity` in quantity.go, `interpret` in suffix.go):
    ///
    /// ```text
    /// [+|-] ( digits | digits . digits | digits . | . digits ) [suffix]
    /// suffix: n u m k M G T P E | Ki Mi Gi Ti Pi Ei | (e|E) [+|-] digits
    /// ```
    ///
    /// The value is kept to the nano and anything finer rounds up (`0.1n` is
    /// `1n`, `1.0000000001` is `1.000000001`); binary-suffixed values above
    /// 2^63 - 1 become 2^63 - 1. Both are what the API server stores.
    ///
    /// Stricter than the API server, on purpose:
    /// - a number needs a digit. Go's scanner reads `.`, `-`, `m` or `Ki` as
    ///   zero, but its documented grammar and the OpenAPI pattern for CRDs
    ///   require one, and in a config file these are typos, not zeros;
    /// - no surrounding whitespace. `ParseQuantity` rejects it too, though the
    ///   API's JSON decoder trims it first;
    /// - negative values are [`QuantityError::Negative`] (`-0` is zero);
    /// - values past `u128::MAX` nanos (about 3.4e29) are
    ///   [`QuantityError::TooLarge`] where Go keeps arbitrary precision, and an
    ///   exponent is used as written where Go truncates it to 32 bits.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let invalid = || QuantityError::Invalid(text.to_string());
        let (negative, unsigned) = if let Some(rest) = text.strip_prefix('-') {
            (true, rest)
        } else {
            (false, text.strip_prefix('+').unwrap_or(text))
        };
        let (int_part, after_int) = unsigned.split_at(digit_run(unsigned));
        let (frac_part, suffix) = match after_int.strip_prefix('.') {
            Some(after_dot) => after_dot.split_at(digit_run(after_dot)),
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let multiplier = Multiplier::from_suffix(suffix).ok_or_else(invalid)?;

        // The number is `digits × 10^-frac_len`; leading zeros change nothing.
        let mut digits: Vec<u8> = int_part
            .bytes()
            .chain(frac_part.bytes())
            .map(|b| b - b'0')
            .skip_while(|&d| d == 0)
            .collect();
        if digits.is_empty() {
            return Ok(Quantity::ZERO);
        }
        if negative {
            return Err(QuantityError::Negative(text.to_string()));
        }
        let frac_len = frac_part.len() as i128;
        let nanos = match multiplier {
            Multiplier::PowerOfTen(exponent) => {
                scale_ceil(&digits, i128::from(exponent) - frac_len + 9)
                    .ok_or_else(|| QuantityError::TooLarge(text.to_string()))?
            }
            Multiplier::PowerOfTwo(bits) => {
                multiply_digits(&mut digits, 1 << bits);
                // Go caps instead of failing, however large the value.
                scale_ceil(&digits, 9 - frac_len)
                    .map_or(BINARY_CAP_NANOS, |n| n.min(BINARY_CAP_NANOS))
            }
        };
        Ok(Quantity { nanos })
    }

    /// The value in thousandths, rounded up as the API server's `MilliValue`.
    pub fn millis_ceil(self) -> u128 {
        self.nanos.div_ceil(1_000_000)
    }

    /// The value in whole units, rounded up as the API server's `Value`.
    pub fn units_ceil(self) -> u128 {
        self.nanos.div_ceil(NANOS_PER_UNIT)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

/// Canonical text in the spirit of the API server's: a whole count of the
/// largest exact suffix, `1500m`, `129M`, `512Mi`, `1n`. The API server reuses
/// the suffix kind it parsed; we have none to reuse, so a binary suffix is
/// used when it is exact and no longer than the decimal form (`1Gi`, `123Mi`,
/// but `1E` rather than `976562500000000Ki`). Parsing it gives the same value.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Suffix and its size in nano-units, largest first.
        const DECIMAL: [(&str, u32); 10] = [
            ("E", 27),
            ("P", 24),
            ("T", 21),
            ("G", 18),
            ("M", 15),
            ("k", 12),
            ("", 9),
            ("m", 6),
            ("u", 3),
            ("n", 0),
        ];
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let (suffix, power) = DECIMAL
            .into_iter()
            .find(|&(_, power)| self.nanos.is_multiple_of(10u128.pow(power)))
            .unwrap_or(("n", 0));
        let decimal = format!("{}{suffix}", self.nanos / 10u128.pow(power));
        if self.nanos.is_multiple_of(NANOS_PER_UNIT)
            && let Some((count, suffix)) = binary_suffixed(self.nanos / NANOS_PER_UNIT)
        {
            let binary = format!("{count}{suffix}");
            if binary.len() <= decimal.len() {
                return f.write_str(&binary);
            }
        }
        f.write_str(&decimal)
    }
}

/// What a quantity's suffix multiplies its number by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Multiplier {
    /// The decimal SI suffixes and `e`/`E` exponents.
    PowerOfTen(i64),
    /// The binary SI suffixes.
    PowerOfTwo(u32),
}

impl Multiplier {
    /// suffix.go `interpret`: the fixed suffixes first (so `E` is exa), then
    /// `e`/`E` and an integer as `strconv.ParseInt` reads it (sign allowed,
    /// no fraction, must fit an i64).
    fn from_suffix(suffix: &str) -> Option<Self> {
        use Multiplier::{PowerOfTen, PowerOfTwo};
        let multiplier = match suffix {
            "n" => PowerOfTen(-9),
            "u" => PowerOfTen(-6),
            "m" => PowerOfTen(-3),
            "" => PowerOfTen(0),
            "k" => PowerOfTen(3),
            "M" => PowerOfTen(6),
            "G" => PowerOfTen(9),
            "T" => PowerOfTen(12),
            "P" => PowerOfTen(15),
            "E" => PowerOfTen(18),
            "Ki" => PowerOfTwo(10),
            "Mi" => PowerOfTwo(20),
            "Gi" => PowerOfTwo(30),
            "Ti" => PowerOfTwo(40),
            "Pi" => PowerOfTwo(50),
            "Ei" => PowerOfTwo(60),
            _ => {
                let exponent = suffix.strip_prefix(['e', 'E'])?;
                let unsigned = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
                if unsigned.is_empty() || digit_run(unsigned) != unsigned.len() {
                    return None;
                }
                PowerOfTen(exponent.parse().ok()?)
            }
        };
        Some(multiplier)
    }
}

/// Length of the run of ASCII digits at the start of `s`.
fn digit_run(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// `ceil(digits × 10^shift)` for big-endian decimal digits, or `None` when
/// that does not fit a u128. Digits below the units place only decide whether
/// to round up, so any number of them works without big integers.
fn scale_ceil(digits: &[u8], shift: i128) -> Option<u128> {
    let digits = &digits[digits.iter().take_while(|&&d| d == 0).count()..];
    if digits.is_empty() {
        return Some(0);
    }
    let whole_len = digits.len() as i128 + shift;
    // A leading non-zero digit makes the value at least 10^(whole_len - 1).
    if whole_len > 39 {
        return None;
    }
    let whole_len = usize::try_from(whole_len.max(0)).ok()?;
    let (whole, fraction) = digits.split_at(whole_len.min(digits.len()));
    let mut value = whole.iter().try_fold(0u128, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u128::from(d))
    })?;
    for _ in digits.len()..whole_len {
        value = value.checked_mul(10)?;
    }
    if fraction.iter().any(|&d| d != 0) {
        value = value.checked_add(1)?;
    }
    Some(value)
}

/// Multiplies big-endian decimal digits in place by `factor`.
fn multiply_digits(digits: &mut Vec<u8>, factor: u64) {
    let mut carry: u128 = 0;
    for d in digits.iter_mut().rev() {
        let product = u128::from(*d) * u128::from(factor) + carry;
        *d = (product % 10) as u8;
        carry = product / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// `units` as a count of the largest binary suffix that divides it exactly,
/// or `None` if none does. Values above the API server's cap for binary
/// suffixes get none either: written as `8Ei` they would parse back as less.
fn binary_suffixed(units: u128) -> Option<(u128, &'static str)> {
    const BINARY: [(&str, u32); 6] = [
        ("Ei", 60),
        ("Pi", 50),
        ("Ti", 40),
        ("Gi", 30),
        ("Mi", 20),
        ("Ki", 10),
    ];
    if units == 0 || units > BINARY_CAP_UNITS {
        return None;
    }
    BINARY
        .into_iter()
        .find(|&(_, bits)| units.is_multiple_of(1 << bits))
        .map(|(suffix, bits)| (units >> bits, suffix))
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
        if self.0.is_multiple_of(1000) {
            write!(f, "{}", self.0 / 1000)
        } else {
            write!(f, "{}m", self.0)
        }
    }
}

/// Kubernetes canonical text: the largest binary suffix that is exact
/// (`512Mi`, `1Gi`), else plain bytes (`1000`). Parses back to the same value.
impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match binary_suffixed(u128::from(self.0)) {
            Some((count, suffix)) => write!(f, "{count}{suffix}"),
            None => write!(f, "{}", self.0),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNIT: u128 = NANOS_PER_UNIT;
    const KI: u128 = 1 << 10;
    const MI: u128 = 1 << 20;
    const GI: u128 = 1 << 30;
    const TI: u128 = 1 << 40;
    const PI: u128 = 1 << 50;
    const EI: u128 = 1 << 60;

    #[test]
    fn parse_accepts_kubernetes_quantities() {
        let table: &[(&str, u128)] = &[
            // zero, however written
            ("0", 0),
            ("-0", 0),
            ("+0", 0),
            ("000", 0),
            ("0.0", 0),
            ("-0.0m", 0),
            ("0Ki", 0),
            ("0e99", 0),
            ("0.000E", 0),
            // plain numbers and fractions
            ("1", UNIT),
            ("+5", 5 * UNIT),
            ("00042", 42 * UNIT),
            ("1.", UNIT),
            ("5.", 5 * UNIT),
            (".5", 500_000_000),
            ("0.5", 500_000_000),
            ("0.1", 100_000_000),
            ("1.5", 1_500_000_000),
            ("9.01", 9_010_000_000),
            ("128974848", 128_974_848 * UNIT),
            // decimal SI suffixes
            ("5n", 5),
            ("4u", 4_000),
            ("3m", 3_000_000),
            ("100m", 100_000_000),
            ("8k", 8_000 * UNIT),
            ("7M", 7_000_000 * UNIT),
            ("129M", 129_000_000 * UNIT),
            ("6G", 6 * 10u128.pow(18)),
            ("5T", 5 * 10u128.pow(21)),
            ("2P", 2 * 10u128.pow(24)),
            ("1E", 10u128.pow(27)),
            ("12E", 12 * 10u128.pow(27)),
            ("100.035k", 100_035 * UNIT),
            ("0.0005k", 500_000_000),
            ("7.123456M", 7_123_456 * UNIT),
            ("1.G", 10u128.pow(18)),
            // binary SI suffixes, fractions of them too
            ("1Ki", KI * UNIT),
            ("1Mi", MI * UNIT),
            ("123Mi", 123 * MI * UNIT),
            ("1Gi", GI * UNIT),
            ("5Ti", 5 * TI * UNIT),
            ("4Pi", 4 * PI * UNIT),
            ("3Ei", 3 * EI * UNIT),
            ("7Ei", 7 * EI * UNIT),
            ("1.5Ki", 1_536 * UNIT),
            ("0.5Mi", 512 * KI * UNIT),
            ("100.035Ki", 102_435_840_000_000),
            (".001Ki", 1_024_000_000),
            (".000000001Ki", 1_024),
            // decimal exponents
            ("1e3", 1_000 * UNIT),
            ("1E6", 1_000_000 * UNIT),
            ("1e0", UNIT),
            ("1e03", 1_000 * UNIT),
            ("2e+2", 200 * UNIT),
            ("1e-3", 1_000_000),
            ("1.5E-3", 1_500_000),
            ("1.2e3", 1_200 * UNIT),
            ("0.5e-1", 50_000_000),
            ("129e6", 129_000_000 * UNIT),
            ("1E-9", 1),
            ("1E18", 10u128.pow(27)),
            // finer than a nano rounds up, never to nearest
            ("0.1n", 1),
            ("0.9n", 1),
            ("3.001n", 4),
            ("1.1E-9", 2),
            ("0.5e-9", 1),
            ("0.0000000001", 1),
            ("0.0000000005", 1),
            ("0.00000012345", 124),
            ("0.00000012354", 124),
            ("1.0000000001", 1_000_000_001),
            ("1.000000001", 1_000_000_001),
            ("0.000000000001Ki", 2),
            ("1e-100", 1),
            ("1e-9223372036854775808", 1),
            (
                "1.000000000000000000000000000000000000000000000000000001",
                1_000_000_001,
            ),
            (
                "1.000000000000000000000000000000000000000000000000000000",
                UNIT,
            ),
            ("0.00000000000000000000000000000000000000000000000000007", 1),
            // binary suffixes cap at 2^63 - 1; decimal numbers don't
            ("8Ei", BINARY_CAP_NANOS),
            ("9Ei", BINARY_CAP_NANOS),
            ("9223372036854775807Ki", BINARY_CAP_NANOS),
            (
                "1000000000000000000000000000000000000000000000Ei",
                BINARY_CAP_NANOS,
            ),
            ("7.99Ei", 799 * EI * UNIT / 100),
            ("9223372036854775807", BINARY_CAP_NANOS),
            ("9223372036854775808", (1 << 63) * UNIT),
            ("18446744073709551616", (1 << 64) * UNIT),
            // the largest value we hold
            ("340282366920938463463374607431768211455n", u128::MAX),
            ("340282366920.938463463374607431768211455E", u128::MAX),
        ];
        for &(input, nanos) in table {
            assert_eq!(
                Quantity::parse(input).map(Quantity::nanos),
                Ok(nanos),
                "{input:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_malformed_negative_and_huge_quantities() {
        use QuantityError::{Invalid, Negative, TooLarge};
        type Variant = fn(String) -> QuantityError;
        let table: &[(&str, Variant)] = &[
            ("", Invalid),
            // a number needs a digit (Go's scanner would read these as zero)
            ("-", Invalid),
            ("+", Invalid),
            (".", Invalid),
            ("-.", Invalid),
            ("m", Invalid),
            ("Ki", Invalid),
            ("e3", Invalid),
            // whitespace, anywhere
            (" ", Invalid),
            (" 1", Invalid),
            ("1 ", Invalid),
            ("\t1", Invalid),
            ("1\n", Invalid),
            ("1 Gi", Invalid),
            ("- 1", Invalid),
            // malformed numbers
            ("1..0", Invalid),
            ("1.1.M", Invalid),
            ("1+1.0M", Invalid),
            ("--1", Invalid),
            ("+-1", Invalid),
            ("-+1", Invalid),
            ("1,5", Invalid),
            ("1_000", Invalid),
            ("0x10", Invalid),
            ("١", Invalid),
            ("½", Invalid),
            ("NaN", Invalid),
            ("inf", Invalid),
            ("aoeu", Invalid),
            // unknown suffixes, and case matters
            ("1Kb", Invalid),
            ("1K", Invalid),
            ("1ki", Invalid),
            ("1KI", Invalid),
            ("1mi", Invalid),
            ("0.1mi", Invalid),
            ("1kk", Invalid),
            ("1Mm", Invalid),
            ("1i", Invalid),
            (".5i", Invalid),
            ("-3.01i", Invalid),
            ("0.1am", Invalid),
            ("1B", Invalid),
            ("1Gib", Invalid),
            ("1µ", Invalid),
            // malformed exponents
            ("1e", Invalid),
            ("1E+", Invalid),
            ("1e-", Invalid),
            ("-3.01e-", Invalid),
            ("1e3.5", Invalid),
            ("1e.5", Invalid),
            ("1e3m", Invalid),
            ("1e3Ki", Invalid),
            ("1Ee3", Invalid),
            ("1e+-3", Invalid),
            ("1e 3", Invalid),
            ("1e99999999999999999999", Invalid),
            // negative
            ("-1", Negative),
            ("-0.5", Negative),
            ("-100m", Negative),
            ("-1Ki", Negative),
            ("-0.0000000001", Negative),
            ("-1e999", Negative),
            // past u128 nanos
            ("1e30", TooLarge),
            ("1000000000000000000000000000000", TooLarge),
            ("340282366920938463463374607431768211456n", TooLarge),
            ("340282366920.938463463374607431768211456E", TooLarge),
            ("1000000000000E", TooLarge),
            ("1e9223372036854775807", TooLarge),
        ];
        for &(input, variant) in table {
            let err = Quantity::parse(input).expect_err(input);
            assert_eq!(err, variant(input.to_string()), "{input:?}");
            assert!(err.to_string().contains(&format!("{input:?}")), "{err}");
        }
    }

    #[test]
    fn quantity_display_is_canonical() {
        let table: &[(u128, &str)] = &[
            (0, "0"),
            (1, "1n"),
            (1_500, "1500n"),
            (1_000, "1u"),
            (1_000_000, "1m"),
            (500_000_000, "500m"),
            (1_500_000_000, "1500m"),
            (UNIT, "1"),
            (1_000 * UNIT, "1k"),
            (1_536 * UNIT, "1536"),
            (KI * UNIT, "1Ki"),
            (1_000 * KI * UNIT, "1024k"),
            (2 * KI * UNIT, "2Ki"),
            (123 * MI * UNIT, "123Mi"),
            (10u128.pow(18) * UNIT, "1E"),
            (512 * MI * UNIT, "512Mi"),
            (GI * UNIT, "1Gi"),
            (1_024 * GI * UNIT, "1Ti"),
            (3 * EI * UNIT, "3Ei"),
            (129_000_000 * UNIT, "129M"),
            (10u128.pow(27), "1E"),
            (10u128.pow(30), "1000E"),
            (BINARY_CAP_NANOS, "9223372036854775807"),
            ((1 << 63) * UNIT, "9223372036854775808"),
            (u128::MAX, "340282366920938463463374607431768211455n"),
        ];
        for &(nanos, text) in table {
            assert_eq!(Quantity::from_nanos(nanos).to_string(), text);
        }
    }

    #[test]
    fn millicores_parse_rounds_up_to_whole_millicores() {
        let table: &[(&str, u64)] = &[
            ("0", 0),
            ("1n", 1),
            ("0.0001", 1),
            ("100m", 100),
            ("250m", 250),
            ("0.25", 250),
            ("1", 1_000),
            ("1.5", 1_500),
            ("1500m", 1_500),
            ("1e3", 1_000_000),
            ("2k", 2_000_000),
            ("1.0001", 1_001),
            ("18446744073709551615m", u64::MAX),
        ];
        for &(input, millis) in table {
            assert_eq!(input.parse(), Ok(MilliCores(millis)), "{input:?}");
        }
        assert_eq!(
            "18446744073709552".parse::<MilliCores>(),
            Err(QuantityError::TooLarge("18446744073709552".to_string()))
        );
        assert_eq!(
            "-1".parse::<MilliCores>(),
            Err(QuantityError::Negative("-1".to_string()))
        );
    }

    #[test]
    fn bytes_parse_rounds_up_to_whole_bytes() {
        let table: &[(&str, u64)] = &[
            ("0", 0),
            ("1m", 1),
            ("0.5", 1),
            ("1", 1),
            ("1Ki", 1_024),
            ("1.5Ki", 1_536),
            ("1k", 1_000),
            ("1M", 1_000_000),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("129M", 129_000_000),
            ("123Mi", 128_974_848),
            ("1Gi", 1 << 30),
            ("16Ei", i64::MAX as u64),
            ("18446744073709551615", u64::MAX),
        ];
        for &(input, bytes) in table {
            assert_eq!(input.parse(), Ok(Bytes(bytes)), "{input:?}");
        }
        assert_eq!(
            "18446744073709551616".parse::<Bytes>(),
            Err(QuantityError::TooLarge("18446744073709551616".to_string()))
        );
        assert_eq!(
            "1Kb".parse::<Bytes>(),
            Err(QuantityError::Invalid("1Kb".to_string()))
        );
    }

    #[test]
    fn millicores_and_bytes_display_as_kubernetes_text() {
        assert_eq!(MilliCores(250).to_string(), "250m");
        assert_eq!(MilliCores(2_000).to_string(), "2");
        assert_eq!(MilliCores(1_500).to_string(), "1500m");
        assert_eq!(MilliCores(0).to_string(), "0");
        assert_eq!(Bytes::mib(512).to_string(), "512Mi");
        assert_eq!(Bytes::gib(1).to_string(), "1Gi");
        assert_eq!(Bytes(1_000).to_string(), "1000");
        assert_eq!(Bytes(1_536).to_string(), "1536");
        assert_eq!(Bytes(0).to_string(), "0");
        assert_eq!(Bytes(1 << 63).to_string(), "9223372036854775808");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Limits {
        #[serde(deserialize_with = "de_cpu")]
        cpu: MilliCores,
        #[serde(deserialize_with = "de_memory")]
        memory: Bytes,
        #[serde(default, deserialize_with = "de_cpu_opt")]
        cpu_max: Option<MilliCores>,
        #[serde(default, deserialize_with = "de_memory_opt")]
        memory_max: Option<Bytes>,
    }

    fn limits_json(cpu: &str, memory: &str) -> Result<(MilliCores, Bytes), String> {
        let json = format!(r#"{{"cpu": {cpu}, "memory": {memory}}}"#);
        serde_json::from_str::<Limits>(&json)
            .map(|l| (l.cpu, l.memory))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn serde_helpers_read_strings_and_numbers() {
        let gib = Bytes::gib(1);
        assert_eq!(
            limits_json(r#""250m""#, r#""1Gi""#),
            Ok((MilliCores(250), gib))
        );
        assert_eq!(limits_json("0.5", "1073741824"), Ok((MilliCores(500), gib)));
        assert_eq!(
            limits_json("1", r#""1073741824""#),
            Ok((MilliCores(1_000), gib))
        );
        assert_eq!(
            limits_json(r#""1.5""#, "1e3"),
            Ok((MilliCores(1_500), Bytes(1_000)))
        );
        assert_eq!(limits_json("0.1", "0.5"), Ok((MilliCores(100), Bytes(1))));

        let err = limits_json(r#""250x""#, r#""1Gi""#).expect_err("bad suffix");
        assert!(err.contains(r#""250x""#), "{err}");
        let err = limits_json("-1", r#""1Gi""#).expect_err("negative");
        assert!(err.contains("negative"), "{err}");
    }

    #[test]
    fn serde_helpers_read_yaml_and_optional_fields() {
        let yaml = "cpu: 250m\nmemory: 512Mi\ncpu_max: 2\nmemory_max: 1Gi\n";
        let limits: Limits = serde_yaml_ng::from_str(yaml).expect("valid yaml");
        assert_eq!(limits.cpu, MilliCores(250));
        assert_eq!(limits.memory, Bytes::mib(512));
        assert_eq!(limits.cpu_max, Some(MilliCores(2_000)));
        assert_eq!(limits.memory_max, Some(Bytes::gib(1)));

        let limits: Limits =
            serde_yaml_ng::from_str("cpu: 0.5\nmemory: 1073741824\n").expect("valid yaml");
        assert_eq!(
            (limits.cpu, limits.memory),
            (MilliCores(500), Bytes::gib(1))
        );
        assert_eq!((limits.cpu_max, limits.memory_max), (None, None));

        let json = r#"{"cpu": "1", "memory": "1Gi", "cpu_max": null, "memory_max": "2Gi"}"#;
        let limits: Limits = serde_json::from_str(json).expect("valid json");
        assert_eq!(
            (limits.cpu_max, limits.memory_max),
            (None, Some(Bytes::gib(2)))
        );
    }

    #[test]
    fn round_up_to_zero_step_leaves_value_alone() {
        assert_eq!(MilliCores(123).round_up_to(MilliCores(0)), MilliCores(123));
        assert_eq!(Bytes(123).round_up_to(Bytes(0)), Bytes(123));
        assert_eq!(MilliCores(101).round_up_to(MilliCores(50)), MilliCores(150));
        assert_eq!(Bytes(1).round_up_to(Bytes::mib(1)), Bytes::mib(1));
    }

    /// Values with many trailing zeros in base 10 or base 1024, so every
    /// suffix shows up, plus arbitrary ones.
    fn any_nanos() -> impl Strategy<Value = u128> {
        prop_oneof![
            any::<u128>(),
            (0u128..1 << 20, 0u32..=6).prop_map(|(m, k)| (m << (10 * k)) * UNIT),
            (0u128..1 << 10, 7u32..=8).prop_map(|(m, k)| (m << (10 * k)) * UNIT),
            (0u128..100_000, 0u32..=33).prop_map(|(m, p)| m * 10u128.pow(p)),
        ]
    }

    proptest! {
        #[test]
        fn quantity_display_parses_back_to_itself(nanos in any_nanos()) {
            let q = Quantity::from_nanos(nanos);
            prop_assert_eq!(Quantity::parse(&q.to_string()), Ok(q));
        }

        #[test]
        fn parse_never_panics_and_what_it_accepts_round_trips(
            text in "[-+]?[0-9.]{0,25}([eEinumkKMGTP]{0,2}[-+]?[0-9]{0,4})?",
        ) {
            if let Ok(q) = Quantity::parse(&text) {
                prop_assert_eq!(Quantity::parse(&q.to_string()), Ok(q));
            }
        }

        #[test]
        fn parse_matches_exact_arithmetic_for_integers_with_suffixes(
            m in any::<u64>(),
            suffix in 0usize..16,
        ) {
            let (text_suffix, nanos) = match suffix {
                0..=9 => {
                    let (s, p) = [("n", 0), ("u", 3), ("m", 6), ("", 9), ("k", 12),
                        ("M", 15), ("G", 18), ("T", 21), ("P", 24), ("E", 27)][suffix];
                    (s, u128::from(m).checked_mul(10u128.pow(p)))
                }
                _ => {
                    let (s, bits) = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40),
                        ("Pi", 50), ("Ei", 60)][suffix - 10];
                    let units = (u128::from(m) << bits).min(BINARY_CAP_UNITS);
                    (s, Some(units * UNIT))
                }
            };
            let parsed = Quantity::parse(&format!("{m}{text_suffix}")).map(Quantity::nanos);
            match nanos {
                Some(n) => prop_assert_eq!(parsed, Ok(n)),
                None => prop_assert!(matches!(parsed, Err(QuantityError::TooLarge(_)))),
            }
        }

        #[test]
        fn millicores_display_parses_back(m in any::<u64>()) {
            prop_assert_eq!(MilliCores(m).to_string().parse(), Ok(MilliCores(m)));
        }

        #[test]
        fn bytes_display_parses_back(
            b in prop_oneof![any::<u64>(), (0u64..1 << 20, 1u32..=6).prop_map(|(m, k)| m << (10 * k))],
        ) {
            prop_assert_eq!(Bytes(b).to_string().parse(), Ok(Bytes(b)));
        }

        #[test]
        fn round_up_to_gives_the_next_multiple(v in 0..u64::MAX / 2, step in 1..u64::MAX / 2) {
            for (value, step, rounded) in [
                (v, step, MilliCores(v).round_up_to(MilliCores(step)).0),
                (v, step, Bytes(v).round_up_to(Bytes(step)).0),
            ] {
                prop_assert_eq!(rounded % step, 0);
                prop_assert!(rounded >= value);
                prop_assert!(u128::from(rounded) < u128::from(value) + u128::from(step));
            }
        }

        #[test]
        fn round_up_to_small_steps(v in any::<u32>(), step in 1..10_000u64) {
            let rounded = MilliCores(u64::from(v)).round_up_to(MilliCores(step)).0;
            prop_assert_eq!(rounded % step, 0);
            prop_assert!(rounded >= u64::from(v) && rounded < u64::from(v) + step);
        }
    }
}
