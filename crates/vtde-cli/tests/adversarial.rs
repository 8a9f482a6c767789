//! The adversarial corpus of issue 11, end to end through the `vtde` binary: every case
//! of `tests/fixtures/adversarial/cases.json` (written by
//! `tools/make_adversarial_corpus.py`) is prepared in a temporary directory of its own
//! and run with a timeout and a memory limit; its exit code, the texts stderr must and
//! must not hold, stdout and the outputs are checked, and every file the run was not
//! meant to write is compared byte for byte before and after. One test runs every case
//! and reports every failure at the end; `-- --nocapture` prints the table of cases.
//!
//! The expected behaviour of each case is the (and `docs/cli.md`'s): exit codes
//! from their definition in `main`, messages by the file or field they must name.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// What no stderr may hold: Rust's panic message (`thread 'x' panicked at src/a.rs:1:2:`),
/// its backtrace, or its hint to set `RUST_BACKTRACE`. (Not the bare word "panicked":
/// vtde's one-line error for a caught decoder panic says "the decoder panicked on this
/// file".)
const ALWAYS_FORBIDDEN: [&str; 3] = ["panicked at", "RUST_BACKTRACE", "stack backtrace"];

/// A run that takes longer than this hangs: it is killed and the case fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The address-space limit of every run (`ulimit -v`, KiB): a run that reads without
/// bound fails here instead of taking the machine's memory.
const MEMORY_LIMIT_KIB: u64 = 4 << 20;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn corpus() -> PathBuf {
    root().join("tests/fixtures/adversarial")
}

/// The paths a case's placeholders stand for.
struct Places {
    tmp: PathBuf,
    pkg: PathBuf,
    ckpt: PathBuf,
    images: PathBuf,
    cache: PathBuf,
}

impl Places {
    /// `s` with its placeholders replaced, as the raw bytes of an argument or path.
    fn bytes(&self, s: &str) -> Vec<u8> {
        let root = root();
        let table: [(&str, PathBuf); 7] = [
            ("{TMP}", self.tmp.clone()),
            ("{PKG}", self.pkg.clone()),
            ("{CKPT}", self.ckpt.clone()),
            ("{IMAGES}", self.images.clone()),
            ("{DEMO}", root.join("models/demo")),
            ("{EXAMPLES}", root.join("models/examples")),
            ("{CORPUS}", corpus()),
        ];
        let mut out = Vec::new();
        let mut rest = s;
        'outer: while !rest.is_empty() {
            if rest.starts_with('{') {
                for (name, path) in &table {
                    if let Some(after) = rest.strip_prefix(name) {
                        out.extend_from_slice(path.as_os_str().as_bytes());
                        rest = after;
                        continue 'outer;
                    }
                }
                if let Some(after) = rest.strip_prefix("{BYTE:") {
                    let byte = u8::from_str_radix(&after[..2], 16).unwrap();
                    assert_eq!(&after[2..3], "}", "{s}: {{BYTE:xx}}");
                    out.push(byte);
                    rest = &after[3..];
                    continue;
                }
            }
            let ch = rest.chars().next().unwrap();
            let mut buf = [0; 4];
            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            rest = &rest[ch.len_utf8()..];
        }
        out
    }

    fn path(&self, s: &str) -> PathBuf {
        PathBuf::from(OsString::from_vec(self.bytes(s)))
    }

    fn text(&self, s: &str) -> String {
        String::from_utf8_lossy(&self.bytes(s)).into_owned()
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// What a tree holds: each entry's kind and, for files, its bytes; for links, the target.
type Snapshot = BTreeMap<PathBuf, Vec<u8>>;

fn snapshot(path: &Path, skip: &[PathBuf], out: &mut Snapshot) {
    if skip.iter().any(|s| path.starts_with(s)) {
        return;
    }
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        let mut v = b"link:".to_vec();
        v.extend_from_slice(std::fs::read_link(path).unwrap().as_os_str().as_bytes());
        out.insert(path.to_owned(), v);
    } else if ft.is_dir() {
        out.insert(path.to_owned(), b"dir".to_vec());
        for e in std::fs::read_dir(path).unwrap() {
            snapshot(&e.unwrap().path(), skip, out);
        }
    } else if ft.is_file() {
        let mut v = b"file:".to_vec();
        v.extend_from_slice(&std::fs::read(path).unwrap());
        out.insert(path.to_owned(), v);
    } else {
        out.insert(path.to_owned(), b"special".to_vec());
    }
}

