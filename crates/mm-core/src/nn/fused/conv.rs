//! The geometry of a convolution (2D, and 3D with 2D as a depth of 1; any kernel, stride,
//! padding and dilation; one group) and its im2col matrix, built and scattered back one tile
//! of output rows at a time; [`super::conv_gemm`] multiplies the tiles.
//!
//! Flex runs a convolution through an NCHW-to-NHWC copy on one core and im2col tiles, and
//! autodiff's default backward makes the weight gradient a convolution of the batch-swapped
//! input with the batch-swapped output gradient (two strided copies through Flex's generic
//! index iterator, and an im2col as large as the whole batch), and the input gradient a
//! transposed convolution. On the Intel Xeon of 2026-12-02 the strided copies alone were 30%
//! of a video training step (docs/performance.md, "Fifth session").
//!
//! The im2col matrix of one sample has a row per (input channel, kernel tap), in the
//! weight's order, and a column per output position. A tile holds the columns of a run of
//! whole output rows (one `(depth, height)` pair each), about [`TILE_ELEMENTS`] elements in
//! all, so it stays in cache between im2col and the GEMM that reads it.

use std::ops::Range;

/// The im2col elements one tile aims at (4 MiB of `f32`).
const TILE_ELEMENTS: usize = 1 << 20;

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
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Rows of the im2col matrix: one per (channel, tap).
    pub fn rows(&self) -> usize {
        self.channels * self.taps()
    }

    /// Output positions per channel: the im2col matrix's columns.
    pub fn positions(&self) -> usize {
        self.output.iter().product()
    }

    /// Elements of one input channel.
    pub fn plane(&self) -> usize {
        self.input.iter().product()
    }

    /// Elements of one input sample (at least 1, so it can size chunks).
    pub fn in_size(&self) -> usize {
        (self.channels * self.plane()).max(1)
    }

    /// Elements of one output sample (at least 1).
    pub fn out_size(&self) -> usize {
        (self.out_channels * self.positions()).max(1)
    }

    /// A 1x1 kernel at stride 1 without padding: the input is its own im2col matrix.
    pub fn is_pointwise(&self) -> bool {
        self.kernel == [1; 3]
            && self.stride == [1; 3]
            && self.pad == [0; 3]
            && self.output == self.input
    }

    /// Whether samples run one per rayon task.
    pub fn per_sample_tasks(&self) -> bool {
        self.batch >= 2 && self.batch >= rayon::current_num_threads()
    }

    /// The output rows (`(depth, height)` pairs, each `output[2]` positions) of every tile.
    pub fn tiles(&self) -> Vec<Range<usize>> {
        let out_rows = self.output[0] * self.output[1];
        let per_row = (self.rows() * self.output[2]).max(1);
        let step = (TILE_ELEMENTS / per_row).clamp(1, out_rows.max(1));
        (0..out_rows)
            .step_by(step)
            .map(|s| s..(s + step).min(out_rows))
            .collect()
    }

    /// The output positions `o` along `axis` whose input index `o * stride + offset` lies in
    /// the input, as a range `lo..hi` (empty when none does).
    fn valid(&self, axis: usize, offset: isize) -> (usize, usize) {
        let (out, input) = (self.output[axis], self.input[axis] as isize);
        let stride = self.stride[axis];
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

    /// Where each output row of `tile` reads for kernel tap `t`: the start of the input row
    /// (its `w = 0` element within a channel plane) when the row lies inside the input.
    fn sources(&self, t: usize, tile: Range<usize>) -> impl Iterator<Item = Option<usize>> {
        let [_, kh, kw] = self.kernel;
        let (kd, kh) = (t / (kh * kw), (t / kw) % kh);
        let [_, ih, iw] = self.input;
        let oh = self.output[1];
        let (off_d, off_h) = (self.offset(0, kd), self.offset(1, kh));
        let (sd, sh) = (self.stride[0], self.stride[1]);
        let (ind, inh) = (self.input[0] as isize, ih as isize);
        tile.map(move |row| {
            let zd = ((row / oh) * sd) as isize + off_d;
            let zh = ((row % oh) * sh) as isize + off_h;
            (zd >= 0 && zd < ind && zh >= 0 && zh < inh)
                .then(|| (zd as usize * ih + zh as usize) * iw)
        })
    }

    /// Tap `t`'s width offset and the output columns `lo..hi` that read inside the input.
    fn width_span(&self, t: usize) -> (isize, usize, usize) {
        let off = self.offset(2, t % self.kernel[2]);
        let (lo, hi) = self.valid(2, off);
        (off, lo, hi)
    }
}

/// Fills `cols` (`rows x tile positions`) with the im2col columns of `tile` from the sample
/// `x`: every element is written, zeros where the kernel reads the padding.
pub fn im2col(g: &Geometry, x: &[f32], tile: Range<usize>, cols: &mut [f32]) {
    let (ow, sw, taps) = (g.output[2], g.stride[2], g.taps());
    let width = tile.len() * ow;
    for (r, row) in cols.chunks_mut(width).enumerate() {
        let (c, t) = (r / taps, r % taps);
        let plane = &x[c * g.plane()..(c + 1) * g.plane()];
        let (off, lo, hi) = g.width_span(t);
        for (seg, src) in row.chunks_mut(ow).zip(g.sources(t, tile.clone())) {
            let Some(src) = src else {
                seg.fill(0.0);
                continue;
            };
            seg[..lo].fill(0.0);
            seg[hi..].fill(0.0);
            let first = (src as isize + (lo * sw) as isize + off) as usize;
            let out = &mut seg[lo..hi];
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

/// Adds a column gradient of `tile` (`rows x tile positions`) onto the sample's input
/// gradient `gx`.
pub fn col2im(g: &Geometry, cols: &[f32], tile: Range<usize>, gx: &mut [f32]) {
    let (ow, sw, taps) = (g.output[2], g.stride[2], g.taps());
    let width = tile.len() * ow;
    for (r, row) in cols.chunks(width).enumerate() {
        let (c, t) = (r / taps, r % taps);
        let plane = &mut gx[c * g.plane()..(c + 1) * g.plane()];
        let (off, lo, hi) = g.width_span(t);
        for (seg, src) in row.chunks(ow).zip(g.sources(t, tile.clone())) {
            let Some(src) = src else { continue };
            let first = (src as isize + (lo * sw) as isize + off) as usize;
            let seg = &seg[lo..hi];
            if sw == 1 {
                for (x, v) in plane[first..first + seg.len()].iter_mut().zip(seg) {
                    *x += v;
                }
            } else {
                for (i, v) in seg.iter().enumerate() {
                    plane[first + i * sw] += v;
                }
            }
        }
    }
}
