//! Real usage traces: one VM of the Bitbrains "Rnd" trace (GWA-T-12), parsed
//! once at load time into two compact vectors of 5-minute samples.
//!
//! The raw data is cleaned the way a metrics pipeline would (see
//! `docs/models.md`): rows with zero capacity (the VM was off) are dropped,
//! rows repeating a timestamp keep the last, negative usage becomes 0 and
//! usage above the provisioned capacity is clamped to it. Timestamps drift a
//! second or two per sample, so rows are placed on the 5-minute grid by the
//! distance to the previous row, not by their absolute time; a hole in the
//! data stays a hole (NaN), which the simulator turns into missing samples.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::ModelError;

/// The trace's sampling step: one row every 5 minutes.
pub const TRACE_STEP_S: i64 = 300;
const HEADER: [&str; 6] = [
    "timestamp_s",
    "cpu_cores",
    "cpu_capacity_mhz",
    "cpu_usage_mhz",
    "mem_capacity_kb",
    "mem_usage_kb",
];

/// One VM's usage, cleaned, as `step_s` samples from `start_s` on.
#[derive(Clone, PartialEq)]
pub struct Trace {
    /// The file it was read from.
    pub source: PathBuf,
    /// Unix time of sample 0 (the first row with the VM on).
    pub start_s: i64,
    pub step_s: i64,
    /// Cores used per sample; NaN where the trace has no data.
    pub cpu_cores: Vec<f32>,
    /// Working set per sample; NaN exactly where `cpu_cores` is.
    pub memory_bytes: Vec<f32>,
    /// The VM's provisioned vCPUs (the most frequent value): what its team
    /// guessed, and so the natural starting CPU request.
    pub requested_cpu_cores: f64,
    /// The VM's provisioned memory (the most frequent value).
    pub requested_memory_bytes: f64,
    pub cleaning: TraceCleaning,
}

/// What cleaning did to the raw rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceCleaning {
    /// Data rows in the file.
    pub rows: usize,
    /// Rows with a zero capacity column: the VM was off. Dropped.
    pub off_rows: usize,
    /// Rows that repeat an earlier row's timestamp, or land on the same
    /// 5-minute slot: the earlier one is dropped, the last kept.
    pub duplicate_rows: usize,
    /// Rows with a negative usage value, read as 0.
    pub negative_rows: usize,
    /// Rows whose CPU or memory usage exceeded the provisioned capacity,
    /// clamped to it.
    pub over_capacity_rows: usize,
    /// Rows that became samples.
    pub kept_rows: usize,
    /// Samples with no row: holes left as NaN.
    pub gap_samples: usize,
}

impl fmt::Debug for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("source", &self.source)
            .field("start_s", &self.start_s)
            .field("step_s", &self.step_s)
            .field("samples", &self.cpu_cores.len())
            .field("requested_cpu_cores", &self.requested_cpu_cores)
            .field("requested_memory_bytes", &self.requested_memory_bytes)
            .field("cleaning", &self.cleaning)
            .finish()
    }
}

impl Trace {
    /// Number of samples, holes included.
    pub fn len(&self) -> usize {
        self.cpu_cores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cpu_cores.is_empty()
    }

    /// Time the trace covers before it wraps around.
    pub fn duration_s(&self) -> i64 {
        self.len() as i64 * self.step_s
    }

    /// The sample holding the value `offset_s` after sample 0, wrapping.
    #[inline]
    pub fn index_at(&self, offset_s: i64) -> Option<usize> {
        let len = self.cpu_cores.len() as i64;
        if len == 0 {
            return None;
        }
        Some(offset_s.div_euclid(self.step_s).rem_euclid(len) as usize)
    }

