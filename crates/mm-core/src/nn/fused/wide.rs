//! Runs a kernel's inner loop compiled for the widest vector unit the CPU has.
//!
//! The workspace builds for the baseline x86-64 target (SSE2, four `f32` lanes), so the
//! loops of [`super::kernels`] vectorize four wide. On a CPU with AVX-512 (sixteen lanes) or
//! AVX2 (eight), [`widest`] runs the same closure inside a function compiled with that
//! feature, into which the closure is inlined; the operations and their order are the same,
//! so the results are too (no FMA contraction: Rust does not fuse `a * b + c`).

/// `body()`, compiled for AVX-512 or AVX2 when the CPU has it (checked once, cached by std).
#[inline(always)]
pub fn widest<R>(body: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU was just found to support AVX-512F, the only requirement for
            // calling a function compiled with it.
            #[allow(unsafe_code)]
            return unsafe { on_avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            #[allow(unsafe_code)]
            return unsafe { on_avx2(body) };
        }
    }
    body()
}

/// `body()` compiled with AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn on_avx512<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// `body()` compiled with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn on_avx2<R>(body: impl FnOnce() -> R) -> R {
    body()
}

#[cfg(test)]
mod tests {
    use super::widest;
    use crate::nn::fused::kernels::exp;

    #[test]
    fn the_wide_path_gives_the_baseline_bits() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.2).collect();
        let baseline: Vec<f32> = x.iter().map(|&v| v / (1.0 + exp(-1.702 * v))).collect();
        let wide = widest(
            #[inline(always)]
            || {
                x.iter()
                    .map(|&v| v / (1.0 + exp(-1.702 * v)))
                    .collect::<Vec<f32>>()
            },
        );
        assert_eq!(baseline, wide);
    }
}
