//! Resizing of 8-bit RGB images, bit-exact with Pillow's `Image.resize`, which is what
//! transformers' `CLIPImageProcessor` uses (bicubic by default; any of Pillow's filters by the
//! `resample` field of a preprocessor config).
//!
//! The convolution filters (box, bilinear, Hamming, bicubic, Lanczos): separable, the kernel
//! widened by the scale factor when shrinking (antialiasing), coefficients normalized per output
//! pixel and quantized to 22-bit fixed point, horizontal pass first, each pass rounded back to 8
//! bits. Matches Pillow `src/libImaging/Resample.c` (the filters, `precompute_coeffs`,
//! `normalize_coeffs_8bpc`, `ImagingResampleHorizontal_8bpc` / `ImagingResampleVertical_8bpc`).
//! Nearest neighbour is Pillow's affine transform path (`_imaging.c` `_resize`,
//! `Geometry.c` `ImagingTransformAffine`).

use std::f64::consts::PI;

use crate::decode::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// A resampling filter, numbered as Pillow's `Image.Resampling` (the `resample` field of HF
/// preprocessor configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `NEAREST` (0).
    Nearest,
    /// `LANCZOS` (1).
    Lanczos,
    /// `BILINEAR` (2).
    Bilinear,
    /// `BICUBIC` (3), CLIP's.
    Bicubic,
    /// `BOX` (4).
    Box,
    /// `HAMMING` (5).
    Hamming,
}

impl Filter {
    /// The filter with Pillow's number `code`, if there is one.
    pub fn from_pillow(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }

    /// Pillow's number for the filter.
    pub fn pillow_code(self) -> u64 {
        match self {
            Self::Nearest => 0,
            Self::Lanczos => 1,
            Self::Bilinear => 2,
            Self::Bicubic => 3,
            Self::Box => 4,
            Self::Hamming => 5,
        }
    }

    /// Half-width of the kernel at scale 1.
    fn support(self) -> f64 {
        match self {
            Self::Nearest | Self::Box => 0.5,
            Self::Bilinear | Self::Hamming => 1.0,
            Self::Bicubic => 2.0,
            Self::Lanczos => 3.0,
        }
    }

    /// The kernel (Pillow `Resample.c` `box_filter`, `bilinear_filter`, `hamming_filter`,
    /// `bicubic_filter`, `lanczos_filter`).
    fn weight(self, x: f64) -> f64 {
        match self {
            Self::Nearest | Self::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Self::Bilinear => (1.0 - x.abs()).max(0.0),
            Self::Hamming => {
                let x = x.abs();
                if x == 0.0 {
                    1.0
                } else if x >= 1.0 {
                    0.0
                } else {
                    let x = x * PI;
                    x.sin() / x * (0.54 + 0.46 * x.cos())
                }
            }
            Self::Bicubic => bicubic(x),
            Self::Lanczos => {
                if -3.0 < x && x < 3.0 {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * PI;
        x.sin() / x
    }
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output pixel: first input index and fixed-point weights.
fn coefficients(filter: Filter, in_size: usize, out_size: usize) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter.support() * filter_scale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filter_scale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            let fixed = w
                .iter()
                .map(|&v| {
                    let scaled = v * (1u32 << PRECISION_BITS) as f64;
                    if v < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(v: i64) -> u8 {
    let shifted = v >> PRECISION_BITS;
    shifted.clamp(0, 255) as u8
}

/// Resizes `img` to `width x height` as Pillow's bicubic filter does.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    resize(img, width, height, Filter::Bicubic)
}

/// Resizes `img` to `width x height` as Pillow's `Image.resize(size, filter)` does.
pub fn resize(img: &RgbImage, width: u32, height: u32, filter: Filter) -> RgbImage {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    if filter == Filter::Nearest {
        return resize_nearest(img, width, height);
    }
    let (w, h) = (img.width as usize, img.height as usize);
    let (nw, nh) = (width as usize, height as usize);
    let mut pixels = img.pixels.clone();
    let mut cur_w = w;
    if nw != w {
        let coeffs = coefficients(filter, w, nw);
        let mut out = vec![0u8; nw * h * 3];
        for y in 0..h {
            for (x, (xmin, k)) in coeffs.iter().enumerate() {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += pixels[(y * w + xmin + i) * 3 + c] as i64 * kv as i64;
                    }
                    out[(y * nw + x) * 3 + c] = clip8(ss);
                }
            }
        }
        pixels = out;
        cur_w = nw;
    }
    if nh != h {
        let coeffs = coefficients(filter, h, nh);
        let mut out = vec![0u8; cur_w * nh * 3];
        for (y, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..cur_w {
                for c in 0..3 {
                    let mut ss: i64 = 1 << (PRECISION_BITS - 1);
                    for (i, &kv) in k.iter().enumerate() {
                        ss += pixels[((ymin + i) * cur_w + x) * 3 + c] as i64 * kv as i64;
                    }
                    out[(y * cur_w + x) * 3 + c] = clip8(ss);
                }
            }
        }
        pixels = out;
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

/// Source index of each output pixel along one axis under Pillow's nearest-neighbour affine
/// transform: the centre of output pixel `i` maps to `(i + 0.5) * in / out`, stepped by
/// repeated addition as `ImagingTransformAffine` does, and truncated.
fn nearest_indices(in_size: usize, out_size: usize) -> Vec<usize> {
    let step = in_size as f64 / out_size as f64;
    let mut pos = step * 0.5;
    (0..out_size)
        .map(|_| {
            let i = (pos as usize).min(in_size - 1);
            pos += step;
            i
        })
        .collect()
}

fn resize_nearest(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let w = img.width as usize;
    let xs = nearest_indices(w, width as usize);
    let ys = nearest_indices(img.height as usize, height as usize);
    let mut pixels = Vec::with_capacity(xs.len() * ys.len() * 3);
    for &y in &ys {
        for &x in &xs {
            let src = (y * w + x) * 3;
            pixels.extend_from_slice(&img.pixels[src..src + 3]);
        }
    }
    RgbImage {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_images_stay_constant() {
        let img = RgbImage {
            width: 7,
            height: 5,
            pixels: [10u8, 200, 99].repeat(35),
        };
        for (w, h) in [(3, 2), (14, 11), (7, 9)] {
            let out = resize_bicubic(&img, w, h);
            assert!(out.pixels.chunks(3).all(|p| p == [10, 200, 99]), "{w}x{h}");
        }
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(64, 32), (32, 64), (100, 7)] {
            for (_, k) in coefficients(Filter::Bicubic, i, o) {
                let sum: i64 = k.iter().map(|&v| v as i64).sum();
                assert!(
                    (sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64,
                    "{i}->{o}: {sum}"
                );
            }
        }
    }
}