    /// Parses the CSV text of one VM (see `shared/traces/README.md` for the
    /// columns); `source` names it in errors.
    pub fn parse(reader: impl BufRead, source: &Path) -> Result<Trace, ModelError> {
        let mut rows = Vec::new();
        let mut cleaning = TraceCleaning::default();
        let mut cpu_sizes: BTreeMap<u64, usize> = BTreeMap::new();
        let mut memory_sizes: BTreeMap<u64, usize> = BTreeMap::new();
        let mut lines = reader.lines().enumerate();
        let problem = |line: usize, problem: String, fix: &str| ModelError::Trace {
            path: source.to_path_buf(),
            line,
            problem,
            fix: fix.to_string(),
        };

        let header = match lines.next() {
            Some((_, line)) => line.map_err(|e| read_error(source, e))?,
            None => return Err(problem(1, "the file is empty".into(), "use a trace file")),
        };
        let columns: Vec<&str> = header.trim().split(',').map(str::trim).collect();
        if columns != HEADER {
            return Err(problem(
                1,
                format!("the header is {header:?}"),
                &format!("the trace must have the columns {}", HEADER.join(",")),
            ));
        }

        for (index, line) in lines {
            let line = line.map_err(|e| read_error(source, e))?;
            let line_no = index + 1;
            if line.trim().is_empty() {
                continue;
            }
            let mut values = [0.0f64; 6];
            let mut fields = line.split(',');
            for (slot, name) in values.iter_mut().zip(HEADER) {
                let field = fields.next().unwrap_or("").trim();
                *slot = field.parse().map_err(|_| {
                    problem(
                        line_no,
                        format!("`{name}` is {field:?}, not a number"),
                        "repair or drop the row",
                    )
                })?;
            }
            if fields.next().is_some() {
                return Err(problem(
                    line_no,
                    "more than 6 columns".into(),
                    "repair or drop the row",
                ));
            }
            cleaning.rows += 1;
            let [
                timestamp,
                cores,
                cpu_capacity,
                cpu_usage,
                memory_capacity_kb,
                memory_usage_kb,
            ] = values;
            if cores <= 0.0 || cpu_capacity <= 0.0 || memory_capacity_kb <= 0.0 {
                cleaning.off_rows += 1;
                continue;
            }
            if cpu_usage < 0.0 || memory_usage_kb < 0.0 {
                cleaning.negative_rows += 1;
            }
            let used_cores = cpu_usage.max(0.0) / (cpu_capacity / cores);
            let memory_capacity = memory_capacity_kb * 1024.0;
            let used_memory = memory_usage_kb.max(0.0) * 1024.0;
            if used_cores > cores || used_memory > memory_capacity {
                cleaning.over_capacity_rows += 1;
            }
            *cpu_sizes.entry(cores.to_bits()).or_default() += 1;
            *memory_sizes.entry(memory_capacity.to_bits()).or_default() += 1;
            rows.push(Row {
                timestamp: timestamp as i64,
                cpu_cores: used_cores.min(cores),
                memory_bytes: used_memory.min(memory_capacity),
            });
        }

        // Stable: rows repeating a timestamp stay in file order, so the
        // dedupe below keeps the last one written.
        rows.sort_by_key(|row| row.timestamp);
        let Some(first) = rows.first() else {
            return Err(problem(
                cleaning.rows + 1,
                "no row has the VM on (every capacity is 0)".into(),
                "pick another VM",
            ));
        };
        let start_s = first.timestamp;
        let mut cpu_cores: Vec<f32> = Vec::with_capacity(rows.len());
        let mut memory_bytes: Vec<f32> = Vec::with_capacity(rows.len());
        let mut previous: Option<i64> = None;
        for row in &rows {
            // Steps drift (299 s, 301 s, …): place each row by its distance
            // to the previous one, rounded to whole steps.
            let steps = match previous {
                None => 1,
                Some(previous) => {
                    let gap = row.timestamp - previous;
                    (gap + TRACE_STEP_S / 2).div_euclid(TRACE_STEP_S)
                }
            };
            if steps == 0 {
                cleaning.duplicate_rows += 1;
                cpu_cores.pop();
                memory_bytes.pop();
            } else {
                for _ in 1..steps {
                    cpu_cores.push(f32::NAN);
                    memory_bytes.push(f32::NAN);
                    cleaning.gap_samples += 1;
                }
            }
            cpu_cores.push(row.cpu_cores as f32);
            memory_bytes.push(row.memory_bytes as f32);
            previous = Some(row.timestamp);
        }
        cleaning.kept_rows = rows.len() - cleaning.duplicate_rows;

        Ok(Trace {
            source: source.to_path_buf(),
            start_s,
            step_s: TRACE_STEP_S,
            cpu_cores,
            memory_bytes,
            requested_cpu_cores: most_frequent(&cpu_sizes),
            requested_memory_bytes: most_frequent(&memory_sizes),
            cleaning,
        })
    }
}

struct Row {
    timestamp: i64,
    cpu_cores: f64,
    memory_bytes: f64,
}

/// The value seen most often (ties: the larger, the safer guess).
fn most_frequent(counts: &BTreeMap<u64, usize>) -> f64 {
    counts
        .iter()
        .map(|(bits, count)| (*count, f64::from_bits(*bits)))
        .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map_or(0.0, |(_, value)| value)
}

fn read_error(path: &Path, source: std::io::Error) -> ModelError {
    ModelError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads one VM's trace: a `.csv.gz` (gzip is recognised by its magic
/// bytes, so a plain `.csv` works too).
pub fn load_trace(path: &Path) -> Result<Trace, ModelError> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut reader = BufReader::new(file);
    let gzipped = reader
        .fill_buf()
        .map_err(|e| read_error(path, e))?
        .starts_with(&[0x1f, 0x8b]);
    if gzipped {
        Trace::parse(BufReader::new(MultiGzDecoder::new(reader)), path)
    } else {
        Trace::parse(reader, path)
    }
}

/// The trace file for `vm` in a folder of `vm-NNN.csv.gz` files.
pub fn vm_file(folder: &Path, vm: u32) -> PathBuf {
    folder.join(format!("vm-{vm:03}.csv.gz"))
}
