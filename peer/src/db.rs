//! Guarded opening of the embedded redb databases: refuse foreign files untouched, recover, commit durably.

use redb::{
    Builder, Database, DatabaseError, Durability, Key, ReadTransaction, ReadableDatabase,
    TableDefinition, TableError, TableHandle, Value, WriteTransaction,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// What the file is: `format` and `layout` entries, written when the database is created.
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Why opening or using a guarded database failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DbError {
    /// The file is not a database of the expected format (garbage, another program's database,
    /// another layout) or its contents fail their checks. Nothing was written to it by the
    /// failed open.
    #[error("database {} is corrupt or not of the expected format: {detail}", path.display())]
    Corrupt {
        /// The database's file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Another process (or another handle in this one) has the database open.
    #[error("database {} is already open elsewhere", path.display())]
    Locked {
        /// The database's file.
        path: PathBuf,
    },
    /// The operating system refused an operation on the database's file.
    #[error("I/O error on database {} while {op}: {detail}", path.display())]
    Io {
        /// The database's file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error's kind, for callers that react to it (e.g. `StorageFull`).
        kind: std::io::ErrorKind,
        /// The error's text.
        detail: String,
    },
    /// redb failed in a way that is none of the above.
    #[error("database {} failed while {op}: {detail}", path.display())]
    Database {
        /// The database's file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// redb's error text.
        detail: String,
    },
}

impl DbError {
    /// The database's file.
    pub fn path(&self) -> &Path {
        match self {
            Self::Corrupt { path, .. }
            | Self::Locked { path }
            | Self::Io { path, .. }
            | Self::Database { path, .. } => path,
        }
    }

    /// An I/O error on `path` during `op`.
    pub fn io(path: &Path, op: &'static str, e: &std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            op,
            kind: e.kind(),
            detail: e.to_string(),
        }
    }

    /// A corruption finding on `path`.
    pub fn corrupt(path: &Path, detail: impl Into<String>) -> Self {
        Self::Corrupt {
            path: path.to_path_buf(),
            detail: detail.into(),
        }
    }

    /// Maps any redb error met on `path` during `op`.
    pub fn redb(path: &Path, op: &'static str, e: impl Into<redb::Error>) -> Self {
        use redb::Error as E;
        let e: redb::Error = e.into();
        match e {
            E::Corrupted(detail) => Self::corrupt(path, format!("while {op}: {detail}")),
            // redb reports a file without its magic number as an I/O error of kind InvalidData.
            E::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
                Self::corrupt(path, format!("while {op}: {io}"))
            }
            E::Io(io) => Self::io(path, op, &io),
            E::UpgradeRequired(version) => Self::corrupt(
                path,
                format!("file format version {version} is not one this build reads"),
            ),
            E::DatabaseAlreadyOpen | E::LockProtocolMismatch => Self::Locked {
                path: path.to_path_buf(),
            },
            e @ (E::TableTypeMismatch { .. }
            | E::TableIsMultimap(_)
            | E::TableIsNotMultimap(_)
            | E::TypeDefinitionChanged { .. }
            | E::TableDoesNotExist(_)) => {
                Self::corrupt(path, format!("unexpected table layout while {op}: {e}"))
            }
            other => Self::Database {
                path: path.to_path_buf(),
                op,
                detail: other.to_string(),
            },
        }
    }
}

/// A table a database of some layout must have: checked on open, created with the database.
///
/// Implemented for every [`TableDefinition`], so a layout is a slice of its definitions.
pub trait RequiredTable {
    /// The table's name.
    fn table_name(&self) -> &str;
    /// Opens the table read-only, which fails if it is missing or has other key or value types.
    fn check(&self, txn: &ReadTransaction) -> Result<(), TableError>;
    /// Creates the (empty) table.
    fn create(&self, txn: &WriteTransaction) -> Result<(), TableError>;
}

impl<K: Key + 'static, V: Value + 'static> RequiredTable for TableDefinition<'_, K, V> {
    fn table_name(&self) -> &str {
        self.name()
    }

    fn check(&self, txn: &ReadTransaction) -> Result<(), TableError> {
        txn.open_table(*self).map(drop)
    }

    fn create(&self, txn: &WriteTransaction) -> Result<(), TableError> {
        txn.open_table(*self).map(drop)
    }
}

/// How [`open_guarded`] found the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The file was absent, empty or a blank redb database: it was created and stamped.
    Created,
    /// A database of the expected format and layout, closed cleanly.
    Existing,
    /// A database left by a crash, recovered by redb (and stamped, had it been left blank).
    Recovered,
}

/// Opens the database at `path`, creating it if the file is absent (or empty).
///
/// A database is stamped with `format` and `layout` in its `meta` table when created, along with
/// every one of `tables`. A file that is not such a database — garbage, a redb database of another
/// program or of another format, another layout, a required table missing or of other types — is
/// refused with [`DbError::Corrupt`] and not written to: it is first probed read-only. A
/// database left by a crash is recovered (redb's normal crash recovery); every open also verifies
/// the checksums of the whole file, so silent corruption is reported as [`DbError::Corrupt`]
/// rather than trusted. redb panics while opening a damaged file are turned into
/// [`DbError::Corrupt`]. A newly created file's directory entry is made durable.
///
/// One exception to "not written to": a redb file that needs crash recovery can only be
/// identified after redb has recovered it, so another program's crashed redb database is
/// recovered and then refused. `cache_bytes` bounds redb's page cache (its default is 1 GiB).
pub fn open_guarded(
    path: &Path,
    format: &str,
    layout: &str,
    tables: &[&dyn RequiredTable],
    cache_bytes: usize,
) -> Result<(Database, Opened), DbError> {
    let kind = Kind {
        format,
        layout,
        tables,
    };
    let existing = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => return Err(DbError::corrupt(path, "not a regular file")),
        Ok(m) => m.len() > 0,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(DbError::io(path, "inspecting the file", &e)),
    };
    let recovering = existing && probe(path, &kind, cache_bytes)?;
    let db = guarded(path, "opening", || {
        Builder::new()
            .set_cache_size(cache_bytes)
            .set_check_integrity_on_open(true)
            .create(path)
    })?
    .map_err(|e| DbError::redb(path, "opening", e))?;
    if !existing {
        sync_parent_dir(path)?;
    }
    let blank = match kind.identify(&db, path)? {
        Identity::Blank => {
            kind.initialise(&db, path)?;
            true
        }
        Identity::Ours => false,
    };
    let opened = match (recovering, blank) {
        (true, _) => Opened::Recovered,
        (false, true) => Opened::Created,
        (false, false) => Opened::Existing,
    };
    Ok((db, opened))
}

