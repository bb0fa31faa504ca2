//! Atomic file writes: a crash mid-save never leaves a half-written file or folder behind.
//!
//! The new content goes to a temporary file in the destination's folder, is flushed to disk,
//! and is renamed over the destination; the folder is then synced so the rename survives.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Writes whatever `write` puts at the temporary path it is given, then renames it to `dest`.
///
/// `write` receives the temporary path to create. On any error the temporary file is removed
/// and `dest` is left as it was.
pub fn atomic_save<E: From<io::Error>>(
    dest: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        File::open(&tmp)?.sync_all()?;
        fs::rename(&tmp, dest)?;
        if let Ok(d) = File::open(dir) {
            // Directory fsync is not supported everywhere; the rename is already done.
            let _ = d.sync_all();
        }
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Atomically replaces `dest` with `bytes`.
pub fn atomic_write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    atomic_save(dest, |tmp| fs::write(tmp, bytes))
}

/// Writes `files` (name, bytes) as folder `dest`, atomically replacing any previous one: the
/// files go to a temporary folder, are synced, and the folder is renamed into place. An error
/// names the path that failed.
pub fn write_folder_atomically(
    dest: &Path,
    files: &[(&str, Vec<u8>)],
) -> Result<(), (PathBuf, io::Error)> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(at(parent))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.tmp"));
    let old = parent.join(format!(".{name}.old"));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp).map_err(at(&tmp))?;
    for (file, bytes) in files {
        let path = tmp.join(file);
        fs::write(&path, bytes).map_err(at(&path))?;
        File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(at(&path))?;
    }
    let _ = fs::remove_dir_all(&old);
    if dest.exists() {
        fs::rename(dest, &old).map_err(at(dest))?;
    }
    fs::rename(&tmp, dest).map_err(at(dest))?;
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
    let _ = fs::remove_dir_all(&old);
    Ok(())
}

/// Replaces `dest` atomically with the files of `staging` (a folder an exporter just wrote)
/// plus `extra` files, then removes `staging`: a model folder is either the old one or the
/// complete new one, never half written. Errors name the file.
pub fn publish_staged_folder(
    staging: &Path,
    dest: &Path,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<(), (PathBuf, io::Error)> {
    let at = |p: &Path| {
        let p = p.to_path_buf();
        move |e| (p, e)
    };
    let mut files = extra;
    for entry in fs::read_dir(staging).map_err(at(staging))? {
        let path = entry.map_err(at(staging))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let bytes = fs::read(&path).map_err(at(&path))?;
        files.push((name, bytes));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    write_folder_atomically(dest, &refs)?;
    let _ = fs::remove_dir_all(staging);
    Ok(())
}

/// The folder of the package whose code is running: Cargo's `CARGO_MANIFEST_DIR` as `cargo
/// test` and `cargo run` set it at run time, else `compiled` (the same variable at compile
/// time). Read at run time because Cargo finds a test binary built in another checkout fresh
/// when both share a target folder, and the compiled-in path then names the other checkout.
/// [`package_dir!`](crate::package_dir) passes the caller's own compiled-in folder.
pub fn package_dir(compiled: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(compiled))
}

/// The calling package's folder ([`fs::package_dir`](crate::fs::package_dir) with the
/// caller's compile-time `CARGO_MANIFEST_DIR` as the fallback), for tests to find their
/// fixtures.
#[macro_export]
macro_rules! package_dir {
    () => {
        $crate::fs::package_dir(env!("CARGO_MANIFEST_DIR"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("ckpt.bin");
        atomic_write(&dest, b"one").unwrap();
        atomic_write(&dest, b"two").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_previous_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("ckpt.bin");
        atomic_write(&dest, b"good").unwrap();
        let err = atomic_save(&dest, |tmp| {
            fs::write(tmp, b"partial")?;
            Err(io::Error::other("crash mid-save"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&dest).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
