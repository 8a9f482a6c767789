//! vtde-fuzz: a small mutation fuzzer that runs on stable Rust, with no dependencies
//! beyond `serde_json`, for vtde's parsers of untrusted bytes (image files, `vtde.json`,
//! `.npy` headers, safetensors headers). The targets are the integration tests in
//! `tests/`; this library is the engine they share.
//!
//! How it works: a [`Fuzzer`] starts from seed inputs (real files), and until its time
//! budget ([`budget`], `VTDE_FUZZ_SECONDS`, 3 s by default) is spent it takes an input of
//! its corpus, applies a stack of [`Mutator`] mutations (bit flips, interesting bytes and
//! boundary integers, inserted, deleted and duplicated ranges, truncation, splices with
//! other seeds, dictionary tokens; for JSON, extreme numbers, other types, dropped and
//! duplicated keys) and runs the target on it under `catch_unwind`. Without
//! `VTDE_FUZZ_SECONDS` it also stops after [`DEFAULT_CI_RUNS`] inputs ([`max_runs`],
//! `VTDE_FUZZ_RUNS`), so that CI runs the same inputs on any machine. The target returns
//! `Err(message)` to reject an input; an input whose rejection message is new joins the
//! corpus (a crude stand-in for coverage feedback). The random generator is a seeded
//! xorshift (`VTDE_FUZZ_SEED`), so a run is reproducible up to its time budget.
//!
//! Findings: a panic, an input running longer than [`HANG_SECONDS`], or a single
//! allocation above [`alloc_cap`] (`VTDE_FUZZ_MAX_ALLOC_MB`, 2048 by default). Each is
//! saved under `target/fuzz-findings/<target>/<hash>` (with `<hash>.txt` saying what
//! happened). A panic or an oversized allocation is minimized and reported at the end
//! ([`Report::assert_clean`] fails the test); the allocation itself is let through
//! (memory is committed lazily) unless it is above `VTDE_FUZZ_HARD_ALLOC_MB` (8192 by
//! default). A hang or an allocation above that hard cap cannot be recovered from (a
//! stuck thread cannot be killed, a failed allocation aborts), so the input is saved, the
//! finding printed and the process exits with status 1. Rejections a target marks as notable
//! ([`Fuzzer::notable`], e.g. a decoder panic the runtime caught) are saved under
//! `notes/` and listed, without failing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Distinct rejection messages counted; later new ones are counted together.
const MAX_DISTINCT_ERRORS: usize = 10_000;

/// An input running longer than this many seconds is a finding (a hang).
pub const HANG_SECONDS: u64 = 10;

/// The time budget of one target: `VTDE_FUZZ_SECONDS` (default 3 s, the short CI run).
pub fn budget() -> Duration {
    let secs = std::env::var("VTDE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(3.0);
    Duration::from_secs_f64(secs)
}

/// The most mutated inputs one target runs: `VTDE_FUZZ_RUNS`; by default 20000 when
/// `VTDE_FUZZ_SECONDS` is not set (the CI run: the same inputs on every machine, at most
/// 3 s of them), unlimited when it is (a long run is bounded by time only).
pub fn max_runs() -> u64 {
    let runs = std::env::var("VTDE_FUZZ_RUNS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    match runs {
        Some(n) => n,
        None if std::env::var_os("VTDE_FUZZ_SECONDS").is_none() => DEFAULT_CI_RUNS,
        None => u64::MAX,
    }
}

/// Mutated inputs per target in the default (CI) run.
pub const DEFAULT_CI_RUNS: u64 = 20_000;

/// The random seed: `VTDE_FUZZ_SEED`, or one fixed per target name.
pub fn rng_seed(target: &str) -> u64 {
    std::env::var("VTDE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| fnv1a(target.as_bytes()))
}

/// Largest single allocation allowed while a target runs (`VTDE_FUZZ_MAX_ALLOC_MB`,
/// default 2048 MiB). A bigger request is a finding: the input is saved and the process
/// exits, since an allocation failure would abort it anyway.
pub fn alloc_cap() -> usize {
    ALLOC_CAP.load(Ordering::Relaxed)
}

/// The workspace's `target/` folder (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// The workspace root (for seed files).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// FNV-1a, 64 bits: names findings by their content.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Every regular file under `dir` (recursively), sorted; none when it does not exist.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The object keys and short string values of JSON documents, as dictionary tokens
/// (quoted, as they appear in JSON).
pub fn json_tokens<'a>(documents: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    out.insert(k.clone());
                    walk(child, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, out)),
            Value::String(s) if s.len() <= 80 => {
                out.insert(s.clone());
            }
            _ => {}
        }
    }
    let mut set = std::collections::BTreeSet::new();
    for doc in documents {
        if let Ok(v) = serde_json::from_slice::<Value>(doc) {
            walk(&v, &mut set);
        }
    }
    set.into_iter()
        .map(|s| format!("\"{s}\"").into_bytes())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Random numbers.

/// A xorshift64* generator: small, fast, deterministic.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; 0 is remapped).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random element of `items` (`None` when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len()))
        }
    }

    /// A length biased towards small values, at most `max`.
    pub fn small_len(&mut self, max: usize) -> usize {
        let bits = self.below(12) as u32;
        (1 + self.below(1usize << bits)).min(max.max(1))
    }
}

