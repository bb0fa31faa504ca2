//! `AutoencoderKL` against diffusers 0.35.2 (`fixtures/vae/generate.py`): a tiny random
//! folder loaded strictly gives diffusers' latent mean and log-variance, reconstruction and
//! decoding within 1e-4; a folder we write loads back to the same outputs.

use std::path::PathBuf;

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_generate::diffusion::vae::{AutoencoderKL, load_vae, read_vae_config, save_vae};
use serde_json::Value;

type B = Flex;

const TOLERANCE: f32 = 1e-4;

fn fixtures() -> PathBuf {
    super::common::fixtures("vae")
}

fn tensor(v: &Value, shape: [usize; 4]) -> Tensor<B, 4> {
    let data: Vec<f32> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    Tensor::from_data(TensorData::new(data, shape), &Default::default())
}

fn assert_close(ours: Tensor<B, 4>, theirs: Tensor<B, 4>, what: &str) {
    assert_eq!(ours.dims(), theirs.dims(), "{what}: shape");
    let err: f32 = (ours - theirs).abs().max().into_scalar();
    assert!(err <= TOLERANCE, "{what}: max error {err:e}");
}

fn check(vae: &AutoencoderKL<B>, exp: &Value, label: &str) {
    let image = tensor(&exp["image"], [2, 3, 8, 8]);
    let dist = vae.encode(image.clone());
    assert_close(
        dist.mean,
        tensor(&exp["mean"], [2, 2, 4, 4]),
        &format!("{label} mean"),
    );
    assert_close(
        dist.logvar,
        tensor(&exp["logvar"], [2, 2, 4, 4]),
        &format!("{label} logvar"),
    );
    let rec = vae.forward(image);
    assert_close(
        rec,
        tensor(&exp["reconstruction"], [2, 3, 8, 8]),
        &format!("{label} reconstruction"),
    );
    let dec = vae.decode(tensor(&exp["latent"], [2, 2, 4, 4]));
    assert_close(
        dec,
        tensor(&exp["decoded"], [2, 3, 8, 8]),
        &format!("{label} decode"),
    );
}

#[test]
fn tiny_vae_matches_diffusers_and_survives_a_round_trip() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
    let (vae, config) = load_vae::<B>(&fixtures().join("model"), &Default::default()).unwrap();
    assert_eq!(
        config.scaling_factor,
        exp["scaling_factor"].as_f64().unwrap()
    );
    check(&vae, &exp, "diffusers folder");
    let dir = tempfile::tempdir().unwrap();
    save_vae(&vae, &config, dir.path()).unwrap();
    assert_eq!(read_vae_config(dir.path()).unwrap(), config);
    let (again, _) = load_vae::<B>(dir.path(), &Default::default()).unwrap();
    check(&again, &exp, "our folder");
}

#[test]
fn unsupported_vae_configs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("model/config.json")).unwrap(),
    )
    .unwrap();
    for (key, value) in [
        (
            "down_block_types",
            serde_json::json!(["DownEncoderBlock2D", "AttnDownEncoderBlock2D"]),
        ),
        ("act_fn", Value::from("gelu")),
        ("norm_num_groups", Value::from(3)),
    ] {
        let mut c = config.clone();
        c[key] = value;
        std::fs::write(dir.path().join("config.json"), c.to_string()).unwrap();
        let err = read_vae_config(dir.path()).unwrap_err().to_string();
        let named = if key == "norm_num_groups" {
            "norm_num_groups"
        } else {
            key
        };
        assert!(err.contains(named), "{key}: {err}");
    }
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    assert!(load_vae::<B>(dir.path(), &Default::default()).is_err());
}
