//! The freeze policy: depth `k` freezes the embeddings and encoder layers `[0, k)`.
//!
//! Frozen parts get no gradient (so the optimizer never touches them) and their
//! dropout is switched off, which makes their output a pure function of the input:
//! the basis of the frozen-prefix cache.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::error::{Result, TrainError};
use crate::model::BertModel;

/// Freezes the bottom `depth` layers (and the embeddings when `depth > 0`).
/// `depth == num_layers` leaves only the head trainable: a linear probe.
pub fn freeze_bottom(mut bert: BertModel, depth: usize) -> Result<BertModel> {
    let layers = bert.num_layers();
    if depth > layers {
        return Err(TrainError::Invalid(format!(
            "freeze depth {depth} is larger than the model's {layers} encoder layers (valid: 0..={layers})"
        )));
    }
    if depth > 0 {
        bert.embeddings = bert.embeddings.freeze();
        bert.encoder.layer = bert
            .encoder
            .layer
            .into_iter()
            .enumerate()
            .map(|(i, layer)| if i < depth { layer.freeze() } else { layer })
            .collect();
    }
    Ok(bert)
}

/// Trainable and total parameter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCounts {
    pub trainable: usize,
    pub total: usize,
}

struct Counter(ParamCounts);

impl ModuleVisitor for Counter {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.shape().num_elements();
        self.0.total += n;
        if param.val().is_require_grad() {
            self.0.trainable += n;
        }
    }
}

/// Counts on a module that lives on an autodiff device (on a plain device nothing is trainable).
pub fn count_params<M: Module>(module: &M) -> ParamCounts {
    let mut counter = Counter(ParamCounts { trainable: 0, total: 0 });
    module.visit(&mut counter);
    counter.0
}