// ---------------------------------------------------------------------------------------
// Mutations.

const INTERESTING_8: [u8; 9] = [0, 1, 0x7f, 0x80, 0xff, 0x10, 0x20, 0x40, 0xfe];
const INTERESTING_16: [u16; 10] = [
    0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0xfffe,
];
const INTERESTING_32: [u32; 10] = [
    0,
    1,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0xffff_fffe,
    0x0100_0000,
];
const INTERESTING_64: [u64; 8] = [
    0,
    1,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 7,
];

/// Extreme JSON numbers and other values that replace a JSON value.
const JSON_EXTREMES: [&str; 30] = [
    "0",
    "-1",
    "1",
    "0.5",
    "-0.0",
    "1e38",
    "-1e38",
    "3.4028235e38",
    "3.5e38",
    "1e-45",
    "1e-300",
    "1e308",
    "-1e308",
    "1e309",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "123456789012345678901234567890",
    "\"NaN\"",
    "\"inf\"",
    "\"-Infinity\"",
    "null",
    "\"\"",
];

const JSON_OTHERS: [&str; 12] = [
    "true",
    "false",
    "[]",
    "{}",
    "[0]",
    "[1e38, -1, 0]",
    "\"../../etc/passwd\"",
    "\"/dev/zero\"",
    "\"a\\u0000b\"",
    "\"\\ud800\"",
    "\"é\"",
    "\".\"",
];

/// Applies mutations to inputs; handed to custom mutation functions.
pub struct Mutator<'a> {
    /// The random generator.
    pub rng: &'a mut Rng,
    /// Inputs to splice from (the corpus).
    pub others: &'a [Vec<u8>],
    /// Tokens worth inserting (format magic, JSON keys and values).
    pub dictionary: &'a [Vec<u8>],
    /// Largest input produced.
    pub max_len: usize,
}