/// A write transaction that commits durably: fsync'd, and in two phases so that a torn or rotted
/// commit is reported as corruption instead of silently rolled back to the one before.
pub fn begin_durable(db: &Database) -> Result<WriteTransaction, redb::Error> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

thread_local! {
    /// Set while [`guarded`] runs on this thread: its panics are expected and reported as errors.
    static EXPECTING_PANIC: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once per process, a panic hook that stays silent for panics [`guarded`] catches
/// (their message ends up in the error) and hands every other panic to the hook it replaced.
fn silence_guarded_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EXPECTING_PANIC.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`, turning a panic into [`DbError::Corrupt`]: redb documents that opening a file
/// damaged outside redb may panic rather than return an error. The panic is not printed (no
/// backtrace before the clear message); panics elsewhere print as before.
fn guarded<T>(path: &Path, op: &str, f: impl FnOnce() -> T) -> Result<T, DbError> {
    silence_guarded_panics();
    EXPECTING_PANIC.with(|e| e.set(true));
    let outcome = catch_unwind(AssertUnwindSafe(f));
    EXPECTING_PANIC.with(|e| e.set(false));
    outcome.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        DbError::corrupt(path, format!("redb panicked while {op}: {msg}"))
    })
}

/// Makes a newly created file's directory entry durable.
fn sync_parent_dir(path: &Path) -> Result<(), DbError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DbError::io(path, "syncing the database's directory", &e))
}

/// What a redb database holds, as far as the opener is concerned.
enum Identity {
    /// No table at all: a database just created.
    Blank,
    /// A database of the expected format and layout.
    Ours,
}

/// The format, layout and tables a database must have.
struct Kind<'a> {
    format: &'a str,
    layout: &'a str,
    tables: &'a [&'a dyn RequiredTable],
}

impl Kind<'_> {
    fn identify(&self, db: &impl ReadableDatabase, path: &Path) -> Result<Identity, DbError> {
        const OP: &str = "reading the database's identity";
        let err = |e: redb::Error| DbError::redb(path, OP, e);
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
            DbError::corrupt(
                path,
                format!(
                    "not an {} file but a redb database of another program (tables: {tables:?})",
                    self.format
                ),
            )
        };
        if !tables.iter().any(|t| t == META.name()) {
            return Err(foreign());
        }
        let meta = txn.open_table(META).map_err(|e| err(e.into()))?;
        let entry = |name: &str| -> Result<Option<String>, DbError> {
            let guard = meta.get(name).map_err(|e| err(e.into()))?;
            Ok(guard.map(|g| g.value().to_string()))
        };
        if entry("format")?.as_deref() != Some(self.format) {
            return Err(foreign());
        }
        match entry("layout")? {
            Some(l) if l == self.layout => {}
            other => {
                return Err(DbError::corrupt(
                    path,
                    format!(
                        "{} layout {other:?} is not one this build reads ({})",
                        self.format, self.layout
                    ),
                ));
            }
        }
        for table in self.tables {
            let name = table.table_name();
            if !tables.iter().any(|t| t == name) {
                return Err(DbError::corrupt(
                    path,
                    format!("the {name} table is missing"),
                ));
            }
            table.check(&txn).map_err(|e| err(e.into()))?;
        }
        Ok(Identity::Ours)
    }

    /// Stamps a blank database with its format and layout and creates its tables, in one commit.
    fn initialise(&self, db: &Database, path: &Path) -> Result<(), DbError> {
        const OP: &str = "initialising the database";
        let err = |e: redb::Error| DbError::redb(path, OP, e);
        let txn = begin_durable(db).map_err(err)?;
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            meta.insert("format", self.format)
                .map_err(|e| err(e.into()))?;
            meta.insert("layout", self.layout)
                .map_err(|e| err(e.into()))?;
        }
        for table in self.tables {
            table.create(&txn).map_err(|e| err(e.into()))?;
        }
        txn.commit().map_err(|e| err(e.into()))
    }
}

/// Opens an existing file read-only, which writes nothing, to refuse it before a writable open
/// could. `Ok(true)`: it is a redb database left by a crash, which only a writable open repairs.
fn probe(path: &Path, kind: &Kind<'_>, cache_bytes: usize) -> Result<bool, DbError> {
    const OP: &str = "checking the file";
    guarded(path, OP, || {
        match Builder::new()
            .set_cache_size(cache_bytes)
            .open_read_only(path)
        {
            Ok(db) => {
                kind.identify(&db, path)?;
                db.close().map_err(|e| DbError::redb(path, OP, e))?;
                Ok(false)
            }
            Err(DatabaseError::RepairAborted) => Ok(true),
            Err(e) => Err(DbError::redb(path, OP, e)),
        }
    })?
}
