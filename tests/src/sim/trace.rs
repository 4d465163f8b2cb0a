//! One-line descriptions of frames, changes and dots, for traces (`SIM_TRACE=1`) and
//! failure messages. Replicas are named by index (`r0`, `r1`, ...).

use session_ha::{Change, Dot, FrameBody};

use super::world::World;

impl World {
    /// `dot` as seen by replica `at`, for failure messages: its origin, whether that origin
    /// is dead, and whether `at` holds the dot.
    pub fn dot_status(&self, at: usize, dot: Dot) -> String {
        let dead = self.index_of(dot.replica).is_some_and(|o| !self.alive[o]);
        let held = self.replicas[at].version_vector().contains(dot);
        format!(
            "{}:{}{}{}",
            self.origin(dot),
            dot.seq,
            if dead { " dead" } else { "" },
            if held { " held" } else { " not held" }
        )
    }

    /// The index of the replica that made `dot`, for traces.
    pub fn origin(&self, dot: Dot) -> String {
        self.index_of(dot.replica)
            .map_or_else(|| dot.replica.to_string(), |i| format!("r{i}"))
    }

    /// A one-line description of what a call changed, for traces.
    pub fn describe_changes(&self, changes: &[Change]) -> String {
        let parts: Vec<String> = changes
            .iter()
            .map(|c| match c {
                Change::Op(op) => format!("op {}:{}", self.origin(op.dot), op.dot.seq),
                Change::Merge { session, state } => format!(
                    "merge {session:?}{}",
                    if state.is_ended() { " (ended)" } else { "" }
                ),
                Change::Adopt(vv) => format!("adopt {vv:?}"),
                Change::Removed(id) => format!("removed {id}"),
                Change::Replace { session, state } => format!(
                    "replace {session:?}{}",
                    if state.is_none() { " (gone)" } else { "" }
                ),
                other => format!("{other:?}"),
            })
            .collect();
        if parts.is_empty() {
            "nothing new".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// A one-line description of a frame body, for traces.
    pub fn describe(&self, body: &FrameBody) -> String {
        match body {
            FrameBody::Ops(ops) => {
                let dots: Vec<String> = ops
                    .iter()
                    .map(|o| format!("{}:{}", self.origin(o.dot), o.dot.seq))
                    .collect();
                format!("ops [{}]", dots.join(" "))
            }
            FrameBody::State {
                transfer,
                index,
                last,
                sessions,
                covers,
            } => format!(
                "state #{transfer}.{index} last={last} ({} sessions) covers {covers:?}",
                sessions.len()
            ),
            FrameBody::Repair(s) => format!("repair ({} sessions)", s.len()),
        }
    }
}