impl Mutator<'_> {
    /// One to 16 stacked byte-level mutations.
    pub fn bytes(&mut self, data: &mut Vec<u8>) {
        let n = 1usize << self.rng.below(5);
        for _ in 0..n {
            self.byte_once(data);
        }
        data.truncate(self.max_len);
    }

    /// Byte-level mutations confined to `data[start..end]` (the rest kept).
    pub fn bytes_in(&mut self, data: &mut Vec<u8>, start: usize, end: usize) {
        let end = end.min(data.len());
        let start = start.min(end);
        let mut middle = data[start..end].to_vec();
        self.bytes(&mut middle);
        data.splice(start..end, middle);
    }

    fn byte_once(&mut self, data: &mut Vec<u8>) {
        let rng = &mut *self.rng;
        if data.is_empty() {
            data.push(rng.next_u64() as u8);
            return;
        }
        let len = data.len();
        let at = rng.below(len);
        match rng.below(16) {
            0 => data[at] ^= 1 << rng.below(8),
            1 => data[at] = INTERESTING_8[rng.below(INTERESTING_8.len())],
            2 => data[at] = rng.next_u64() as u8,
            3 => data[at] = data[at].wrapping_add(rng.below(35) as u8).wrapping_sub(17),
            4 => {
                let v = INTERESTING_16[rng.below(INTERESTING_16.len())];
                let b = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                overwrite(data, at, &b);
            }
            5 => {
                let v = INTERESTING_32[rng.below(INTERESTING_32.len())];
                let b = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                overwrite(data, at, &b);
            }
            6 => {
                let v = INTERESTING_64[rng.below(INTERESTING_64.len())];
                let b = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                overwrite(data, at, &b);
            }
            7 => {
                // Insert random bytes or a run of one byte.
                let n = rng.small_len(256);
                let fill: Vec<u8> = if rng.one_in(2) {
                    (0..n).map(|_| rng.next_u64() as u8).collect()
                } else {
                    vec![INTERESTING_8[rng.below(INTERESTING_8.len())]; n]
                };
                data.splice(at..at, fill);
            }
            8 => {
                let n = rng.small_len(len - at);
                data.drain(at..at + n);
            }
            9 => {
                // Duplicate a range (at a random place).
                let n = rng.small_len(len - at);
                let chunk = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, chunk);
            }
            10 => {
                // Copy a range over another place.
                let n = rng.small_len(len - at);
                let chunk = data[at..at + n].to_vec();
                let to = rng.below(len);
                overwrite(data, to, &chunk);
            }
            11 => data.truncate(at),
            12 => {
                // Splice: our head, another input's tail.
                if let Some(other) = self.rng_pick_other() {
                    let from = self.rng.below(other.len() + 1);
                    data.truncate(at);
                    data.extend_from_slice(&other[from..]);
                }
            }
            13 => {
                // Insert a range of another input.
                if let Some(other) = self.rng_pick_other() {
                    if !other.is_empty() {
                        let from = self.rng.below(other.len());
                        let n = self.rng.small_len(other.len() - from);
                        data.splice(at..at, other[from..from + n].iter().copied());
                    }
                }
            }
            14 | 15 => {
                if let Some(token) = rng.pick(self.dictionary) {
                    if rng.one_in(2) {
                        overwrite(data, at, token);
                    } else {
                        data.splice(at..at, token.iter().copied());
                    }
                } else {
                    data[at] ^= 0xff;
                }
            }
            _ => {}
        }
    }

    fn rng_pick_other(&mut self) -> Option<Vec<u8>> {
        self.rng.pick(self.others).cloned()
    }

    /// One to four structural JSON mutations when `data` parses as JSON (then it is
    /// written back, possibly with a duplicated key); `false` (unchanged) otherwise.
    pub fn json(&mut self, data: &mut Vec<u8>) -> bool {
        let Ok(mut value) = serde_json::from_slice::<Value>(data) else {
            return false;
        };
        let n = if self.rng.one_in(2) {
            1
        } else {
            1 + self.rng.below(4)
        };
        let mut duplicate = None;
        for _ in 0..n {
            if self.rng.one_in(6) {
                duplicate = Some((self.rng.next_u64(), self.json_replacement(&value)));
            } else {
                self.json_once(&mut value);
            }
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut objects = count_objects(&value);
        let dup = duplicate.map(|(r, v)| {
            let which = (r % objects.max(1) as u64) as usize;
            (which, r, v)
        });
        write_json(&value, &mut out, &dup, &mut objects);
        *data = out;
        data.truncate(self.max_len);
        true
    }

    /// A replacement value: an extreme number, another type, or a value found elsewhere.
    fn json_replacement(&mut self, root: &Value) -> Value {
        let rng = &mut *self.rng;
        match rng.below(8) {
            0..=3 => {
                let s = JSON_EXTREMES[rng.below(JSON_EXTREMES.len())];
                serde_json::from_str(s).unwrap_or(Value::Null)
            }
            4 => {
                let s = JSON_OTHERS[rng.below(JSON_OTHERS.len())];
                serde_json::from_str(s).unwrap_or(Value::Null)
            }
            5 => {
                // A string from the dictionary.
                match rng.pick(self.dictionary) {
                    Some(t) => Value::String(String::from_utf8_lossy(t).trim_matches('"').into()),
                    None => Value::Null,
                }
            }
            6 => Value::String("x".repeat(rng.small_len(5000))),
            _ => {
                // Some value of this document (splicing within it).
                let paths = all_paths(root);
                match rng.pick(&paths) {
                    Some(p) => get(root, p).cloned().unwrap_or(Value::Null),
                    None => Value::Null,
                }
            }
        }
    }

    fn json_once(&mut self, root: &mut Value) {
        let paths = all_paths(root);
        let Some(path) = self.rng.pick(&paths).cloned() else {
            *root = self.json_replacement(&Value::Null);
            return;
        };
        let replacement = self.json_replacement(root);
        let choice = self.rng.below(12);
        let parent_path = &path[..path.len().saturating_sub(1)];
        match choice {
            // Replace every occurrence of this scalar (everywhere, or under keys of the
            // same name): sizes that must agree change together.
            10 | 11 => {
                if let Some(old) = get(root, &path).filter(|v| !v.is_object() && !v.is_array()) {
                    let old = old.clone();
                    let key = match path.last() {
                        Some(Seg::Key(k)) if choice == 11 => Some(k.clone()),
                        _ => None,
                    };
                    replace_all(root, &old, &replacement, key.as_deref(), None);
                }
            }
            // Drop this key (or array element).
            0 | 1 if !path.is_empty() => {
                if let (Some(parent), Some(last)) = (get_mut(root, parent_path), path.last()) {
                    match (parent, last) {
                        (Value::Object(map), Seg::Key(k)) => {
                            map.remove(k);
                        }
                        (Value::Array(items), Seg::Index(i)) if *i < items.len() => {
                            items.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            // Add an unknown key, or duplicate an array element.
            2 => {
                if let Some(node) = get_mut(root, &path) {
                    match node {
                        Value::Object(map) => {
                            let key = match self.rng.pick(self.dictionary) {
                                Some(t) if self.rng.one_in(2) => {
                                    String::from_utf8_lossy(t).trim_matches('"').to_owned()
                                }
                                _ => format!("unknown_{}", self.rng.below(4)),
                            };
                            map.insert(key, replacement);
                        }
                        Value::Array(items) => {
                            if let Some(first) = items.first().cloned() {
                                let extra = self.rng.small_len(64);
                                items.extend(std::iter::repeat_n(first, extra));
                            } else {
                                items.push(replacement);
                            }
                        }
                        other => *other = replacement,
                    }
                }
            }
            // Nudge a number.
            3 => {
                if let Some(node) = get_mut(root, &path) {
                    if let Some(f) = node.as_f64() {
                        let nudged = match self.rng.below(4) {
                            0 => -f,
                            1 => f * 1e6,
                            2 => f + 1.0,
                            _ => f - 1.0,
                        };
                        if let Some(n) = serde_json::Number::from_f64(nudged) {
                            *node = if nudged.fract() == 0.0 && nudged.abs() < 9e15 {
                                Value::from(nudged as i64)
                            } else {
                                Value::Number(n)
                            };
                        }
                    } else {
                        *node = replacement;
                    }
                }
            }
            // Replace the value.
            _ => {
                if let Some(node) = get_mut(root, &path) {
                    *node = replacement;
                }
            }
        }
    }
}

fn overwrite(data: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    let end = at + bytes.len();
    if end > data.len() {
        data.resize(end, 0);
    }
    data[at..end].copy_from_slice(bytes);
}

/// A step of a path into a JSON value.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn all_paths(root: &Value) -> Vec<Vec<Seg>> {
    fn walk(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
        out.push(path.clone());
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    path.push(Seg::Key(k.clone()));
                    walk(child, path, out);
                    path.pop();
                }
            }
            Value::Array(items) => {
                // Long arrays: a few elements are enough.
                for (i, child) in items.iter().enumerate().take(8) {
                    path.push(Seg::Index(i));
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(root, &mut Vec::new(), &mut out);
    out
}

fn get<'v>(root: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(*i),
    })
}

fn get_mut<'v>(root: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(root, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k),
        Seg::Index(i) => v.get_mut(*i),
    })
}

