//! No litter: temporary files that a killed run left behind are removed by
//! the next run.
//!
//! The snapshot is written to `.<name>.tmp.<pid>` beside its final path and
//! renamed over it (`fluxacct_core::snapshot::Snapshot::write_atomic`, which
//! removes the temporary file itself on any error). A `kill -9` between the
//! two leaves it behind; [`sweep_temp_files`] removes such files whose
//! writer is no longer running (a live writer's file is left alone).

use std::path::Path;

/// Removes `.<name>.tmp.<pid>` files beside `path` whose process `pid` is
/// gone. Returns how many were removed. Errors are ignored: this is
/// housekeeping, never a reason to fail the command.
pub fn sweep_temp_files(path: &Path) -> usize {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { return 0 };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
    let mut removed = 0;
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file.strip_prefix(&prefix) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_files_of_dead_writers() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("l.db.snapshot");
        // A finished child's pid is free again.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".l.db.snapshot.tmp.{dead}"));
        let live = dir.path().join(format!(".l.db.snapshot.tmp.{}", std::process::id()));
        let other = dir.path().join(format!(".other.tmp.{dead}"));
        for p in [&stale, &live, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(sweep_temp_files(&snap), 1);
        assert!(!stale.exists() && live.exists() && other.exists());
    }
}
