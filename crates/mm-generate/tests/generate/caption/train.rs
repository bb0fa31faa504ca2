//! Training the captioner end to end through the house loop, on eight solid-colour images
//! whose captions name their colour (two held out to choose the length penalty): after a
//! short run, greedy decoding and beam search both caption every image exactly, the scores
//! say so, and the saved `final/` folder (an HF `VisionEncoderDecoderModel` folder, the chosen
//! penalty in its generation config) loads back and captions the same.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use mm_core::train::RunOptions;
use mm_generate::caption::eval::{evaluate_captioner, tokens_outside};
use mm_generate::caption::{
    CaptionSet, CaptionSource, CaptionTrainConfig, TrainedCaptioner, load_hf_captioner,
    train_captioner, vit_processor,
};

type B = Autodiff<Flex>;

const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 40]),
    ("blue", [30, 40, 220]),
    ("yellow", [230, 220, 30]),
];

/// Asserts that every variant of `config` that `spoil` makes is refused before training with
/// an error naming `key`, and that no run folder was made.
pub(crate) fn assert_refused<T: Copy>(
    config: &CaptionTrainConfig,
    set: &CaptionSet,
    dir: &Path,
    key: &str,
    values: &[T],
    spoil: impl Fn(&mut CaptionTrainConfig, T),
) {
    for &value in values {
        let mut c = config.clone();
        spoil(&mut c, value);
        let run = RunOptions::new(dir.join("bad"));
        let err = train_captioner::<B>(&c, set.clone(), &run, &[Default::default()])
            .err()
            .unwrap_or_else(|| panic!("an impossible {key} is refused"))
            .to_string();
        assert!(err.contains(key), "{err}");
    }
    assert!(!dir.join("bad").exists());
}

/// Asserts that greedy decoding (7 new tokens at most) captions every image of `set` exactly.
pub(crate) fn assert_captions_every_image(trained: &TrainedCaptioner<Flex>, set: &CaptionSet) {
    let mut generation = trained.config.generation();
    generation.max_new_tokens = 7;
    let report = evaluate_captioner(
        &trained.model,
        &trained.tokenizer,
        set,
        &generation,
        &Default::default(),
        4,
        &Default::default(),
    )
    .unwrap();
    assert_eq!(report.greedy.all.exact_match, 1.0, "{:?}", report.examples);
}

