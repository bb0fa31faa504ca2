//! GCompris' pictures that make a sound (Debian's `gcompris-qt-data`: GPL-3 sounds and code,
//! CC BY-SA 4.0 drawings; fetched at run time with `apt-get download`, never committed): the
//! 26 instruments of its "instruments" activity and the 9 animals of "explore farm animals",
//! each an SVG drawing with the recording of the thing it shows. They are more sound-picture
//! pairs for the sound-source localizer, beside the Tux Paint stamps, in the stamps' manifest
//! form ([`ImageSound`], split `train`): every drawing is rendered as a cutout with
//! transparency, so its alpha channel is its mask in a composed scene.
//!
//! GCompris ships its data as Qt resource blobs (`usr/share/gcompris-qt/rcc/*.rcc`), read
//! with [`mm_data::qt_resources`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mm_data::fetch::{DebPackage, apt_download, extract_deb};
use mm_data::manifest::{ImageSound, Manifest};
use mm_data::qt_resources::read_rcc;

use crate::datasets::DatasetError;
use crate::svg::{RenderError, render_svg_cutout};

/// The pinned package.
pub const GCOMPRIS_DATA: DebPackage = DebPackage {
    name: "gcompris-qt-data",
    version: "3.1-2",
    sha256: "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f",
};

/// Longest side of the rendered cutouts (the localizer loads stamps at 64 px).
pub const CUTOUT_PX: u32 = 128;

/// One drawing with its sound: the activity's resource blob, the two files' names in it, the
/// caption and the label.
struct Pair {
    activity: &'static str,
    picture: &'static str,
    sound: &'static str,
    caption: &'static str,
    label: &'static str,
}

const fn instrument(stem: &'static str, caption: &'static str) -> Pair {
    Pair {
        activity: "instruments",
        picture: stem,
        sound: stem,
        caption,
        label: "instruments",
    }
}

const fn animal(stem: &'static str, sound: &'static str, caption: &'static str) -> Pair {
    Pair {
        activity: "explore_farm_animals",
        picture: stem,
        sound,
        caption,
        label: "animals",
    }
}

/// Every pair the pinned package holds (file stems, without `.svg` and `.ogg`).
const PAIRS: &[Pair] = &[
    instrument("accordion", "An accordion."),
    instrument("banjo", "A banjo."),
    instrument("bongo", "Bongo drums."),
    instrument("castanets", "Castanets."),
    instrument("cello", "A cello."),
    instrument("clarinet", "A clarinet."),
    instrument("cymbal", "A cymbal."),
    instrument("drum_kit", "A drum kit."),
    instrument("electric_guitar", "An electric guitar."),
    instrument("flute_traversiere", "A flute."),
    instrument("guitar", "A guitar."),
    instrument("harmonica", "A harmonica."),
    instrument("harp", "A harp."),
    instrument("horn", "A French horn."),
    instrument("maracas", "Maracas."),
    instrument("organ", "An organ."),
    instrument("piano", "A piano."),
    instrument("saxophone", "A saxophone."),
    instrument("snare_drum", "A snare drum."),
    instrument("tambourine", "A tambourine."),
    instrument("timpani", "Timpani."),
    instrument("triangle", "A triangle."),
    instrument("trombone", "A trombone."),
    instrument("trumpet", "A trumpet."),
    instrument("tuba", "A tuba."),
    instrument("violin", "A violin."),
    animal("cat", "cat", "A cat."),
    animal("chicken", "chickens", "A chicken."),
    animal("cow", "cow", "A cow."),
    animal("dog", "dog", "A dog."),
    animal("duck", "duck", "A duck."),
    animal("horse", "horse", "A horse."),
    animal("owl", "owl", "An owl."),
    animal("pig", "pig", "A pig."),
    animal("sheep", "sheep", "A sheep."),
];

/// Where the resource blobs sit inside the unpacked package.
const RCC_DIR: &str = "unpacked/usr/share/gcompris-qt/rcc";

