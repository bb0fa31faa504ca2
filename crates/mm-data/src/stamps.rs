//! The Tux Paint stamps (Debian's `tuxpaint-stamps-default`, GPL-2: fetched at run time, never
//! committed): about 800 photo and clip-art cutouts with transparency, each with a one-line
//! English description (`frog.txt`: "A frog."), and for 131 of them the sound the thing makes
//! (`frog.ogg`). [`prepare_stamps`] fetches and unpacks the package and writes two manifests:
//! `stamps.jsonl` (every PNG stamp with its caption, [`ImageCaption`]) and
//! `stamp-sounds.jsonl` (the stamps with a sound, [`ImageSound`]). The category is the stamp's
//! top folder (`animals`, `food`, ...); within each manifest, sorted by path, every fourth
//! stamp is held out for testing.

use std::path::{Path, PathBuf};

use crate::fetch::{DebPackage, FetchError, apt_download, extract_deb};
use crate::manifest::{ImageCaption, ImageSound, Manifest, ManifestError};

/// The pinned package.
pub const TUXPAINT_STAMPS: DebPackage = DebPackage {
    name: "tuxpaint-stamps-default",
    version: "2022.06.04-1",
    sha256: "6db6c1bfc870a47f1499d6203b083522eacb57c5f9c87d468f2e92eb6d9d5f34",
};

/// Where the stamps sit inside the unpacked package.
const STAMPS_DIR: &str = "unpacked/usr/share/tuxpaint/stamps";

/// Why the stamps could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StampsError {
    /// Fetching or unpacking failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// A manifest could not be written.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// A folder could not be listed.
    #[error("{path}: {source}")]
    Io {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// What [`prepare_stamps`] wrote.
#[derive(Debug, Clone)]
pub struct StampsData {
    /// Every stamp with its caption.
    pub captions: PathBuf,
    /// The stamps with a sound.
    pub sounds: PathBuf,
    /// Stamps in `captions`.
    pub stamps: usize,
    /// Stamps in `sounds`.
    pub with_sound: usize,
}

/// Fetches the package into `cache`, unpacks it under `dest/unpacked` and writes the manifests.
pub fn prepare_stamps(cache: &Path, dest: &Path) -> Result<StampsData, StampsError> {
    let deb = apt_download(&TUXPAINT_STAMPS, cache)?;
    let root = dest.join(STAMPS_DIR);
    if !root.is_dir() {
        extract_deb(&deb, &dest.join("unpacked"))?;
    }
    let mut pngs = Vec::new();
    walk(&root, &mut pngs)?;
    pngs.sort();
    let mut captions = Vec::new();
    let mut sounds = Vec::new();
    for png in pngs {
        let rel = png
            .strip_prefix(dest)
            .unwrap_or(&png)
            .to_string_lossy()
            .into_owned();
        let caption = read_caption(&png.with_extension("txt"));
        let label = png
            .strip_prefix(&root)
            .ok()
            .and_then(|p| p.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if let Some(caption) = &caption {
            let split = if captions.len() % 4 == 3 {
                "test"
            } else {
                "train"
            };
            captions.push(ImageCaption {
                image: rel.clone(),
                captions: vec![caption.clone()],
                label: label.clone(),
                split: Some(split.into()),
            });
        }
        let ogg = png.with_extension("ogg");
        if ogg.is_file() {
            let split = if sounds.len() % 4 == 3 {
                "test"
            } else {
                "train"
            };
            sounds.push(ImageSound {
                image: rel,
                audio: ogg
                    .strip_prefix(dest)
                    .unwrap_or(&ogg)
                    .to_string_lossy()
                    .into_owned(),
                caption,
                label,
                split: Some(split.into()),
            });
        }
    }
    let out = StampsData {
        captions: dest.join("stamps.jsonl"),
        sounds: dest.join("stamp-sounds.jsonl"),
        stamps: captions.len(),
        with_sound: sounds.len(),
    };
    Manifest::write(&out.captions, &captions)?;
    Manifest::write(&out.sounds, &sounds)?;
    Ok(out)
}

/// Every `.png` under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StampsError> {
    let io = |source| StampsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "png") {
            out.push(path);
        }
    }
    Ok(())
}

/// The English line of a stamp's description file: the first line that is not a
/// `locale=text` translation.
pub fn read_caption(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains('='))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_english_line_is_the_caption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frog.txt");
        std::fs::write(&path, "A frog.\nach.utf8=Ogwal\naf.utf8='n Padda.\n").unwrap();
        assert_eq!(read_caption(&path).as_deref(), Some("A frog."));
        std::fs::write(&path, "fr.utf8=Une grenouille.\n").unwrap();
        assert_eq!(read_caption(&path), None);
        assert_eq!(read_caption(&dir.path().join("missing.txt")), None);
    }
}
