//! What freezing leaves trainable. Depth `k` freezes the embedding side and encoder layers
//! `[0, k)` of any family ([`crate::models::Encoder::freeze_bottom`]). Frozen parts get no
//! gradient (so the optimizer never touches them) and their dropout is switched off, which
//! makes their output a pure function of the input: the basis of the frozen-prefix cache.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

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
