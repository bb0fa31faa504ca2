//! Convolutions (2D, and 3D with 2D as a depth of 1; any kernel, stride, padding and dilation;
//! one group) as im2col and one GEMM per sample, with a backward of one GEMM per sample for
//! each of the weight and the input gradients.
//!
//! Flex runs a convolution through an NCHW-to-NHWC copy on one core and im2col tiles, and
//! autodiff's default backward makes the weight gradient a convolution of the batch-swapped
//! input with the batch-swapped output gradient (two strided copies through Flex's generic
//! index iterator, and an im2col as large as the whole batch), and the input gradient a
//! transposed convolution. On the Intel Xeon of 2026-12-02 that put 30% of a video training
//! step in the strided copies alone (docs/performance.md, "Convolutions"). Here:
//! - forward: `y[n] = W [out, c*taps] x cols(x[n]) [c*taps, positions] (+ bias)`, the output
//!   already in NC(D)HW order;
//! - weight gradient: `sum_n gy[n] x cols(x[n])^T`, the columns rebuilt rather than kept;
//! - input gradient: `W^T x gy[n]`, scattered back onto the input by col2im;
//! - a pointwise convolution (1x1, stride 1, no padding) uses the input as its columns.
//!
//! Samples run one per rayon task when there are at least as many as threads (each GEMM on
//! one thread), otherwise one after another with the GEMM and im2col split over the pool.

use std::borrow::Cow;

use rayon::prelude::*;

use super::gemm::{View, matmul, matmul_serial};

/// The shape of a convolution; 2D ones have a depth, kernel depth, stride and dilation of 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Samples in the batch.
    pub batch: usize,
    /// Input channels.
    pub channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Input depth, height and width.
    pub input: [usize; 3],
    /// Kernel depth, height and width.
    pub kernel: [usize; 3],
    /// Stride per axis.
    pub stride: [usize; 3],
    /// Dilation per axis.
    pub dilation: [usize; 3],
    /// Zero padding before each axis (the padding after it only sets `output`).
    pub pad: [usize; 3],
    /// Output depth, height and width.
    pub output: [usize; 3],
}

impl Geometry {
    /// The geometry of a convolution of `[batch, channels, input...]` by a kernel of
    /// `out_channels x channels x kernel...`; `None` when an axis has a zero stride, dilation
    /// or kernel, or its output would be empty.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        channels: usize,
        out_channels: usize,
        input: [usize; 3],
        kernel: [usize; 3],
        stride: [usize; 3],
        dilation: [usize; 3],
        pad_before: [usize; 3],
        pad_after: [usize; 3],
    ) -> Option<Self> {
        let mut output = [0; 3];
        for a in 0..3 {
            if stride[a] == 0 || dilation[a] == 0 || kernel[a] == 0 {
                return None;
            }
            let span = dilation[a] * (kernel[a] - 1) + 1;
            let padded = input[a] + pad_before[a] + pad_after[a];
            if padded < span {
                return None;
            }
            output[a] = (padded - span) / stride[a] + 1;
        }
        Some(Self {
            batch,
            channels,
            out_channels,
            input,
            kernel,
            stride,
            dilation,
            pad: pad_before,
            output,
        })
    }

    /// Kernel taps per channel.
    fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Rows of the im2col matrix: one per (channel, tap), in the weight's order.
    fn rows(&self) -> usize {
        self.channels * self.taps()
    }

    /// Output positions per channel: the im2col matrix's columns.
    fn positions(&self) -> usize {
        self.output.iter().product()
    }

    /// Elements of one input channel.
    fn plane(&self) -> usize {
        self.input.iter().product()
    }

    /// Elements of one input sample.
    pub fn in_size(&self) -> usize {
        self.channels * self.plane()
    }

    /// Elements of one output sample.
    pub fn out_size(&self) -> usize {
        self.out_channels * self.positions()
    }

    /// A 1x1 kernel at stride 1 without padding: the input is its own im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3]
            && self.stride == [1; 3]
            && self.pad == [0; 3]
            && self.output == self.input
    }

    /// Whether samples run one per rayon task.
    fn per_sample_tasks(&self) -> bool {
        self.batch >= 2 && self.batch >= rayon::current_num_threads()
    }

    /// The output positions `o` along `axis` whose input index `o * stride + offset` lies in
    /// the input, as a range `lo..hi` (empty when none does).
    fn valid(&self, axis: usize, offset: isize) -> (usize, usize) {
        let (out, input, stride) = (
            self.output[axis],
            self.input[axis] as isize,
            self.stride[axis],
        );
        let lo = if offset >= 0 {
            0
        } else {
            (-offset as usize).div_ceil(stride)
        };
        let last = input - 1 - offset;
        let hi = if last < 0 {
            0
        } else {
            out.min(last as usize / stride + 1)
        };
        (lo.min(hi), hi)
    }

    /// The input offset of kernel tap `k` along `axis`.
    fn offset(&self, axis: usize, k: usize) -> isize {
        (k * self.dilation[axis]) as isize - self.pad[axis] as isize
    }

    /// The kernel position `[kd, kh, kw]` of tap `t`.
    fn tap(&self, t: usize) -> [usize; 3] {
        let [_, kh, kw] = self.kernel;
        [t / (kh * kw), (t / kw) % kh, t % kw]
    }

    /// For every row of tap `t` of a channel: `(output row start, input row start, lo, hi,
    /// offset)` over the output's (depth, height) rows that read inside the input; the others
    /// stay zero (im2col) or contribute nothing (col2im).
    fn row_pairs(&self, t: usize) -> impl Iterator<Item = (usize, usize, usize, usize, isize)> {
        let [kd, kh, kw] = self.tap(t);
        let [_, ih, iw] = self.input;
        let [_, oh, ow] = self.output;
        let (od_lo, od_hi) = self.valid(0, self.offset(0, kd));
        let (oh_lo, oh_hi) = self.valid(1, self.offset(1, kh));
        let (w_off, (w_lo, w_hi)) = (self.offset(2, kw), self.valid(2, self.offset(2, kw)));
        let (sd, sh) = (self.stride[0], self.stride[1]);
        let (off_d, off_h) = (self.offset(0, kd), self.offset(1, kh));
        (od_lo..od_hi).flat_map(move |d| {
            let zd = (d * sd) as isize + off_d;
            (oh_lo..oh_hi).map(move |h| {
                let zh = (h * sh) as isize + off_h;
                let src = (zd as usize * ih + zh as usize) * iw;
                ((d * oh + h) * ow, src, w_lo, w_hi, w_off)
            })
        })
    }
}