fn tree(path: &Path, skip: &[PathBuf]) -> Snapshot {
    let mut s = Snapshot::new();
    snapshot(path, skip, &mut s);
    s
}

/// What changed between two snapshots, in words (at most a few paths).
fn differences(before: &Snapshot, after: &Snapshot) -> Option<String> {
    let mut changed: Vec<String> = before
        .iter()
        .filter(|(p, v)| after.get(*p) != Some(v))
        .map(|(p, _)| format!("{} changed or removed", p.display()))
        .collect();
    changed.extend(
        after
            .keys()
            .filter(|p| !before.contains_key(*p))
            .map(|p| format!("{} created", p.display())),
    );
    if changed.is_empty() {
        return None;
    }
    let n = changed.len();
    changed.truncate(4);
    Some(format!("{} ({n} in all)", changed.join("; ")))
}

/// A finished run.
struct Ran {
    /// The exit status; `None` when the run hung and was killed.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn got(&self) -> String {
        match self.status {
            None => "hang".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("exit {c}"),
                (None, Some(9)) => "killed".into(),
                (None, Some(sig)) => format!("signal {sig}"),
                (None, None) => "?".into(),
            },
        }
    }
}

fn expected(exit: &Value) -> String {
    match exit.as_i64() {
        Some(c) => format!("exit {c}"),
        None => "killed".into(),
    }
}

