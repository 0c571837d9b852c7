//! Fine-tuning strategies on the real all-MiniLM-L6-v2 checkpoint: re-initialising the top
//! layers touches exactly those, and gradual unfreezing and LP-FT open layers on schedule
//! (with and without the frozen-prefix cache, to the same numbers).

mod common;

use common::*;
use thaw_train::freeze::count_params;
use thaw_train::load::load_encoder;
use thaw_train::prefix::PrefixCache;
use thaw_train::strategy::reinit_top;
use thaw_train::*;

#[test]
fn reinit_draws_exactly_the_top_layers_afresh() {
    let _rng = exclusive_rng();
    let cfg = config();
    let device = BackendKind::Flex.device().unwrap();
    device.seed(5);
    let pretrained = load_encoder(minilm(), &cfg, &Start::Pretrained, &device).unwrap();
    let before = snapshot(&pretrained);
    let after = snapshot(&reinit_top(pretrained, 2, &cfg, &device).unwrap());
    assert_eq!(before.len(), after.len());
    let mut redrawn = 0;
    for (name, values) in &before {
        let top = name.contains("layer.4.") || name.contains("layer.5.");
        let same = values == &after[name];
        assert_eq!(same, !top, "{name}: top layer {top}, unchanged {same}");
        redrawn += usize::from(top);
    }
    // Each BERT layer has 16 tensors (4 linear layers of the attention, 2 of the
    // feed-forward net, each with a bias, and 2 LayerNorms).
    assert_eq!(redrawn, 2 * 16);
}

/// Every `Trainable` event of one fine-tuning run: (step, frozen depth, trainable params).
fn opened(
    job: &FineTuneJob,
    cache: Option<&mut PrefixCache>,
) -> (Vec<(usize, usize, usize)>, FineTuneOutcome) {
    let data = small_data(64, 32);
    let mut events = Vec::new();
    let mut on_event = |e: &Event| {
        if let Event::Trainable { step, frozen_depth, trainable_params } = e {
            events.push((*step, *frozen_depth, *trainable_params));
        }
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut observer = Observer { on_event: &mut on_event, stop: &stop };
    let outcome = fine_tune(minilm(), &config(), &data, job, cache, &mut observer).unwrap();
    (events, outcome)
}

fn job(freeze: usize, unfreezing: Unfreezing) -> FineTuneJob {
    FineTuneJob {
        start: Start::Pretrained,
        freeze,
        seed: 3,
        settings: FineTuneSettings {
            epochs: 2,
            batch_size: 16,
            lr: 1e-4,
            strategy: Strategy { unfreezing, ..Strategy::default() },
            ..Default::default()
        },
        backend: BackendKind::Flex,
        start_identity: "pretrained".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    }
}

#[test]
fn gradual_unfreezing_and_lp_ft_open_layers_on_schedule() {
    let _rng = exclusive_rng();
    // 64 examples in batches of 16: 4 steps an epoch, 8 in all.
    let gradual = job(2, Unfreezing::Gradual { every_steps: Some(1) });
    let (events, outcome) = opened(&gradual, None);
    let steps_and_depths: Vec<(usize, usize)> = events.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(
        steps_and_depths,
        [(0, 6), (1, 5), (2, 4), (3, 3), (4, 2)],
        "one layer a step, down to depth 2"
    );
    let params: Vec<usize> = events.iter().map(|e| e.2).collect();
    assert!(params.windows(2).all(|w| w[0] < w[1]), "each step trains more: {params:?}");
    assert_eq!(*params.last().unwrap(), outcome.trainable_params, "ends where depth 2 trains");
    let head_only = params[0];

    // The frozen-prefix cache holds layers below the final depth: same numbers with it.
    let mut cache = PrefixCache::new(1 << 30);
    let (cached_events, cached) = opened(&gradual, Some(&mut cache));
    assert_eq!(cached_events, events);
    assert_eq!(cached.prefix_cache, finetune::PrefixUse::Computed);
    for (a, b) in cached.epochs.iter().zip(&outcome.epochs) {
        assert!((a.train_loss - b.train_loss).abs() < 1e-4, "{} vs {}", a.train_loss, b.train_loss);
        assert!((a.val_loss - b.val_loss).abs() < 1e-4);
    }

    // Every epoch by default: head only in epoch 1, the top layer too in epoch 2.
    let (events, _) = opened(&job(0, Unfreezing::Gradual { every_steps: None }), None);
    assert_eq!(events.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), [(0, 6), (4, 5)]);

    // LP-FT: the head alone for the first epoch, then everything from depth 0.
    let lp_ft = job(0, Unfreezing::LpFt { head_epochs: 1, head_lr: 1e-3 });
    let (events, outcome) = opened(&lp_ft, None);
    assert_eq!(events.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), [(0, 6), (4, 0)]);
    assert_eq!(events[0].2, head_only, "the probe trains the head alone");
    let everything = count_params(
        &load_encoder(
            minilm(),
            &config(),
            &Start::Pretrained,
            &BackendKind::Flex.device().unwrap().autodiff(),
        )
        .unwrap(),
    );
    assert_eq!(events[1].2, outcome.trainable_params);
    assert_eq!(outcome.trainable_params, everything.total + head_only);
}
