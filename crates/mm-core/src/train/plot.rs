//! The loss curve of a run as a PNG: raw loss per step (light) and its running mean (dark),
//! with the step and loss ranges written on the axes in a small built-in pixel font.

use std::path::Path;

use image::{Rgb, RgbImage};

const W: u32 = 720;
const H: u32 = 400;
const LEFT: u32 = 70;
const RIGHT: u32 = 20;
const TOP: u32 = 20;
const BOTTOM: u32 = 50;

/// Why the plot could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Nothing to draw.
    #[error("no loss values to plot")]
    Empty,
    /// A confusion matrix that is empty or not square.
    #[error("a confusion matrix must be square and not empty, got {rows} rows")]
    NotSquare {
        /// Its rows.
        rows: usize,
    },
    /// The PNG could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: std::path::PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

/// Draws `points` (step, loss) to a PNG at `path`.
pub fn loss_curve(points: &[(usize, f64)], path: &Path) -> Result<(), PlotError> {
    let points: Vec<(f64, f64)> = points
        .iter()
        .filter(|(_, l)| l.is_finite())
        .map(|&(s, l)| (s as f64, l))
        .collect();
    if points.is_empty() {
        return Err(PlotError::Empty);
    }
    let (x0, x1) = (
        points[0].0.min(0.0),
        points.last().map_or(1.0, |p| p.0).max(1.0),
    );
    let lo = points
        .iter()
        .map(|p| p.1)
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut img = RgbImage::from_pixel(W, H, Rgb([255, 255, 255]));
    let (pw, ph) = ((W - LEFT - RIGHT) as f64, (H - TOP - BOTTOM) as f64);
    let to_px = |x: f64, y: f64| {
        (
            LEFT as f64 + (x - x0) / (x1 - x0) * pw,
            TOP as f64 + (1.0 - (y - lo) / (hi - lo)) * ph,
        )
    };
    let grey = Rgb([200, 200, 200]);
    for i in 0..=4 {
        let y = TOP + (ph as u32) * i / 4;
        line(
            &mut img,
            (LEFT as f64, y as f64),
            ((W - RIGHT) as f64, y as f64),
            grey,
        );
        let value = hi - (hi - lo) * i as f64 / 4.0;
        text(&mut img, &format!("{value:.2}"), 4, y.saturating_sub(5), 2);
    }
    let axis = Rgb([0, 0, 0]);
    line(&mut img, to_px(x0, lo), to_px(x1, lo), axis);
    line(&mut img, to_px(x0, lo), to_px(x0, hi), axis);
    text(
        &mut img,
        &format!("{}", x0 as usize),
        LEFT,
        H - BOTTOM + 8,
        2,
    );
    let end = format!("{}", x1 as usize);
    text(
        &mut img,
        &end,
        W - RIGHT - 8 * end.len() as u32,
        H - BOTTOM + 8,
        2,
    );
    text(&mut img, "step", W / 2 - 16, H - 22, 2);
    text(&mut img, "loss", 4, H - 22, 2);
    let raw = Rgb([150, 180, 230]);
    for w in points.windows(2) {
        line(&mut img, to_px(w[0].0, w[0].1), to_px(w[1].0, w[1].1), raw);
    }
    let window = (points.len() / 25).max(1);
    let smooth: Vec<(f64, f64)> = (0..points.len())
        .map(|i| {
            let from = i.saturating_sub(window - 1);
            let mean = points[from..=i].iter().map(|p| p.1).sum::<f64>() / (i - from + 1) as f64;
            (points[i].0, mean)
        })
        .collect();
    let dark = Rgb([20, 60, 160]);
    for w in smooth.windows(2) {
        line(&mut img, to_px(w[0].0, w[0].1), to_px(w[1].0, w[1].1), dark);
    }
    img.save(path).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), color: Rgb<u8>) {
    let n = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    for i in 0..=n {
        let t = i as f64 / n as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

/// 3x5 glyphs, one row of 3 bits per entry, top row first.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        'e' => [0, 7, 7, 4, 7],
        'l' => [6, 2, 2, 2, 7],
        'o' => [0, 7, 5, 5, 7],
        's' => [0, 7, 6, 1, 7],
        't' => [2, 7, 2, 2, 3],
        'p' => [0, 7, 5, 7, 4],
        _ => [0; 5],
    }
}

/// Writes `s` in black at `(x, y)`, each font pixel `scale` pixels wide.
pub(super) fn text(img: &mut RgbImage, s: &str, x: u32, y: u32, scale: u32) {
    text_in(img, s, x, y, scale, Rgb([0, 0, 0]));
}

/// Writes `s` in `color` at `(x, y)`, each font pixel `scale` pixels wide.
pub(super) fn text_in(img: &mut RgbImage, s: &str, x: u32, y: u32, scale: u32, color: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3u32 {
                if bits >> (2 - col) & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 4 + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, color);
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_falling_curve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let points: Vec<(usize, f64)> = (1..=100).map(|s| (s, 5.0 / s as f64)).collect();
        loss_curve(&points, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (W, H));
        // The curve starts high at the left and ends low at the right.
        let dark = |x: u32| (0..H).find(|&y| img.get_pixel(x, y) == &Rgb([20, 60, 160]));
        let (left, right) = (dark(LEFT + 12).unwrap(), dark(W - RIGHT - 2).unwrap());
        assert!(left + 100 < right, "left {left} right {right}");
        assert!(matches!(loss_curve(&[], &path), Err(PlotError::Empty)));
    }
}
