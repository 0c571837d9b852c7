//! One fine-tune on the Rotten Tomatoes snippets, outside any sweep:
//! `cargo run --release -p thaw-train --example finetune_rt -- [scratch|pretrained] [n_train] [epochs] [max_len] [freeze] [backend] [lr]`
use std::time::Instant;
use thaw_train::data::{DataFiles, SplitOptions, load_splits};
use thaw_train::encode::encode_splits;
use thaw_train::prefix::PrefixCache;
use thaw_train::tokenize::TextTokenizer;
use thaw_train::*;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.to_string());
    let start = match arg(0, "pretrained").as_str() {
        "pretrained" => Start::Pretrained,
        "scratch" => Start::Scratch,
        other => panic!("first argument: pretrained or scratch, not {other}"),
    };
    let n: usize = arg(1, "2000").parse().unwrap();
    let epochs: usize = arg(2, "2").parse().unwrap();
    let max_len: usize = arg(3, "64").parse().unwrap();
    let freeze: usize = arg(4, "0").parse().unwrap();
    let backend: BackendKind = arg(5, "flex").parse().unwrap();
    let lr: f64 = arg(6, "5e-5").parse().unwrap();
    let model = thaw_assets::resolve_hub_model(thaw_assets::MINILM, None).unwrap();
    let files = ModelFiles::in_dir(&model.dir).unwrap();
    let cfg = ModelConfig::from_file(&files.config).unwrap();
    let dir = thaw_assets::dataset_dir("rotten_tomatoes").unwrap();
    let data_files = DataFiles {
        train: dir.join("train.jsonl"),
        validation: Some(dir.join("validation.jsonl")),
        test: Some(dir.join("test.jsonl")),
        fields: thaw_train::data::Fields::default(),
    };
    let t = Instant::now();
    let splits =
        load_splits(&data_files, &SplitOptions { train_size: Some(n), ..Default::default() })
            .unwrap();
    let tok = TextTokenizer::from_file(&files.tokenizer, max_len).unwrap();
    let data = encode_splits(&tok, &splits, "rt".into()).unwrap();
    eprintln!(
        "tokenized in {:.1}s: train {} ({} tokens), val {}, test {}",
        t.elapsed().as_secs_f64(),
        data.train.len(),
        data.train.tokens(),
        data.validation.len(),
        data.test.len()
    );
    let job = FineTuneJob {
        start,
        freeze,
        seed: 1,
        settings: FineTuneSettings { epochs, lr, ..Default::default() },
        backend,
        start_identity: "x".into(),
        stop_after_epochs: None,
        measure_gradient_ratios: false,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut last = Instant::now();
    let mut on_event = |e: &Event| match e {
        Event::Step { step, steps, loss, examples_per_second, .. }
            if last.elapsed().as_secs() >= 10 || step == steps =>
        {
            last = Instant::now();
            eprintln!("step {step}/{steps} loss {loss:.4} {examples_per_second:.1} ex/s");
        }
        Event::Epoch(m) => eprintln!("{m:?}"),
        Event::Phase { phase, detail } => eprintln!("{phase:?}: {detail}"),
        _ => {}
    };
    let mut observer = Observer { on_event: &mut on_event, stop: &stop };
    let mut cache = PrefixCache::new(4 << 30);
    let t = Instant::now();
    let out = fine_tune(&files, &cfg, &data, &job, Some(&mut cache), &mut observer).unwrap();
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
    eprintln!("wall {:.1}s", t.elapsed().as_secs_f64());
}
