//! DDPM, DDIM and Euler against diffusers 0.35.2 (`fixtures/schedulers/generate.py`): for
//! twelve configurations (Stable Diffusion's, the defaults, trailing/linspace spacing, cosine
//! betas, v- and sample-prediction, every DDPM variance, dynamic thresholding), the timesteps, the starting noise scale,
//! every step's model input, previous sample and clean-sample estimate, the noising process
//! and the v-prediction target. Each step is fed diffusers' own input sample and must agree
//! within 1e-6 (relative above 1); the whole chain run on our own outputs within 1e-5.

use std::path::Path;

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use mm_generate::diffusion::{Scheduler, SchedulerConfig, SchedulerError, SchedulerKind};
use serde_json::{Value, json};

use super::common::floats;

type B = Flex;

const STEP_TOLERANCE: f64 = 1e-6;
const CHAIN_TOLERANCE: f64 = 1e-5;

fn expected() -> Value {
    let path = super::common::fixtures("schedulers").join("expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(v: &Value, shape: [usize; 4]) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(floats(v), shape), &Default::default())
}

fn assert_close(ours: Tensor<B, 4>, theirs: &Value, tol: f64, what: &str) {
    let ours: Vec<f32> = ours.into_data().to_vec().unwrap();
    let theirs = floats(theirs);
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let err = (*a as f64 - *b as f64).abs() / (*b as f64).abs().max(1.0);
        assert!(
            err <= tol,
            "{what}[{i}]: ours {a}, diffusers {b} (error {err:e})"
        );
    }
}

fn scheduler(case: &Value) -> Scheduler {
    let mut config = case["config"].clone();
    config["_class_name"] = case["class_name"].clone();
    let config = SchedulerConfig::from_json(&config, None).unwrap();
    Scheduler::new(config, case["steps"].as_u64().unwrap() as usize).unwrap()
}