/// A `vtde` command: run by `sh` under the memory limit (and the file size limit of a
/// full disk), `exec`ed so that signals reach vtde itself.
fn command(places: &Places, args: &[String], env: &Value, file_limit: Option<u64>) -> Command {
    let mut script = format!("ulimit -v {MEMORY_LIMIT_KIB} 2>/dev/null; ");
    if let Some(blocks) = file_limit {
        script.push_str(&format!("trap '' XFSZ; ulimit -f {blocks}; "));
    }
    script.push_str("exec \"$@\"");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(script)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_vtde"))
        .args(args.iter().map(|a| OsString::from_vec(places.bytes(a))))
        .current_dir(root())
        .env("VTDE_CACHE_DIR", &places.cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(env) = env.as_object() {
        for (k, v) in env {
            cmd.env(k, v.as_str().unwrap());
        }
    }
    cmd
}

/// Waits for `child` (killing it after [`TIMEOUT`]), reading its output meanwhile.
fn finish(mut child: Child, started: Instant) -> Ran {
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let (out, err) = (read_all(out), read_all(err));
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ran {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Reads `r` to its end on a thread of its own.
fn read_all(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// The `commit.done` of a marker, once it is readable.
fn committed(marker: &Path) -> u64 {
    std::fs::read(marker)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["commit"]["done"].as_u64())
        .unwrap_or(0)
}

/// Polls until `marker` commits `at_least` items; false when `child` ends or time runs out.
fn wait_for_commit(child: &mut Child, marker: &Path, at_least: u64) -> bool {
    let give_up = Instant::now() + TIMEOUT;
    while committed(marker) < at_least {
        if child.try_wait().unwrap().is_some() || Instant::now() > give_up {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The number before ` <word>` on vtde's summary line (`vtde score: 3 scored, ...`).
fn summary_count(stderr: &str, word: &str) -> Option<u64> {
    let line = stderr.lines().find(|l| {
        l.starts_with("vtde score:")
            || l.starts_with("vtde embed:")
            || l.starts_with("vtde embed-text:")
    })?;
    let at = line.find(&format!(" {word}"))?;
    line[..at].rsplit([' ', ',']).next()?.parse().ok()
}

/// The shape in an `.npy` header.
fn npy_shape(npy: &[u8]) -> Option<(u64, u64)> {
    let header = String::from_utf8_lossy(npy.get(10..128)?).into_owned();
    let shape = &header[header.find("'shape': (")? + 10..];
    let dims: Vec<u64> = shape[..shape.find(')')?]
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().ok())
        .collect::<Option<_>>()?;
    Some((*dims.first()?, *dims.get(1)?))
}

/// An `.npy` header as numpy writes it (version 1.0, padded to 128 bytes).
fn npy_header(rows: u64, cols: u64) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let mut h = b"\x93NUMPY\x01\x00".to_vec();
    h.extend_from_slice(&118u16.to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(127, b' ');
    h.push(b'\n');
    h
}

/// `copies` copies of the example images in three folders.
fn replicate(from: &Path, to: &Path, copies: usize) {
    let mut names: Vec<PathBuf> = std::fs::read_dir(from)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for i in 0..copies {
        let sub = to.join(format!("set{}", i % 3));
        std::fs::create_dir_all(&sub).unwrap();
        let src = &names[i % names.len()];
        let name = src.file_name().unwrap().to_string_lossy();
        std::fs::copy(src, sub.join(format!("{i:03}_{name}"))).unwrap();
    }
}

/// Everything a case holds while it runs (sockets stay bound until it ends).
struct Case<'a> {
    spec: &'a Value,
    places: Places,
    failures: Vec<String>,
    _sockets: Vec<std::os::unix::net::UnixListener>,
}

impl Case<'_> {
    fn fail(&mut self, what: impl Into<String>) {
        self.failures.push(what.into());
    }

    fn run(&mut self, args: &[String], env: &Value, file_limit: Option<u64>) -> Ran {
        let started = Instant::now();
        let child = command(&self.places, args, env, file_limit)
            .spawn()
            .unwrap();
        finish(child, started)
    }

    /// A `vtde` step of `prepare` or `after`: its exit code and checks.
    fn step(&mut self, step: &Value, when: &str) {
        let args = strings(&step["args"]);
        let ran = self.run(&args, &step["env"], None);
        let want = expected(&step["exit"]);
        if ran.got() != want {
            self.fail(format!(
                "{when} `vtde {}`: {want} expected, got {}: {}",
                args.join(" "),
                ran.got(),
                ran.stderr.trim_end()
            ));
        }
        self.checks(&step["checks"], &ran, when);
    }

    fn action(&mut self, step: &Value) {
        let p = |k: &str| self.places.path(step[k].as_str().unwrap());
        match step["action"].as_str().unwrap() {
            "vtde" => self.step(step, "prepare"),
            "write" => std::fs::write(p("path"), step["text"].as_str().unwrap()).unwrap(),
            "mkdir" => std::fs::create_dir_all(p("path")).unwrap(),
            "remove" => std::fs::remove_file(p("path")).unwrap(),
            "copy" => {
                std::fs::copy(p("from"), p("to")).unwrap();
            }
            "symlink" => std::os::unix::fs::symlink(p("target"), p("path")).unwrap(),
            "mkfifo" => {
                let ok = Command::new("mkfifo").arg(p("path")).status().unwrap();
                assert!(ok.success(), "mkfifo");
            }
            "socket" => {
                let listener = std::os::unix::net::UnixListener::bind(p("path")).unwrap();
                self._sockets.push(listener);
            }
            "replicate" => replicate(
                &p("from"),
                &p("to"),
                step["copies"].as_u64().unwrap() as usize,
            ),
            "npy_header" => {
                let path = p("path");
                let npy = std::fs::read(&path).unwrap();
                let mut f = npy_header(
                    step["rows"].as_u64().unwrap(),
                    step["cols"].as_u64().unwrap(),
                );
                f.extend_from_slice(&npy[128..]);
                std::fs::write(&path, f).unwrap();
            }
            "keep_lines" => {
                let path = p("path");
                let text = std::fs::read_to_string(&path).unwrap();
                let n = step["count"].as_u64().unwrap() as usize;
                let kept: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
                std::fs::write(&path, kept).unwrap();
            }
            other => panic!("unknown action {other}"),
        }
    }

    fn checks(&mut self, checks: &Value, ran: &Ran, when: &str) {
        for c in checks.as_array().into_iter().flatten() {
            if let Err(e) = self.check(c, ran) {
                self.fail(format!("{when}: {e}"));
            }
        }
    }

    fn check(&self, c: &Value, ran: &Ran) -> Result<(), String> {
        let places = &self.places;
        let p = |k: &str| places.path(c[k].as_str().unwrap());
        let read =
            |path: &Path| std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
        let json = |path: &Path| -> Result<Value, String> {
            serde_json::from_slice(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
        };
        match c["check"].as_str().unwrap() {
            "exists" if !p("path").exists() => Err(format!("{} is missing", p("path").display())),
            "absent" if std::fs::symlink_metadata(p("path")).is_ok() => {
                Err(format!("{} exists", p("path").display()))
            }
            "exists" | "absent" => Ok(()),
            "same_bytes" => {
                if read(&p("path"))? == read(&p("as"))? {
                    Ok(())
                } else {
                    Err(format!(
                        "{} differs from {}",
                        p("path").display(),
                        p("as").display()
                    ))
                }
            }
            "json" => {
                let v = json(&p("path"))?;
                let got = v.pointer(c["pointer"].as_str().unwrap());
                if got == Some(&c["value"]) {
                    Ok(())
                } else {
                    Err(format!(
                        "{} {}: {:?}, expected {}",
                        p("path").display(),
                        c["pointer"],
                        got,
                        c["value"]
                    ))
                }
            }
            "no_temporaries" => {
                let tmps: Vec<String> = std::fs::read_dir(p("dir"))
                    .map_err(|e| e.to_string())?
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(".tmp"))
                    .collect();
                if tmps.is_empty() {
                    Ok(())
                } else {
                    Err(format!("temporary files left: {tmps:?}"))
                }
            }
            "lines" => {
                let text = String::from_utf8_lossy(&read(&p("path"))?).into_owned();
                if let Some(n) = c["count"].as_u64() {
                    if text.lines().count() as u64 != n {
                        return Err(format!(
                            "{}: {} lines, expected {n}",
                            p("path").display(),
                            text.lines().count()
                        ));
                    }
                }
                for s in strings(&c["contains"]) {
                    let s = places.text(&s);
                    if !text.contains(&s) {
                        return Err(format!("{} does not hold {s:?}", p("path").display()));
                    }
                }
                Ok(())
            }
            "embeddings_consistent" => {
                let dir = p("dir");
                let meta = json(&dir.join("meta.json"))?;
                let rows = meta["commit"]["rows"]
                    .as_u64()
                    .ok_or("meta.json: no commit.rows")?;
                let npy = read(&dir.join("embeddings.npy"))?;
                let (header_rows, cols) = npy_shape(&npy).ok_or("embeddings.npy: no shape")?;
                let data_rows = (npy.len() as u64).saturating_sub(128) / (cols.max(1) * 4);
                let index = read(&dir.join("index.jsonl"))?
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count() as u64;
                if rows > header_rows || rows > data_rows || rows > index {
                    return Err(format!(
                        "meta.json commits {rows} rows; the header counts {header_rows}, the data holds {data_rows}, the index {index}"
                    ));
                }
                let all = c["rows"].as_u64().unwrap();
                if meta["complete"] == true && rows != all {
                    return Err(format!("meta.json says complete over {rows} of {all} rows"));
                }
                Ok(())
            }
            "summary_matches_marker" => {
                let word = c["word"].as_str().unwrap();
                let done = committed(&p("marker"));
                match summary_count(&ran.stderr, word) {
                    Some(n) if n == done => Ok(()),
                    Some(n) => Err(format!(
                        "the summary says {n} {word}, the marker commits {done}"
                    )),
                    None => Err(format!("no summary line with `{word}`")),
                }
            }
            "committed_lines" => {
                let marker = json(&p("marker"))?;
                let done = marker["commit"]["done"].as_u64().ok_or("no commit.done")?;
                let text = read(&p("path"))?;
                let lines = text.iter().filter(|&&b| b == b'\n').count() as u64;
                let header = c["header"].as_u64().unwrap_or(0);
                if lines != done + header {
                    return Err(format!(
                        "{} holds {lines} lines; the marker commits {done}",
                        p("path").display()
                    ));
                }
                if marker["commit"]["output_bytes"].as_u64() != Some(text.len() as u64) {
                    return Err(format!(
                        "the marker's output_bytes {} is not the file's {} bytes",
                        marker["commit"]["output_bytes"],
                        text.len()
                    ));
                }
                Ok(())
            }
            other => Err(format!("unknown check {other}")),
        }
    }

    /// The case's main run, as its `setup` says.
    fn main_run(&mut self) -> Ran {
        let spec = self.spec;
        let args = strings(&spec["args"]);
        let env = &spec["env"];
        let started = Instant::now();
        match spec["setup"].as_str().unwrap() {
            "concurrent_writers" => {
                let first = &spec["first"];
                let mut env_first = serde_json::Map::new();
                env_first.insert(
                    "VTDE_TEST_BATCH_DELAY_MS".into(),
                    first["delay_ms"].to_string().into(),
                );
                let mut child = command(
                    &self.places,
                    &strings(&first["args"]),
                    &Value::Object(env_first),
                    None,
                )
                .spawn()
                .unwrap();
                let marker = self.places.path(first["marker"].as_str().unwrap());
                if !wait_for_commit(&mut child, &marker, 1) {
                    self.fail("the first writer never committed a batch");
                }
                let second = self.run(&args, env, None);
                if child.try_wait().unwrap().is_some() {
                    self.fail("the first writer ended before the second: the runs did not overlap");
                }
                let first_ran = finish(child, started);
                let want = expected(&first["exit"]);
                if first_ran.got() != want {
                    self.fail(format!(
                        "the first writer: {want} expected, got {}: {}",
                        first_ran.got(),
                        first_ran.stderr.trim_end()
                    ));
                }
                self.forbidden_text(&first_ran.stderr, "the first writer");
                second
            }
            "kill_early" => {
                let mut child = command(&self.places, &args, env, None).spawn().unwrap();
                std::thread::sleep(Duration::from_millis(
                    spec["kill_after_ms"].as_u64().unwrap(),
                ));
                let _ = child.kill();
                finish(child, started)
            }
            "sigterm" | "sigint" => {
                let signal = &spec["signal"];
                let mut child = command(&self.places, &args, env, None).spawn().unwrap();
                let marker = self.places.path(signal["marker"].as_str().unwrap());
                if wait_for_commit(&mut child, &marker, signal["at_least"].as_u64().unwrap()) {
                    let sent = Command::new("kill")
                        .args([
                            format!("-{}", signal["name"].as_str().unwrap()),
                            child.id().to_string(),
                        ])
                        .status()
                        .unwrap();
                    assert!(sent.success());
                } else {
                    self.fail("the run ended (or stalled) before the signal could be sent");
                }
                finish(child, started)
            }
            "disk_full" => self.run(&args, env, spec["file_limit_blocks"].as_u64()),
            _ => self.run(&args, env, None),
        }
    }

    fn forbidden_text(&mut self, stderr: &str, who: &str) {
        let mut forbidden = strings(&self.spec["forbidden"]);
        forbidden.extend(ALWAYS_FORBIDDEN.iter().map(|s| s.to_string()));
        for f in forbidden {
            if stderr.contains(&f) {
                self.fail(format!("{who}: stderr holds the forbidden {f:?}"));
            }
        }
        // One line per problem, no text said twice.
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, l) in lines.iter().enumerate() {
            let parts: Vec<&str> = l.split(": ").map(str::trim).collect();
            if parts.windows(2).any(|w| !w[0].is_empty() && w[0] == w[1]) {
                self.fail(format!("{who}: a text is doubled: {l}"));
            }
            if lines[..i].contains(l) {
                self.fail(format!("{who}: a line is repeated: {l}"));
            }
        }
    }
}

/// The known set-up kinds (`setups` in cases.json documents them).
const SETUPS: [&str; 13] = [
    "plain",
    "fifo",
    "socket",
    "symlink_to_dev_zero",
    "dangling_symlink",
    "looping_symlink",
    "dir_as_tokenizer",
    "non_utf8_names",
    "concurrent_writers",
    "kill_early",
    "sigterm",
    "sigint",
    "disk_full",
];

/// A case's line in the table, and its failures.
struct Row {
    name: String,
    want: String,
    got: String,
    seconds: f64,
    /// The run's first error line (else its first line), with the case's directory
    /// written `{TMP}` and the corpus `{CORPUS}`.
    said: String,
    failures: Vec<String>,
}

/// The first line of `stderr` that reports a problem, else its first line.
fn telling_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("vtde: ") || l.starts_with("error: "))
        .or_else(|| stderr.lines().next())
        .unwrap_or("")
}

