//! The subcommands, one file each. Each `run` returns a [`Report`](crate::report::Report) or
//! a [`Failure`](crate::report::Failure); none prints (except the progress line).

pub mod export;
pub mod inspect;
pub mod recover;
pub mod restore;
pub mod retire;
pub mod verify;

use session_ha::wal::ProblemKind;
use session_ha::{ReplicaId, VersionVector};

use crate::json::{Obj, Value};

/// How output is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ui {
    /// `--json` was given.
    pub json: bool,
    /// Draw a progress line on stderr for long passes.
    pub progress: bool,
}

/// A version vector as `[{"replica": "<16 hex>", "seq": n}, ...]`, in replica order.
pub fn vv_json(vv: &VersionVector) -> Value {
    Value::Array(
        vv.iter()
            .map(|(r, seq)| {
                Obj::new()
                    .field("replica", r.to_string())
                    .field("seq", seq)
                    .into()
            })
            .collect(),
    )
}

/// A version vector as `<id>:<seq>` pairs; `me` is marked `(self)`.
pub fn vv_text(vv: &VersionVector, me: Option<ReplicaId>) -> String {
    if vv.is_empty() {
        return "empty".into();
    }
    vv.iter()
        .map(|(r, seq)| {
            let own = if Some(r) == me { " (self)" } else { "" };
            format!("{r}:{seq}{own}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A WAL problem's stable kind name and its detail.
pub fn problem_kind(what: &ProblemKind) -> (&'static str, String) {
    match what {
        ProblemKind::BadHeader(e) => ("bad_header", e.to_string()),
        ProblemKind::Corrupt(e) => ("corrupt", e.to_string()),
        ProblemKind::TornTail { bytes, reason } => {
            ("torn_tail", format!("{bytes} bytes not a record: {reason}"))
        }
        ProblemKind::OutOfSequence { expected, found } => (
            "out_of_sequence",
            format!("expected seq {expected}, found {found}"),
        ),
        ProblemKind::SequenceGap(why) => ("sequence_gap", why.clone()),
        ProblemKind::Unreadable(why) => ("unreadable", why.clone()),
        ProblemKind::Covered(e) => ("covered_damage", e.to_string()),
        ProblemKind::Tampered { .. } => ("tampered", what.to_string()),
    }
}
