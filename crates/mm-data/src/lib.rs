//! `mm-data`: what every crate needs to get data in and out, with no tensor math (it builds
//! without Burn, alongside it).
//!
//! - [`manifest`]: JSONL manifests, one reader for every task's record type.
//! - [`fetch`]: packages from registries by name (`npm pack`, `pip download`,
//!   `apt-get download`), checksummed and cached, and their archives unpacked.
//! - [`matrix`]: host matrices, `.npy` and CSV files.
//! - [`synth`]: seeded synthetic sets (two-view data with known correlations, unit vectors,
//!   coloured shapes).
//! - [`stamps`]: the Tux Paint stamps (images, captions, sounds), fetched with apt-get.
//! - [`easy_vqa`]: easy-VQA's question-answer images, fetched with pip.
//! - [`qt_resources`]: files packed in Qt resource blobs (`.rcc`), as GCompris ships them.
//! - [`rng`]: the seeded generator they and the training code share.
//! - [`fs`]: atomic file and folder writes, so a crash mid-save loses nothing already saved.
#![warn(missing_docs)]

pub mod easy_vqa;
pub mod fetch;
pub mod fs;
pub mod manifest;
pub mod matrix;
pub mod qt_resources;
pub mod rng;
pub mod stamps;
pub mod synth;