/// Runs one case.
fn run_case(spec: &Value, base: &Path) -> Row {
    let case_started = Instant::now();
    let name = spec["name"].as_str().unwrap();
    let tmp = base.join(name);
    std::fs::create_dir_all(&tmp).unwrap();
    let tmp = tmp.canonicalize().unwrap();
    let places = Places {
        pkg: tmp.join("pkg"),
        ckpt: tmp.join("checkpoint"),
        images: tmp.join("images"),
        cache: base.join("cache"),
        tmp,
    };
    copy_dir(&root().join("models/demo"), &places.pkg);
    if let Some(overlay) = spec["package"].as_str() {
        copy_dir(&corpus().join(overlay), &places.pkg);
    }
    copy_dir(
        &root().join("tests/fixtures/vit-bert-tiny/checkpoint"),
        &places.ckpt,
    );
    if let Some(overlay) = spec["checkpoint"].as_str() {
        copy_dir(&corpus().join(overlay), &places.ckpt);
    }
    copy_dir(&root().join("models/examples"), &places.images);
    let mut case = Case {
        spec,
        places,
        failures: Vec::new(),
        _sockets: Vec::new(),
    };
    let setup = spec["setup"].as_str().unwrap();
    if !SETUPS.contains(&setup) {
        case.fail(format!("unknown setup {setup}"));
    }
    for step in spec["prepare"].as_array().into_iter().flatten() {
        case.action(step);
    }
    if !case.failures.is_empty() {
        return Row {
            name: name.into(),
            want: expected(&spec["exit"]),
            got: "set-up failed".into(),
            seconds: case_started.elapsed().as_secs_f64(),
            said: String::new(),
            failures: std::mem::take(&mut case.failures),
        };
    }

    let may_change: Vec<PathBuf> = strings(&spec["may_change"])
        .iter()
        .map(|p| case.places.path(p))
        .collect();
    let before = tree(&case.places.tmp, &may_change);
    let ran = case.main_run();
    let want = expected(&spec["exit"]);
    if ran.got() != want {
        case.fail(format!("{want} expected, got {}", ran.got()));
    }
    for s in strings(&spec["stderr"]) {
        let s = case.places.text(&s);
        if !ran.stderr.contains(&s) {
            case.fail(format!("stderr does not say {s:?}"));
        }
    }
    case.forbidden_text(&ran.stderr, "the run");
    if let Some(n) = spec["stderr_lines"].as_u64() {
        let got = ran.stderr.lines().count() as u64;
        if got != n {
            case.fail(format!("stderr has {got} lines, expected {n}"));
        }
    }
    if let Some(n) = spec["stdout_lines"].as_u64() {
        let got = ran.stdout.lines().count() as u64;
        if got != n {
            case.fail(format!("stdout has {got} lines, expected {n}"));
        }
    }
    for s in strings(&spec["stdout_contains"]) {
        let s = case.places.text(&s);
        if !ran.stdout.contains(&s) {
            case.fail(format!("stdout does not hold {s:?}"));
        }
    }
    let after = tree(&case.places.tmp, &may_change);
    if let Some(d) = differences(&before, &after) {
        case.fail(format!("files it was not meant to write: {d}"));
    }
    case.checks(&spec["checks"], &ran, "after the run");
    for step in spec["after"].as_array().into_iter().flatten() {
        case.step(step, "after");
    }
    if !case.failures.is_empty() && !ran.stderr.is_empty() {
        let tail: String = ran.stderr.lines().take(6).collect::<Vec<_>>().join(" | ");
        case.failures.push(format!("stderr: {tail}"));
    }
    let tmp = case.places.tmp.to_string_lossy().into_owned();
    Row {
        name: name.into(),
        want,
        got: ran.got(),
        seconds: case_started.elapsed().as_secs_f64(),
        said: telling_line(&ran.stderr)
            .replace(&tmp, "{TMP}")
            .replace(corpus().to_string_lossy().as_ref(), "{CORPUS}"),
        failures: case.failures,
    }
}

