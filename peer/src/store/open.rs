//! Opening checks: refusing files that are not share stores, without writing to them.

use super::{CACHE_BYTES, FORMAT, LAYOUT, META, SHARES, StoreError};
use redb::{Builder, DatabaseError, ReadableDatabase, TableHandle};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

/// What a redb database holds, as far as the store is concerned.
pub(super) enum Identity {
    /// No table at all: a database this store just created.
    Blank,
    /// A share store of this layout.
    Ours,
}

pub(super) fn identify(db: &impl ReadableDatabase, path: &Path) -> Result<Identity, StoreError> {
    const OP: &str = "reading the store's identity";
    let err = |e: redb::Error| StoreError::redb(path, OP, e);
    let txn = db.begin_read().map_err(|e| err(e.into()))?;
    let tables: Vec<String> = txn
        .list_tables()
        .map_err(|e| err(e.into()))?
        .map(|t| t.name().to_string())
        .collect();
    let multimaps = txn
        .list_multimap_tables()
        .map_err(|e| err(e.into()))?
        .count();
    if tables.is_empty() && multimaps == 0 {
        return Ok(Identity::Blank);
    }
    let foreign = || {
        StoreError::corrupt(
            path,
            format!("a redb database of another program (tables: {tables:?})"),
        )
    };
    if !tables.iter().any(|t| t == META.name()) {
        return Err(foreign());
    }
    let meta = txn.open_table(META).map_err(|e| err(e.into()))?;
    let entry = |name: &str| -> Result<Option<String>, StoreError> {
        let guard = meta.get(name).map_err(|e| err(e.into()))?;
        Ok(guard.map(|g| g.value().to_string()))
    };
    if entry("format")?.as_deref() != Some(FORMAT) {
        return Err(foreign());
    }
    match entry("layout")? {
        Some(l) if l == LAYOUT => {}
        other => {
            return Err(StoreError::corrupt(
                path,
                format!("share store layout {other:?} is not one this build reads ({LAYOUT})"),
            ));
        }
    }
    if !tables.iter().any(|t| t == SHARES.name()) {
        return Err(StoreError::corrupt(path, "the shares table is missing"));
    }
    Ok(Identity::Ours)
}

/// Opens an existing file read-only, which writes nothing, to refuse it before a writable open
/// could. `Ok(true)`: it is a redb database left by a crash, which only a writable open repairs.
pub(super) fn probe(path: &Path) -> Result<bool, StoreError> {
    const OP: &str = "checking the file";
    guarded(path, OP, || {
        match Builder::new()
            .set_cache_size(CACHE_BYTES)
            .open_read_only(path)
        {
            Ok(db) => {
                identify(&db, path)?;
                db.close().map_err(|e| StoreError::redb(path, OP, e))?;
                Ok(false)
            }
            Err(DatabaseError::RepairAborted) => Ok(true),
            Err(e) => Err(StoreError::redb(path, OP, e)),
        }
    })?
}

/// Runs `f`, turning a panic into [`StoreError::Corrupt`]: redb documents that opening a file
/// damaged outside redb may panic rather than return an error.
pub(super) fn guarded<T>(path: &Path, op: &str, f: impl FnOnce() -> T) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        StoreError::corrupt(path, format!("redb panicked while {op}: {msg}"))
    })
}

/// Makes a newly created file's directory entry durable.
pub(super) fn sync_parent_dir(path: &Path) -> Result<(), StoreError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(path, "syncing the store's directory", &e))
}
