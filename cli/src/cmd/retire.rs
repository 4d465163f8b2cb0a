//! `session-ha retire DIR REPLICA`: retires a replica from the membership of a closed store
//! for good, as `erlmcp_session_ha:retire_region/1` does on a live node. REPLICA is a
//! replica id (16 hex digits, as the status shows it) or a region name (every member of
//! that name). The store is opened as a restarting node would, the retirement is logged and
//! made durable, and the store is closed; the retirement reaches the other members with the
//! node's first frames once it runs again.

use std::path::Path;
use std::sync::Arc;

use session_ha::fs::OsFs;
use session_ha::snapshot::read_slots;
use session_ha::{Error, KeyRing, ReplicaId, Store, StoreConfig, WallClock};

use super::Ui;
use crate::json::{Obj, Value};
use crate::report::{Exit, Failure, Report};
use crate::store_dir::require_store;

/// Runs the command.
///
/// # Errors
/// DIR is not a store, the store is locked or too damaged to open, REPLICA names no member
/// (or this store itself), I/O errors.
pub fn run(dir: &Path, replica: &str, keys: Option<&KeyRing>, _ui: Ui) -> Result<Report, Failure> {
    require_store(dir)?;
    let slots = read_slots(&OsFs, dir)?;
    let Some(newest) = slots.valid.first() else {
        return Err(Failure::new(
            Exit::No,
            "data_loss",
            format!("no manifest slot of {} verifies", dir.display()),
        )
        .hint("`session-ha recover DIR` says what is damaged"));
    };
    let config = StoreConfig {
        snapshot_interval: None,
        tick_interval: None,
        encryption: keys.cloned(),
        ..StoreConfig::new(&newest.region)
    };
    let (store, _) = match Store::open_with(Arc::new(OsFs), dir, config, Arc::new(WallClock)) {
        Ok(opened) => opened,
        Err(e @ Error::Locked { .. }) => {
            return Err(Failure::from(e).hint(
                "a running node holds this store: retire through the node, \
                 erlmcp_session_ha:retire_region/1",
            ))
        }
        Err(e) => return Err(Failure::from(e)),
    };
    let result = retire(&store, replica);
    let closed = store.close();
    let retired = result?;
    closed.map_err(Failure::from)?;
    let ids: Vec<String> = retired.iter().map(|(id, _)| id.to_string()).collect();
    let text = format!(
        "retired from {}: {}\nthe other members learn it from this node's frames once it runs again\n",
        dir.display(),
        retired
            .iter()
            .map(|(id, name)| format!("{id} ({name})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(Report {
        exit: Exit::Ok,
        json: Obj::new().field("dir", dir).field(
            "retired",
            Value::Array(ids.into_iter().map(Value::from).collect()),
        ),
        text,
    })
}

/// The members `replica` names, retired; with their region names.
fn retire(store: &Store, replica: &str) -> Result<Vec<(ReplicaId, String)>, Failure> {
    let members = store.read(|r| r.peers());
    let by_id = u64::from_str_radix(replica, 16)
        .ok()
        .filter(|_| replica.len() == 16)
        .map(ReplicaId);
    let chosen: Vec<(ReplicaId, String)> = members
        .into_iter()
        .filter(|(id, name)| by_id == Some(*id) || name == replica)
        .collect();
    if chosen.is_empty() {
        return Err(Failure::new(
            Exit::No,
            "not_found",
            format!("no member of this store is {replica}"),
        )
        .hint("the members are the peers in the node's replication status"));
    }
    for (id, _) in &chosen {
        store.remove_member(*id)?;
    }
    Ok(chosen)
}