#[test]
fn every_step_matches_diffusers() {
    let exp = expected();
    let shape: Vec<usize> = exp["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let shape = [shape[0], shape[1], shape[2], shape[3]];
    for case in exp["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let s = scheduler(case);
        let records = case["records"].as_array().unwrap();
        let timesteps: Vec<f32> = records
            .iter()
            .map(|r| r["timestep"].as_f64().unwrap() as f32)
            .collect();
        assert_eq!(s.timesteps(), &timesteps[..], "{name}: timesteps");
        let sigma = case["init_noise_sigma"].as_f64().unwrap();
        assert!(
            (s.init_noise_sigma() as f64 - sigma).abs() <= 1e-6 * sigma.max(1.0),
            "{name}: init_noise_sigma {} vs {sigma}",
            s.init_noise_sigma()
        );
        for (i, a) in case["alphas_cumprod"].as_object().unwrap() {
            let ours = s.schedule().alphas_cumprod[i.parse::<usize>().unwrap()] as f64;
            let theirs = a.as_f64().unwrap();
            assert!(
                (ours - theirs).abs() <= 1e-7 * theirs.max(1e-3),
                "{name}: alphas_cumprod[{i}] {ours} vs {theirs}"
            );
        }
        let mut chained = tensor(&records[0]["sample"], shape);
        for (i, r) in records.iter().enumerate() {
            let sample = tensor(&r["sample"], shape);
            let output = tensor(&r["model_output"], shape);
            let noise = r["noise"].as_array().map(|_| tensor(&r["noise"], shape));
            if !r["model_input"].is_null() {
                let input = s.scale_model_input(sample.clone(), i);
                assert_close(input, &r["model_input"], STEP_TOLERANCE, name);
            }
            let out = s.step(i, output.clone(), sample, noise.clone()).unwrap();
            let what = format!("{name} step {i}");
            assert_close(out.prev_sample, &r["prev_sample"], STEP_TOLERANCE, &what);
            assert_close(
                out.pred_original_sample,
                &r["pred_original_sample"],
                STEP_TOLERANCE,
                &what,
            );
            chained = s.step(i, output, chained, noise).unwrap().prev_sample;
        }
        let last = &records.last().unwrap()["prev_sample"];
        assert_close(chained, last, CHAIN_TOLERANCE, &format!("{name} chain"));

        let noisy = case["add_noise"]["noisy"].as_object().unwrap();
        let original = tensor(&case["add_noise"]["original"], shape);
        let noise = tensor(&case["add_noise"]["noise"], shape);
        for (t, want) in noisy {
            let t: usize = t.parse().unwrap();
            let ours = s
                .schedule()
                .add_noise(original.clone(), noise.clone(), &[t, t]);
            assert_close(ours, want, STEP_TOLERANCE, &format!("{name} add_noise {t}"));
        }
        for (t, want) in case["add_noise"]["velocity"].as_object().unwrap() {
            let t: usize = t.parse().unwrap();
            let ours = s
                .schedule()
                .velocity(original.clone(), noise.clone(), &[t, t]);
            assert_close(ours, want, STEP_TOLERANCE, &format!("{name} velocity {t}"));
        }
    }
}

#[test]
fn configs_take_each_class_defaults_and_refuse_what_is_not_implemented() {
    let ddim = SchedulerConfig::from_json(&json!({"_class_name": "DDIMScheduler"}), None).unwrap();
    let euler = SchedulerConfig::from_json(&json!({"_class_name": "EulerDiscreteScheduler"}), None)
        .unwrap();
    assert_ne!(ddim.timestep_spacing, euler.timestep_spacing);
    assert!(ddim.clip_sample && !euler.clip_sample);
    // A PNDM pipeline's config runs under DDIM when asked; unknown keys are ignored.
    let pndm = json!({"_class_name": "PNDMScheduler", "skip_prk_steps": true, "steps_offset": 1});
    let err = SchedulerConfig::from_json(&pndm, None).unwrap_err();
    assert!(err.to_string().contains("PNDMScheduler"), "{err}");
    let as_ddim = SchedulerConfig::from_json(&pndm, Some(SchedulerKind::Ddim)).unwrap();
    assert_eq!(as_ddim.steps_offset, 1);
    for (key, value) in [
        ("rescale_betas_zero_snr", json!(true)),
        ("use_karras_sigmas", json!(true)),
        ("variance_type", json!("learned_range")),
        ("interpolation_type", json!("log_linear")),
    ] {
        let mut c = json!({"_class_name": "DDPMScheduler"});
        c[key] = value;
        let err = SchedulerConfig::from_json(&c, None).unwrap_err();
        assert!(matches!(err, SchedulerError::Unsupported { .. }), "{key}");
        assert!(err.to_string().contains(key), "{err}");
    }
    let bad = json!({"_class_name": "DDIMScheduler", "beta_schedule": "sigmoid"});
    assert!(SchedulerConfig::from_json(&bad, None).is_err());
    // Dynamic thresholding is read with diffusers' defaults; settings it cannot use are named.
    let on = json!({"_class_name": "DDIMScheduler", "thresholding": true});
    let on = SchedulerConfig::from_json(&on, None).unwrap();
    assert!(on.thresholding);
    assert_eq!(
        (on.dynamic_thresholding_ratio, on.sample_max_value),
        (0.995, 1.0)
    );
    for (key, value) in [
        ("dynamic_thresholding_ratio", json!(1.5)),
        ("dynamic_thresholding_ratio", json!(0.0)),
        ("sample_max_value", json!(0.5)),
    ] {
        let mut c = json!({"_class_name": "DDPMScheduler", "thresholding": true});
        c[key] = value;
        let err = SchedulerConfig::from_json(&c, None).unwrap_err();
        assert!(err.to_string().contains(key), "{err}");
    }
}

#[test]
fn bad_step_requests_are_errors() {
    let config = SchedulerConfig::defaults(SchedulerKind::Ddpm);
    assert!(matches!(
        Scheduler::new(config.clone(), 0),
        Err(SchedulerError::Steps { .. })
    ));
    assert!(Scheduler::new(config.clone(), 1001).is_err());
    let s = Scheduler::new(config, 4).unwrap();
    let x = Tensor::<B, 4>::zeros([1, 1, 2, 2], &Default::default());
    let err = s.step(0, x.clone(), x.clone(), None).unwrap_err();
    assert!(matches!(err, SchedulerError::NoiseRequired { index: 0 }));
    assert!(s.step(4, x.clone(), x.clone(), Some(x.clone())).is_err());
    let wrong = Tensor::<B, 4>::zeros([1, 1, 2, 3], &Default::default());
    assert!(matches!(
        s.step(3, wrong, x, None),
        Err(SchedulerError::Shape(_))
    ));
    // A config built by hand is checked too.
    let mut threshold = SchedulerConfig::defaults(SchedulerKind::Ddim);
    threshold.thresholding = true;
    threshold.dynamic_thresholding_ratio = 2.0;
    let err = Scheduler::new(threshold, 4).unwrap_err().to_string();
    assert!(err.contains("dynamic_thresholding_ratio"), "{err}");
    let missing = SchedulerConfig::from_file(Path::new("/nonexistent/scheduler_config.json"), None);
    assert!(missing.unwrap_err().to_string().contains("/nonexistent"));
}
