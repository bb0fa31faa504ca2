//! Seeded synthetic data: the same seed gives the same set on every platform.
//!
//! - [`cca`]: two views with known population canonical correlations (`data synth cca`).
//! - [`shapes`]: coloured shapes with captions, as PNG files and a manifest.
//! - [`vectors`]: random unit vectors for index tests and benchmarks.
//! - [`weights`]: model weights from a formula NumPy reproduces exactly (parity fixtures).

pub mod cca;
pub mod shapes;
pub mod vectors;
pub mod weights;
