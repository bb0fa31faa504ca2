//! The symmetric contrastive (InfoNCE) loss of CLIP and its learnable temperature.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Tensor, activation::log_softmax, backend::Backend};

/// The largest logit scale open_clip allows: `exp(scale) <= 100`.
pub const MAX_LOG_LOGIT_SCALE: f64 = 4.605_170_185_988_092; // ln(100)

/// Configuration of [`LogitScale`].
#[derive(Config, Debug)]
pub struct LogitScaleConfig {
    /// Initial value of the log logit scale; CLIP starts at `ln(1 / 0.07)`.
    #[config(default = 2.659_260_036_932_778)]
    pub logit_scale_init_value: f64,
}

/// The learnable log inverse temperature `s`; similarities are multiplied by `exp(s)`.
#[derive(Module, Debug)]
pub struct LogitScale<B: Backend> {
    /// The log scale, shape `[1]`.
    pub value: Param<Tensor<B, 1>>,
}

impl LogitScaleConfig {
    /// Builds the parameter on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> LogitScale<B> {
        LogitScale {
            value: Param::from_tensor(Tensor::from_floats([self.logit_scale_init_value], device)),
        }
    }
}

impl<B: Backend> LogitScale<B> {
    /// `exp(s)`, shape `[1]`.
    pub fn scale(&self) -> Tensor<B, 1> {
        self.value.val().exp()
    }

    /// Clamps `s` to `[0, ln 100]` in place of the parameter, keeping its id (and so its
    /// optimizer state). open_clip does this after every optimizer step (`main.py`,
    /// `logit_scale.clamp_(0, math.log(100))`).
    pub fn clamped(self) -> Self {
        let value = self
            .value
            .map(|t| t.clamp(0.0, MAX_LOG_LOGIT_SCALE).detach().require_grad());
        Self { value }
    }
}

/// Symmetric cross-entropy over the similarity matrix of a batch of matched pairs.
///
/// `image` and `text` are L2-normalized embeddings where row `i` of each is a positive pair;
/// `scale` is `exp(s)`. Returns `(CE(image -> text) + CE(text -> image)) / 2`, as in the
/// guide's `CLIP.contrastive_loss` and open_clip `loss.py` `ClipLoss.forward`.
///
/// # Shapes
/// - `image`, `text`: `[batch, dim]`
/// - `scale`: `[1]`
/// - output: `[1]`
pub fn contrastive_loss<B: Backend>(
    image: Tensor<B, 2>,
    text: Tensor<B, 2>,
    scale: Tensor<B, 1>,
) -> Tensor<B, 1> {
    let [n, _] = image.dims();
    let logits = image.matmul(text.transpose()) * scale.unsqueeze_dim::<2>(1); // [n, n]
    let eye = Tensor::<B, 2>::eye(n, &logits.device());
    let i2t = (log_softmax(logits.clone(), 1) * eye.clone()).sum().neg() / n as f64;
    let t2i = (log_softmax(logits, 0) * eye).sum().neg() / n as f64;
    (i2t + t2i) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;
    use burn::tensor::TensorData;

    type B = NdArray<f64>;

    fn t(rows: &[[f64; 2]]) -> Tensor<B, 2> {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Tensor::from_data(TensorData::new(flat, [rows.len(), 2]), &Default::default())
    }

    #[test]
    fn equals_hand_computed_value() {
        // Two pairs, orthogonal unit vectors, scale 1:
        // logits = I_2 (image 0 = text 0 = e0, image 1 = text 1 = e1).
        // Each row's CE = -ln(e / (e + 1)) = ln(1 + e^-1).
        let img = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let txt = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let scale = Tensor::<B, 1>::from_floats([1.0], &Default::default());
        let loss: f64 = contrastive_loss(img, txt, scale).into_scalar();
        let expected = (1.0 + (-1.0f64).exp()).ln();
        assert!((loss - expected).abs() < 1e-12, "{loss} vs {expected}");
    }

    #[test]
    fn asymmetric_case_matches_hand_value_and_is_symmetric_in_inputs() {
        // image 0 = e0, image 1 = (0.6, 0.8); texts e0, e1; scale 2.
        // logits = 2 * [[1, 0], [0.6, 0.8]].
        let img = t(&[[1.0, 0.0], [0.6, 0.8]]);
        let txt = t(&[[1.0, 0.0], [0.0, 1.0]]);
        let scale = Tensor::<B, 1>::from_floats([2.0], &Default::default());
        let l = [[2.0f64, 0.0], [1.2, 1.6]];
        let lse = |a: f64, b: f64| (a.exp() + b.exp()).ln();
        let i2t = ((lse(l[0][0], l[0][1]) - l[0][0]) + (lse(l[1][0], l[1][1]) - l[1][1])) / 2.0;
        let t2i = ((lse(l[0][0], l[1][0]) - l[0][0]) + (lse(l[0][1], l[1][1]) - l[1][1])) / 2.0;
        let expected = (i2t + t2i) / 2.0;
        let ab: f64 = contrastive_loss(img.clone(), txt.clone(), scale.clone()).into_scalar();
        let ba: f64 = contrastive_loss(txt, img, scale).into_scalar();
        assert!((ab - expected).abs() < 1e-12, "{ab} vs {expected}");
        assert!((ab - ba).abs() < 1e-12, "not symmetric: {ab} vs {ba}");
    }

    #[test]
    fn logit_scale_is_clamped_to_open_clip_range() {
        let device = Default::default();
        let high = LogitScaleConfig::new()
            .with_logit_scale_init_value(9.0)
            .init::<B>(&device);
        let v: f64 = high.clamped().value.val().into_scalar();
        assert!((v - MAX_LOG_LOGIT_SCALE).abs() < 1e-12);
        let low = LogitScaleConfig::new()
            .with_logit_scale_init_value(-1.0)
            .init::<B>(&device);
        let v: f64 = low.clamped().value.val().into_scalar();
        assert_eq!(v, 0.0);
    }
}
