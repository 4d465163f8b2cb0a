//! A small JSON encoder for `--json` output: a [`Value`] tree whose objects keep their keys in
//! the order they were added (so output is stable and diffable), written compactly on one
//! line by its `Display`. Only encoding: the tool never reads JSON.
//!
//! Strings are escaped as RFC 8259 requires: `"` and `\` get a backslash, the control
//! characters U+0000..U+001F become `\b \f \n \r \t` or `\u00XX`; everything else, non-ASCII
//! included, is written as UTF-8. Numbers are integers only (counts, sizes, sequence numbers);
//! 64-bit ids and digests are written as hex strings so that no reader rounds them.

use std::fmt::{self, Write as _};
use std::path::Path;

/// A JSON value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A signed integer.
    Int(i64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in insertion order.
    Object(Vec<(String, Value)>),
}

/// Builds an object field by field: `Obj::new().field("a", 1u64).into()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Obj(Vec<(String, Value)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Obj {
        Obj(Vec::new())
    }

    /// Adds `key` (which the caller keeps unique) with `value`.
    pub fn field(mut self, key: &str, value: impl Into<Value>) -> Obj {
        self.0.push((key.to_string(), value.into()));
        self
    }
}

impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Object(o.0)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::UInt(n)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::UInt(u64::from(n))
    }
}

impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::UInt(n as u64)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Int(n)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Str(s.clone())
    }
}

impl From<&Path> for Value {
    /// A path as a string; bytes that are not UTF-8 become U+FFFD.
    fn from(p: &Path) -> Value {
        Value::Str(p.to_string_lossy().into_owned())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Value {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// Writes `s` as a JSON string literal, quotes included.
pub fn write_str(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            '\u{8}' => out.write_str("\\b")?,
            '\u{c}' => out.write_str("\\f")?,
            c if u32::from(c) < 0x20 => write!(out, "\\u{:04x}", u32::from(c))?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::UInt(n) => write!(f, "{n}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Str(s) => write_str(f, s),
            Value::Array(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Value::Object(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: impl Into<Value>) -> String {
        v.into().to_string()
    }

    #[test]
    fn scalars() {
        assert_eq!(s(Value::Null), "null");
        assert_eq!(s(true), "true");
        assert_eq!(s(false), "false");
        assert_eq!(s(0u64), "0");
        assert_eq!(s(u64::MAX), "18446744073709551615");
        assert_eq!(s(-42i64), "-42");
        assert_eq!(s(None::<u64>), "null");
        assert_eq!(s(Some(7u32)), "7");
    }

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(s(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(s(r"C:\wal\"), r#""C:\\wal\\""#);
        assert_eq!(s("/"), r#""/""#);
    }

    #[test]
    fn every_control_character_is_escaped() {
        assert_eq!(s("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(s("\u{0}\u{1}\u{1f}"), r#""\u0000\u0001\u001f""#);
        for c in (0u8..0x20).map(char::from) {
            let out = s(c.to_string());
            assert!(out.chars().all(|c| u32::from(c) >= 0x20), "{out:?}");
        }
        // DEL and beyond need no escape.
        assert_eq!(s("\u{7f}"), "\"\u{7f}\"");
    }

    #[test]
    fn non_ascii_is_written_as_utf8() {
        assert_eq!(s("région é ✓ 🦀"), "\"région é ✓ 🦀\"");
        assert_eq!(s("\u{2028}"), "\"\u{2028}\"");
    }

    #[test]
    fn arrays_and_objects_nest_and_keep_key_order() {
        let v: Value = Obj::new()
            .field("z", 1u64)
            .field("a", vec!["x", "y"])
            .field("empty_list", Vec::<u64>::new())
            .field("empty_obj", Obj::new())
            .field("k\"ey", Obj::new().field("n", Value::Null))
            .into();
        assert_eq!(
            v.to_string(),
            r#"{"z":1,"a":["x","y"],"empty_list":[],"empty_obj":{},"k\"ey":{"n":null}}"#
        );
    }

    #[test]
    fn paths_that_are_not_utf8_still_give_valid_strings() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff\"x"));
            assert_eq!(s(p), "\"/tmp/\u{fffd}\\\"x\"");
        }
    }
}
