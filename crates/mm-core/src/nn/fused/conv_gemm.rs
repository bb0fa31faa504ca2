//! A convolution's forward and backward as GEMMs over [`super::conv`]'s im2col tiles.
//!
//! - forward: `y[n][:, tile] = W [out, rows] x cols(x[n], tile) [rows, tile] (+ bias)`,
//!   written straight into the output's `[out, positions]` block, so it is already NC(D)HW;
//! - weight gradient: `sum over (n, tile) of gy[n][:, tile] x cols(x[n], tile)^T`, the
//!   columns rebuilt rather than kept from the forward;
//! - input gradient: `W^T x gy[n][:, tile]`, scattered back onto the input by col2im;
//! - a pointwise convolution (1x1, stride 1, no padding) uses the input as its columns.
//!
//! Samples run one per rayon task when there are at least as many as threads (each GEMM on
//! one thread, one tile buffer per task); otherwise the tiles of a sample run in parallel
//! (forward, weight gradient) or the GEMMs split over the pool (input gradient).

use std::ops::Range;

use rayon::prelude::*;

use super::conv::{Geometry, col2im, im2col};
use super::gemm::{View, matmul, matmul_block, matmul_serial};

/// The convolution of the contiguous input `x` by the weight `w` (`[out, channels,
/// kernel...]`), plus `bias` per output channel: `[batch, out, output...]` contiguous.
pub fn forward(g: &Geometry, x: &[f32], w: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let (p, rows, o, ow) = (g.positions(), g.rows(), g.out_channels, g.output[2]);
    let mut y = vec![0.0f32; g.batch * g.out_size()];
    if let Some(b) = bias {
        y.par_chunks_mut(p.max(1))
            .enumerate()
            .for_each(|(i, row)| row.fill(b[i % o]));
    }
    let acc = bias.is_some();
    let wv = View::row_major(w, o, rows);
    let samples = y
        .par_chunks_mut(g.out_size())
        .zip(x.par_chunks(g.in_size()));
    if g.is_pointwise() {
        if g.per_sample_tasks() {
            samples.for_each(|(yn, xn)| matmul_serial(wv, View::row_major(xn, rows, p), yn, acc));
        } else {
            for (yn, xn) in y.chunks_mut(g.out_size()).zip(x.chunks(g.in_size())) {
                matmul(wv, View::row_major(xn, rows, p), yn, acc);
            }
        }
        return y;
    }
    let tiles = g.tiles();
    // One tile into its block of the sample's output (rows `p` apart).
    let tile_into = |xn: &[f32], yn: &mut [f32], tile: &Range<usize>, buf: &mut Vec<f32>, par| {
        let width = tile.len() * ow;
        buf.resize(rows * width, 0.0);
        im2col(g, xn, tile.clone(), buf);
        let cols = View::row_major(buf, rows, width);
        matmul_block(wv, cols, &mut yn[tile.start * ow..], p, acc, par);
    };
    if g.per_sample_tasks() {
        samples.for_each_init(Vec::new, |buf, (yn, xn)| {
            for tile in &tiles {
                tile_into(xn, yn, tile, buf, false);
            }
        });
    } else if tiles.len() >= rayon::current_num_threads() {
        for (yn, xn) in y.chunks_mut(g.out_size()).zip(x.chunks(g.in_size())) {
            // Each tile into a buffer of its own, then added onto the sample's output.
            let parts: Vec<Vec<f32>> = tiles
                .par_iter()
                .map_init(Vec::new, |buf, tile| {
                    let width = tile.len() * ow;
                    let mut part = vec![0.0f32; o * width];
                    buf.resize(rows * width, 0.0);
                    im2col(g, xn, tile.clone(), buf);
                    matmul_serial(wv, View::row_major(buf, rows, width), &mut part, false);
                    part
                })
                .collect();
            for (tile, part) in tiles.iter().zip(parts) {
                let width = tile.len() * ow;
                for (row, src) in yn.chunks_mut(p).zip(part.chunks(width)) {
                    let dst = &mut row[tile.start * ow..tile.start * ow + width];
                    dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                }
            }
        }
    } else {
        let mut buf = Vec::new();
        for (yn, xn) in y.chunks_mut(g.out_size()).zip(x.chunks(g.in_size())) {
            for tile in &tiles {
                tile_into(xn, yn, tile, &mut buf, true);
            }
        }
    }
    y
}

/// Gradients of a convolution's input, weight and bias from its output's, each only when
/// asked for.
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
    ConvGrads {
        x: want[0].then(|| input_grad(g, w, gy)),
        w: want[1].then(|| weight_grad(g, x, gy)),
        bias: want[2].then(|| bias_grad(g, gy)),
    }
}

