//! The trust boundary from Erlang: hellos (`hello/2`, `open_hello/2`), frame keys
//! (`set_frame_keys/2`, and the `frame_secrets` / `auth_key_file` options of `open/2`), and
//! the `trust` part of `status/1`.

use rustler::{Binary, Encoder, Env, Error as NifError, NifResult, ResourceArc, Term};
use session_ha::replicate::{RefusalCounts, RetiredStatus};
use session_ha::{FrameKeys, ReplicaStatus};

use crate::atoms as a;
use crate::convert::{self, bin, ids, map, to_str};
use crate::handle::{self, Handle};

/// Frame keys from `{file, Path}` (an `auth_key_file`) or `{secrets, [Secret]}` (one or
/// two binaries, the first signing), or `undefined` for none. A bad shape is `badarg`; a
/// file that cannot be used is `{error, {auth_key, Details}}`.
pub(crate) fn keys(term: Term<'_>) -> NifResult<Result<Option<FrameKeys>, session_ha::Error>> {
    if let Ok(atom) = term.decode::<rustler::Atom>() {
        return if atom == a::undefined() {
            Ok(Ok(None))
        } else {
            Err(NifError::BadArg)
        };
    }
    let (tag, value): (rustler::Atom, Term<'_>) = term.decode()?;
    if tag == a::file() {
        let path: Binary = value.decode()?;
        let path = std::path::PathBuf::from(to_str(&path)?);
        return Ok(FrameKeys::from_file(&path).map(Some));
    }
    if tag != a::secrets() {
        return Err(NifError::BadArg);
    }
    let mut secrets = Vec::new();
    for cell in convert::list(value)? {
        let b: Binary = cell?.decode()?;
        secrets.push(b.as_slice().to_vec());
    }
    Ok(FrameKeys::from_secrets(&secrets).map(Some))
}

/// Replaces the frame keys (a rotation): `ok` or `{error, Reason}`. May read a file, hence a
/// dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn set_frame_keys<'a>(env: Env<'a>, h: ResourceArc<Handle>, spec: Term<'a>) -> NifResult<Term<'a>> {
    let parsed = keys(spec)?;
    handle::with_dirty(env, &h, |s| {
        Ok(match parsed {
            Ok(k) => {
                s.set_frame_keys(k);
                a::ok().encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}

/// This store's hello for the peers of node `Node` (its name as a binary): `{ok, Bin}`.
#[rustler::nif]
fn hello<'a>(env: Env<'a>, h: ResourceArc<Handle>, node: Binary<'a>) -> NifResult<Term<'a>> {
    let node = to_str(&node)?;
    handle::with(env, &h, |s| {
        Ok(match s.hello(node) {
            Ok(b) => (a::ok(), bin(env, &b)).encode(env),
            Err(e) => convert::error(env, &e),
        })
    })
}

/// Opens a peer's hello: `{ok, #{id, region, node, boot}}` once authenticated, or
/// `{error, Reason}` (counted in the status). Nobody becomes a member by this alone.
#[rustler::nif]
fn open_hello<'a>(env: Env<'a>, h: ResourceArc<Handle>, msg: Binary<'a>) -> NifResult<Term<'a>> {
    handle::with(env, &h, |s| {
        Ok(match s.open_hello(msg.as_slice()) {
            Ok(hello) => {
                let m = map(
                    env,
                    &[
                        (a::id(), hello.sender.0.encode(env)),
                        (a::region(), bin(env, hello.sender_name.as_bytes())),
                        (a::node(), bin(env, hello.node.as_bytes())),
                        (a::boot(), hello.boot.encode(env)),
                    ],
                )?;
                (a::ok(), m).encode(env)
            }
            Err(e) => convert::error(env, &e),
        })
    })
}

fn counts<'a>(env: Env<'a>, c: &RefusalCounts) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::unauthenticated(), c.unauthenticated.encode(env)),
            (a::not_member(), c.not_member.encode(env)),
            (a::removed(), c.removed.encode(env)),
            (a::replayed(), c.replayed.encode(env)),
            (a::clock_ahead(), c.clock_ahead.encode(env)),
            (a::malformed(), c.malformed.encode(env)),
        ],
    )
}

fn retired<'a>(env: Env<'a>, r: &RetiredStatus) -> NifResult<Term<'a>> {
    map(
        env,
        &[
            (a::id(), r.id.0.encode(env)),
            (
                a::region(),
                match &r.name {
                    Some(n) => bin(env, n.as_bytes()),
                    None => a::undefined().encode(env),
                },
            ),
            (a::unconfirmed_by(), ids(env, &r.unconfirmed_by)),
            (
                a::given_up_at(),
                match r.given_up_at {
                    Some(seq) => seq.encode(env),
                    None => a::undefined().encode(env),
                },
            ),
        ],
    )
}

/// The `trust` map of `status/1`.
pub(crate) fn status<'a>(env: Env<'a>, r: &ReplicaStatus) -> NifResult<Term<'a>> {
    let (keys, values): (Vec<Term<'a>>, Vec<Term<'a>>) = r
        .refused
        .iter()
        .map(|(id, c)| Ok((id.0.encode(env), counts(env, c)?)))
        .collect::<NifResult<Vec<_>>>()?
        .into_iter()
        .unzip();
    let refused = Term::map_from_term_arrays(env, &keys, &values)?;
    let retirees: Vec<Term<'a>> = r
        .retired
        .iter()
        .map(|x| retired(env, x))
        .collect::<NifResult<_>>()?;
    map(
        env,
        &[
            (a::authenticated(), r.authenticated.encode(env)),
            (a::frame_key_ids(), r.frame_key_ids.encode(env)),
            (a::refused(), refused),
            (a::refused_other(), counts(env, &r.refused_other)?),
            (a::retired(), retirees.encode(env)),
            (
                a::collection_blocked_by(),
                ids(env, &r.collection_blocked_by),
            ),
            (
                a::removed_by(),
                match r.removed_by {
                    Some(id) => id.0.encode(env),
                    None => a::undefined().encode(env),
                },
            ),
            (a::clock_jump_ms(), r.clock_jump_ms.encode(env)),
        ],
    )
}
