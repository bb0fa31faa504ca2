//! A picture of what each class looks like: one held-out clip per class, its frames side by
//! side, one row per class in the order of [`VideoTask::classes`]. For the footage tasks
//! (arrow of time, speed) every row shows the same start of the same window, so the rows
//! differ only in what the class changes (the order of the frames, or their stride); the clip
//! that moves most is chosen, since a still one would show nothing.

use image::{Rgb, RgbImage};

use crate::tasks::{Strip, VideoTask, clip_motion, test_clips};

/// Pixels between frames and between rows.
const GAP: u32 = 2;

/// Which clips the rows show: `(strip, frame indices)` per class, or `None` for a class with
/// no test clip.
pub fn class_examples(
    task: VideoTask,
    strips: &[Strip],
    frames: usize,
    min_motion: f32,
) -> Vec<Option<(usize, Vec<usize>)>> {
    let classes = task.classes().len();
    let clips = test_clips(task, strips, frames, min_motion);
    let mut rows: Vec<Option<(usize, Vec<usize>)>> = vec![None; classes];
    match task {
        VideoTask::Motion => {
            for (s, indices, label) in clips {
                if label < classes && rows[label].is_none() {
                    rows[label] = Some((s, indices));
                }
            }
        }
        VideoTask::Arrow | VideoTask::Speed => {
            // Every class of one start shares the start; pick the start whose first class
            // moves most, then take each class at that start.
            let best = clips
                .iter()
                .filter(|(_, _, label)| *label == 0)
                .max_by(|a, b| {
                    clip_motion(&strips[a.0], &a.1).total_cmp(&clip_motion(&strips[b.0], &b.1))
                });
            if let Some((s, first, _)) = best {
                let start = first.iter().copied().min().unwrap_or(0);
                for (label, row) in rows.iter_mut().enumerate() {
                    *row = Some((*s, task.clip(start, frames, label)));
                }
            }
        }
    }
    rows
}

/// Draws [`class_examples`]: one row per class, the clip's frames left to right; a class
/// without a test clip leaves its row dark. `None` when no class has a clip.
pub fn class_strips_image(
    task: VideoTask,
    strips: &[Strip],
    frames: usize,
    min_motion: f32,
) -> Option<RgbImage> {
    let rows = class_examples(task, strips, frames, min_motion);
    let (fw, fh) = rows
        .iter()
        .flatten()
        .next()
        .map(|(s, _)| strips[*s].frames[0].dimensions())?;
    let columns = frames as u32;
    let width = columns * fw + (columns + 1) * GAP;
    let height = rows.len() as u32 * fh + (rows.len() as u32 + 1) * GAP;
    let mut out = RgbImage::from_pixel(width, height, Rgb([24, 24, 24]));
    for (r, row) in rows.iter().enumerate() {
        let Some((s, indices)) = row else { continue };
        for (c, &i) in indices.iter().enumerate() {
            let x = GAP + c as u32 * (fw + GAP);
            let y = GAP + r as u32 * (fh + GAP);
            image::imageops::replace(&mut out, &strips[*s].frames[i], x as i64, y as i64);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strip whose frame `k` is uniformly grey level `k * step`.
    fn ramp(n: usize, step: u8, label: Option<usize>) -> Strip {
        Strip {
            frames: (0..n)
                .map(|k| RgbImage::from_pixel(4, 4, Rgb([k as u8 * step; 3])))
                .collect(),
            label,
        }
    }

    #[test]
    fn footage_rows_share_the_most_moving_start() {
        // The second strip changes ten times faster, so its clip is the one shown.
        let strips = vec![ramp(40, 1, None), ramp(40, 6, None)];
        let rows = class_examples(VideoTask::Arrow, &strips, 4, 0.0);
        let forward = rows[0].clone().unwrap();
        let reversed = rows[1].clone().unwrap();
        assert_eq!(forward.0, 1);
        assert_eq!(reversed.0, 1);
        let mut back = reversed.1.clone();
        back.reverse();
        assert_eq!(forward.1, back);
        let image = class_strips_image(VideoTask::Arrow, &strips, 4, 0.0).unwrap();
        assert_eq!(image.dimensions(), (4 * 4 + 5 * GAP, 2 * 4 + 3 * GAP));
        // Row 1, first column is the reversed clip's first frame: the latest of the clip.
        let last = forward.1[3] as u8 * 6;
        assert_eq!(image.get_pixel(GAP, 4 + 2 * GAP).0, [last; 3]);
    }

    #[test]
    fn motion_rows_follow_the_labels_and_missing_ones_stay_dark() {
        let strips = vec![ramp(8, 10, Some(2)), ramp(8, 20, Some(0))];
        let rows = class_examples(VideoTask::Motion, &strips, 8, 0.0);
        assert_eq!(rows[0].as_ref().unwrap().0, 1);
        assert_eq!(rows[2].as_ref().unwrap().0, 0);
        assert!(rows[1].is_none());
        let image = class_strips_image(VideoTask::Motion, &strips, 8, 0.0).unwrap();
        assert_eq!(image.get_pixel(GAP, 4 + 2 * GAP).0, [24; 3]);
        assert!(class_strips_image(VideoTask::Motion, &[], 8, 0.0).is_none());
    }
}
