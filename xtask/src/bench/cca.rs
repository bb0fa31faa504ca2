//! `cargo xtask bench cca`: linear CCA (k = 8) on the seeded 20,000 x 128 / 96 views, beside
//! scipy's closed form and scikit-learn's iterative CCA timed on the same machine by
//! `xtask/bench/cca_reference.py`.

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use mm_core::BackendJob;
use mm_core::cca::covariance::to_device;
use mm_core::cca::{CcaError, LinearCcaConfig};
use mm_data::synth::cca::benchmark_views;

use super::{Figure, best_seconds, peak_rss_mib};

/// Times one fit (device covariances + host eigenproblem), best of several.
pub struct CcaBench {
    /// Seconds to keep repeating the fit.
    pub min_seconds: f64,
}

impl BackendJob for CcaBench {
    type Output = Result<Vec<Figure>, CcaError>;

    fn run<A: AutodiffBackend>(self, device: A::Device) -> Self::Output {
        type B<A> = <A as AutodiffBackend>::InnerBackend;
        let (x, y) = benchmark_views();
        let (x, y): (Tensor<B<A>, 2>, Tensor<B<A>, 2>) =
            (to_device(&x, &device), to_device(&y, &device));
        let cca = LinearCcaConfig::new(8);
        cca.fit(x.clone(), y.clone())?; // surfaces a data error before timing
        let best = best_seconds(self.min_seconds, || {
            cca.fit(x.clone(), y.clone())
                .expect("the same data fitted above");
        });
        let mut out = vec![Figure::lower_is_better("fit_seconds", best)];
        if let Some(mib) = peak_rss_mib() {
            out.push(Figure::lower_is_better("peak_rss_mib", mib));
        }
        Ok(out)
    }
}