/// What [`prepare_gcompris`] wrote.
#[derive(Debug, Clone)]
pub struct GcomprisSounds {
    /// The manifest (`gcompris-sounds.jsonl`).
    pub manifest: PathBuf,
    /// Pairs in it.
    pub pairs: usize,
}

/// Fetches the package into `cache`, unpacks it under `dest/unpacked`, writes each pair's
/// cutout to `dest/pictures/` and sound to `dest/sounds/`, and the manifest
/// `dest/gcompris-sounds.jsonl`.
pub fn prepare_gcompris(cache: &Path, dest: &Path) -> Result<GcomprisSounds, DatasetError> {
    let deb = apt_download(&GCOMPRIS_DATA, cache)?;
    let rcc_dir = dest.join(RCC_DIR);
    if !rcc_dir.is_dir() {
        extract_deb(&deb, &dest.join("unpacked"))?;
    }
    let mut blobs: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut records = Vec::new();
    for pair in PAIRS {
        let rcc = rcc_dir.join(format!("{}.rcc", pair.activity));
        if !blobs.contains_key(pair.activity) {
            blobs.insert(pair.activity, resource_files(&rcc)?);
        }
        let files = &blobs[pair.activity];
        let file = |name: String| {
            files.get(&name).ok_or_else(|| DatasetError::Metadata {
                path: rcc.clone(),
                reason: format!("has no resource `{name}`"),
            })
        };
        let svg = file(format!("{}.svg", pair.picture))?;
        let ogg = file(format!("{}.ogg", pair.sound))?;
        let png = render_svg_cutout(svg, CUTOUT_PX)
            .and_then(|p| {
                p.encode_png()
                    .map_err(|e| RenderError::Encode(e.to_string()))
            })
            .map_err(|e| DatasetError::Metadata {
                path: rcc.clone(),
                reason: format!("{}.svg: {e}", pair.picture),
            })?;
        let image = format!("pictures/{}.png", pair.picture);
        let audio = format!("sounds/{}.ogg", pair.sound);
        write(&dest.join(&image), &png)?;
        write(&dest.join(&audio), ogg)?;
        records.push(ImageSound {
            image,
            audio,
            caption: Some(pair.caption.into()),
            label: Some(pair.label.into()),
            split: Some("train".into()),
        });
    }
    let manifest = dest.join("gcompris-sounds.jsonl");
    write(&manifest, Manifest::to_jsonl(&records).as_bytes())?;
    Ok(GcomprisSounds {
        manifest,
        pairs: records.len(),
    })
}

/// The files of one resource blob under their file names (the folders dropped).
fn resource_files(rcc: &Path) -> Result<BTreeMap<String, Vec<u8>>, DatasetError> {
    let bytes = std::fs::read(rcc).map_err(|source| DatasetError::Io {
        path: rcc.to_path_buf(),
        source,
    })?;
    let files = read_rcc(&bytes).map_err(|e| DatasetError::Metadata {
        path: rcc.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(files
        .into_iter()
        .map(|f| {
            let name = f.path.rsplit('/').next().unwrap_or_default().to_string();
            (name, f.data)
        })
        .collect())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), DatasetError> {
    mm_data::fs::atomic_write(path, bytes).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_has_a_sentence_caption_and_a_unique_picture() {
        let mut pictures: Vec<&str> = PAIRS.iter().map(|p| p.picture).collect();
        pictures.sort();
        pictures.dedup();
        assert_eq!(pictures.len(), PAIRS.len());
        for p in PAIRS {
            assert!(p.caption.ends_with('.'), "{}", p.caption);
            assert!(p.caption.chars().next().unwrap().is_uppercase());
        }
    }

    #[test]
    fn a_missing_or_corrupt_blob_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("instruments.rcc");
        let err = resource_files(&missing).unwrap_err().to_string();
        assert!(err.contains("instruments.rcc"), "{err}");
        std::fs::write(&missing, b"not a resource file").unwrap();
        let err = resource_files(&missing).unwrap_err().to_string();
        assert!(
            err.contains("instruments.rcc") && err.contains("qres"),
            "{err}"
        );
    }
}
