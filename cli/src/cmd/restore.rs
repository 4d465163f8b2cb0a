//! `session-ha restore FILE DIR`: a new store directory from a backup
//! ([`session_ha::store::restore_backup`], which verifies the whole backup first), then a
//! verify pass over what was made. DIR must not exist or be empty: restore never overwrites.
//! With `--key-file` an encrypted backup is read, and the new store is written, under that
//! key ring (its current key).

use std::path::Path;

use session_ha::store::{
    restore_backup_with_keys, verify_dir_with_keys, RestoreReport, VerifyReport,
};
use session_ha::{KeyRing, ReplicaId};

use super::Ui;
use crate::json::Obj;
use crate::progress::Pass;
use crate::report::{io_failure, Exit, Failure, Report};
use crate::text::{bullets, pairs};

/// Runs the command.
///
/// # Errors
/// FILE missing or damaged, DIR not empty, I/O errors.
pub fn run(file: &Path, dir: &Path, keys: Option<&KeyRing>, ui: Ui) -> Result<Report, Failure> {
    let total = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            return Err(Failure::new(
                Exit::Usage,
                "not_found",
                format!("{} is not a file", file.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::new(
                Exit::Usage,
                "not_found",
                format!("{}: no such file", file.display()),
            ))
        }
        Err(e) => return Err(io_failure("cannot read", file, &e)),
    };
    refuse_to_overwrite(dir)?;
    let pass = Pass::start(ui.progress, "restore", Some(total));
    let restored = restore_backup_with_keys(pass.fs(), file, dir, keys);
    let verified = restored
        .as_ref()
        .ok()
        .map(|_| verify_dir_with_keys(&*pass.fs(), dir, keys));
    pass.finish();
    let restored = restored.map_err(|e| match e {
        session_ha::Error::Corrupt { .. } => {
            Failure::from(e).hint("the backup is damaged; nothing was restored from it")
        }
        e => Failure::from(e),
    })?;
    let verified = match verified {
        Some(v) => v?,
        None => VerifyReport::default(),
    };
    let exit = if verified.is_intact() {
        Exit::Ok
    } else {
        Exit::No
    };
    Ok(Report {
        exit,
        json: json(file, &restored, &verified),
        text: text(file, &restored, &verified),
    })
}

fn refuse_to_overwrite(dir: &Path) -> Result<(), Failure> {
    let exists = |what: &str| {
        Failure::new(
            Exit::Usage,
            "exists",
            format!("{} {what}; restore never overwrites", dir.display()),
        )
        .hint("restore into a new directory")
    };
    match dir.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_failure("cannot read", dir, &e)),
        Ok(m) if !m.is_dir() => Err(exists("exists and is not a directory")),
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(dir).map_err(|e| io_failure("cannot list", dir, &e))?;
            if entries.next().is_some() {
                Err(exists("exists and is not empty"))
            } else {
                Ok(())
            }
        }
    }
}

fn json(file: &Path, r: &RestoreReport, v: &VerifyReport) -> Obj {
    Obj::new()
        .field("file", file)
        .field("dir", r.dir.as_path())
        .field("region", &r.region)
        .field("incarnation", r.incarnation)
        .field(
            "replica_id",
            ReplicaId::from_region(&r.region, r.incarnation).to_string(),
        )
        .field("sessions", r.sessions)
        .field("retired", r.retired.to_string())
        .field("verified", v.is_intact())
        .field("problems", v.problems.clone())
}

fn text(file: &Path, r: &RestoreReport, v: &VerifyReport) -> String {
    let verdict = if v.is_intact() {
        "restored and verified"
    } else {
        "RESTORED STORE DOES NOT VERIFY"
    };
    let mut out = format!(
        "restore {} into {}: {verdict}\n\n",
        file.display(),
        r.dir.display()
    );
    out.push_str(&pairs(
        2,
        &[
            ("region", r.region.clone()),
            (
                "incarnation",
                format!(
                    "{} (new; replica {})",
                    r.incarnation,
                    ReplicaId::from_region(&r.region, r.incarnation)
                ),
            ),
            ("sessions", r.sessions.to_string()),
            (
                "retired",
                format!("{} (the backed-up incarnation)", r.retired),
            ),
        ],
    ));
    if !v.is_intact() {
        out.push_str("\nproblems\n");
        out.push_str(&bullets(2, &v.problems));
    }
    out.push_str(&format!(
        "\nnext: start the node on {} with region {:?};\n      its peers refill what is \
         newer than the backup.\n",
        r.dir.display(),
        r.region
    ));
    out
}
