//! Session writes and reads, and durability waits. Writes return `{ok, Lsn}` as soon as the
//! change is applied and queued for the log (the store runs `WriteMode::Queued`); a caller
//! that must know it is on disk calls `await_durable(H, Lsn, Pid, Tag)`.

use bytes::Bytes;
use rustler::{Binary, Encoder, Env, Error as NifError, LocalPid, NifResult, ResourceArc, Term};
use session_ha::{SessionRef, SessionState, Store};

use crate::atoms;
use crate::convert::{self, bin, lsn_result, to_bytes};
use crate::handle::{self, Handle};

/// A write NIF in two variants: `$normal` on a normal scheduler, which gives up with
/// `{error, busy}` rather than wait long for the store's lock, and `$dirty` on a dirty CPU
/// scheduler, which the Erlang wrapper calls then.
macro_rules! write_nifs {
    // Argument types are matched as an identifier and an optional lifetime, not as `ty`:
    // the nif attribute does not accept the invisible group a `ty` fragment expands to.
    ($normal:ident, $dirty:ident, $lt:lifetime, ($($arg:ident: $ty:ident $(<$tyl:lifetime>)?),*), |$s:ident| $body:expr) => {
        #[rustler::nif]
        fn $normal<$lt>(env: Env<$lt>, h: ResourceArc<Handle>, $($arg: $ty $(<$tyl>)?),*) -> NifResult<Term<$lt>> {
            handle::with(env, &h, |$s| Ok(lsn_result(env, $body)))
        }

        #[rustler::nif(schedule = "DirtyCpu")]
        fn $dirty<$lt>(env: Env<$lt>, h: ResourceArc<Handle>, $($arg: $ty $(<$tyl>)?),*) -> NifResult<Term<$lt>> {
            handle::with_dirty(env, &h, |$s| Ok(lsn_result(env, $body)))
        }
    };
}

write_nifs!(put_nif, put_dirty, 'a, (sid: Binary<'a>, key: Binary<'a>, val: Binary<'a>), |s| {
    s.put(to_bytes(&sid), to_bytes(&key), to_bytes(&val))
});

/// Most pairs `put_fields` takes on a normal scheduler.
const NORMAL_MAX_PAIRS: usize = 64;
/// Most bytes (keys and values) `put_fields` copies on a normal scheduler.
const NORMAL_MAX_BYTES: usize = 64 * 1024;

/// `put_fields/3` on a normal scheduler for small lists: returns `reschedule` (having
/// written nothing) when the list has more than [`NORMAL_MAX_PAIRS`] pairs or
/// [`NORMAL_MAX_BYTES`] bytes, and the Erlang wrapper then calls `put_fields_dirty`. Finding
/// that out looks at no more than `NORMAL_MAX_PAIRS + 1` list cells.
#[rustler::nif(name = "put_fields_nif")]
fn put_fields_normal<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    sid: Binary<'a>,
    fields: Term<'a>,
) -> NifResult<Term<'a>> {
    match decode_fields(fields, true)? {
        Some(pairs) => handle::with(env, &h, |s| write_fields(env, s, &sid, &pairs)),
        None => Ok(atoms::reschedule().encode(env)),
    }
}

/// `put_fields/3` for long lists, on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn put_fields_dirty<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    sid: Binary<'a>,
    fields: Term<'a>,
) -> NifResult<Term<'a>> {
    match decode_fields(fields, false)? {
        Some(pairs) => handle::with_dirty(env, &h, |s| write_fields(env, s, &sid, &pairs)),
        None => Err(NifError::BadArg),
    }
}

/// The `[{Key, Val}]` list without copying; `None` when `bounded` and the list is too long
/// for a normal scheduler.
fn decode_fields<'a>(
    fields: Term<'a>,
    bounded: bool,
) -> NifResult<Option<Vec<(Binary<'a>, Binary<'a>)>>> {
    let mut pairs = Vec::new();
    let mut bytes = 0usize;
    for item in convert::list(fields)? {
        if bounded && pairs.len() == NORMAL_MAX_PAIRS {
            return Ok(None);
        }
        let (k, v): (Binary<'a>, Binary<'a>) = item?.decode()?;
        bytes = bytes.saturating_add(k.len() + v.len());
        if bounded && bytes > NORMAL_MAX_BYTES {
            return Ok(None);
        }
        pairs.push((k, v));
    }
    Ok(Some(pairs))
}