/// Replaces every scalar equal to `old` (only under the key `key`, when given).
fn replace_all(v: &mut Value, old: &Value, new: &Value, key: Option<&str>, here: Option<&str>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                replace_all(child, old, new, key, Some(k));
            }
        }
        Value::Array(items) => {
            for child in items {
                replace_all(child, old, new, key, here);
            }
        }
        scalar => {
            if scalar == old && (key.is_none() || key == here) {
                *scalar = new.clone();
            }
        }
    }
}

fn count_objects(v: &Value) -> usize {
    match v {
        Value::Object(map) => 1 + map.values().map(count_objects).sum::<usize>(),
        Value::Array(items) => items.iter().map(count_objects).sum(),
        _ => 0,
    }
}

/// Writes `v` as JSON; in the `dup.0`-th object counted down from `remaining`, one key
/// is written twice, the second time with `dup.2` as its value.
fn write_json(
    v: &Value,
    out: &mut Vec<u8>,
    dup: &Option<(usize, u64, Value)>,
    remaining: &mut usize,
) {
    match v {
        Value::Object(map) => {
            *remaining = remaining.saturating_sub(1);
            let this = dup.as_ref().filter(|(which, _, _)| *which == *remaining);
            out.push(b'{');
            let mut first = true;
            let dup_key = this.and_then(|(_, r, _)| {
                let keys: Vec<&String> = map.keys().collect();
                keys.get((*r as usize) % keys.len().max(1))
                    .map(|k| (*k).clone())
            });
            for (k, child) in map {
                if !first {
                    out.push(b',');
                }
                first = false;
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_json(child, out, dup, remaining);
                if dup_key.as_deref() == Some(k.as_str()) {
                    if let Some((_, _, value)) = this {
                        out.push(b',');
                        let _ = serde_json::to_writer(&mut *out, k);
                        out.push(b':');
                        let _ = serde_json::to_writer(&mut *out, value);
                    }
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, child) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(child, out, dup, remaining);
            }
            out.push(b']');
        }
        other => {
            let _ = serde_json::to_writer(&mut *out, other);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Process-wide state: the input in hand (for the hang watchdog and the allocation cap),
// the last panic, the allocator.

static ALLOC_CAP: AtomicUsize = AtomicUsize::new(2048 << 20);
/// Whether a fuzzing run is under way (panics are recorded quietly, allocations capped).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Set while the allocation-cap handler runs (it allocates itself).
static IN_HANDLER: AtomicBool = AtomicBool::new(false);
/// Milliseconds since [`EPOCH`] at which the running input started; 0 when idle.
static RUN_STARTED_MS: AtomicU64 = AtomicU64::new(0);
static EPOCH: Mutex<Option<Instant>> = Mutex::new(None);

struct InHand {
    target: String,
    dir: PathBuf,
    input: Vec<u8>,
}

static IN_HAND: Mutex<Option<InHand>> = Mutex::new(None);
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
/// The first allocation over the cap during the input in hand (let through).
static OVERSIZED: Mutex<Option<String>> = Mutex::new(None);
/// Allocations above this end the process (saved first): `VTDE_FUZZ_HARD_ALLOC_MB`.
static HARD_ALLOC_CAP: AtomicUsize = AtomicUsize::new(8192 << 20);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The system allocator, refusing (as a finding) single allocations above [`alloc_cap`]
/// while a target runs.
struct CappedAlloc;

// SAFETY: every method forwards to `System` with the caller's layout; the cap check only
// reads atomics and, past the cap, never returns (it saves the input and exits).
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CappedAlloc = CappedAlloc;

fn check_size(size: usize) {
    if size > ALLOC_CAP.load(Ordering::Relaxed)
        && ACTIVE.load(Ordering::Relaxed)
        && !IN_HANDLER.swap(true, Ordering::SeqCst)
    {
        let trace = std::backtrace::Backtrace::force_capture().to_string();
        let what = format!(
            "allocation of {size} bytes (over the cap of {} MiB) at {}",
            ALLOC_CAP.load(Ordering::Relaxed) >> 20,
            callers(&trace)
        );
        if size > HARD_ALLOC_CAP.load(Ordering::Relaxed) {
            // Too big to let through: it may well fail, and a failed allocation aborts.
            fatal(&format!("{what}\n{trace}"));
        }
        // Let it through (memory is committed lazily) and report it after the input.
        lock(&OVERSIZED).get_or_insert(what);
        IN_HANDLER.store(false, Ordering::SeqCst);
    }
}

/// The first frames of a backtrace outside the allocator and the standard library.
fn callers(trace: &str) -> String {
    let skip = [
        "vtde_fuzz::check_size",
        "vtde_fuzz::callers",
        "__rust",
        "__rdl",
        "alloc::",
        "std::",
        "core::",
        "<alloc::",
        "<std::",
        "<core::",
        "RawVec",
    ];
    let frames: Vec<&str> = trace
        .lines()
        .filter_map(|line| {
            let (index, name) = line.trim_start().split_once(": ")?;
            index.parse::<u32>().ok()?;
            Some(name.trim())
        })
        .filter(|name| {
            !skip.iter().any(|s| name.starts_with(s))
                && !["CappedAlloc", " as alloc::", " as core::"]
                    .iter()
                    .any(|s| name.contains(s))
        })
        .take(3)
        .collect();
    if frames.is_empty() {
        "an unknown place".into()
    } else {
        frames.join(" <- ")
    }
}

/// Saves the input in hand as a finding, prints it and exits with status 1.
fn fatal(what: &str) -> ! {
    let saved = lock(&IN_HAND)
        .as_ref()
        .and_then(|h| save_finding(&h.dir, &h.input, what).map(|p| (h.target.clone(), p)));
    let mut err = std::io::stderr().lock();
    match saved {
        Some((target, path)) => {
            let _ = writeln!(
                err,
                "\nFUZZ FINDING ({target}): {what}\n  input saved as {}",
                path.display()
            );
        }
        None => {
            let _ = writeln!(err, "\nFUZZ FINDING: {what} (input not saved)");
        }
    }
    let _ = err.flush();
    std::process::exit(1)
}

fn save_finding(dir: &Path, input: &[u8], what: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(format!("{:016x}", fnv1a(input)));
    std::fs::write(&path, input).ok()?;
    let _ = std::fs::write(path.with_extension("txt"), what);
    Some(path)
}

fn now_ms() -> u64 {
    let epoch = *lock(&EPOCH).get_or_insert_with(Instant::now);
    epoch.elapsed().as_millis() as u64 + 1
}

fn install_hooks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Some(mb) = std::env::var("VTDE_FUZZ_MAX_ALLOC_MB")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        {
            ALLOC_CAP.store(mb.saturating_mul(1 << 20), Ordering::Relaxed);
        }
        if let Some(mb) = std::env::var("VTDE_FUZZ_HARD_ALLOC_MB")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
        {
            HARD_ALLOC_CAP.store(mb.saturating_mul(1 << 20), Ordering::Relaxed);
        }
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !ACTIVE.load(Ordering::Relaxed) {
                default_hook(info);
                return;
            }
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("?");
            *lock(&LAST_PANIC) = Some(format!("panicked at {at} (thread {name}): {payload}"));
        }));
        let _ = now_ms();
        std::thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(250));
                let started = RUN_STARTED_MS.load(Ordering::Relaxed);
                if started != 0 && now_ms().saturating_sub(started) > HANG_SECONDS * 1000 {
                    fatal(&format!("hang: one input ran longer than {HANG_SECONDS} s"));
                }
            })
            .ok();
    });
}

