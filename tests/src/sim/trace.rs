//! One-line descriptions of messages, dots and regions, for traces (`SIM_TRACE=1`) and
//! failure messages. Regions are named by index (`r0`, `r1`, ...).

use session_ha::{Dot, FrameBody, Limits, Message};

use super::world::World;

impl World {
    /// `dot` as seen by region `at`, for failure messages: its origin, whether that origin
    /// is dead, and whether `at` holds the dot.
    pub fn dot_status(&self, at: usize, dot: Dot) -> String {
        let dead = self
            .dead()
            .is_some_and(|d| self.nodes[d].id() == Some(dot.replica));
        let held = self.nodes[at]
            .inspect(|r| r.version_vector().held().contains(dot))
            .unwrap_or(false);
        format!(
            "{}:{}{}{}",
            self.origin(dot),
            dot.seq,
            if dead { " dead" } else { "" },
            if held { " held" } else { " not held" }
        )
    }

    /// The region that made `dot` (by its store's current or last id), for traces.
    pub fn origin(&self, dot: Dot) -> String {
        self.index_of(dot.replica)
            .map_or_else(|| dot.replica.to_string(), |i| format!("r{i}"))
    }

    /// A one-line description of an encoded message, for traces.
    pub fn describe_bytes(&self, bytes: &[u8]) -> String {
        match Message::decode(bytes, &Limits::default()) {
            Ok(Message::Frame(f)) => format!("frame {} {}", f.frame_no, self.describe(&f.body)),
            Ok(Message::Ack(a)) => format!("ack of {} gaps {:?}", a.frame_no, a.gaps),
            Ok(Message::Hello(h)) => format!("hello of {} from {}", h.sender, h.node),
            Err(e) => format!("undecodable ({e})"),
        }
    }

    /// A one-line description of a frame body, for traces.
    pub fn describe(&self, body: &FrameBody) -> String {
        match body {
            FrameBody::Ops(ops) if ops.is_empty() => "heartbeat".to_string(),
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
