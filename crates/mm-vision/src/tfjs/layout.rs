//! TensorFlow's layouts and conventions as Burn needs them: filters reordered, SAME padding,
//! the bilinear resize's interpolation matrices, NHWC axes as NCHW ones.

use super::format::Constant;

/// TensorFlow's `[kh, kw, in, out]` filter as Burn's `[out, in, kh, kw]`; a depthwise
/// `[kh, kw, in, multiplier]` one as `[in * multiplier, 1, kh, kw]`.
pub(crate) fn burn_filter(c: &Constant, depthwise: bool) -> Option<(Vec<f32>, [usize; 4])> {
    let [kh, kw, i, o] = <[usize; 4]>::try_from(c.shape.as_slice()).ok()?;
    let mut out = vec![0.0; c.values.len()];
    for y in 0..kh {
        for x in 0..kw {
            for a in 0..i {
                for b in 0..o {
                    let v = c.values[((y * kw + x) * i + a) * o + b];
                    let at = if depthwise {
                        ((a * o + b) * kh + y) * kw + x
                    } else {
                        ((b * i + a) * kh + y) * kw + x
                    };
                    out[at] = v;
                }
            }
        }
    }
    let shape = if depthwise {
        [i * o, 1, kh, kw]
    } else {
        [o, i, kh, kw]
    };
    Some((out, shape))
}

/// TensorFlow's padding of one axis: `(before, after)` for `SAME`, none for `VALID`.
pub(crate) fn same_padding(
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let reach = (kernel - 1) * dilation + 1;
    let total = ((out - 1) * stride + reach).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// The interpolation matrix `[out, in]` of TensorFlow's `ResizeBilinear` along one axis.
pub(crate) fn resize_matrix(input: usize, output: usize, align: bool, half: bool) -> Vec<f32> {
    let scale = if align && output > 1 {
        (input as f32 - 1.0) / (output as f32 - 1.0)
    } else {
        input as f32 / output as f32
    };
    let mut m = vec![0.0; output * input];
    for o in 0..output {
        let src = if half {
            (o as f32 + 0.5) * scale - 0.5
        } else {
            o as f32 * scale
        };
        let lo = src.floor();
        let frac = src - lo;
        let clamp = |v: f32| (v.max(0.0) as usize).min(input - 1);
        m[o * input + clamp(lo)] += 1.0 - frac;
        m[o * input + clamp(lo + 1.0)] += frac;
    }
    m
}

/// NHWC axis as NCHW axis.
pub(crate) fn nchw_axis(axis: i64) -> Option<usize> {
    match axis {
        0 | -4 => Some(0),
        1 | -3 => Some(2),
        2 | -2 => Some(3),
        3 | -1 => Some(1),
        _ => None,
    }
}
