//! The CLIP text tower's shapes, and its causal mask: tokens after end-of-text cannot change
//! the pooled embedding. (Kept here rather than as unit tests: a test binary that instantiates
//! a backend costs a full compile of it, and this one already has ndarray's.)

use burn::backend::NdArray;
use mm_text::{ClipTextConfig, ClipTokenizer, TextBatch};

type B = NdArray;

fn tiny() -> ClipTextConfig {
    ClipTextConfig::new(32, 64, 16, 2, 4).with_max_position_embeddings(12)
}

#[test]
fn shapes_follow_the_config() {
    let device = Default::default();
    let model = tiny().init::<B>(&device).unwrap();
    let (ids, eot) = ClipTokenizer::bundled()
        .encode_batch(&["a cat", "a very small dog"], 12)
        .unwrap()
        .to_tensors::<B>(&device);
    let out = model.forward(TextBatch {
        ids,
        eot_positions: eot,
    });
    assert_eq!(out.pooled.dims(), [2, 16]);
    assert_eq!(out.sequence.unwrap().dims(), [2, 12, 32]);
}

#[test]
fn tokens_after_end_of_text_do_not_change_the_embedding() {
    // The causal mask means padding after the pooled position cannot leak into it.
    let device = Default::default();
    let model = tiny().init::<B>(&device).unwrap();
    let tok = ClipTokenizer::bundled();
    let batch = tok.encode_batch(&["a red heart"], 12).unwrap();
    let (ids, eot) = batch.to_tensors::<B>(&device);
    let a = model
        .forward(TextBatch {
            ids,
            eot_positions: eot.clone(),
        })
        .pooled;
    let mut other = batch.clone();
    for id in other.ids.iter_mut().skip(6) {
        *id = 320;
    }
    let (ids, _) = other.to_tensors::<B>(&device);
    let b = model
        .forward(TextBatch {
            ids,
            eot_positions: eot,
        })
        .pooled;
    let diff: f32 = (a - b).abs().max().into_scalar();
    assert!(diff < 1e-6, "padding changed the embedding by {diff}");
}