// ---------------------------------------------------------------------------------------
// The fuzzer.

/// What a target does with an input: `Ok` (accepted) or `Err(message)` (rejected). A
/// panic is a finding.
pub type Target<'a> = dyn Fn(&[u8]) -> Result<(), String> + 'a;

/// A custom mutation: changes the input using the [`Mutator`].
pub type MutateFn<'a> = dyn Fn(&mut Mutator<'_>, &mut Vec<u8>) + 'a;

/// Says whether a rejection message is worth listing.
pub type NotableFn<'a> = dyn Fn(&str) -> bool + 'a;

/// Says whether an input may join the corpus.
pub type KeepFn<'a> = dyn Fn(&[u8]) -> bool + 'a;

/// A fuzzing run of one target.
pub struct Fuzzer<'a> {
    name: String,
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<Vec<u8>>,
    mutate: Option<Box<MutateFn<'a>>>,
    json: bool,
    notable: Option<Box<NotableFn<'a>>>,
    keep: Option<Box<KeepFn<'a>>>,
    max_len: usize,
    budget: Duration,
    max_runs: u64,
    seed: u64,
    findings_dir: PathBuf,
}

impl<'a> Fuzzer<'a> {
    /// A run of the target `name`, with the time budget [`budget`], the seed
    /// [`rng_seed`], findings under `target/fuzz-findings/<name>/`.
    pub fn new(name: &str) -> Self {
        Fuzzer {
            name: name.to_owned(),
            seeds: Vec::new(),
            dictionary: Vec::new(),
            mutate: None,
            json: false,
            notable: None,
            keep: None,
            max_len: 1 << 20,
            budget: budget(),
            max_runs: max_runs(),
            seed: rng_seed(name),
            findings_dir: target_dir().join("fuzz-findings").join(name),
        }
    }

    /// Adds a seed input.
    pub fn seed(mut self, input: Vec<u8>) -> Self {
        self.seeds.push(input);
        self
    }

