//! OpenMoji (the npm package `openmoji`, CC BY-SA 4.0): a third drawing style of the emoji,
//! flat with black outlines, for training image models that must read a style they never saw
//! (the Twitter emoji stay held out).
//!
//! The package ships SVG only. Each emoji of the Google/Twitter manifests that OpenMoji also
//! draws is rendered once to a 64 px PNG (`resvg`), its drawing (outline included) scaled to
//! fill the square as the other two styles' drawings do, and gets the Google record's
//! captions and label under split `train`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mm_data::fetch::{NpmPackage, extract_tgz, npm_pack};
use mm_data::manifest::{ImageCaption, Manifest};

use crate::datasets::{DatasetError, emoji_records};
pub use crate::svg::{RenderError, render_svg};

/// The OpenMoji drawings, pinned.
pub const OPENMOJI: NpmPackage = NpmPackage {
    name: "openmoji",
    version: "17.0.0",
    sha256: "55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68",
};

/// Side of the rendered squares, the other styles' size.
pub const SIZE: u32 = 64;

/// A code-point sequence as a matching key: upper case, variation selector 16 dropped
/// (`0023-fe0f-20e3` and `0023-20E3` are the same emoji).
pub fn hexcode_key(stem: &str) -> String {
    stem.split('-')
        .map(str::to_uppercase)
        .filter(|p| p != "FE0F")
        .collect::<Vec<_>>()
        .join("-")
}

/// Pairs each Google record (`img/google/64/<code>.png`) with the OpenMoji SVG of the same
/// emoji among `svg_stems` (file names without `.svg`): an exact match of the upper-cased
/// code first, then one without variation selectors. Returns (record, SVG stem) pairs,
/// the records pointing at `openmoji/64/<code>.png` under split `train`.
pub fn openmoji_records(
    google: &[ImageCaption],
    svg_stems: &[String],
) -> Vec<(ImageCaption, String)> {
    let exact: BTreeMap<String, &String> =
        svg_stems.iter().map(|s| (s.to_uppercase(), s)).collect();
    let mut loose: BTreeMap<String, &String> = BTreeMap::new();
    for s in svg_stems {
        loose.entry(hexcode_key(s)).or_insert(s);
    }
    let mut out = Vec::new();
    for record in google {
        let Some(file) = Path::new(&record.image)
            .file_name()
            .and_then(|f| f.to_str())
        else {
            continue;
        };
        let Some(code) = file.strip_suffix(".png") else {
            continue;
        };
        let found = exact
            .get(&code.to_uppercase())
            .or_else(|| loose.get(&hexcode_key(code)));
        if let Some(stem) = found {
            out.push((
                ImageCaption {
                    image: format!("openmoji/{SIZE}/{file}"),
                    split: Some("train".into()),
                    ..record.clone()
                },
                (*stem).clone(),
            ));
        }
    }
    out
}

/// What [`prepare_openmoji`] wrote.
#[derive(Debug, Clone)]
pub struct OpenMojiManifest {
    /// `dest/openmoji.jsonl`.
    pub manifest: PathBuf,
    /// Records written.
    pub records: usize,
    /// Emoji of the Google manifest OpenMoji does not draw.
    pub missing: usize,
    /// SVGs that could not be rendered, with the reason (left out of the manifest).
    pub failed: Vec<(String, String)>,
}

/// Fetches OpenMoji into `cache`, renders the drawings of the emoji in `dest`'s Google
/// manifest (`cargo xtask data fetch emoji` writes its metadata) to `dest/openmoji/64/`, and
/// writes `dest/openmoji.jsonl`.
pub fn prepare_openmoji(cache: &Path, dest: &Path) -> Result<OpenMojiManifest, DatasetError> {
    let meta_path = dest.join("unpacked/package/emoji.json");
    let metadata = std::fs::read_to_string(&meta_path).map_err(|e| DatasetError::Metadata {
        path: meta_path.clone(),
        reason: format!("{e} (run `cargo xtask data fetch emoji` first)"),
    })?;
    let (google, _) = emoji_records(&metadata, &meta_path)?;
    let tgz = npm_pack(&OPENMOJI, cache)?;
    let unpack = dest.join("unpacked-openmoji");
    let prefix = "package/color/svg/";
    extract_tgz(&tgz, &unpack, |p| {
        p.starts_with(prefix) && p.ends_with(".svg")
    })?;
    let svg_dir = unpack.join(prefix);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DatasetError::Io { path, source }
    };
    let mut stems = Vec::new();
    for entry in std::fs::read_dir(&svg_dir).map_err(io(&svg_dir))? {
        let name = entry.map_err(io(&svg_dir))?.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".svg")) {
            stems.push(stem.to_string());
        }
    }
    stems.sort();
    let pairs = openmoji_records(&google, &stems);
    let png_dir = dest.join(format!("openmoji/{SIZE}"));
    std::fs::create_dir_all(&png_dir).map_err(io(&png_dir))?;
    let mut records = Vec::new();
    let mut failed = Vec::new();
    for (record, stem) in &pairs {
        let svg_path = svg_dir.join(format!("{stem}.svg"));
        let svg = std::fs::read(&svg_path).map_err(io(&svg_path))?;
        let png = render_svg(&svg, SIZE).and_then(|p| {
            p.encode_png()
                .map_err(|e| RenderError::Encode(e.to_string()))
        });
        match png {
            Ok(bytes) => {
                let out = dest.join(&record.image);
                mm_data::fs::atomic_write(&out, &bytes).map_err(io(&out))?;
                records.push(record.clone());
            }
            Err(e) => failed.push((stem.clone(), e.to_string())),
        }
    }
    let manifest = dest.join("openmoji.jsonl");
    mm_data::fs::atomic_write(&manifest, Manifest::to_jsonl(&records).as_bytes())
        .map_err(io(&manifest))?;
    Ok(OpenMojiManifest {
        manifest,
        records: records.len(),
        missing: google.len() - pairs.len(),
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google(code: &str) -> ImageCaption {
        ImageCaption {
            image: format!("img/google/64/{code}.png"),
            captions: vec![format!("emoji {code}")],
            label: Some("kind".into()),
            split: Some("train".into()),
        }
    }

    #[test]
    fn records_match_codes_with_and_without_variation_selectors() {
        let stems: Vec<String> = ["1F600", "0023-20E3", "2764-FE0F"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let records = [
            google("1f600"),
            google("0023-fe0f-20e3"),
            google("2764"),
            google("1f9c7"),
        ];
        let pairs = openmoji_records(&records, &stems);
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(r, s)| (r.image.as_str(), s.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("openmoji/64/1f600.png", "1F600"),
                ("openmoji/64/0023-fe0f-20e3.png", "0023-20E3"),
                ("openmoji/64/2764.png", "2764-FE0F"),
            ]
        );
        assert_eq!(pairs[0].0.captions, ["emoji 1f600"]);
        assert_eq!(pairs[0].0.label.as_deref(), Some("kind"));
    }

    #[test]
    fn preparing_without_the_emoji_metadata_names_the_missing_step() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare_openmoji(&dir.path().join("cache"), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("emoji.json"), "{err}");
        assert!(err.contains("cargo xtask data fetch emoji"), "{err}");
        assert!(!dir.path().join("openmoji.jsonl").exists());
    }

    #[test]
    fn bad_svgs_are_named_errors() {
        assert!(matches!(
            render_svg(b"not svg", 64),
            Err(RenderError::Parse(_))
        ));
        let empty = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72"></svg>"#;
        assert!(matches!(render_svg(empty, 64), Err(RenderError::Empty)));
    }
}
