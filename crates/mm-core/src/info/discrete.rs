//! Entropy, mutual information and conditional mutual information of discrete joint tables.
//!
//! Tables are row-major probability arrays; `0 log 0 = 0`. Every result is in bits.

use super::InfoError;

/// Shannon entropy `H(p) = -sum p log2 p` of a distribution.
pub fn entropy(p: &[f64]) -> f64 {
    -p.iter()
        .filter(|&&v| v > 0.0)
        .map(|&v| v * v.log2())
        .sum::<f64>()
}

/// `I(X; Y) = H(X) + H(Y) - H(X, Y)` of a joint table `p[x][y]` (row-major, `nx x ny`).
pub fn mutual_information(pxy: &[f64], nx: usize, ny: usize) -> f64 {
    let px: Vec<f64> = (0..nx)
        .map(|x| pxy[x * ny..(x + 1) * ny].iter().sum())
        .collect();
    let py: Vec<f64> = (0..ny)
        .map(|y| (0..nx).map(|x| pxy[x * ny + y]).sum())
        .collect();
    (entropy(&px) + entropy(&py) - entropy(pxy)).max(0.0)
}

/// `I(X; Y | Z) = H(X, Z) + H(Y, Z) - H(X, Y, Z) - H(Z)` of a table `p[x][y][z]`.
pub fn conditional_mutual_information(pxyz: &[f64], nx: usize, ny: usize, nz: usize) -> f64 {
    let at = |x: usize, y: usize, z: usize| pxyz[(x * ny + y) * nz + z];
    let pxz: Vec<f64> = (0..nx * nz)
        .map(|i| (0..ny).map(|y| at(i / nz, y, i % nz)).sum())
        .collect();
    let pyz: Vec<f64> = (0..ny * nz)
        .map(|i| (0..nx).map(|x| at(x, i / nz, i % nz)).sum())
        .collect();
    let pz: Vec<f64> = (0..nz)
        .map(|z| (0..nx * ny).map(|i| at(i / ny, i % ny, z)).sum())
        .collect();
    (entropy(&pxz) + entropy(&pyz) - entropy(pxyz) - entropy(&pz)).max(0.0)
}

/// A joint distribution `p(t, x, y)` of a target `T` and two sources `X`, `Y`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trivariate {
    /// Alphabet sizes `(|T|, |X|, |Y|)`.
    pub shape: (usize, usize, usize),
    /// `p[t][x][y]`, row-major.
    pub p: Vec<f64>,
}

impl Trivariate {
    /// From non-negative weights (counts), normalized to sum to 1.
    pub fn from_counts(shape: (usize, usize, usize), counts: Vec<f64>) -> Result<Self, InfoError> {
        let (nt, nx, ny) = shape;
        if counts.len() != nt * nx * ny {
            return Err(InfoError::Shape {
                len: counts.len(),
                shape: vec![nt, nx, ny],
            });
        }
        if let Some((index, &value)) = counts
            .iter()
            .enumerate()
            .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(InfoError::Invalid { index, value });
        }
        let total: f64 = counts.iter().sum();
        if total <= 0.0 {
            return Err(InfoError::Empty);
        }
        Ok(Self {
            shape,
            p: counts.into_iter().map(|c| c / total).collect(),
        })
    }

    /// From probabilities, which must sum to 1 (within `1e-9`).
    pub fn from_probabilities(
        shape: (usize, usize, usize),
        p: Vec<f64>,
    ) -> Result<Self, InfoError> {
        let total: f64 = p.iter().sum();
        if (total - 1.0).abs() > 1e-9 {
            return Err(InfoError::NotNormalized(total));
        }
        Self::from_counts(shape, p)
    }

    /// The empirical distribution of `(t, x, y)` samples, alphabet sizes from the largest value.
    pub fn from_samples(samples: &[(usize, usize, usize)]) -> Result<Self, InfoError> {
        let size = |f: fn(&(usize, usize, usize)) -> usize| {
            samples.iter().map(f).max().map_or(0, |m| m + 1)
        };
        let shape = (size(|s| s.0), size(|s| s.1), size(|s| s.2));
        let mut counts = vec![0.0; shape.0 * shape.1 * shape.2];
        for &(t, x, y) in samples {
            counts[(t * shape.1 + x) * shape.2 + y] += 1.0;
        }
        Self::from_counts(shape, counts)
    }

    /// `p(t, x, y)`.
    pub fn at(&self, t: usize, x: usize, y: usize) -> f64 {
        let (_, nx, ny) = self.shape;
        self.p[(t * nx + x) * ny + y]
    }

    /// `p(t, x)`, `|T| x |X|`.
    pub fn tx(&self) -> Vec<f64> {
        let (nt, nx, ny) = self.shape;
        (0..nt * nx)
            .map(|i| (0..ny).map(|y| self.at(i / nx, i % nx, y)).sum())
            .collect()
    }

    /// `p(t, y)`, `|T| x |Y|`.
    pub fn ty(&self) -> Vec<f64> {
        let (nt, nx, ny) = self.shape;
        (0..nt * ny)
            .map(|i| (0..nx).map(|x| self.at(i / ny, x, i % ny)).sum())
            .collect()
    }

    /// `p(t)`.
    pub fn t(&self) -> Vec<f64> {
        let (nt, nx, ny) = self.shape;
        (0..nt)
            .map(|t| self.p[t * nx * ny..(t + 1) * nx * ny].iter().sum())
            .collect()
    }

    /// `I(T; X)`.
    pub fn i_tx(&self) -> f64 {
        mutual_information(&self.tx(), self.shape.0, self.shape.1)
    }

    /// `I(T; Y)`.
    pub fn i_ty(&self) -> f64 {
        mutual_information(&self.ty(), self.shape.0, self.shape.2)
    }

    /// `I(T; X, Y)`, treating `(X, Y)` as one variable.
    pub fn i_txy(&self) -> f64 {
        let (nt, nx, ny) = self.shape;
        mutual_information(&self.p, nt, nx * ny)
    }

    /// `I(T; X | Y)`.
    pub fn i_tx_given_y(&self) -> f64 {
        let (nt, nx, ny) = self.shape;
        conditional_mutual_information(&self.p, nt, nx, ny)
    }

    /// `I(T; Y | X)`.
    pub fn i_ty_given_x(&self) -> f64 {
        let (nt, nx, ny) = self.shape;
        // Reorder to p[t][y][x].
        let swapped: Vec<f64> = (0..nt * ny * nx)
            .map(|i| {
                let (t, rest) = (i / (ny * nx), i % (ny * nx));
                self.at(t, rest % nx, rest / nx)
            })
            .collect();
        conditional_mutual_information(&swapped, nt, ny, nx)
    }
}