#[test]
fn every_case_of_the_adversarial_corpus() {
    let started = Instant::now();
    let doc: Value =
        serde_json::from_slice(&std::fs::read(corpus().join("cases.json")).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let always = strings(&doc["always_forbidden"]);
    assert_eq!(always, ALWAYS_FORBIDDEN, "cases.json's always_forbidden");

    // The committed inputs every case reads; none may change.
    let root = root();
    let fixed: Vec<PathBuf> = [
        "models/demo",
        "models/examples",
        "tests/fixtures/vit-bert-tiny/checkpoint",
        "tests/fixtures/adversarial",
    ]
    .iter()
    .map(|p| root.join(p))
    .collect();
    let fixed_before: Vec<Snapshot> = fixed.iter().map(|p| tree(p, &[])).collect();

    let base = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    // VTDE_ADVERSARIAL_ONLY=a,b runs only the cases whose names hold `a` or `b`.
    let only: Vec<String> = std::env::var("VTDE_ADVERSARIAL_ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    for spec in cases {
        let name = spec["name"].as_str().unwrap().to_owned();
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        for f in &always {
            assert!(
                strings(&spec["forbidden"]).contains(f),
                "{name}: forbids {f}"
            );
        }
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_case(spec, base.path())));
        let row = result.unwrap_or_else(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Row {
                name: name.clone(),
                want: expected(&spec["exit"]),
                got: "test error".into(),
                seconds: 0.0,
                said: String::new(),
                failures: vec![format!("the test itself failed: {msg}")],
            }
        });
        if !row.failures.is_empty() {
            failed.push(format!("{name}:\n    {}", row.failures.join("\n    ")));
        }
        rows.push(row);
    }
    for (p, before) in fixed.iter().zip(&fixed_before) {
        if let Some(d) = differences(before, &tree(p, &[])) {
            failed.push(format!(
                "committed inputs changed under {}: {d}",
                p.display()
            ));
        }
    }

    println!(
        "\n{:<42} {:<9} {:<9} {:>7}  {:<6}  stderr (first error line)",
        "case", "expected", "got", "seconds", "result"
    );
    for r in &rows {
        let result = if r.failures.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        let said: String = r.said.chars().take(110).collect();
        println!(
            "{:<42} {:<9} {:<9} {:>7.2}  {result:<6}  {said}",
            r.name, r.want, r.got, r.seconds
        );
    }
    println!(
        "\n{} cases, {} failed, {:.1} s\n",
        rows.len(),
        rows.iter().filter(|r| !r.failures.is_empty()).count(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}
