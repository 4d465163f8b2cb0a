//! Shared by the CLI's integration tests: running the built binary, making real store
//! directories with the library, damaging files, and a strict little JSON parser that
//! checks the `--json` output's syntax and lets tests look keys up.
#![allow(dead_code, clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use session_ha::{Store, StoreConfig};

/// The region every test store uses.
pub const REGION: &str = "eu-central-1";

/// Runs the binary with `args`, stdin closed, stdout and stderr captured (so not a terminal).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_session-ha"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run session-ha")
}

/// The exit code (panics if the process was killed by a signal).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 stderr")
}

/// A test store's configuration: no background thread, so files change only when told.
pub fn config() -> StoreConfig {
    StoreConfig {
        snapshot_interval: None,
        tick_interval: None,
        ..StoreConfig::new(REGION)
    }
}

/// Writes `n` sessions (`s0`, `s1`, ...) with a field, a counter and a set element each.
pub fn fill(store: &Store, from: usize, n: usize) {
    for i in from..from + n {
        let id = format!("s{i}").into_bytes();
        store
            .put(id.clone(), "user", format!("user-{i}").into_bytes())
            .unwrap();
        store.counter_add(id.clone(), "requests", i as i64).unwrap();
        store.set_add(id, "tags", "blue").unwrap();
    }
}

/// A closed store in `dir` with `n` sessions, all in the WAL (no snapshot).
pub fn wal_only_store(dir: &Path, n: usize) {
    let (store, _) = Store::open(dir, config()).unwrap();
    fill(&store, 0, n);
    store.close().unwrap();
}

/// A closed store in `dir`: `n` sessions in a snapshot, then `m` more in the WAL.
pub fn snapshotted_store(dir: &Path, n: usize, m: usize) {
    let (store, _) = Store::open(dir, config()).unwrap();
    fill(&store, 0, n);
    store.snapshot().unwrap();
    fill(&store, n, m);
    store.close().unwrap();
}

/// The name of the one base snapshot of `dir` (what [`snapshotted_store`] made), as the
/// commands print it: `snap/snap-<generation>.base`.
pub fn base_name(dir: &Path) -> String {
    let bases = files_in(dir, "snap", ".base");
    assert_eq!(bases.len(), 1, "{bases:?}");
    let name = bases[0].file_name().unwrap().to_string_lossy().into_owned();
    format!("snap/{name}")
}

/// The newest manifest generation of `dir`.
pub fn newest_generation(dir: &Path) -> u64 {
    session_ha::snapshot::read_slots(&session_ha::fs::OsFs, dir)
        .unwrap()
        .valid[0]
        .generation
}

/// Files in `sub` of `dir` whose names end with `suffix`, sorted.
pub fn files_in(dir: &Path, sub: &str, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Flips one bit of the byte at `offset` of `path`.
pub fn flip(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

/// A parsed JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The value under `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value at a `/`-separated path of object keys and array indexes.
    pub fn at(&self, path: &str) -> &Json {
        let mut v = self;
        for part in path.split('/') {
            v = match (v, part.parse::<usize>()) {
                (Json::Arr(items), Ok(i)) => &items[i],
                _ => v
                    .get(part)
                    .unwrap_or_else(|| panic!("no {part:?} in {path:?} of {self:?}")),
            };
        }
        v
    }

    /// The keys of an object, in order.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Json::Obj(fields) => fields.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    pub fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }

    pub fn str(&self) -> &str {
        match self {
            Json::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    pub fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(items) => items,
            other => panic!("not an array: {other:?}"),
        }
    }
}

/// Parses exactly one JSON value (surrounding whitespace allowed), strictly per RFC 8259.
pub fn parse_json(s: &str) -> Result<Json, String> {
    let mut p = Parser {
        b: s.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing bytes at {}", p.i));
    }
    Ok(v)
}

/// Parses stdout of a `--json` run: exactly one line holding one object.
pub fn json_of(out: &Output) -> Json {
    let text = stdout(out);
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    let v = parse_json(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(matches!(v, Json::Obj(_)), "an object: {text}");
    v
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.b[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            Err(format!("expected {lit} at {}", self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > 64 {
            return Err("nested too deep".into());
        }
        match self.b.get(self.i) {
            Some(b'n') => self.eat("null").map(|()| Json::Null),
            Some(b't') => self.eat("true").map(|()| Json::Bool(true)),
            Some(b'f') => self.eat("false").map(|()| Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    self.ws();
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected , or ] at {}", self.i)),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut fields: Vec<(String, Json)> = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    if fields.iter().any(|(f, _)| *f == k) {
                        return Err(format!("duplicate key {k:?}"));
                    }
                    self.ws();
                    self.eat(":")?;
                    self.ws();
                    let v = self.value(depth + 1)?;
                    fields.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected , or }} at {}", self.i)),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("unexpected byte at {}", self.i)),
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        let digits = |p: &mut Self| {
            let s = p.i;
            while matches!(p.b.get(p.i), Some(b'0'..=b'9')) {
                p.i += 1;
            }
            p.i - s
        };
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let lead = self.b.get(self.i) == Some(&b'0');
        let n = digits(self);
        if n == 0 || (lead && n > 1) {
            return Err(format!("bad number at {start}"));
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(format!("bad fraction at {start}"));
            }
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(format!("bad exponent at {start}"));
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?;
        text.parse().map(Json::Num).map_err(|e| format!("{e}"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        let h = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        self.i += 4;
        u32::from_str_radix(h, 16).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat("\"")?;
        let mut out = String::new();
        loop {
            let start = self.i;
            while let Some(&c) = self.b.get(self.i) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.i += 1;
            }
            out.push_str(std::str::from_utf8(&self.b[start..self.i]).map_err(|e| e.to_string())?);
            match self.b.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let e = *self.b.get(self.i).ok_or("short escape")?;
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                self.eat("\\u")?;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err("bad surrogate pair".into());
                                }
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            out.push(char::from_u32(cp).ok_or("bad code point")?);
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    }
                }
                Some(_) => return Err(format!("raw control character at {}", self.i)),
                None => return Err("unterminated string".into()),
            }
        }
    }
}