/// Two shades of each colour, so a validation split can hold some out and every colour is
/// still trained on.
pub(crate) fn write_set(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for shade in 0..2u8 {
        for (name, rgb) in COLOURS {
            let img = image::RgbImage::from_pixel(16, 16, image::Rgb(rgb.map(|c| c - 20 * shade)));
            img.save(dir.join(format!("{name}{shade}.png"))).unwrap();
            lines.push(format!(
                r#"{{"image":"{name}{shade}.png","captions":["A {name} square."],"split":"train"}}"#
            ));
        }
    }
    let manifest = dir.join("colours.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    manifest
}

/// The colour squares of [`write_set`], written to `dir` and loaded as the one training
/// source `colours` at 16 px.
pub(crate) fn colour_set(dir: &Path) -> CaptionSet {
    let sources = [CaptionSource::new(
        "colours",
        &write_set(dir),
        Some("train"),
    )];
    CaptionSet::load(&sources, &vit_processor(16)).unwrap()
}

pub(crate) fn tiny_config() -> CaptionTrainConfig {
    let mut c = CaptionTrainConfig::default();
    c.model.encoder.image_size = 16;
    c.model.encoder.patch_size = 8;
    c.model.encoder.hidden_size = 32;
    c.model.encoder.num_hidden_layers = 1;
    c.model.encoder.intermediate_size = 64;
    c.model.decoder.hidden_size = 32;
    c.model.decoder.num_hidden_layers = 1;
    c.model.decoder.intermediate_size = 64;
    c.model.decoder.max_position_embeddings = 8;
    c.batch = 8;
    c.steps = 150;
    c.lr = 3e-3;
    c.warmup = 10;
    c.max_shift = 0;
    c.checkpoint_every = 75;
    c.validation_fraction = 0.25;
    c.validation_max_per_source = 2;
    c
}

#[test]
fn a_short_run_learns_to_name_the_colours() {
    let _seeded = crate::seeded();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_set(dir.path());
    let config = tiny_config();
    let processor = vit_processor(16);
    let sources = [CaptionSource::new("colours", &manifest, Some("train"))];
    let set = CaptionSet::load(&sources, &processor).unwrap();
    assert_eq!(set.len(), 8);
    // The split the run makes: two images, of different colours, so all four are trained.
    let (rest, held) = set.split_validation(0.25, 2, config.seed);
    assert_eq!((rest.len(), held.len()), (6, 2));
    assert_ne!(held.captions[0], held.captions[1]);
    assert!(held.paths.iter().all(|p| !rest.paths.contains(p)));

    let run_dir = dir.path().join("run");
    let run = RunOptions::new(&run_dir);
    let device = Default::default();
    // Settings that could only fail after training are refused before it starts.
    for (key, value) in [
        ("validation_fraction", 1.0),
        ("length_penalties", f64::NAN),
        ("augment.jitter", 1.5),
    ] {
        let mut bad = config.clone();
        match key {
            "validation_fraction" => bad.validation_fraction = value,
            "augment.jitter" => bad.augment.jitter = value,
            _ => bad.length_penalties.push(value as f32),
        }
        let err = train_captioner::<B>(&bad, set.clone(), &run, &[device])
            .err()
            .expect("bad settings are refused")
            .to_string();
        assert!(err.contains(key), "{err}");
    }
    assert!(!run_dir.exists());
    let trained = train_captioner::<B>(&config, set.clone(), &run, &[device]).unwrap();
    let (model, model_config, tokenizer) = (trained.model, trained.config, trained.tokenizer);
    let choice = trained
        .length_penalty
        .expect("a validation split was asked for");
    assert_eq!(choice.n, 2);
    assert_eq!(choice.candidates.len(), config.length_penalties.len());
    assert!(config.length_penalties.contains(&choice.chosen));
    let mut generation = model_config.generation();
    generation.max_new_tokens = 7;
    let report = evaluate_captioner(
        &model,
        &tokenizer,
        &set,
        &generation,
        &Default::default(),
        4,
        &device,
    )
    .unwrap();
    for s in [&report.greedy, &report.beam3, &report.beam5] {
        assert_eq!(s.all.exact_match, 1.0, "{:?}", report.examples);
        // Three-word captions have no 4-grams: BLEU-4 is about 0 by its definition.
        assert!(s.all.bleu3 > 0.99 && s.all.cider > 1.0, "{:?}", s.all);
    }
    assert_eq!(report.examples[0].captions["greedy"], "a red square.");
    // Every caption is right with every decoding, so image by image nothing differs.
    let names: Vec<&str> = report.against_greedy.keys().map(String::as_str).collect();
    assert_eq!(names, ["beam3", "beam3_mbr", "beam5", "beam5_mbr"]);
    let d = &report.against_greedy["beam5"];
    assert_eq!(
        (d.mean, d.low, d.high, d.wins, d.losses),
        (0.0, 0.0, 0.0, 0, 0)
    );
    assert_eq!(d.ties, set.len());

    // Decoding with only the words of the captions that are not red: no caption says "red",
    // and greedy decoding still names every other image exactly.
    let not_red: Vec<String> = set
        .captions
        .iter()
        .flatten()
        .filter(|c| !c.contains("red"))
        .cloned()
        .collect();
    let outside = tokens_outside(&tokenizer, &not_red, generation.eos_token_id).unwrap();
    let suppress = [("colours".to_string(), outside)].into_iter().collect();
    let limited =
        evaluate_captioner(&model, &tokenizer, &set, &generation, &suppress, 8, &device).unwrap();
    assert_eq!(limited.examples.len(), set.len());
    for example in &limited.examples {
        assert!(
            example.captions.values().all(|c| !c.contains("red")),
            "{example:?}"
        );
    }
    let red = set.captions.iter().filter(|c| c[0].contains("red")).count();
    assert!(red > 0);
    assert_eq!(
        limited.greedy.all.exact_match,
        (set.len() - red) as f64 / set.len() as f64
    );

    let loaded = load_hf_captioner::<Flex>(&run_dir.join("final"), &device).unwrap();
    // The chosen penalty is the folder's decoding default, and the sweep is beside it.
    assert_eq!(loaded.generation.length_penalty, choice.chosen);
    let sweep: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("final/mm_length_penalty.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(sweep["candidates"].as_array().unwrap().len(), 5);
    assert_eq!(loaded.processor, processor);
    assert_eq!(loaded.tokenizer.vocab_size(), tokenizer.vocab_size());
    let again = evaluate_captioner(
        &loaded.model,
        &loaded.tokenizer,
        &set,
        &generation,
        &Default::default(),
        4,
        &device,
    )
    .unwrap();
    assert_eq!(again.examples, report.examples);
}
