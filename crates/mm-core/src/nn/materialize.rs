//! Running Burn's lazy parameter initializers in place, before a module is cloned to be saved.
//!
//! Burn initializes a freshly built parameter on its first read. Cloning one that was never
//! read copies the *initializer*, not the values, so the clone draws its own random numbers:
//! a model saved through `model.clone()` before it ever ran would write weights that differ
//! from the ones it later computes with. Every export in the workspace calls [`materialize`]
//! (or a helper that does) before it clones.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor};

/// Reads every parameter of `module` once, so that each holds its values from now on and
/// clones share them.
pub fn materialize<B: Backend, M: Module<B>>(module: &M) {
    module.visit(&mut Touch);
}

struct Touch;

impl<B: Backend> ModuleVisitor<B> for Touch {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<B, D, Int>>) {
        let _ = param.val();
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<B, D, Bool>>) {
        let _ = param.val();
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    fn weights(layer: &Linear<NdArray>) -> Vec<f32> {
        layer
            .weight
            .val()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap()
    }

    #[test]
    fn clones_of_a_materialized_module_share_its_values() {
        let device = Default::default();
        let layer: Linear<NdArray> = LinearConfig::new(8, 8).init(&device);
        materialize(&layer);
        let copy = layer.clone();
        assert_eq!(weights(&copy), weights(&layer));
    }

    #[test]
    fn without_it_a_fresh_clone_draws_its_own_values() {
        // The behaviour `materialize` exists for; if Burn ever clones values eagerly this
        // fails and the helper can go.
        let device = Default::default();
        let layer: Linear<NdArray> = LinearConfig::new(8, 8).init(&device);
        let copy = layer.clone();
        assert_ne!(weights(&copy), weights(&layer));
    }
}