/// Fills one channel's `taps` rows of the im2col matrix from its input plane.
fn im2col_channel(g: &Geometry, plane: &[f32], rows: &mut [f32]) {
    let (p, sw) = (g.positions(), g.stride[2]);
    // `rows` starts zeroed: positions that read the padding stay zero.
    for (t, row) in rows.chunks_mut(p).enumerate() {
        for (dst, src, lo, hi, off) in g.row_pairs(t) {
            let out = &mut row[dst + lo..dst + hi];
            let first = (src as isize + (lo * sw) as isize + off) as usize;
            if sw == 1 {
                out.copy_from_slice(&plane[first..first + out.len()]);
            } else {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = plane[first + i * sw];
                }
            }
        }
    }
}

/// Adds one channel's `taps` rows of a column gradient onto its input plane's gradient.
fn col2im_channel(g: &Geometry, rows: &[f32], plane: &mut [f32]) {
    let (p, sw) = (g.positions(), g.stride[2]);
    for (t, row) in rows.chunks(p).enumerate() {
        for (dst, src, lo, hi, off) in g.row_pairs(t) {
            let cols = &row[dst + lo..dst + hi];
            let first = (src as isize + (lo * sw) as isize + off) as usize;
            if sw == 1 {
                for (x, c) in plane[first..first + cols.len()].iter_mut().zip(cols) {
                    *x += c;
                }
            } else {
                for (i, c) in cols.iter().enumerate() {
                    plane[first + i * sw] += c;
                }
            }
        }
    }
}

/// The im2col matrix (`rows x positions`) of one sample: the sample itself when pointwise.
fn columns<'a>(g: &Geometry, x: &'a [f32], parallel: bool) -> Cow<'a, [f32]> {
    if g.is_pointwise() {
        return Cow::Borrowed(x);
    }
    let block = g.taps() * g.positions();
    let mut cols = vec![0.0f32; g.channels * block];
    let planes = x.chunks(g.plane());
    if parallel {
        cols.par_chunks_mut(block)
            .zip(x.par_chunks(g.plane()))
            .for_each(|(rows, plane)| im2col_channel(g, plane, rows));
    } else {
        for (rows, plane) in cols.chunks_mut(block).zip(planes) {
            im2col_channel(g, plane, rows);
        }
    }
    Cow::Owned(cols)
}

/// `out = a b`, on the pool when `parallel`, on this thread otherwise.
fn product_into(a: View, b: View, out: &mut [f32], accumulate: bool, parallel: bool) {
    if parallel {
        matmul(a, b, out, accumulate);
    } else {
        matmul_serial(a, b, out, accumulate);
    }
}

