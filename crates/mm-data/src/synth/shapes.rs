//! Coloured shapes on white: a generated image-caption set ("a red circle") written as PNG
//! files plus a JSONL manifest, so tests and the stress harness run the same loaders as real
//! data.

use std::io;
use std::path::{Path, PathBuf};

/// The four colours, by name, with their RGB value.
pub const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 180, 60]),
    ("blue", [40, 60, 220]),
    ("yellow", [230, 210, 40]),
];

/// The four shapes.
pub const SHAPES: [&str; 4] = ["square", "circle", "bar", "cross"];

/// Whether pixel (`x`, `y`) of a `size` px image lies inside `shape` centred at `centre`.
fn inside(shape: &str, x: i32, y: i32, size: i32, centre: (i32, i32)) -> bool {
    let (dx, dy) = (x - centre.0, y - centre.1);
    match shape {
        "square" => dx.abs() < size / 3 && dy.abs() < size / 3,
        "circle" => dx * dx + dy * dy < (size / 3) * (size / 3),
        "bar" => dy.abs() < size / 8 && dx.abs() < size / 2 - 2,
        _ => {
            (dx.abs() < size / 10 || dy.abs() < size / 10)
                && dx.abs() < size / 3
                && dy.abs() < size / 3
        }
    }
}

/// Writes `count` PNGs (`size` px) and `manifest.jsonl` into `dir`; returns the manifest path.
///
/// Image `i` is colour `i / 4 % 4` and shape `i % 4`, so the first 16 are every combination,
/// centred; later rounds of 16 move the shape's centre by up to 2 px (`red-circle-1.png`, ...).
/// Each record's caption is e.g. "a red circle" and its label the shape.
pub fn write_shapes(dir: &Path, size: u32, count: usize) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut lines = String::new();
    for i in 0..count {
        let (colour, rgb) = COLOURS[i / 4 % 4];
        let shape = SHAPES[i % 4];
        let round = i / 16;
        let name = if round == 0 {
            format!("{colour}-{shape}.png")
        } else {
            format!("{colour}-{shape}-{round}.png")
        };
        let shift = |r: usize| (r % 5) as i32 - 2;
        let centre = if round == 0 {
            (size as i32 / 2, size as i32 / 2)
        } else {
            (
                size as i32 / 2 + shift(round),
                size as i32 / 2 + shift(round / 5 + 1),
            )
        };
        let img = image::RgbImage::from_fn(size, size, |x, y| {
            if inside(shape, x as i32, y as i32, size as i32, centre) {
                image::Rgb(rgb)
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mut png = Vec::new();
        img.write_to(&mut io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(io::Error::other)?;
        crate::fs::atomic_write(&dir.join(&name), &png)?;
        let record = serde_json::json!({
            "image": name,
            "captions": [format!("a {colour} {shape}")],
            "label": shape,
        });
        lines.push_str(&record.to_string());
        lines.push('\n');
    }
    let path = dir.join("manifest.jsonl");
    crate::fs::atomic_write(&path, lines.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ImageCaption, Manifest};

    #[test]
    fn every_combination_first_then_shifted_copies() {
        let tmp = tempfile::tempdir().unwrap();
        let path = write_shapes(tmp.path(), 16, 20).unwrap();
        let manifest = Manifest::<ImageCaption>::read(&path).unwrap();
        assert_eq!(manifest.records.len(), 20);
        let first: Vec<&str> = manifest.records[..16]
            .iter()
            .map(|r| r.captions[0].as_str())
            .collect();
        assert_eq!(first[0], "a red square");
        assert_eq!(first[5], "a green circle");
        let distinct: std::collections::BTreeSet<_> = first.iter().collect();
        assert_eq!(distinct.len(), 16);
        // Image 16 is image 0's shape moved: same caption, other pixels.
        assert_eq!(manifest.records[16].image, "red-square-1.png");
        assert_eq!(manifest.records[16].captions[0], "a red square");
        let a = std::fs::read(tmp.path().join("red-square.png")).unwrap();
        let b = std::fs::read(tmp.path().join("red-square-1.png")).unwrap();
        assert_ne!(a, b);
    }
}
