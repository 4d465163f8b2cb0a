//! The conflict-free replicated data types a session is made of, one file each, and the
//! session itself. Merge never fails and is commutative, associative and idempotent; input
//! validation (sizes, limits) is a separate step done before a change is made.

mod aw_set;
mod causal_merge;
mod counter;
mod lww;
mod op;
mod session;
mod view;

pub use aw_set::AwSet;
pub use causal_merge::causal_merge;
pub use counter::PnCounter;
pub use lww::{LwwRegister, Stamp};
pub use op::{FieldWrite, Op, OpKind, SessionId};
pub use session::SessionState;
pub use view::{Entries, SessionRef, SessionView};

/// A state-based CRDT: `merge` is a join in a semilattice.
pub trait Merge {
    /// Joins `other` into `self`.
    fn merge(&mut self, other: &Self);
}
