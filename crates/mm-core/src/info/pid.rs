//! Partial information decomposition of `I(T; X, Y)` into redundancy, unique information of
//! each source and synergy, by two definitions.
//!
//! - [`williams_beer`]: redundancy is `I_min` (Williams and Beer, 2010; the guide's Theorem 2).
//!   It is known to over-count redundancy for independent sources: for `T = (X, Y)` with
//!   independent bits ("COPY") it gives 1 bit of redundancy and 1 of synergy, not 1 bit unique
//!   to each source.
//! - [`broja`]: unique information as the least `I(T; X | Y)` over all distributions with the
//!   same `(T, X)` and `(T, Y)` marginals (Bertschinger, Rauh, Olbrich, Jost and Ay, 2014).
//!   COPY is 1 bit unique to each source.
//!
//! Both agree on XOR (1 bit of synergy) and on a duplicated bit (1 bit of redundancy), and both
//! satisfy `R + U_X = I(T; X)`, `R + U_Y = I(T; Y)`, `R + U_X + U_Y + S = I(T; X, Y)`.

use super::discrete::Trivariate;

/// The four atoms of a two-source decomposition, in bits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Pid {
    /// Information both sources carry.
    pub redundancy: f64,
    /// Information only X carries.
    pub unique_x: f64,
    /// Information only Y carries.
    pub unique_y: f64,
    /// Information only the pair carries.
    pub synergy: f64,
}

impl Pid {
    /// Completes a decomposition from its redundancy and the three mutual informations.
    fn from_redundancy(d: &Trivariate, redundancy: f64) -> Self {
        let (ix, iy, ixy) = (d.i_tx(), d.i_ty(), d.i_txy());
        Self {
            redundancy,
            unique_x: ix - redundancy,
            unique_y: iy - redundancy,
            synergy: ixy - ix - iy + redundancy,
        }
    }
}

/// Williams-Beer decomposition: `R = I_min = sum_t p(t) min_A I(T = t; A)` over the sources,
/// with the specific information `I(T = t; A) = sum_a p(a | t) log2(p(t | a) / p(t))`.
pub fn williams_beer(d: &Trivariate) -> Pid {
    let (nt, nx, ny) = d.shape;
    let pt = d.t();
    let specific = |joint: &[f64], na: usize, t: usize| -> f64 {
        // joint is p(t, a), |T| x |A|.
        (0..na)
            .filter(|&a| joint[t * na + a] > 0.0)
            .map(|a| {
                let pa: f64 = (0..nt).map(|s| joint[s * na + a]).sum();
                let p_a_given_t = joint[t * na + a] / pt[t];
                let p_t_given_a = joint[t * na + a] / pa;
                p_a_given_t * (p_t_given_a / pt[t]).log2()
            })
            .sum()
    };
    let (tx, ty) = (d.tx(), d.ty());
    let redundancy = (0..nt)
        .filter(|&t| pt[t] > 0.0)
        .map(|t| pt[t] * specific(&tx, nx, t).min(specific(&ty, ny, t)))
        .sum();
    Pid::from_redundancy(d, redundancy)
}

/// BROJA decomposition: `U_X = min_Q I_Q(T; X | Y)` over `Q` with `Q(t, x) = P(t, x)` and
/// `Q(t, y) = P(t, y)`.
///
/// The convex problem `min_Q I_Q(T; X, Y)` (same minimizer) is solved by alternating
/// minimization (Csiszar and Tusnady, 1984): `I_Q(T; X, Y) = min_R D(Q || P(t) R(x, y))`, so
/// the solver alternates `R = Q(x, y)` with the I-projection of `P(t) R(x, y)` onto the
/// marginal constraints (iterative proportional fitting), starting from
/// `P(t, x) P(t, y) / P(t)`; each half-step can only lower the objective. It stops when the
/// objective moves less than `1e-16` bits (at most 200,000 rounds). Where the optimum lies on
/// the boundary of the constraint set (AND), convergence is sublinear and the atoms are
/// accurate to about `1e-8` bits; interior and vertex optima (XOR, COPY, a duplicated bit)
/// are exact.
pub fn broja(d: &Trivariate) -> Pid {
    let (nt, nx, ny) = d.shape;
    let (ptx, pty, pt) = (d.tx(), d.ty(), d.t());
    let mut q: Vec<f64> = (0..nt * nx * ny)
        .map(|i| {
            let (t, x, y) = (i / (nx * ny), (i / ny) % nx, i % ny);
            if pt[t] > 0.0 {
                ptx[t * nx + x] * pty[t * ny + y] / pt[t]
            } else {
                0.0
            }
        })
        .collect();
    let objective = |q: &[f64]| mutual_info_t_xy(q, nt, nx * ny);
    let mut value = objective(&q);
    for _ in 0..200_000 {
        let qxy: Vec<f64> = (0..nx * ny)
            .map(|j| (0..nt).map(|t| q[t * nx * ny + j]).sum())
            .collect();
        for (i, v) in q.iter_mut().enumerate() {
            if *v > 0.0 {
                let (t, j) = (i / (nx * ny), i % (nx * ny));
                let conditional = *v / qxy[j];
                *v *= pt[t] / conditional; // Q <- P(t) Q(x, y)
            }
        }
        project(&mut q, &ptx, &pty, d.shape);
        let next = objective(&q);
        let done = (value - next).abs() < 1e-16;
        value = next;
        if done {
            break;
        }
    }
    let optimum = Trivariate {
        shape: d.shape,
        p: q,
    };
    // Atoms from the optimum's unique information, completed by the identities so they add up
    // exactly (the solver's residual goes to the other atoms, not to the sum).
    let unique_x = optimum.i_tx_given_y();
    Pid::from_redundancy(d, (d.i_tx() - unique_x).max(0.0))
}

/// `I(T; J)` of a table `q[t][j]`.
fn mutual_info_t_xy(q: &[f64], nt: usize, nj: usize) -> f64 {
    super::discrete::mutual_information(q, nt, nj)
}

/// Iterative proportional fitting onto `Q(t, x) = P(t, x)` and `Q(t, y) = P(t, y)`.
fn project(q: &mut [f64], ptx: &[f64], pty: &[f64], shape: (usize, usize, usize)) {
    let (nt, nx, ny) = shape;
    for _ in 0..200 {
        let mut worst = 0.0f64;
        for t in 0..nt {
            for x in 0..nx {
                let row = &mut q[(t * nx + x) * ny..(t * nx + x + 1) * ny];
                let sum: f64 = row.iter().sum();
                if sum > 0.0 {
                    let scale = ptx[t * nx + x] / sum;
                    worst = worst.max((scale - 1.0).abs());
                    row.iter_mut().for_each(|v| *v *= scale);
                }
            }
            for y in 0..ny {
                let sum: f64 = (0..nx).map(|x| q[(t * nx + x) * ny + y]).sum();
                if sum > 0.0 {
                    let scale = pty[t * ny + y] / sum;
                    worst = worst.max((scale - 1.0).abs());
                    (0..nx).for_each(|x| q[(t * nx + x) * ny + y] *= scale);
                }
            }
        }
        if worst < 1e-15 {
            break;
        }
    }
}
