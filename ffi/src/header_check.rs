//! The hand-written header `native_src/include/session_ha.h` checked against this crate: every
//! exported function with the same parameter names and C types, every status code with the
//! same value, every option constant, every struct field in order, the version, and a
//! comment documenting each declaration. The Rust side is read from the sources
//! (`#[no_mangle] extern "C" fn`, `#[repr(C)] struct`), the C side from the header; a small
//! parser each, enough for the regular style both files keep.

use std::collections::BTreeMap;
use std::path::Path;

use crate::status::CODES;

type Signature = (String, Vec<(String, String)>);

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn header() -> String {
    read("../native_src/include/session_ha.h")
}

/// Identifiers and `*`s, space-separated: a normal form for C types.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        if c == '*' {
            out.push("*".into());
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("*/").expect("unterminated comment") + i + 2;
        rest = &rest[end..];
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The header's top-level C statements (preprocessor lines and the C++ guard removed).
fn c_statements(h: &str) -> Vec<String> {
    let code = strip_comments(h);
    let mut kept = String::new();
    let mut in_cplusplus = false;
    for line in code.lines() {
        let t = line.trim();
        if t.starts_with("#ifdef __cplusplus") {
            in_cplusplus = true;
        } else if in_cplusplus && t.starts_with("#endif") {
            in_cplusplus = false;
        } else if !in_cplusplus && !t.starts_with('#') {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for c in kept.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ';' if depth == 0 => {
                out.push(cur.split_whitespace().collect::<Vec<_>>().join(" "));
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    assert!(
        cur.trim().is_empty(),
        "header ends inside a declaration: {cur}"
    );
    out
}

/// `name -> (return type, [(param, type)])` of the header's prototypes.
fn c_functions(h: &str) -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for st in c_statements(h) {
        if st.starts_with("typedef") {
            continue;
        }
        let open = st
            .find('(')
            .unwrap_or_else(|| panic!("not a prototype: {st}"));
        let close = st
            .rfind(')')
            .unwrap_or_else(|| panic!("not a prototype: {st}"));
        let mut head = tokens(&st[..open]);
        let name = head.pop().expect("a name");
        let params = st[open + 1..close].trim();
        let params = if params == "void" {
            Vec::new()
        } else {
            params
                .split(',')
                .map(|p| {
                    let mut t = tokens(p);
                    let pname = t.pop().expect("a parameter name");
                    (pname, t.join(" "))
                })
                .collect()
        };
        assert!(
            out.insert(name.clone(), (head.join(" "), params)).is_none(),
            "{name} twice"
        );
    }
    out
}

/// The C spelling of a Rust FFI type.
fn c_type(rust: &str) -> String {
    let mut t = rust.trim();
    let mut stars = 0;
    let mut innermost_const = false;
    loop {
        if let Some(r) = t.strip_prefix("*const ") {
            innermost_const = true;
            t = r.trim();
        } else if let Some(r) = t.strip_prefix("*mut ") {
            innermost_const = false;
            t = r.trim();
        } else {
            break;
        }
        stars += 1;
    }
    let base = match t {
        "u8" => "uint8_t",
        "u16" => "uint16_t",
        "u32" => "uint32_t",
        "u64" => "uint64_t",
        "i32" => "int32_t",
        "i64" => "int64_t",
        "usize" => "size_t",
        "bool" => "bool",
        "c_char" => "char",
        "ShaStatus" => "sha_status",
        "ShaStore" => "sha_store",
        "ShaBuf" => "sha_buf",
        "ShaOptions" => "sha_options",
        "ShaDigest" => "sha_digest",
        other => panic!("no C spelling for Rust type `{other}`"),
    };
    let mut out = Vec::new();
    if innermost_const {
        out.push("const".to_string());
    }
    out.push(base.to_string());
    out.extend(std::iter::repeat_n("*".to_string(), stars));
    out.join(" ")
}

fn rust_sources() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// `name -> (return type, [(param, type)])` of the crate's exported functions, in C terms.
fn rust_functions() -> BTreeMap<String, Signature> {
    let mut out = BTreeMap::new();
    for (file, src) in rust_sources() {
        if file == "header_check.rs" {
            continue;
        }
        let mut rest = src.as_str();
        while let Some(i) = rest.find("extern \"C\" fn ") {
            let before = &rest[..i];
            let after = &rest[i + "extern \"C\" fn ".len()..];
            let open = after.find('(').unwrap();
            let close = after.find(')').unwrap();
            let name = after[..open].to_string();
            let last_attr = before.rfind("#[").map(|a| &before[a..]).unwrap_or("");
            assert!(
                last_attr.starts_with("#[no_mangle]"),
                "{file}: {name} is not #[no_mangle]"
            );
            let params = after[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (n, t) = p.split_once(':').unwrap();
                    (n.trim().to_string(), c_type(t))
                })
                .collect();
            let tail = &after[close + 1..after.find('{').unwrap()];
            let ret = tail.trim().strip_prefix("->").map_or("void".into(), c_type);
            assert!(
                out.insert(name.clone(), (ret, params)).is_none(),
                "{name} twice"
            );
            rest = &after[close..];
        }
    }
    out
}

#[test]
fn every_exported_function_is_declared_with_the_same_signature() {
    let c = c_functions(&header());
    let rust = rust_functions();
    assert!(rust.len() >= 25, "found only {} exports", rust.len());
    let c_names: Vec<_> = c.keys().collect();
    let rust_names: Vec<_> = rust.keys().collect();
    assert_eq!(c_names, rust_names, "declared vs exported functions");
    for (name, sig) in &rust {
        assert_eq!(&c[name], sig, "signature of {name} (header vs Rust)");
    }
}

#[test]
fn every_declaration_is_documented() {
    let h = header();
    let lines: Vec<&str> = h.lines().collect();
    for name in c_functions(&h).keys() {
        let call = format!("{name}(");
        // The declaration starts a line; mentions inside comments are indented or `/*`.
        let at = lines
            .iter()
            .position(|l| l.contains(&call) && !l.starts_with([' ', '/', '*']))
            .unwrap_or_else(|| panic!("no declaration line for {name}"));
        assert!(
            at > 0 && lines[at - 1].trim_end().ends_with("*/"),
            "{name} has no comment before it"
        );
    }
}

#[test]
fn status_codes_match_by_name_and_value() {
    let h = strip_comments(&header());
    let start = h.find("typedef enum sha_status {").unwrap();
    let body = &h[start..start + h[start..].find('}').unwrap()];
    let body = &body[body.find('{').unwrap() + 1..];
    let declared: Vec<(String, i32)> = body
        .split(',')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (n, v) = e.split_once('=').unwrap();
            (n.trim().to_string(), v.trim().parse().unwrap())
        })
        .collect();
    let ours: Vec<(String, i32)> = CODES
        .iter()
        .map(|(code, name)| (name.to_str().unwrap().to_string(), *code as i32))
        .collect();
    assert_eq!(declared, ours);
}