    /// Adds every file under `dir` as a seed.
    pub fn seed_files(mut self, dir: &Path) -> Self {
        for path in files_under(dir) {
            if let Ok(bytes) = std::fs::read(&path) {
                self.seeds.push(bytes);
            }
        }
        self
    }

    /// Tokens the mutations insert (format magic, keys, values).
    pub fn dictionary(mut self, tokens: &[&[u8]]) -> Self {
        self.dictionary.extend(tokens.iter().map(|t| t.to_vec()));
        self
    }

    /// Inputs are JSON: most mutations are structural ([`Mutator::json`]).
    pub fn json(mut self) -> Self {
        self.json = true;
        self
    }

    /// A custom mutation instead of the default ones.
    pub fn mutate_with(mut self, f: impl Fn(&mut Mutator<'_>, &mut Vec<u8>) + 'a) -> Self {
        self.mutate = Some(Box::new(f));
        self
    }

    /// Rejections worth listing (saved under `notes/`, not failures).
    pub fn notable(mut self, f: impl Fn(&str) -> bool + 'a) -> Self {
        self.notable = Some(Box::new(f));
        self
    }

    /// Which rejected inputs may join the corpus (default: all; JSON targets: those that
    /// still parse as JSON). Keeps the corpus from filling with inputs that only fail
    /// early.
    pub fn keep_if(mut self, f: impl Fn(&[u8]) -> bool + 'a) -> Self {
        self.keep = Some(Box::new(f));
        self
    }

    /// Largest input produced (default 1 MiB).
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Overrides the time budget.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Overrides the most mutated inputs run.
    pub fn max_runs(mut self, runs: u64) -> Self {
        self.max_runs = runs;
        self
    }

    /// Overrides where findings are saved.
    pub fn findings_dir(mut self, dir: PathBuf) -> Self {
        self.findings_dir = dir;
        self
    }

    /// Runs `target` until the budget is spent, then prints and returns the report.
    pub fn run(self, target: &Target<'_>) -> Report {
        install_hooks();
        *lock(&IN_HAND) = Some(InHand {
            target: self.name.clone(),
            dir: self.findings_dir.clone(),
            input: Vec::new(),
        });
        ACTIVE.store(true, Ordering::SeqCst);
        let report = self.run_loop(target);
        ACTIVE.store(false, Ordering::SeqCst);
        *lock(&IN_HAND) = None;
        report.print();
        report
    }

    fn run_loop(&self, target: &Target<'_>) -> Report {
        let mut rng = Rng::new(self.seed);
        let mut report = Report {
            target: self.name.clone(),
            seed: self.seed,
            ..Report::default()
        };
        let start = Instant::now();
        let mut corpus: Vec<Vec<u8>> = self.seeds.clone();
        if corpus.is_empty() {
            corpus.push(Vec::new());
        }
        let corpus_cap = corpus.len() + 512;
        let mut findings: BTreeMap<String, Finding> = BTreeMap::new();
        let mut notes: BTreeMap<String, Finding> = BTreeMap::new();
        let mut input = Vec::new();
        let mut i = 0usize;
        loop {
            // The seeds first, unchanged, then mutations until the budget is spent.
            if i < self.seeds.len() {
                input.clone_from(&self.seeds[i]);
            } else {
                let mutated = (i - self.seeds.len()) as u64;
                if start.elapsed() >= self.budget || mutated >= self.max_runs {
                    break;
                }
                let base = rng.below(corpus.len());
                input.clone_from(&corpus[base]);
                let mut m = Mutator {
                    rng: &mut rng,
                    others: &corpus,
                    dictionary: &self.dictionary,
                    max_len: self.max_len,
                };
                let mutated = std::panic::catch_unwind(AssertUnwindSafe(|| match &self.mutate {
                    Some(f) => f(&mut m, &mut input),
                    None => {
                        if !(self.json && !m.rng.one_in(5) && m.json(&mut input)) {
                            m.bytes(&mut input);
                        }
                    }
                }));
                if let Err(payload) = mutated {
                    // A bug of the mutation, not of the target: say so, and fail.
                    let message = lock(&LAST_PANIC).take().unwrap_or_default();
                    eprintln!("fuzz {}: the mutation itself {message}", self.name);
                    ACTIVE.store(false, Ordering::SeqCst);
                    std::panic::resume_unwind(payload);
                }
            }
            i += 1;
            let (outcome, took) = run_one(target, &input);
            report.executions += 1;
            if took > report.slowest.0 {
                report.slowest = (took, input.len());
            }
            match outcome {
                Outcome::Accepted => {
                    report.accepted += 1;
                    if rng.one_in(64) && corpus.len() < corpus_cap {
                        corpus.push(input.clone());
                    }
                }
                Outcome::Rejected(message) => {
                    let mut key = normalize(&message);
                    if report.errors.len() >= MAX_DISTINCT_ERRORS
                        && !report.errors.contains_key(&key)
                    {
                        key = "(other messages, past the first 10000 distinct ones)".into();
                    }
                    let count = report.errors.entry(key.clone()).or_insert(0);
                    *count += 1;
                    let usable = match &self.keep {
                        Some(keep) => keep(&input),
                        None => !self.json || serde_json::from_slice::<Value>(&input).is_ok(),
                    };
                    if *count == 1 && usable && corpus.len() < corpus_cap {
                        corpus.push(input.clone());
                    }
                    if self.notable.as_ref().is_some_and(|f| f(&message)) {
                        record(
                            &mut notes,
                            &self.findings_dir.join("notes"),
                            key,
                            message,
                            &input,
                        );
                    }
                }
                Outcome::Panicked(message) => {
                    let key = normalize(&message);
                    record(&mut findings, &self.findings_dir, key, message, &input);
                }
            }
        }
        report.elapsed = start.elapsed();
        // Shrink each finding's input (a few seconds each at most).
        for finding in findings.values_mut() {
            self.minimize(target, finding);
        }
        report.findings = findings.into_values().collect();
        report.notes = notes.into_values().collect();
        report
    }

    /// Deletes ranges of a finding's input while it still panics the same way.
    fn minimize(&self, target: &Target<'_>, finding: &mut Finding) {
        let Ok(mut best) = std::fs::read(&finding.input) else {
            return;
        };
        let key = normalize(&finding.message);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut chunk = best.len().div_ceil(2).max(1);
        while chunk >= 1 && Instant::now() < deadline {
            let mut at = 0;
            let mut shrunk = false;
            while at < best.len() && Instant::now() < deadline {
                let mut candidate = best.clone();
                candidate.drain(at..(at + chunk).min(candidate.len()));
                match run_one(target, &candidate).0 {
                    Outcome::Panicked(m) if normalize(&m) == key => {
                        best = candidate;
                        shrunk = true;
                    }
                    _ => at += chunk,
                }
            }
            if !shrunk {
                if chunk == 1 {
                    break;
                }
                chunk /= 2;
            }
        }
        if best.len() < finding.size {
            if let Some(path) = save_finding(&self.findings_dir, &best, &finding.message) {
                finding.input = path;
                finding.size = best.len();
            }
        }
    }
}

enum Outcome {
    Accepted,
    Rejected(String),
    Panicked(String),
}

fn run_one(target: &Target<'_>, input: &[u8]) -> (Outcome, Duration) {
    if let Some(h) = lock(&IN_HAND).as_mut() {
        h.input.clear();
        h.input.extend_from_slice(input);
    }
    *lock(&LAST_PANIC) = None;
    *lock(&OVERSIZED) = None;
    let started = Instant::now();
    RUN_STARTED_MS.store(now_ms(), Ordering::Relaxed);
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| target(input)));
    RUN_STARTED_MS.store(0, Ordering::Relaxed);
    let took = started.elapsed();
    if let Some(what) = lock(&OVERSIZED).take() {
        return (Outcome::Panicked(what), took);
    }
    let outcome = match result {
        Ok(Ok(())) => Outcome::Accepted,
        Ok(Err(message)) => Outcome::Rejected(message),
        Err(_) => Outcome::Panicked(
            lock(&LAST_PANIC)
                .take()
                .unwrap_or_else(|| "panicked".into()),
        ),
    };
    (outcome, took)
}

