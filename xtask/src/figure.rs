//! A benchmark figure and the arithmetic of comparing it with the reference's.

/// One measured figure.
pub struct Figure {
    /// Its name (the reference script's JSON key).
    pub key: String,
    /// The measured value.
    pub value: f64,
    /// Whether less is better (times, memory).
    pub lower_is_better: bool,
}

impl Figure {
    /// A rate or other figure where more is better.
    pub fn higher_is_better(key: impl Into<String>, value: f64) -> Self {
        Self {
            key: key.into(),
            value,
            lower_is_better: false,
        }
    }

    /// A time or memory figure where less is better.
    pub fn lower_is_better(key: impl Into<String>, value: f64) -> Self {
        Self {
            key: key.into(),
            value,
            lower_is_better: true,
        }
    }
}

/// mm's figure over the reference's, oriented so that above 1 means mm is better.
pub fn ratio(figure: &Figure, theirs: f64) -> f64 {
    if figure.lower_is_better {
        theirs / figure.value
    } else {
        figure.value / theirs
    }
}

/// Whether a reference measured on `reference_device` (its JSON's `device` field: `cuda` or
/// `wgpu` for a GPU; absent or anything else, the CPU, as every committed reference) compares
/// with mm run on a GPU (`run_on_gpu`) or not: ratios only pair CPU with CPU, GPU with GPU.
pub fn same_kind_of_device(run_on_gpu: bool, reference_device: Option<&str>) -> bool {
    matches!(reference_device, Some("cuda" | "wgpu")) == run_on_gpu
}

/// The median of `values` (NaN when empty).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios_are_oriented() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let rate = Figure::higher_is_better("r", 10.0);
        let time = Figure::lower_is_better("t", 2.0);
        assert_eq!(ratio(&rate, 5.0), 2.0);
        assert_eq!(ratio(&time, 4.0), 2.0);
    }

    #[test]
    fn gpu_runs_pair_only_with_gpu_references() {
        assert!(same_kind_of_device(false, None));
        assert!(same_kind_of_device(false, Some("cpu")));
        assert!(!same_kind_of_device(true, None));
        assert!(!same_kind_of_device(true, Some("cpu")));
        assert!(same_kind_of_device(true, Some("cuda")));
        assert!(!same_kind_of_device(false, Some("cuda")));
    }
}