#[test]
fn constants_and_version_match() {
    use crate::options::*;
    let h = strip_comments(&header());
    let mut defines = BTreeMap::new();
    for line in h.lines() {
        if let Some(d) = line.trim().strip_prefix("#define SHA_") {
            let (name, value) = d.split_once(' ').unwrap();
            defines.insert(format!("SHA_{name}"), value.trim().to_string());
        }
    }
    let expect: BTreeMap<String, String> = [
        ("SHA_FSYNC_ALWAYS", SHA_FSYNC_ALWAYS),
        ("SHA_FSYNC_EVERY_MS", SHA_FSYNC_EVERY_MS),
        ("SHA_FSYNC_NEVER", SHA_FSYNC_NEVER),
        ("SHA_RECOVERY_STRICT", SHA_RECOVERY_STRICT),
        (
            "SHA_RECOVERY_REBUILD_FROM_PEERS",
            SHA_RECOVERY_REBUILD_FROM_PEERS,
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .chain([(
        "SHA_VERSION".to_string(),
        format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    )])
    .collect();
    assert_eq!(defines, expect);
}

/// `struct -> [(field, C type)]` of the `#[repr(C)]` structs in the sources.
fn rust_structs() -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for (_, src) in rust_sources() {
        let lines: Vec<&str> = src.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "#[repr(C)]" {
                continue;
            }
            let near = &lines[i..lines.len().min(i + 4)];
            let Some(decl) = near.iter().find(|l| l.starts_with("pub struct ")) else {
                continue;
            };
            let name = decl["pub struct ".len()..]
                .trim_end_matches(" {")
                .to_string();
            let start = lines.iter().position(|l| l == decl).unwrap();
            let mut fields = Vec::new();
            for l in &lines[start + 1..] {
                let l = l.trim();
                if l == "}" {
                    break;
                }
                if let Some(f) = l.strip_prefix("pub ") {
                    let (n, t) = f.trim_end_matches(',').split_once(':').unwrap();
                    let t = t.trim();
                    let ty = match t.strip_prefix('[') {
                        Some(arr) => {
                            let (elem, len) = arr.trim_end_matches(']').split_once(';').unwrap();
                            format!("{}[{}]", c_type(elem), len.trim())
                        }
                        None => c_type(t),
                    };
                    fields.push((n.trim().to_string(), ty));
                }
            }
            out.insert(name, fields);
        }
    }
    out
}

#[test]
fn structs_have_the_same_fields_in_the_same_order() {
    let statements = c_statements(&header());
    let mut c = BTreeMap::new();
    for st in &statements {
        let Some(rest) = st.strip_prefix("typedef struct ") else {
            continue;
        };
        let Some(open) = rest.find('{') else {
            assert_eq!(rest, "sha_store sha_store", "only sha_store is opaque");
            continue;
        };
        let name = rest[..open].trim().to_string();
        let body = &rest[open + 1..rest.rfind('}').unwrap()];
        let fields: Vec<(String, String)> = body
            .split(';')
            .filter(|f| !f.trim().is_empty())
            .map(|f| {
                let (decl, array) = match f.split_once('[') {
                    Some((d, a)) => (d, format!("[{}", a.trim())),
                    None => (f, String::new()),
                };
                let mut t = tokens(decl);
                let field = t.pop().unwrap();
                (field, format!("{}{array}", t.join(" ")))
            })
            .collect();
        c.insert(name, fields);
    }
    let rust: BTreeMap<String, Vec<(String, String)>> = rust_structs()
        .into_iter()
        .map(|(name, fields)| (c_type(&name), fields))
        .collect();
    assert_eq!(c, rust);
}

#[test]
fn the_parsers_read_what_they_claim() {
    assert_eq!(c_type("*mut *mut ShaStore"), "sha_store * *");
    assert_eq!(c_type("*const u8"), "const uint8_t *");
    assert_eq!(
        tokens("const uint8_t *session"),
        ["const", "uint8_t", "*", "session"]
    );
    let f = c_functions("/* x */\nint32_t sha_f(const char *a, size_t n);\nvoid sha_g(void);\n");
    assert_eq!(
        f["sha_f"],
        (
            "int32_t".to_string(),
            vec![
                ("a".to_string(), "const char *".to_string()),
                ("n".to_string(), "size_t".to_string())
            ]
        )
    );
    assert_eq!(f["sha_g"], ("void".to_string(), vec![]));
}
