//! Fusion strategies: shapes, parameter counts from the guide's formulas, low-rank fusion at
//! full rank reproducing tensor fusion, attention weights, errors, and the synergy benchmark.

use burn::backend::{Autodiff, Flex};
use burn::module::{Module, Param};
use burn::nn::LinearConfig;
use burn::tensor::{Distribution, Tensor, TensorData};
use mm_core::fusion::benchmark::{FusionBenchmarkConfig, FusionTask, run_fusion_benchmark};
use mm_core::fusion::*;
use nalgebra::DMatrix;

type B = Flex;

fn input(batch: usize, d: usize) -> Tensor<B, 2> {
    Tensor::random(
        [batch, d],
        Distribution::Normal(0.0, 1.0),
        &Default::default(),
    )
}

#[test]
fn shapes_and_parameter_counts_follow_the_formulas() {
    let device = Default::default();
    let (dx, dy, dz, h, r, batch) = (5, 3, 4, 6, 2, 7);
    let (x, y, z) = (input(batch, dx), input(batch, dy), input(batch, dz));
    let xy = [x.clone(), y.clone()];

    let early = EarlyFusionConfig::new(vec![dx, dy], h).init::<B>(&device);
    assert_eq!(early.fuse(&xy).unwrap().dims(), [batch, h]);
    assert_eq!(early.num_params(), (dx + dy) * h + h);

    for mode in [LateMode::Sum, LateMode::Product] {
        let late = LateFusionConfig::new(vec![dx, dy], h)
            .with_mode(mode)
            .init::<B>(&device);
        assert_eq!(late.fuse(&xy).unwrap().dims(), [batch, h]);
        assert_eq!(late.num_params(), (dx * h + h) + (dy * h + h));
    }

    let bilinear = BilinearFusionConfig::new(dx, dy, h).init::<B>(&device);
    assert_eq!(bilinear.fuse(&xy).unwrap().dims(), [batch, h]);
    assert_eq!(bilinear.num_params(), dx * dy * h + h);

    let attention = CrossModalAttentionConfig::new(dx, dy, 8)
        .with_n_heads(2)
        .init::<B>(&device)
        .unwrap();
    assert_eq!(attention.fuse(&xy).unwrap().dims(), [batch, 8]);
    assert_eq!(
        attention.num_params(),
        (dx + 2 * dy + 8) * 8 + 4 * 8 + dx + dy
    );

    let tensor2 = TensorFusionConfig::new(vec![dx, dy]).init::<B>().unwrap();
    assert_eq!(
        tensor2.fuse(&xy).unwrap().dims(),
        [batch, (1 + dx) * (1 + dy)]
    );
    let tensor3 = TensorFusionConfig::new(vec![dx, dy, dz])
        .init::<B>()
        .unwrap();
    let xyz = [x, y, z];
    assert_eq!(
        tensor3.fuse(&xyz).unwrap().dims(),
        [batch, (1 + dx) * (1 + dy) * (1 + dz)]
    );
    assert_eq!(
        Fusion::<B>::output_dim(&tensor3),
        (1 + dx) * (1 + dy) * (1 + dz)
    );
    assert_eq!(tensor3.num_params(), 0);

    let low = LowRankFusionConfig::new(vec![dx, dy, dz], h, r)
        .init::<B>(&device)
        .unwrap();
    assert_eq!(low.fuse(&xyz).unwrap().dims(), [batch, h]);
    // The guide's R (d_X + d_Y + d_Z) per output unit, counting each appended 1.
    assert_eq!(low.num_params(), h * r * ((dx + 1) + (dy + 1) + (dz + 1)));
}

#[test]
fn tensor_fusion_is_the_outer_product_with_one_appended() {
    let device = Default::default();
    let x = Tensor::<B, 2>::from_data(TensorData::new(vec![2.0f32, 3.0], [1, 2]), &device);
    let y = Tensor::<B, 2>::from_data(TensorData::new(vec![5.0f32], [1, 1]), &device);
    let fused = TensorFusionConfig::new(vec![2, 1])
        .init::<B>()
        .unwrap()
        .fuse(&[x, y])
        .unwrap();
    // [1, 2, 3] (x) [1, 5]
    assert_eq!(
        fused.into_data().to_vec::<f32>().unwrap(),
        vec![1.0, 5.0, 2.0, 10.0, 3.0, 15.0]
    );
}

