//! A confusion matrix as a PNG: one square per (true, predicted) pair, shaded by the share of
//! the true class's examples it holds, with the count written in it. Rows are true classes,
//! columns predicted ones, both numbered in the order of the report's `classes`.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::plot::{PlotError, text, text_in};

const CELL: u32 = 48;
const MARGIN: u32 = 60;

/// Draws `confusion` (`confusion[truth][predicted]` counts, square) to a PNG at `path`.
pub fn confusion_png(confusion: &[Vec<usize>], path: &Path) -> Result<(), PlotError> {
    let n = confusion.len();
    if n == 0 || confusion.iter().any(|row| row.len() != n) {
        return Err(PlotError::NotSquare { rows: n });
    }
    let side = MARGIN + CELL * n as u32 + 12;
    let mut img = RgbImage::from_pixel(side, side, Rgb([255, 255, 255]));
    for (t, row) in confusion.iter().enumerate() {
        let total = row.iter().sum::<usize>().max(1) as f64;
        for (p, &count) in row.iter().enumerate() {
            let share = count as f64 / total;
            let (x, y) = (MARGIN + p as u32 * CELL, MARGIN + t as u32 * CELL);
            let shade = |full: f64| (255.0 - (255.0 - full) * share).round() as u8;
            let fill = Rgb([shade(20.0), shade(60.0), shade(160.0)]);
            for dy in 1..CELL {
                for dx in 1..CELL {
                    img.put_pixel(x + dx, y + dy, fill);
                }
            }
            let ink = if share > 0.5 {
                Rgb([255, 255, 255])
            } else {
                Rgb([0, 0, 0])
            };
            let label = count.to_string();
            let width = 8 * label.len() as u32;
            text_in(
                &mut img,
                &label,
                x + (CELL - width) / 2,
                y + CELL / 2 - 5,
                2,
                ink,
            );
        }
    }
    for i in 0..n as u32 {
        let label = i.to_string();
        text(
            &mut img,
            &label,
            MARGIN + i * CELL + CELL / 2 - 4,
            MARGIN - 16,
            2,
        );
        text(
            &mut img,
            &label,
            MARGIN - 24,
            MARGIN + i * CELL + CELL / 2 - 5,
            2,
        );
    }
    text(&mut img, "p", MARGIN + CELL * n as u32 / 2, 8, 3);
    text(&mut img, "t", 8, MARGIN + CELL * n as u32 / 2, 3);
    img.save(path).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_by_the_share_of_each_true_class() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        confusion_png(&[vec![9, 1], vec![5, 5]], &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        let corner = |t: u32, p: u32| *img.get_pixel(MARGIN + p * CELL + 3, MARGIN + t * CELL + 3);
        // 9 of 10 is darker than 5 of 10, which is darker than 1 of 10.
        assert!(corner(0, 0)[0] < corner(1, 0)[0]);
        assert!(corner(1, 0)[0] < corner(0, 1)[0]);
        assert_eq!(corner(1, 0), corner(1, 1));
        assert!(matches!(
            confusion_png(&[vec![1, 2]], &path),
            Err(PlotError::NotSquare { rows: 1 })
        ));
    }
}
