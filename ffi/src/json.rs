//! A small JSON writer for the results the C ABI returns as text (sessions, status, reports):
//! commas and nesting are tracked for the caller, strings are escaped as RFC 8259 requires
//! (`"`, `\` and every control character), and byte strings are written as standard base64
//! with padding (RFC 4648 section 4), since session ids, keys and values are arbitrary bytes.

use std::fmt::Write as _;

/// Builds one JSON document in a `String`.
#[derive(Default)]
pub(crate) struct Json {
    out: String,
    /// Per open container: whether it already holds an item.
    open: Vec<bool>,
    /// A key was just written: the next value belongs to it (no comma).
    after_key: bool,
}

impl Json {
    pub(crate) fn new() -> Json {
        Json::default()
    }

    /// The document; every container must have been closed.
    pub(crate) fn finish(self) -> String {
        debug_assert!(self.open.is_empty(), "unclosed JSON container");
        self.out
    }

    fn item(&mut self) {
        if self.after_key {
            self.after_key = false;
        } else if let Some(has_items) = self.open.last_mut() {
            if *has_items {
                self.out.push(',');
            }
            *has_items = true;
        }
    }

    pub(crate) fn begin_object(&mut self) -> &mut Json {
        self.item();
        self.out.push('{');
        self.open.push(false);
        self
    }

    pub(crate) fn end_object(&mut self) -> &mut Json {
        self.open.pop();
        self.out.push('}');
        self
    }

    pub(crate) fn begin_array(&mut self) -> &mut Json {
        self.item();
        self.out.push('[');
        self.open.push(false);
        self
    }

    pub(crate) fn end_array(&mut self) -> &mut Json {
        self.open.pop();
        self.out.push(']');
        self
    }

    /// An object key; the next value written is its value.
    pub(crate) fn key(&mut self, k: &str) -> &mut Json {
        self.item();
        escape_into(&mut self.out, k);
        self.out.push(':');
        self.after_key = true;
        self
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Json {
        self.item();
        escape_into(&mut self.out, s);
        self
    }

    /// Bytes as a base64 string.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Json {
        self.item();
        self.out.push('"');
        base64_into(&mut self.out, b);
        self.out.push('"');
        self
    }

    pub(crate) fn u64(&mut self, n: u64) -> &mut Json {
        self.item();
        let _ = write!(self.out, "{n}");
        self
    }

    pub(crate) fn i64(&mut self, n: i64) -> &mut Json {
        self.item();
        let _ = write!(self.out, "{n}");
        self
    }

    pub(crate) fn bool(&mut self, b: bool) -> &mut Json {
        self.item();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    pub(crate) fn null(&mut self) -> &mut Json {
        self.item();
        self.out.push_str("null");
        self
    }

    pub(crate) fn opt_u64(&mut self, n: Option<u64>) -> &mut Json {
        match n {
            Some(n) => self.u64(n),
            None => self.null(),
        }
    }

    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Json {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    /// An array of strings.
    pub(crate) fn strs<S: AsRef<str>>(&mut self, items: impl IntoIterator<Item = S>) -> &mut Json {
        self.begin_array();
        for s in items {
            self.str(s.as_ref());
        }
        self.end_array()
    }
}

/// Writes `s` as a JSON string literal.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `b` as standard base64 with padding.
pub(crate) fn base64(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len().div_ceil(3) * 4);
    base64_into(&mut s, b);
    s
}

/// Writes `b` as standard base64 with padding.
fn base64_into(out: &mut String, b: &[u8]) {
    let sextet = |n: u32, shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        out.push(sextet(n, 18));
        out.push(sextet(n, 12));
        out.push(if chunk.len() > 1 { sextet(n, 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(n, 0) } else { '=' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (input, expect) in vectors {
            assert_eq!(base64(input), expect);
        }
        assert_eq!(base64(&[0, 0xff, 0xfe, 0x7f]), "AP/+fw==");
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_every_control_character() {
        let mut j = Json::new();
        j.str("a\"b\\c\n\r\t\u{08}\u{0c}\u{00}\u{1f}\u{7f}é/");
        // DEL and non-ASCII need no escape; `/` may stay as it is.
        assert_eq!(
            j.finish(),
            concat!(r#""a\"b\\c\n\r\t\b\f\u0000\u001f"#, "\u{7f}é/\"")
        );
        for c in 0u32..0x20 {
            let mut j = Json::new();
            j.str(&char::from_u32(c).unwrap().to_string());
            let s = j.finish();
            assert!(s.chars().all(|ch| ch as u32 >= 0x20), "{c:#x} -> {s}");
        }
    }

    #[test]
    fn containers_get_commas_only_between_items() {
        let mut j = Json::new();
        j.begin_object();
        j.key("a").u64(1);
        j.key("b")
            .begin_array()
            .i64(-2)
            .bool(true)
            .null()
            .end_array();
        j.key("c").begin_object().end_object();
        j.key("d").bytes(b"hi");
        j.key("e").opt_u64(None).key("f").opt_str(Some("x"));
        j.key("g").strs(["p", "q"]);
        j.key("h")
            .begin_array()
            .begin_object()
            .end_object()
            .begin_array()
            .end_array()
            .end_array();
        j.end_object();
        assert_eq!(
            j.finish(),
            r#"{"a":1,"b":[-2,true,null],"c":{},"d":"aGk=","e":null,"f":"x","g":["p","q"],"h":[{},[]]}"#
        );
    }

    #[test]
    fn extreme_integers_are_written_exactly() {
        let mut j = Json::new();
        j.begin_array().u64(u64::MAX).i64(i64::MIN).end_array();
        assert_eq!(j.finish(), "[18446744073709551615,-9223372036854775808]");
    }
}