/// Each output channel's gradient summed over the batch and positions (in f64).
fn bias_grad(g: &Geometry, gy: &[f32]) -> Vec<f32> {
    let p = g.positions();
    (0..g.out_channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = gy
                .chunks(g.out_size())
                .flat_map(|s| &s[c * p..(c + 1) * p])
                .map(|&v| v as f64)
                .sum();
            sum as f32
        })
        .collect()
}

/// `sum over samples and tiles of gy[n][:, tile] x cols(x[n], tile)^T`: one partial sum per
/// fixed chunk of the (sample, tile) items, added in chunk order (the same bits however the
/// chunks are stolen).
fn weight_grad(g: &Geometry, x: &[f32], gy: &[f32]) -> Vec<f32> {
    let (p, rows, o, ow) = (g.positions(), g.rows(), g.out_channels, g.output[2]);
    let tiles = if g.is_pointwise() {
        // One tile of every output row: the input is the whole column matrix.
        std::iter::once(0..g.output[0] * g.output[1]).collect()
    } else {
        g.tiles()
    };
    let items: Vec<(usize, Range<usize>)> = (0..g.batch)
        .flat_map(|n| tiles.iter().map(move |t| (n, t.clone())))
        .collect();
    let per_task = items.len().div_ceil(rayon::current_num_threads()).max(1);
    let partials: Vec<Vec<f32>> = items
        .par_chunks(per_task)
        .map(|chunk| {
            let (mut acc, mut buf) = (vec![0.0f32; o * rows], Vec::new());
            for (n, tile) in chunk {
                let width = tile.len() * ow;
                let xn = &x[n * g.in_size()..(n + 1) * g.in_size()];
                let gyn = &gy[n * g.out_size() + tile.start * ow..];
                let cols = if g.is_pointwise() {
                    View::row_major(xn, rows, p)
                } else {
                    buf.resize(rows * width, 0.0);
                    im2col(g, xn, tile.clone(), &mut buf);
                    View::row_major(&buf, rows, width)
                };
                matmul_serial(View::rows_apart(gyn, o, width, p), cols.t(), &mut acc, true);
            }
            acc
        })
        .collect();
    // In chunk order, so the sum does not depend on which worker ran which chunk.
    let mut sum = vec![0.0f32; o * rows];
    for partial in partials {
        sum.iter_mut().zip(partial).for_each(|(s, v)| *s += v);
    }
    sum
}

/// `W^T x gy[n][:, tile]` scattered onto each sample's input gradient by col2im.
fn input_grad(g: &Geometry, w: &[f32], gy: &[f32]) -> Vec<f32> {
    let (p, rows, o, ow) = (g.positions(), g.rows(), g.out_channels, g.output[2]);
    let mut gx = vec![0.0f32; g.batch * g.in_size()];
    let wt = View::row_major(w, o, rows).t();
    let tiles = g.tiles();
    let sample = |gn: &[f32], gxn: &mut [f32], buf: &mut Vec<f32>, parallel: bool| {
        if g.is_pointwise() {
            matmul_block(wt, View::row_major(gn, o, p), gxn, p, false, parallel);
            return;
        }
        for tile in &tiles {
            let width = tile.len() * ow;
            buf.resize(rows * width, 0.0);
            let gyb = View::rows_apart(&gn[tile.start * ow..], o, width, p);
            matmul_block(wt, gyb, buf, width, false, parallel);
            col2im(g, buf, tile.clone(), gxn);
        }
    };
    if g.per_sample_tasks() {
        gx.par_chunks_mut(g.in_size())
            .zip(gy.par_chunks(g.out_size()))
            .for_each_init(Vec::new, |buf, (gxn, gn)| sample(gn, gxn, buf, false));
    } else {
        let mut buf = Vec::new();
        for (gxn, gn) in gx.chunks_mut(g.in_size()).zip(gy.chunks(g.out_size())) {
            sample(gn, gxn, &mut buf, true);
        }
    }
    gx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::fused::determinism::{repeats_bit_for_bit, scrambled};

    /// The weight gradient is the same bits on every run, however rayon's workers steal the
    /// tiles (a fold and reduction that follow stealing would change it in the last bits and
    /// make a resumed training run drift from the uninterrupted one).
    #[test]
    fn the_weight_gradient_does_not_depend_on_work_stealing() {
        let g = Geometry::new(
            16,
            3,
            8,
            [1, 24, 24],
            [1, 3, 3],
            [1; 3],
            [1; 3],
            [0, 1, 1],
            [0, 1, 1],
        )
        .unwrap();
        let x: Vec<f32> = (0..g.batch * g.in_size()).map(scrambled).collect();
        let gy: Vec<f32> = (0..g.batch * g.out_size())
            .map(|i| scrambled(i * 31 + 5))
            .collect();
        repeats_bit_for_bit("the weight gradient", || vec![weight_grad(&g, &x, &gy)]);
    }
}
