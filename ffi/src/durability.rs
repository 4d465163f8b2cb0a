//! Durability on request: take an incremental snapshot now, and verify every checksum of the
//! store's files.

use crate::args::Out;
use crate::buf::{buf_out, give_text, ShaBuf};
use crate::guard::call;
use crate::handle::{store, ShaStore};
use crate::status::ShaStatus;

/// Takes an incremental snapshot now (a new base when the compaction policy says so) and
/// describes it as NUL-terminated JSON in `*report` (free with `sha_buf_free`):
/// `{"generation","file","base","sessions","gone","bytes","covers_seq","files_removed",
/// "wal_segments_removed","elapsed_ms"}`.
///
/// # Safety
/// `report` must be null or valid for one `sha_buf` write.
#[no_mangle]
pub unsafe extern "C" fn sha_snapshot(store: *mut ShaStore, report: *mut ShaBuf) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(report, "report") }?;
        let s = self::store(store)?;
        give_text(&out, crate::report::snapshot(&s.snapshot()?));
        Ok(())
    })
}

/// Reads back every manifest, snapshot chunk and WAL record of the store and checks its
/// checksum, changing nothing. `*intact` is true when no acknowledged data is damaged;
/// `*report` gets the details as NUL-terminated JSON (free with `sha_buf_free`):
/// `{"intact","generation","manifests":[{"file","bytes","entries","error"}],"snapshots":[..],
/// "orphans","wal":{"segments","records","first_seq","last_seq","broken_files","temp_files"},
/// "problems":["..."],"warnings":["..."]}`. Damage is reported, not returned as an error.
///
/// # Safety
/// `intact` must be null or valid for one write; `report` null or valid for one `sha_buf`
/// write.
#[no_mangle]
pub unsafe extern "C" fn sha_verify(
    store: *mut ShaStore,
    intact: *mut bool,
    report: *mut ShaBuf,
) -> ShaStatus {
    call(|| {
        // SAFETY: as the caller guarantees.
        let out = unsafe { buf_out(report, "report") }?;
        // SAFETY: as the caller guarantees.
        let intact = unsafe { Out::new(intact, "intact") }?;
        let s = self::store(store)?;
        let v = s.verify()?;
        intact.set(v.is_intact());
        give_text(&out, crate::report::verify(&v));
        Ok(())
    })
}