fn record(
    map: &mut BTreeMap<String, Finding>,
    dir: &Path,
    key: String,
    message: String,
    input: &[u8],
) {
    let entry = map.entry(key);
    match entry {
        std::collections::btree_map::Entry::Occupied(mut e) => {
            let f = e.get_mut();
            f.count += 1;
            if input.len() < f.size {
                if let Some(path) = save_finding(dir, input, &message) {
                    f.input = path;
                    f.size = input.len();
                }
            }
        }
        std::collections::btree_map::Entry::Vacant(e) => {
            let path = save_finding(dir, input, &message).unwrap_or_default();
            e.insert(Finding {
                message,
                input: path,
                size: input.len(),
                count: 1,
            });
        }
    }
}

/// A message with its numbers and quoted parts replaced, so that messages differing only
/// in values count as one.
pub fn normalize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(200));
    let mut in_number = false;
    let mut in_quotes = false;
    for c in message.chars() {
        if c == '"' {
            in_quotes = !in_quotes;
            if in_quotes {
                out.push_str("\"…");
            } else {
                out.push('"');
            }
            in_number = false;
        } else if in_quotes {
            continue;
        } else if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
        if out.len() >= 160 {
            break;
        }
    }
    out
}

/// One distinct panic (or notable rejection): the smallest input seen, saved.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The panic message (with its location), the oversized allocation (with its
    /// callers) or the rejection message.
    pub message: String,
    /// Where the smallest input is saved.
    pub input: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// How many inputs ended this way.
    pub count: u64,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// The target's name.
    pub target: String,
    /// The random seed.
    pub seed: u64,
    /// Inputs run.
    pub executions: u64,
    /// Inputs the target accepted.
    pub accepted: u64,
    /// Time spent.
    pub elapsed: Duration,
    /// Rejection messages (normalized) and how often each came.
    pub errors: HashMap<String, u64>,
    /// The slowest input: its time and size.
    pub slowest: (Duration, usize),
    /// Panics and oversized allocations.
    pub findings: Vec<Finding>,
    /// Notable rejections.
    pub notes: Vec<Finding>,
}