fn write_fields<'a>(
    env: Env<'a>,
    s: &Store,
    sid: &Binary<'a>,
    pairs: &[(Binary<'a>, Binary<'a>)],
) -> NifResult<Term<'a>> {
    let fields: Vec<(Bytes, Bytes)> = pairs
        .iter()
        .map(|(k, v)| (to_bytes(k), to_bytes(v)))
        .collect();
    Ok(lsn_result(env, s.put_fields(to_bytes(sid), fields)))
}

write_nifs!(delete_field_nif, delete_field_dirty, 'a, (sid: Binary<'a>, key: Binary<'a>), |s| {
    s.delete_field(to_bytes(&sid), to_bytes(&key))
});

write_nifs!(end_session_nif, end_session_dirty, 'a, (sid: Binary<'a>), |s| s.end(to_bytes(&sid)));

write_nifs!(touch_nif, touch_dirty, 'a, (sid: Binary<'a>, ttl_ms: u64), |s| {
    s.touch(to_bytes(&sid), ttl_ms)
});

write_nifs!(counter_add_nif, counter_add_dirty, 'a, (sid: Binary<'a>, key: Binary<'a>, delta: i64), |s| {
    s.counter_add(to_bytes(&sid), to_bytes(&key), delta)
});

write_nifs!(set_add_nif, set_add_dirty, 'a, (sid: Binary<'a>, key: Binary<'a>, elem: Binary<'a>), |s| {
    s.set_add(to_bytes(&sid), to_bytes(&key), to_bytes(&elem))
});

write_nifs!(set_remove_nif, set_remove_dirty, 'a, (sid: Binary<'a>, key: Binary<'a>, elem: Binary<'a>), |s| {
    s.set_remove(to_bytes(&sid), to_bytes(&key), to_bytes(&elem))
});

#[rustler::nif(name = "get_nif")]
fn get_normal<'a>(env: Env<'a>, h: ResourceArc<Handle>, sid: Binary<'a>) -> NifResult<Term<'a>> {
    handle::with(env, &h, |s| get(env, s, sid.as_slice()))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn get_dirty<'a>(env: Env<'a>, h: ResourceArc<Handle>, sid: Binary<'a>) -> NifResult<Term<'a>> {
    handle::with_dirty(env, &h, |s| get(env, s, sid.as_slice()))
}

/// Sessions of up to this many live bytes are encoded under the store's read lock; a larger
/// one is copied out first (reference counts, not bytes), so that writers never wait while
/// its bytes are copied into the term.
const ENCODE_UNDER_LOCK_MAX: usize = 64 << 10;

/// What a read under the lock gave: the encoded answer, or a large session to encode after.
enum Read<'a> {
    Encoded(NifResult<Term<'a>>),
    Copied(SessionState),
}

fn get<'a>(env: Env<'a>, s: &Store, sid: &[u8]) -> NifResult<Term<'a>> {
    let read = s.read_session(sid, |v| match v {
        Some(v) if v.live_bytes() > ENCODE_UNDER_LOCK_MAX => Read::Copied(v.state().clone()),
        v => Read::Encoded(view_result(env, v)),
    });
    match read {
        Ok(Read::Encoded(result)) => result,
        Ok(Read::Copied(state)) => view_result(env, Some(state.live())),
        Err(e) => Ok(convert::error(env, &e)),
    }
}

/// `{ok, Session}` or `{error, not_found}`, encoded straight from the session in place
/// (under the store's read lock: no copy of it is made first).
fn view_result<'a>(env: Env<'a>, view: Option<SessionRef<'_>>) -> NifResult<Term<'a>> {
    match view {
        Some(view) => Ok((atoms::ok(), session(env, &view)?).encode(env)),
        None => Ok(not_found(env)),
    }
}

