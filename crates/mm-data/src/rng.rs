//! The seeded generator every crate shares: the same seed gives the same numbers on every
//! platform and in every version, so synthetic data and shuffles are reproducible.

/// SplitMix64: a tiny, well-tested 64-bit generator (Steele, Lea and Flood, 2014).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// An independent generator for item `index` (a training step's batch, say) of the
    /// sequence seeded by `seed`: the starting state hashes both, so the streams of nearby
    /// indices do not overlap.
    ///
    /// `new(seed ^ index * 0x9E37_79B9_7F4A_7C15)` does not do that: SplitMix64 steps its state
    /// by that very constant, so every such stream starts on one lattice and stream `i`'s
    /// k-th number is stream `i + 1`'s (k-1)-th (up to the few bits `seed` flips). Batch
    /// sources seeded that way drew each random number for about 30 to 60 steps in a row
    /// (20,924 distinct states in 1.2 million draws for seed 20), which is what this replaces.
    pub fn stream(seed: u64, index: u64) -> Self {
        let key = Self::new(seed).next_u64();
        Self(Self::new(index ^ key).next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal (Box-Muller, cosine branch).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform(), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn streams_of_nearby_indices_do_not_overlap() {
        // 2,000 steps of 240 draws each: every state distinct (the old lattice seeding
        // visited about 20,000 states for 1.2 million draws).
        for seed in [19, 20] {
            let mut seen = HashSet::new();
            for step in 0..2000 {
                let mut rng = SplitMix64::stream(seed, step);
                for _ in 0..240 {
                    seen.insert(rng.next_u64());
                }
            }
            assert_eq!(seen.len(), 2000 * 240);
        }
        // The same (seed, index) gives the same stream; another seed another one.
        assert_eq!(
            SplitMix64::stream(1, 5).next_u64(),
            SplitMix64::stream(1, 5).next_u64()
        );
        assert_ne!(
            SplitMix64::stream(1, 5).next_u64(),
            SplitMix64::stream(2, 5).next_u64()
        );
    }
}
