//! Why an admin command could not reach the coordinator, named as such: no permission, no
//! coordinator in that directory, or a coordinator that is not running.

use coordinator::db::DbError;
use std::io::ErrorKind;
use std::path::Path;

/// What to say when the admin socket refused the connection for a reason other than "nobody
/// listens" (then the database is tried instead): `None` for not running.
pub fn socket_refusal(socket: &Path, error: &std::io::Error) -> Option<String> {
    match error.kind() {
        ErrorKind::PermissionDenied => Some(permission_denied(socket)),
        _ => None,
    }
}

/// What to say when the data directory holds no database to apply the command to; `None` when
/// it holds one. Checked before opening, which would create an empty database.
pub fn missing_database(data_dir: &Path, db_path: &Path) -> Option<String> {
    match std::fs::symlink_metadata(db_path) {
        Ok(_) => None,
        Err(e) => Some(match e.kind() {
            ErrorKind::PermissionDenied => permission_denied(data_dir),
            _ if !data_dir.exists() => format!(
                "no coordinator data directory {} (run `entroshard coordinator init --data-dir {0}`, \
                 or pass the --data-dir it was given)",
                data_dir.display()
            ),
            _ => format!(
                "{} holds no coordinator database (run `entroshard coordinator init` first)",
                data_dir.display()
            ),
        }),
    }
}

/// What to say when the database of a coordinator that did not answer could not be opened.
pub fn database_refusal(socket: &Path, error: &DbError) -> String {
    match error {
        DbError::Io {
            path,
            kind: ErrorKind::PermissionDenied,
            ..
        } => permission_denied(path),
        DbError::Locked { path } => format!(
            "{} is open in another process, but the coordinator's admin socket {} does not answer",
            path.display(),
            socket.display()
        ),
        e => format!("the coordinator is not running and its database could not be opened: {e}"),
    }
}

fn permission_denied(path: &Path) -> String {
    format!(
        "permission denied on {}: run this as the coordinator's user (or root)",
        path.display()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn a_permission_error_is_named_as_one_not_as_a_stopped_coordinator() {
        let socket = Path::new("/var/lib/c/admin.sock");
        let denied = std::io::Error::from(ErrorKind::PermissionDenied);
        let text = socket_refusal(socket, &denied).unwrap();
        assert_eq!(
            text,
            "permission denied on /var/lib/c/admin.sock: run this as the coordinator's user (or root)"
        );
        let db = DbError::Io {
            path: PathBuf::from("/var/lib/c/coordinator.redb"),
            op: "opening",
            kind: ErrorKind::PermissionDenied,
            detail: "Permission denied (os error 13)".into(),
        };
        let text = database_refusal(socket, &db);
        assert!(
            text.starts_with("permission denied on /var/lib/c/coordinator.redb"),
            "{text}"
        );
        assert!(!text.contains("not running"), "{text}");
    }

    #[test]
    fn a_socket_nobody_listens_on_falls_back_to_the_database() {
        let socket = Path::new("/x/admin.sock");
        for kind in [ErrorKind::NotFound, ErrorKind::ConnectionRefused] {
            assert_eq!(socket_refusal(socket, &std::io::Error::from(kind)), None);
        }
    }

    #[test]
    fn a_directory_without_a_coordinator_is_named_and_no_database_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("coordinator.redb");
        let text = missing_database(dir.path(), &db).unwrap();
        assert!(text.contains("holds no coordinator database"), "{text}");
        let gone = dir.path().join("typo");
        let text = missing_database(&gone, &gone.join("coordinator.redb")).unwrap();
        assert!(text.starts_with("no coordinator data directory"), "{text}");
        assert!(!db.exists());
    }
}