/// `#{fields, counters, sets, expires_at}`.
fn session<'a>(env: Env<'a>, v: &SessionRef<'_>) -> NifResult<Term<'a>> {
    let fields = entries(env, v.fields().map(|(k, x)| (k, bin(env, x))))?;
    let counters = entries(env, v.counters().map(|(k, n)| (k, n.encode(env))))?;
    let sets = entries(
        env,
        v.sets().map(|(k, elems)| {
            let list: Vec<Term<'a>> = elems.map(|e| bin(env, e)).collect();
            (k, list.encode(env))
        }),
    )?;
    convert::map(
        env,
        &[
            (atoms::fields(), fields),
            (atoms::counters(), counters),
            (atoms::sets(), sets),
            (atoms::expires_at(), convert::opt(env, v.expires_at_ms())),
        ],
    )
}

/// A map from binary keys (each once, as the session's maps guarantee).
fn entries<'a, 'k>(
    env: Env<'a>,
    items: impl Iterator<Item = (&'k [u8], Term<'a>)>,
) -> NifResult<Term<'a>> {
    let (keys, values): (Vec<Term<'a>>, Vec<Term<'a>>) =
        items.map(|(k, v)| (bin(env, k), v)).unzip();
    Term::map_from_term_arrays(env, &keys, &values)
}

fn not_found(env: Env<'_>) -> Term<'_> {
    (atoms::error(), atoms::not_found()).encode(env)
}

#[rustler::nif(name = "get_field_nif")]
fn get_field_normal<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    sid: Binary<'a>,
    key: Binary<'a>,
) -> NifResult<Term<'a>> {
    handle::with(env, &h, |s| {
        Ok(match s.try_get_field(sid.as_slice(), key.as_slice()) {
            Ok(v) => field_result(env, v),
            Err(e) => convert::error(env, &e),
        })
    })
}

#[rustler::nif(schedule = "DirtyCpu")]
fn get_field_dirty<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    sid: Binary<'a>,
    key: Binary<'a>,
) -> NifResult<Term<'a>> {
    handle::with_dirty(env, &h, |s| {
        Ok(match s.get_field(sid.as_slice(), key.as_slice()) {
            Ok(v) => field_result(env, v),
            Err(e) => convert::error(env, &e),
        })
    })
}

fn field_result(env: Env<'_>, v: Option<Bytes>) -> Term<'_> {
    match v {
        Some(v) => (atoms::ok(), bin(env, &v)).encode(env),
        None => not_found(env),
    }
}

#[rustler::nif(schedule = "DirtyCpu")]
fn session_ids(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with_dirty(env, &h, |s| {
        Ok(match s.session_ids() {
            Ok(ids) => {
                let ids: Vec<Term<'_>> = ids.iter().map(|id| bin(env, id.as_bytes())).collect();
                ids.encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}

#[rustler::nif]
fn durable_lsn(env: Env<'_>, h: ResourceArc<Handle>) -> NifResult<Term<'_>> {
    handle::with(env, &h, |s| Ok(s.durable_lsn().encode(env)))
}

/// Sends `{Tag, ok}` to `Pid` once record `Lsn` is durable (at once if it already is), or
/// `{Tag, {error, Reason}}` if the log fails or the store closes first.
#[rustler::nif]
fn await_durable<'a>(
    env: Env<'a>,
    h: ResourceArc<Handle>,
    lsn: u64,
    pid: LocalPid,
    tag: Term<'a>,
) -> NifResult<Term<'a>> {
    handle::with(env, &h, |s| {
        if lsn <= s.durable_lsn() {
            // A dead receiver is not the caller's error.
            let _ = env.send(&pid, (tag, atoms::ok()));
            return Ok(atoms::ok().encode(env));
        }
        Ok(if h.notifier().register(lsn, pid, tag) {
            atoms::ok().encode(env)
        } else {
            convert::closed(env)
        })
    })
}
