//! Term conversions shared by the NIFs: binaries, paths, optional values, maps with atom
//! keys, version vectors, and `session_ha::Error` as `{error, Reason}`.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rustler::{Atom, Binary, Encoder, Env, Error as NifError, NewBinary, NifResult, Term};
use session_ha::{Error, ReplicaId, VersionVector};

use crate::atoms;

/// A new binary holding a copy of `data`.
pub(crate) fn bin<'a>(env: Env<'a>, data: &[u8]) -> Term<'a> {
    NewBinary::from_slice(env, data).into()
}

/// A 128-bit digest as a 16-byte big-endian binary.
pub(crate) fn digest<'a>(env: Env<'a>, d: u128) -> Term<'a> {
    bin(env, &d.to_be_bytes())
}

/// A path as a binary (its bytes as the OS holds them).
pub(crate) fn path<'a>(env: Env<'a>, p: &Path) -> Term<'a> {
    bin(env, p.as_os_str().as_bytes())
}

/// A binary argument as a path.
pub(crate) fn to_path(b: &Binary) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(b.as_slice()))
}

/// A binary argument as an owned byte buffer (the one copy out of the Erlang heap).
pub(crate) fn to_bytes(b: &Binary) -> Bytes {
    Bytes::copy_from_slice(b.as_slice())
}

/// A binary argument that must be UTF-8 (region names); anything else is `badarg`.
pub(crate) fn to_str<'a>(b: &Binary<'a>) -> NifResult<&'a str> {
    std::str::from_utf8(b.as_slice()).map_err(|_| NifError::BadArg)
}

/// `undefined` or the value.
pub(crate) fn opt<'a, T: Encoder>(env: Env<'a>, v: Option<T>) -> Term<'a> {
    match v {
        Some(v) => v.encode(env),
        None => atoms::undefined().encode(env),
    }
}

/// `undefined` or the string as a binary.
pub(crate) fn opt_str<'a>(env: Env<'a>, v: Option<&str>) -> Term<'a> {
    match v {
        Some(s) => bin(env, s.as_bytes()),
        None => atoms::undefined().encode(env),
    }
}

/// A list of strings as a list of binaries.
pub(crate) fn strings<'a, S: AsRef<str>>(env: Env<'a>, items: &[S]) -> Term<'a> {
    let terms: Vec<Term<'a>> = items
        .iter()
        .map(|s| bin(env, s.as_ref().as_bytes()))
        .collect();
    terms.encode(env)
}

/// A list of paths as a list of binaries.
pub(crate) fn paths<'a>(env: Env<'a>, items: &[PathBuf]) -> Term<'a> {
    let terms: Vec<Term<'a>> = items.iter().map(|p| path(env, p)).collect();
    terms.encode(env)
}

/// A map with atom keys.
pub(crate) fn map<'a>(env: Env<'a>, pairs: &[(Atom, Term<'a>)]) -> NifResult<Term<'a>> {
    let keys: Vec<Term<'a>> = pairs.iter().map(|(k, _)| k.encode(env)).collect();
    let values: Vec<Term<'a>> = pairs.iter().map(|(_, v)| *v).collect();
    Term::map_from_term_arrays(env, &keys, &values)
}

/// A version vector as `#{ReplicaId => Seq}`.
pub(crate) fn vv<'a>(env: Env<'a>, v: &VersionVector) -> NifResult<Term<'a>> {
    let (keys, values): (Vec<Term<'a>>, Vec<Term<'a>>) = v
        .iter()
        .map(|(id, seq)| (id.0.encode(env), seq.encode(env)))
        .unzip();
    Term::map_from_term_arrays(env, &keys, &values)
}

/// Replica ids as a list of integers.
pub(crate) fn ids<'a>(env: Env<'a>, v: &[ReplicaId]) -> Term<'a> {
    let raw: Vec<u64> = v.iter().map(|id| id.0).collect();
    raw.encode(env)
}

/// The `Reason` of `{error, Reason}` for `e`: the atom of [`Error::kind`], paired with the
/// error's text for the kinds whose details matter to an operator.
pub(crate) fn reason<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    let kind = e.kind();
    let atom = match Atom::from_str(env, kind) {
        Ok(a) => a.encode(env),
        // Atom creation fails only for names over 255 characters; kinds are short.
        Err(_) => atoms::error().encode(env),
    };
    if is_simple(kind) {
        atom
    } else {
        (atom, bin(env, e.to_string().as_bytes())).encode(env)
    }
}

/// Kinds documented as bare atoms. The others (`corrupt`, `io`, `data_loss`, `poisoned`,
/// `bad_frame`, `invalid_argument`, and any kind the core adds later) come as
/// `{Kind, Details}`.
fn is_simple(kind: &str) -> bool {
    matches!(
        kind,
        "invalid_session_id"
            | "invalid_key"
            | "too_large"
            | "too_many_fields"
            | "session_too_large"
            | "ended"
            | "counter_overflow"
            | "invalid_ttl"
            | "removed_replica"
            | "own_frame"
            | "unknown_peer"
            | "no_space"
            | "locked"
            | "closed"
            | "busy"
    )
}

/// `{error, Reason}` for `e`.
pub(crate) fn error<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    (atoms::error(), reason(env, e)).encode(env)
}

/// `{error, closed}`.
pub(crate) fn closed<'a>(env: Env<'a>) -> Term<'a> {
    (atoms::error(), atoms::closed()).encode(env)
}

/// `{ok, Lsn}` or `{error, Reason}`.
pub(crate) fn lsn_result<'a>(env: Env<'a>, r: session_ha::Result<u64>) -> Term<'a> {
    match r {
        Ok(lsn) => (atoms::ok(), lsn).encode(env),
        Err(e) => error(env, &e),
    }
}

/// `ok` or `{error, Reason}`.
pub(crate) fn unit_result<'a>(env: Env<'a>, r: session_ha::Result<()>) -> Term<'a> {
    match r {
        Ok(()) => atoms::ok().encode(env),
        Err(e) => error(env, &e),
    }
}

/// The elements of a proper list. A non-list or an improper list is `badarg` (rustler's own
/// `ListIterator` panics on an improper tail).
pub(crate) fn list(term: Term<'_>) -> NifResult<Cells<'_>> {
    if term.is_list() {
        Ok(Cells { rest: Some(term) })
    } else {
        Err(NifError::BadArg)
    }
}

/// Iterator over a list's elements; see [`list`].
pub(crate) struct Cells<'a> {
    rest: Option<Term<'a>>,
}

impl<'a> Iterator for Cells<'a> {
    type Item = NifResult<Term<'a>>;

    fn next(&mut self) -> Option<NifResult<Term<'a>>> {
        let rest = self.rest.take()?;
        if rest.is_empty_list() {
            return None;
        }
        match rest.list_get_cell() {
            Ok((head, tail)) => {
                self.rest = Some(tail);
                Some(Ok(head))
            }
            Err(_) => Some(Err(NifError::BadArg)),
        }
    }
}