/// The convolution of the contiguous input `x` by the weight `w` (`[out, channels,
/// kernel...]`), plus `bias` per output channel: `[batch, out, output...]` contiguous.
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p, rows) = (g.positions(), g.rows());
    let mut y = vec![0.0f32; g.batch * g.out_size()];
    let sample = |xn: &[f32], yn: &mut [f32], parallel: bool| {
        if let Some(b) = bias {
            for (row, &v) in yn.chunks_mut(p).zip(b) {
                row.fill(v);
            }
        }
        let cols = columns(g, xn, parallel);
        let a = View::row_major(w, g.out_channels, rows);
        product_into(
            a,
            View::row_major(&cols, rows, p),
            yn,
            bias.is_some(),
            parallel,
        );
    };
    let (out, input) = (g.out_size().max(1), g.in_size().max(1));
    if g.per_sample_tasks() {
        y.par_chunks_mut(out)
            .zip(x.par_chunks(input))
            .for_each(|(yn, xn)| sample(xn, yn, false));
    } else {
        for (yn, xn) in y.chunks_mut(out).zip(x.chunks(input)) {
            sample(xn, yn, true);
        }
    }
    y
}

/// Gradients of a convolution's input, weight and bias from its output's (`gy`), each only
/// when asked for.
pub struct ConvGrads {
    /// The input's, laid out as the input.
    pub x: Option<Vec<f32>>,
    /// The weight's, laid out as the weight.
    pub w: Option<Vec<f32>>,
    /// The bias's, one per output channel.
    pub bias: Option<Vec<f32>>,
}

/// The gradients of [`forward`]'s `x`, `w` and bias (those flagged in `want`, in that order)
/// from `gy`, the output's gradient.
pub fn backward(g: &Geometry, x: &[f32], w: &[f32], gy: &[f32], want: [bool; 3]) -> ConvGrads {
    let (p, rows, o) = (g.positions(), g.rows(), g.out_channels);
    let samples = || {
        gy.chunks(g.out_size().max(1))
            .zip(x.chunks(g.in_size().max(1)))
    };
    let bias = want[2].then(|| {
        (0..o)
            .into_par_iter()
            .map(|c| {
                let sum: f64 = gy
                    .chunks(g.out_size().max(1))
                    .flat_map(|s| &s[c * p..(c + 1) * p])
                    .map(|&v| v as f64)
                    .sum();
                sum as f32
            })
            .collect()
    });
    let weight = want[1].then(|| {
        let step = |acc: &mut Vec<f32>, (gn, xn): (&[f32], &[f32]), parallel: bool| {
            let cols = columns(g, xn, parallel);
            let cols = View::row_major(&cols, rows, p).t();
            product_into(View::row_major(gn, o, p), cols, acc, true, parallel);
        };
        if g.per_sample_tasks() {
            let per_task = g.batch.div_ceil(rayon::current_num_threads());
            samples()
                .collect::<Vec<_>>()
                .into_par_iter()
                .with_min_len(per_task)
                .fold(
                    || vec![0.0f32; o * rows],
                    |mut acc, s| {
                        step(&mut acc, s, false);
                        acc
                    },
                )
                .reduce_with(|mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                    a
                })
                .unwrap_or_else(|| vec![0.0f32; o * rows])
        } else {
            let mut acc = vec![0.0f32; o * rows];
            samples().for_each(|s| step(&mut acc, s, true));
            acc
        }
    });
    let input = want[0].then(|| {
        let mut gx = vec![0.0f32; g.batch * g.in_size()];
        let wt = View::row_major(w, o, rows).t();
        let sample = |gn: &[f32], gxn: &mut [f32], parallel: bool| {
            let gn = View::row_major(gn, o, p);
            if g.is_pointwise() {
                product_into(wt, gn, gxn, false, parallel);
                return;
            }
            let mut dcols = vec![0.0f32; rows * p];
            product_into(wt, gn, &mut dcols, false, parallel);
            let block = g.taps() * p;
            if parallel {
                dcols
                    .par_chunks(block)
                    .zip(gxn.par_chunks_mut(g.plane()))
                    .for_each(|(r, plane)| col2im_channel(g, r, plane));
            } else {
                for (r, plane) in dcols.chunks(block).zip(gxn.chunks_mut(g.plane())) {
                    col2im_channel(g, r, plane);
                }
            }
        };
        let (out, input) = (g.out_size().max(1), g.in_size().max(1));
        if g.per_sample_tasks() {
            gx.par_chunks_mut(input)
                .zip(gy.par_chunks(out))
                .for_each(|(gxn, gn)| sample(gn, gxn, false));
        } else {
            for (gxn, gn) in gx.chunks_mut(input).zip(gy.chunks(out)) {
                sample(gn, gxn, true);
            }
        }
        gx
    });
    ConvGrads {
        x: input,
        w: weight,
        bias,
    }
}
