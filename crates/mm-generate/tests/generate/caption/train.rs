//! Training the captioner end to end through the house loop, on four solid-colour images
//! whose captions name their colour: after a short run, greedy decoding and beam search both
//! caption every image exactly, the scores say so, and the saved `final/` folder (an HF
//! `VisionEncoderDecoderModel` folder) loads back and captions the same.

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use mm_core::train::RunOptions;
use mm_generate::caption::eval::evaluate_captioner;
use mm_generate::caption::{
    CaptionSet, CaptionSource, CaptionTrainConfig, load_hf_captioner, train_captioner,
    vit_processor,
};

type B = Autodiff<Flex>;

const COLOURS: [(&str, [u8; 3]); 4] = [
    ("red", [220, 30, 30]),
    ("green", [30, 200, 40]),
    ("blue", [30, 40, 220]),
    ("yellow", [230, 220, 30]),
];

fn write_set(dir: &Path) -> std::path::PathBuf {
    let mut lines = Vec::new();
    for (name, rgb) in COLOURS {
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb(rgb));
        img.save(dir.join(format!("{name}.png"))).unwrap();
        lines.push(format!(
            r#"{{"image":"{name}.png","captions":["A {name} square."],"split":"train"}}"#
        ));
    }
    let manifest = dir.join("colours.jsonl");
    std::fs::write(&manifest, lines.join("\n") + "\n").unwrap();
    manifest
}

fn tiny_config() -> CaptionTrainConfig {
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
    assert_eq!(set.len(), 4);
    let run_dir = dir.path().join("run");
    let run = RunOptions::new(&run_dir);
    let device = Default::default();
    let (model, model_config, tokenizer) =
        train_captioner::<B>(&config, set.clone(), &run, &[device]).unwrap();
    let mut generation = model_config.generation();
    generation.max_new_tokens = 7;
    let report = evaluate_captioner(&model, &tokenizer, &set, &generation, 4, &device).unwrap();
    for s in [&report.greedy, &report.beam3, &report.beam5] {
        assert_eq!(s.all.exact_match, 1.0, "{:?}", report.examples);
        // Three-word captions have no 4-grams: BLEU-4 is about 0 by its definition.
        assert!(s.all.bleu3 > 0.99 && s.all.cider > 1.0, "{:?}", s.all);
    }
    assert_eq!(report.examples[0].captions["greedy"], "a red square.");

    let loaded = load_hf_captioner::<Flex>(&run_dir.join("final"), &device).unwrap();
    assert_eq!(loaded.processor, processor);
    assert_eq!(loaded.tokenizer.vocab_size(), tokenizer.vocab_size());
    let again = evaluate_captioner(
        &loaded.model,
        &loaded.tokenizer,
        &set,
        &generation,
        4,
        &device,
    )
    .unwrap();
    assert_eq!(again.examples, report.examples);
}
