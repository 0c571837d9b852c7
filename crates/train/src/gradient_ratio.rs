//! Each encoder layer's gradient-to-weight norm ratio at one training step: how hard the task
//! pulls on a layer relative to the size of its weights. AutoFreeze (Liu et al., 2021) freezes
//! the layers whose gradients have settled; `thaw advise` reads the ratios of its short probes
//! to say which layers the task needs to move.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::error::Result;
use crate::loss::read_floats;
use crate::models::encoder::Encoder;

/// Which parameters belong to which encoder layer (by id: freezing keeps ids).
pub struct LayerGroups {
    layers: Vec<ParamGroup>,
}

impl LayerGroups {
    pub fn of(encoder: &Encoder) -> LayerGroups {
        LayerGroups { layers: (0..encoder.num_layers()).map(|i| encoder.layer_params(i)).collect() }
    }

    /// Per encoder layer (index 0 = the lowest), ||gradient|| / ||weights|| over the layer's
    /// parameters that have a gradient in `grads`; None for a layer without one (frozen).
    pub fn ratios(&self, encoder: &Encoder, grads: &GradientsParams) -> Result<Vec<Option<f64>>> {
        let mut norms = SquaredNorms { groups: &self.layers, grads, sums: Vec::new() };
        encoder.visit(&mut norms);
        let layers: Vec<usize> = norms.sums.iter().map(|(layer, _)| *layer).collect();
        let read = read_floats(norms.sums.into_iter().map(|(_, pair)| pair).collect())?;
        let mut squared = vec![None::<(f64, f64)>; self.layers.len()];
        for (layer, pair) in layers.iter().zip(read.chunks_exact(2)) {
            let (g, w) = squared[*layer].unwrap_or((0.0, 0.0));
            squared[*layer] = Some((g + pair[0] as f64, w + pair[1] as f64));
        }
        Ok(squared
            .into_iter()
            .map(|sums| sums.map(|(g, w)| g.sqrt() / w.sqrt().max(f64::MIN_POSITIVE)))
            .collect())
    }
}

/// Collects, per parameter with a gradient, its layer and the pair (sum of squared gradient,
/// sum of squared weights), still on the device: one read back for the whole step.
struct SquaredNorms<'a> {
    groups: &'a [ParamGroup],
    grads: &'a GradientsParams,
    sums: Vec<(usize, Tensor<1>)>,
}

impl ModuleVisitor for SquaredNorms<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(layer) = self.groups.iter().position(|g| g.matches(&param.id, None)) else {
            return;
        };
        let Some(gradient) = self.grads.get::<D>(param.id) else { return };
        let square_sum = |t: Tensor<D>| t.clone().mul(t).sum();
        let pair =
            Tensor::cat(vec![square_sum(gradient.inner()), square_sum(param.val().inner())], 0);
        self.sums.push((layer, pair));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BackendKind;
    use crate::load::{ModelFiles, Start, load_encoder};
    use crate::models::ModelConfig;

    /// Registers `scale` × weights as the gradient of every parameter of `group`.
    struct Mirror<'a>(&'a ParamGroup, &'a mut GradientsParams, f32);

    impl ModuleVisitor for Mirror<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.0.matches(&param.id, None) {
                self.1.register(param.id, param.val().inner().mul_scalar(self.2));
            }
        }
    }

    #[test]
    fn each_layer_reads_its_own_gradient_over_weights_and_a_layer_without_gradient_none() {
        let config = ModelConfig::Bert(
            serde_json::from_value(serde_json::json!({
                "vocab_size": 40, "hidden_size": 8, "num_hidden_layers": 3,
                "num_attention_heads": 2, "intermediate_size": 16,
                "max_position_embeddings": 16
            }))
            .unwrap(),
        );
        let files = ModelFiles {
            config: "unused".into(),
            tokenizer: "unused".into(),
            weights: "unused".into(),
        };
        let device = BackendKind::Flex.device().unwrap().autodiff();
        let encoder = load_encoder(&files, &config, &Start::Scratch, &device).unwrap();
        let mut grads = GradientsParams::new();
        encoder.visit(&mut Mirror(&encoder.layer_params(1), &mut grads, 0.5));
        encoder.visit(&mut Mirror(&encoder.layer_params(2), &mut grads, 2.0));
        let ratios = LayerGroups::of(&encoder).ratios(&encoder, &grads).unwrap();
        assert_eq!(ratios.len(), 3);
        assert_eq!(ratios[0], None, "no gradient (frozen), no ratio");
        assert!((ratios[1].unwrap() - 0.5).abs() < 1e-5, "{ratios:?}");
        assert!((ratios[2].unwrap() - 2.0).abs() < 1e-5, "{ratios:?}");
    }
}