impl Report {
    /// Prints the summary: executions, rate, top rejection messages, findings.
    pub fn print(&self) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mut out = String::new();
        out.push_str(&format!(
            "fuzz {}: {} executions in {:.1} s ({:.0}/s), {} accepted, seed {}, slowest input {:.3} s ({} bytes)\n",
            self.target,
            self.executions,
            secs,
            self.executions as f64 / secs,
            self.accepted,
            self.seed,
            self.slowest.0.as_secs_f64(),
            self.slowest.1,
        ));
        let mut errors: Vec<(&String, &u64)> = self.errors.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        out.push_str(&format!(
            "  {} distinct rejection messages; the most frequent:\n",
            errors.len()
        ));
        for (message, count) in errors.iter().take(8) {
            out.push_str(&format!("    {count:>9}  {message}\n"));
        }
        for (label, list) in [
            ("notable rejections", &self.notes),
            ("FINDINGS (panics, oversized allocations)", &self.findings),
        ] {
            out.push_str(&format!("  {}: {}\n", label, list.len()));
            for f in list {
                out.push_str(&format!(
                    "    {} x{}  {} ({} bytes)\n",
                    f.message,
                    f.count,
                    f.input.display(),
                    f.size
                ));
            }
        }
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(out.as_bytes());
    }

    /// Fails (panics) when the run found panics, listing them.
    pub fn assert_clean(&self) {
        if self.executions == 0 {
            panic!("fuzz {}: no input was run", self.target);
        }
        if !self.findings.is_empty() {
            let list: Vec<String> = self
                .findings
                .iter()
                .map(|f| format!("{} ({})", f.message, f.input.display()))
                .collect();
            panic!(
                "fuzz {}: {} finding(s):\n{}",
                self.target,
                list.len(),
                list.join("\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_spreads() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..4).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(Rng::new(0).below(0), 0);
    }

    #[test]
    fn json_mutations_keep_json_and_can_duplicate_keys() {
        let mut rng = Rng::new(1);
        let seed = br#"{"a": 1, "b": {"c": [1, 2, 3], "d": "x"}}"#.to_vec();
        let mut duplicated = false;
        let mut changed = 0;
        for _ in 0..500 {
            let mut m = Mutator {
                rng: &mut rng,
                others: &[],
                dictionary: &[],
                max_len: 1 << 20,
            };
            let mut input = seed.clone();
            assert!(m.json(&mut input));
            let text = String::from_utf8(input.clone()).unwrap();
            // Still JSON (serde_json keeps the last of duplicated keys).
            assert!(serde_json::from_slice::<Value>(&input).is_ok(), "{text}");
            duplicated |= text.matches("\"a\":").count() > 1 || text.matches("\"d\":").count() > 1;
            changed += usize::from(input != seed);
        }
        assert!(duplicated);
        assert!(changed > 400);
    }

    #[test]
    fn byte_mutations_respect_max_len_and_region() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let mut m = Mutator {
                rng: &mut rng,
                others: &[vec![9; 100]],
                dictionary: &[b"TOKEN".to_vec()],
                max_len: 64,
            };
            let mut input = vec![0u8; 50];
            m.bytes(&mut input);
            assert!(input.len() <= 64);
            let mut framed = vec![1u8; 40];
            m.bytes_in(&mut framed, 10, 20);
            assert_eq!(&framed[..10], &[1u8; 10]);
            assert!(framed[framed.len() - 20..].iter().all(|&b| b == 1));
        }
    }

    /// The engine finds a planted bug reachable only by mutation, saves and shrinks its
    /// input, and reports it.
    #[test]
    fn finds_and_minimizes_a_planted_panic() {
        let dir = tempfile_dir();
        let report = Fuzzer::new("selftest")
            .seed(b"hello world, this is a seed".to_vec())
            .budget(Duration::from_secs(2))
            .max_runs(u64::MAX)
            .findings_dir(dir.clone())
            .run(&|data: &[u8]| {
                if data.windows(2).any(|w| w == [0xff, 0xff]) {
                    panic!("planted bug");
                }
                if data.len() > 40 {
                    return Err(format!("too long: {}", data.len()));
                }
                Ok(())
            });
        assert!(report.executions > 100);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert!(f.message.contains("planted bug"), "{}", f.message);
        assert!(f.message.contains("lib.rs"), "{}", f.message);
        assert_eq!(std::fs::read(&f.input).unwrap(), vec![0xff, 0xff]);
        assert!(report.errors.contains_key("too long: N"));

        // An allocation over the cap (let through: calloc commits no memory).
        let report = Fuzzer::new("selftest-alloc")
            .seed(b"xxALLOCxx".to_vec())
            .budget(Duration::from_millis(500))
            .max_runs(u64::MAX)
            .findings_dir(dir.clone())
            .run(&|data: &[u8]| {
                if data.windows(5).any(|w| w == b"ALLOC") {
                    let big = vec![0u8; alloc_cap() + 1];
                    std::hint::black_box(&big);
                }
                Ok(())
            });
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        let f = &report.findings[0];
        assert!(f.message.starts_with("allocation of "), "{}", f.message);
        assert!(
            f.message.contains("tests::finds_and_minimizes"),
            "{}",
            f.message
        );
        assert_eq!(std::fs::read(&f.input).unwrap(), b"ALLOC");
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vtde-fuzz-selftest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