#[test]
fn full_rank_low_rank_fusion_reproduces_tensor_fusion_with_a_linear_layer() {
    let device = Default::default();
    let (dx, dy, h, batch) = (3, 2, 4, 9);
    let (p, q) = (dx + 1, dy + 1);
    let tensor = TensorFusionConfig::new(vec![dx, dy]).init::<B>().unwrap();
    let linear = LinearConfig::new(p * q, h).init::<B>(&device);
    let w = linear.weight.val().into_data().to_vec::<f32>().unwrap(); // [p q, h]
    let b = linear
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    // Output k's weights form a p x q matrix M_k (bias folded into the 1 (x) 1 entry);
    // its SVD gives min(p, q) rank-one terms s u v^T.
    let rank = p.min(q);
    let (mut fx, mut fy) = (vec![0f32; rank * p * h], vec![0f32; rank * q * h]);
    for k in 0..h {
        let m = DMatrix::from_fn(p, q, |i, j| {
            w[(i * q + j) * h + k] as f64 + if i + j == 0 { b[k] as f64 } else { 0.0 }
        });
        let svd = m.svd(true, true);
        let (u, vt) = (svd.u.unwrap(), svd.v_t.unwrap());
        for r in 0..rank {
            for i in 0..p {
                fx[(r * p + i) * h + k] = (svd.singular_values[r] * u[(i, r)]) as f32;
            }
            for j in 0..q {
                fy[(r * q + j) * h + k] = vt[(r, j)] as f32;
            }
        }
    }
    let low = LowRankFusion::<B>::from_factors(vec![
        Tensor::from_data(TensorData::new(fx, [rank, p, h]), &device),
        Tensor::from_data(TensorData::new(fy, [rank, q, h]), &device),
    ])
    .unwrap();
    let inputs = [input(batch, dx), input(batch, dy)];
    let want = linear.forward(tensor.fuse(&inputs).unwrap());
    let got = low.fuse(&inputs).unwrap();
    let diff = (want - got).abs().max().into_scalar();
    assert!(diff < 1e-4, "max difference {diff}");
    let _ = Param::from_tensor(input(1, 1)); // Param is the public way to wrap trained weights.
}

#[test]
fn attention_weights_are_distributions_over_context_tokens() {
    let device = Default::default();
    let attention = CrossModalAttentionConfig::new(4, 3, 8)
        .with_n_heads(2)
        .with_query_tokens(2)
        .with_context_tokens(5)
        .init::<B>(&device)
        .unwrap();
    let (fused, weights) = attention
        .fuse_with_weights(&[input(6, 8), input(6, 15)])
        .unwrap();
    assert_eq!(fused.dims(), [6, 8]);
    assert_eq!(weights.dims(), [6, 2, 2, 5]);
    let sums = weights.clone().sum_dim(3);
    let err = (sums - 1.0).abs().max().into_scalar();
    assert!(err < 1e-6, "{err}");
    assert!(weights.min().into_scalar() >= 0.0);
    assert!(
        CrossModalAttentionConfig::new(4, 3, 10)
            .with_n_heads(3)
            .init::<B>(&device)
            .is_err()
    );
}

#[test]
fn bad_inputs_are_named_errors() {
    let device = Default::default();
    let early = EarlyFusionConfig::new(vec![4, 3], 2).init::<B>(&device);
    assert_eq!(
        early.fuse(&[input(2, 4)]).unwrap_err(),
        FusionError::Count {
            expected: 2,
            got: 1
        }
    );
    assert_eq!(
        early.fuse(&[input(2, 4), input(2, 5)]).unwrap_err(),
        FusionError::Width {
            index: 1,
            expected: 3,
            got: 5
        }
    );
    assert_eq!(
        early.fuse(&[input(2, 4), input(3, 3)]).unwrap_err(),
        FusionError::Batch {
            index: 1,
            expected: 2,
            got: 3
        }
    );
    assert!(
        TensorFusionConfig::new(vec![2, 2, 2, 2])
            .init::<B>()
            .is_err()
    );
}

#[test]
fn interaction_capable_fusion_beats_late_fusion_on_synergy() {
    let _rng = crate::seeded();
    let cfg = FusionBenchmarkConfig::new().with_steps(200);
    let tmp = tempfile::tempdir().unwrap();
    let results =
        run_fusion_benchmark::<Autodiff<B>>(&cfg, tmp.path(), &[Default::default()]).unwrap();
    for run in ["synergy/late-sum", "redundancy/low-rank-tensor"] {
        let losses =
            mm_core::train::read_losses(&tmp.path().join(run).join("metrics.jsonl")).unwrap();
        assert_eq!(losses.len(), 200, "{run}");
        assert!(
            tmp.path().join(run).join("final/model.mpk").is_file(),
            "{run}"
        );
    }
    let acc = |name: &str, task| {
        results
            .iter()
            .find(|r| r.strategy == name && r.task == task)
            .unwrap()
            .accuracy
    };
    for r in &results {
        eprintln!("{:?} {:<16} {:.3}", r.task, r.strategy, r.accuracy);
    }
    let late = acc("late (sum)", FusionTask::Synergy);
    assert!(late < 0.8, "late fusion cannot represent XOR: {late}");
    for name in ["early (concat)", "bilinear", "tensor", "low-rank tensor"] {
        let a = acc(name, FusionTask::Synergy);
        assert!(a > late + 0.1 && a > 0.85, "{name} {a} vs late {late}");
    }
    // Attention interacts through its weights only: it learns the XOR less well, but it learns it.
    let attention = acc("cross-attention", FusionTask::Synergy);
    assert!(
        attention > late + 0.1,
        "cross-attention {attention} vs late {late}"
    );
    // Every strategy with a unimodal path solves the redundant task; a pure bilinear form is
    // even under (x, y) -> (-x, -y) and cannot express the odd label [s > 0].
    for r in results.iter().filter(|r| r.task == FusionTask::Redundancy) {
        if r.strategy == "bilinear" {
            assert!(
                r.accuracy < 0.6,
                "bilinear has no unimodal term: {}",
                r.accuracy
            );
        } else {
            assert!(
                r.accuracy > 0.85,
                "{} on the redundant task: {}",
                r.strategy,
                r.accuracy
            );
        }
    }
}
