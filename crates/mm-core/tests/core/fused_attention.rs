//! The fused attention of `mm_core::nn::fused` against Burn's attention op on ndarray (in
//! f64), forward and backward, with causal and key-padding masks.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::tensor::Bool;
use burn::tensor::backend::Backend;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Tensor, TensorData};
use mm_core::nn::fused::attention;

use super::fused::{assert_all_close, inputs, max_abs_diff, tensor};

/// Output and q/k/v gradients of `sum(attention(q, k, v) * w)` on `[2, 3, tq, 4]` queries and
/// `[2, 3, tk, 4]` keys and values, with a causal mask (query i sees keys up to
/// `i + tk - tq`, as a decoder continuing a cache does) or none; `fused` uses ours, otherwise
/// Burn's attention op, in f64 (see [`tensor`]).
fn attention_grads<B: burn::tensor::backend::AutodiffBackend>(
    fused: bool,
    masked: bool,
    tq: usize,
    tk: usize,
) -> [TensorData; 4] {
    let device = Default::default();
    let input = |t: usize| (tensor::<B, 2>(inputs(6 * t, 4), fused) * 0.2).reshape([2, 3, t, 4]);
    let (q, k, v) = (
        input(tq).require_grad(),
        input(tk).flip([0]).require_grad(),
        input(tk).flip([2]).require_grad(),
    );
    let w = input(tq) * 3.0;
    let mask = masked.then(|| {
        Tensor::<B, 2, Bool>::tril_mask([tq, tk], (tk - tq) as i64, &device)
            .unsqueeze_dims::<4>(&[0, 1])
            .expand([2, 3, tq, tk])
    });
    let scale = 0.5;
    let y = if fused {
        attention(q.clone(), k.clone(), v.clone(), mask, scale)
    } else {
        let options = AttentionModuleOptions {
            scale: Some(scale),
            ..Default::default()
        };
        burn::tensor::module::attention(q.clone(), k.clone(), v.clone(), mask, None, options)
    };
    let grads = (y.clone() * w).sum().backward();
    [
        y.into_data(),
        q.grad(&grads).unwrap().into_data(),
        k.grad(&grads).unwrap().into_data(),
        v.grad(&grads).unwrap().into_data(),
    ]
    .map(|d| d.convert::<f32>())
}

#[test]
fn attention_gradients_match_burns_attention_on_ndarray() {
    // Self-attention, and cross-attention (queries and keys of different lengths).
    for (masked, tq, tk) in [
        (false, 6, 6),
        (true, 6, 6),
        (false, 5, 7),
        (true, 5, 7),
        (false, 7, 3),
    ] {
        let expected = attention_grads::<Autodiff<NdArray>>(false, masked, tq, tk);
        let got = attention_grads::<Autodiff<Flex>>(true, masked, tq, tk);
        // The softmax gradient subtracts two sums of a few hundred (dP - rowsum(dP * P)):
        // ours, in f32, was within 3e-6 of the scale of the f64 reference on an AVX2 CPU,
        // where Burn's ops in f32 were 1e-4 away.
        let names = ["output", "q grad", "k grad", "v grad"];
        assert_all_close(
            &format!("masked {masked}, {tq} x {tk}"),
            names,
            got,
            expected,
            2e-5,
        );
    }
}

#[test]
fn attention_on_flex_inference_matches_burns_attention_with_broadcast_masks() {
    // A key-padding mask [batch, 1, 1, tk] and a causal mask [1, 1, tq, tk], both given
    // unexpanded to ours and expanded to Burn's op on ndarray.
    let (b, h, tq, tk, d) = (2, 3, 5, 6, 4);
    let input = |t: usize, seed: usize| {
        let v = inputs(b * h * t + seed, d).to_vec::<f32>().unwrap()[seed * d..].to_vec();
        TensorData::new(v, [b, h, t, d])
    };
    let (q, k, v) = (input(tq, 1), input(tk, 2), input(tk, 3));
    let padding: Vec<bool> = (0..b * tk)
        .map(|i| i == tk - 1 || i == 2 * tk - 2)
        .collect();
    let padding = TensorData::new(padding, [b, 1, 1, tk]);
    for causal in [false, true] {
        let run = |fused: bool| -> TensorData {
            fn go<B: Backend>(
                q: TensorData,
                k: TensorData,
                v: TensorData,
                padding: TensorData,
                causal: bool,
                fused: bool,
                [b, h, tq, tk]: [usize; 4],
            ) -> TensorData {
                let device = Default::default();
                let t = |x: TensorData| Tensor::<B, 4>::from_data(x, &device) * 0.3;
                let mask = if causal {
                    Tensor::<B, 2, Bool>::tril_mask([tq, tk], (tk - tq) as i64, &device)
                        .unsqueeze_dims::<4>(&[0, 1])
                } else {
                    Tensor::<B, 4, Bool>::from_data(padding, &device)
                };
                if fused {
                    attention(t(q), t(k), t(v), Some(mask), 0.7).into_data()
                } else {
                    let options = AttentionModuleOptions {
                        scale: Some(0.7),
                        ..Default::default()
                    };
                    let mask = mask.expand([b, h, tq, tk]);
                    burn::tensor::module::attention(t(q), t(k), t(v), Some(mask), None, options)
                        .into_data()
                }
            }
            let args = (q.clone(), k.clone(), v.clone(), padding.clone());
            if fused {
                go::<Flex>(args.0, args.1, args.2, args.3, causal, true, [b, h, tq, tk])
            } else {
                go::<NdArray>(
                    args.0,
                    args.1,
                    args.2,
                    args.3,
                    causal,
                    false,
                    [b, h, tq, tk],
                )
            }
        };
        let diff = max_abs_diff(run(true), run(false));
        assert!(diff < 1e-5, "causal {causal}: max |diff| {diff}");
    }
}
