//! Labelled datasets ([`read`]: JSONL, CSV, TSV, CoNLL) and plain-text corpora, read with errors that
//! name the file and line; deterministic validation/test carving and stratified
//! subsampling.

mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};
use read::{bad, line_of_nth_record};
pub use read::{read_corpus, read_examples};
pub use thaw_metrics::{Metric, Targets, Task};

/// One labelled example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text; for word tagging, the words joined by single spaces.
    pub text: String,
    /// The second text of a sentence pair.
    pub text_pair: Option<String>,
    /// The words to tag (word tagging only; empty otherwise).
    pub words: Vec<String>,
    pub label: Label,
}

/// What the model is asked to predict for one example.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    Class(String),
    Score(f64),
    /// One tag per word of [`Example::words`].
    Tags(Vec<String>),
    /// Multi-label: the labels that apply, sorted, possibly none.
    Labels(Vec<String>),
}

impl Example {
    /// What stratified carving and subsampling keep in proportion: the class; one group for
    /// scores and tags.
    fn stratum(&self) -> &str {
        match &self.label {
            Label::Class(name) => name,
            Label::Score(_) | Label::Tags(_) | Label::Labels(_) => "",
        }
    }

    /// The input as one string, for hashing: the text and the pair's second text.
    fn input_key(&self) -> String {
        match &self.text_pair {
            Some(pair) => format!("{}\u{1f}{pair}", self.text),
            None => self.text.clone(),
        }
    }

    fn class(&self) -> Option<&str> {
        match &self.label {
            Label::Class(name) => Some(name),
            _ => None,
        }
    }
}

/// Where a labelled dataset lives, its task, and which fields hold text and label.
#[derive(Debug, Clone)]
pub struct DataFiles {
    pub train: PathBuf,
    pub validation: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub fields: Fields,
}

/// The task and the names of the fields (JSONL keys, CSV/TSV header columns) it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub task: Task,
    pub text: String,
    /// Set for sentence pairs.
    pub text_pair: Option<String>,
    pub label: String,
    /// Word tagging: the list of words and the list of their tags.
    pub tokens: String,
    pub tags: String,
    /// Multi-label: the list of labels that apply.
    pub labels: String,
}

impl Fields {
    /// One label per text in `text` and `label`.
    pub fn classification(text: &str, label: &str) -> Self {
        Fields { text: text.into(), label: label.into(), ..Fields::default() }
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            task: Task::Classification,
            text: "text".into(),
            text_pair: None,
            label: "label".into(),
            tokens: "tokens".into(),
            tags: "tags".into(),
            labels: "labels".into(),
        }
    }
}

/// How the splits are made from [`DataFiles`].
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Fraction of train carved out as validation (and again as test) when the file is absent.
    pub holdout_fraction: f64,
    /// Keep only this many training examples (stratified), after carving.
    pub train_size: Option<usize>,
    /// Seed of the subsample: fixed per sweep so every cell sees the same examples.
    pub subsample_seed: u64,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions { holdout_fraction: 0.1, train_size: None, subsample_seed: 0 }
    }
}

#[derive(Debug, Clone)]
pub struct Splits {
    pub train: Vec<Example>,
    pub validation: Vec<Example>,
    pub test: Vec<Example>,
    /// Sorted label names; a label's index is its class id.
    pub labels: Vec<String>,
}

impl Splits {
    /// What `examples` ask the model to predict, as ids into [`Splits::labels`] for classes
    /// and tags.
    pub fn targets(&self, examples: &[Example]) -> Targets {
        let id = |name: &String| self.labels.binary_search(name).expect("labels checked at load");
        match examples.first().map(|e| &e.label) {
            Some(Label::Score(_)) => Targets::Scores(
                examples
                    .iter()
                    .map(|e| if let Label::Score(v) = e.label { v } else { 0.0 })
                    .collect(),
            ),
            Some(Label::Tags(_)) => Targets::Tags(
                examples
                    .iter()
                    .map(|e| match &e.label {
                        Label::Tags(tags) => tags.iter().map(id).collect(),
                        _ => Vec::new(),
                    })
                    .collect(),
            ),
            Some(Label::Labels(_)) => Targets::LabelSets(
                examples
                    .iter()
                    .map(|e| {
                        let names = label_names(e);
                        self.labels.iter().map(|l| names.contains(l)).collect()
                    })
                    .collect(),
            ),
            _ => Targets::Classes(
                examples.iter().map(|e| e.class().map_or(0, |c| id(&c.to_string()))).collect(),
            ),
        }
    }
}

fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// Splits `pool` into (kept, taken): `fraction` of each label taken, chosen by a hash of
/// the text, so the split does not depend on file order and never changes between runs.
fn carve(pool: Vec<Example>, fraction: f64, salt: &str) -> (Vec<Example>, Vec<Example>) {
    let mut by_label: BTreeMap<String, Vec<Example>> = BTreeMap::new();
    for e in pool {
        by_label.entry(e.stratum().to_string()).or_default().push(e);
    }
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    for (_, mut group) in by_label {
        group.sort_by_key(|e| stable_hash(&[salt.as_bytes(), e.input_key().as_bytes()]));
        let n = ((group.len() as f64) * fraction).round() as usize;
        let rest = group.split_off(n.min(group.len()));
        taken.extend(group);
        kept.extend(rest);
    }
    (kept, taken)
}

/// A stratified subsample of `n` examples (largest-remainder allocation per label),
/// chosen by a seeded hash: the same seed gives nested subsets for growing `n`.
pub fn subsample(pool: &[Example], n: usize, seed: u64) -> Vec<Example> {
    if n >= pool.len() {
        return pool.to_vec();
    }
    let mut by_label: BTreeMap<&str, Vec<&Example>> = BTreeMap::new();
    for e in pool {
        by_label.entry(e.stratum()).or_default().push(e);
    }
    let total = pool.len() as f64;
    let mut quotas: Vec<(&str, usize, f64)> = by_label
        .iter()
        .map(|(label, group)| {
            let exact = n as f64 * group.len() as f64 / total;
            (*label, exact.floor() as usize, exact - exact.floor())
        })
        .collect();
    let mut short = n - quotas.iter().map(|q| q.1).sum::<usize>();
    let mut order: Vec<usize> = (0..quotas.len()).collect();
    order.sort_by(|&a, &b| quotas[b].2.total_cmp(&quotas[a].2).then(a.cmp(&b)));
    for i in order {
        if short == 0 {
            break;
        }
        quotas[i].1 += 1;
        short -= 1;
    }
    let seed_bytes = seed.to_le_bytes();
    let mut out = Vec::with_capacity(n);
    for (label, quota, _) in quotas {
        let mut group = by_label[label].clone();
        group.sort_by_key(|e| stable_hash(&[&seed_bytes, e.input_key().as_bytes()]));
        out.extend(group.into_iter().take(quota).cloned());
    }
    // Back to a label-mixed order that does not depend on the input order.
    out.sort_by_key(|e| stable_hash(&[&seed_bytes, b"order", e.input_key().as_bytes()]));
    out
}

/// Loads and checks the three splits.
pub fn load_splits(files: &DataFiles, options: &SplitOptions) -> Result<Splits> {
    let fields = &files.fields;
    let mut train = read_examples(&files.train, fields)?;
    let validation = match &files.validation {
        Some(path) => read_examples(path, fields)?,
        None => {
            let (kept, taken) = carve(train, options.holdout_fraction, "validation");
            train = kept;
            taken
        }
    };
    let test = match &files.test {
        Some(path) => read_examples(path, fields)?,
        None => {
            let (kept, taken) = carve(train, options.holdout_fraction, "test");
            train = kept;
            taken
        }
    };
    let labels: Vec<String> =
        train.iter().flat_map(label_names).collect::<BTreeSet<_>>().into_iter().collect();
    check_label_variety(files, &train, &labels)?;
    for (split, path, examples) in
        [("validation", &files.validation, &validation), ("test", &files.test, &test)]
    {
        check_labels_known(split, path.as_deref(), fields, examples, &labels)?;
    }
    if let Some(n) = options.train_size {
        let strata = if fields.task == Task::Classification { labels.len() } else { 1 };
        if n < strata {
            return Err(TrainError::Invalid(format!(
                "train_size {n} is smaller than the number of labels ({strata})"
            )));
        }
        if n > train.len() {
            return Err(TrainError::Invalid(format!(
                "train_size {n} is larger than the {} training examples available in {}",
                train.len(),
                files.train.display()
            )));
        }
        train = subsample(&train, n, options.subsample_seed);
    }
    Ok(Splits { train, validation, test, labels })
}

/// The class or tag names an example uses (none for a score).
fn label_names(e: &Example) -> Vec<String> {
    match &e.label {
        Label::Class(name) => vec![name.clone()],
        Label::Score(_) => Vec::new(),
        Label::Tags(tags) | Label::Labels(tags) => tags.clone(),
    }
}

/// Training needs two classes (or tags, or distinct scores, or one multi-label label) to
/// learn anything.
fn check_label_variety(files: &DataFiles, train: &[Example], labels: &[String]) -> Result<()> {
    let fields = &files.fields;
    let (field, found, needed) = match fields.task {
        Task::Regression => {
            let mut scores: Vec<f64> = train
                .iter()
                .filter_map(|e| if let Label::Score(v) = e.label { Some(v) } else { None })
                .collect();
            scores.sort_by(f64::total_cmp);
            scores.dedup();
            (&fields.label, scores.len(), 2)
        }
        Task::Tokens => (&fields.tags, labels.len(), 2),
        Task::Classification => (&fields.label, labels.len(), 2),
        Task::MultiLabel => (&fields.labels, labels.len(), 1),
    };
    if found >= needed {
        return Ok(());
    }
    let what = if needed == 1 { "one label" } else { "two different labels" };
    Err(TrainError::BadInput {
        file: files.train.display().to_string(),
        line: None,
        message: format!("needs at least {what} in '{field}', found {labels:?}"),
    })
}

fn check_labels_known(
    split: &str,
    path: Option<&Path>,
    fields: &Fields,
    examples: &[Example],
    labels: &[String],
) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let field = match fields.task {
        Task::Tokens => &fields.tags,
        Task::MultiLabel => &fields.labels,
        Task::Classification | Task::Regression => &fields.label,
    };
    for (i, e) in examples.iter().enumerate() {
        let Some(unknown) = label_names(e).into_iter().find(|l| labels.binary_search(l).is_err())
        else {
            continue;
        };
        // Re-scan for the line number only on the error path.
        let line = line_of_nth_record(path, i).unwrap_or(0);
        return Err(bad(
            path,
            line,
            format!(
                "{split} {field} '{unknown}' never occurs in train (train labels: {}); a model cannot predict it",
                labels.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, body: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::File::create(&path).unwrap().write_all(body).unwrap();
        path
    }

    fn files(train: PathBuf, validation: Option<PathBuf>, test: Option<PathBuf>) -> DataFiles {
        DataFiles { train, validation, test, fields: Fields::default() }
    }

    fn class_example(text: &str, label: &str) -> Example {
        Example {
            text: text.into(),
            text_pair: None,
            words: Vec::new(),
            label: Label::Class(label.into()),
        }
    }

    fn err_of(r: Result<Splits>) -> String {
        r.expect_err("should fail").to_string()
    }

    #[test]
    fn reads_three_formats_alike() {
        let dir = tempfile::tempdir().unwrap();
        let j = write(
            dir.path(),
            "a.jsonl",
            b"{\"text\": \"good\", \"label\": 1}\n\n{\"text\": \"bad\", \"label\": 0}\n",
        );
        let c = write(dir.path(), "a.csv", b"label,text\n1,good\n0,\"bad\"\n");
        let t = write(dir.path(), "a.tsv", b"text\tlabel\ngood\t1\nbad\t0\n");
        let expect = vec![class_example("good", "1"), class_example("bad", "0")];
        for p in [j, c, t] {
            assert_eq!(read_examples(&p, &Fields::default()).unwrap(), expect, "{}", p.display());
        }
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, &[u8], &str)> = vec![
            (
                "missing.jsonl",
                b"{\"text\": \"a\", \"label\": \"x\"}\n{\"txt\": \"b\", \"label\": \"y\"}\n",
                "missing.jsonl:2: missing field 'text'",
            ),
            (
                "empty.jsonl",
                b"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"  \", \"label\": \"y\"}\n",
                "empty.jsonl:2: empty 'text'",
            ),
            (
                "utf.jsonl",
                b"{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"caf\xe9\", \"label\": \"y\"}\n",
                "utf.jsonl:2: not valid UTF-8",
            ),
            (
                "notjson.jsonl",
                b"{\"text\": \"a\", \"label\": \"x\"}\n{text: b}\n",
                "notjson.jsonl:2: not a JSON object",
            ),
            (
                "utf.csv",
                b"text,label\na,x\ncaf\xe9,y\n",
                "utf.csv:3: field 'text' is not valid UTF-8",
            ),
            ("nocol.csv", b"sentence,label\na,x\n", "nocol.csv:1: no column 'text'"),
            ("ragged.tsv", b"text\tlabel\na\tx\nb\n", "ragged.tsv:3: malformed row"),
        ];
        for (name, body, want) in cases {
            let p = write(dir.path(), name, body);
            let got = read_examples(&p, &Fields::default()).expect_err(name).to_string();
            assert!(got.contains(want), "{name}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn unseen_label_in_test_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(
            dir.path(),
            "train.jsonl",
            b"{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"b\",\"label\":\"y\"}\n",
        );
        let test = write(dir.path(), "test.csv", b"text,label\nc,x\nd,z\n");
        let msg = err_of(load_splits(
            &files(train.clone(), Some(train), Some(test)),
            &SplitOptions::default(),
        ));
        assert!(msg.contains("test.csv:3: test label 'z' never occurs in train"), "{msg}");
    }

    #[test]
    fn carving_is_deterministic_stratified_and_disjoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = String::new();
        for i in 0..200 {
            body.push_str(&format!(
                "{{\"text\":\"t{i}\",\"label\":\"{}\"}}\n",
                if i % 4 == 0 { "a" } else { "b" }
            ));
        }
        let train = write(dir.path(), "train.jsonl", body.as_bytes());
        let s1 = load_splits(&files(train.clone(), None, None), &SplitOptions::default()).unwrap();
        let s2 = load_splits(&files(train, None, None), &SplitOptions::default()).unwrap();
        assert_eq!(s1.validation, s2.validation);
        assert_eq!((s1.train.len(), s1.validation.len(), s1.test.len()), (161, 20, 19));
        assert_eq!(s1.validation.iter().filter(|e| e.label == Label::Class("a".into())).count(), 5);
        let texts: BTreeSet<_> =
            s1.train.iter().chain(&s1.validation).chain(&s1.test).map(|e| &e.text).collect();
        assert_eq!(texts.len(), 200);
    }

    #[test]
    fn subsample_is_stratified_seeded_and_nested() {
        let pool: Vec<Example> = (0..100)
            .map(|i| class_example(&format!("t{i}"), if i < 30 { "a" } else { "b" }))
            .collect();
        let s20 = subsample(&pool, 20, 7);
        assert_eq!(s20.len(), 20);
        assert_eq!(s20.iter().filter(|e| e.label == Label::Class("a".into())).count(), 6);
        let s40 = subsample(&pool, 40, 7);
        assert!(s20.iter().all(|e| s40.contains(e)), "smaller subsample is inside the larger one");
        assert_ne!(subsample(&pool, 20, 8), s20);
        assert_eq!(subsample(&pool, 20, 7), s20);
    }

    fn fields(task: Task) -> Fields {
        Fields { task, text_pair: Some("second".into()), ..Fields::default() }
    }

    #[test]
    fn reads_pairs_scores_and_tagged_words() {
        let dir = tempfile::tempdir().unwrap();
        let pairs = write(dir.path(), "p.tsv", b"text\tsecond\tlabel\nA man.\tA person.\t4.5\n");
        let got = read_examples(&pairs, &fields(Task::Regression)).unwrap();
        assert_eq!(got[0].text_pair.as_deref(), Some("A person."));
        assert_eq!(got[0].label, Label::Score(4.5));
        let jsonl = write(
            dir.path(),
            "t.jsonl",
            b"{\"tokens\": [\"Paris\", \"is\", \"big\"], \"tags\": [\"B-LOC\", \"O\", \"O\"]}\n",
        );
        let conll =
            write(dir.path(), "t.conll", b"-DOCSTART- -X- O O\n\nParis\tB-LOC\nis\tO\nbig\tO\n");
        let tokens = Fields { task: Task::Tokens, ..Fields::default() };
        for path in [jsonl, conll] {
            let got = read_examples(&path, &tokens).unwrap();
            assert_eq!(got.len(), 1, "{}", path.display());
            assert_eq!(got[0].words, ["Paris", "is", "big"]);
            assert_eq!(got[0].text, "Paris is big");
            assert_eq!(got[0].label, Label::Tags(vec!["B-LOC".into(), "O".into(), "O".into()]));
        }
    }

    #[test]
    fn each_tasks_bad_rows_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Fields { task: Task::Tokens, ..Fields::default() };
        let cases: Vec<(&str, &[u8], Fields, &str)> = vec![
            (
                "ragged.jsonl",
                b"{\"tokens\": [\"a\"], \"tags\": [\"O\"]}\n{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n",
                tokens.clone(),
                "ragged.jsonl:2: 2 words but 1 tags",
            ),
            (
                "empty.jsonl",
                b"{\"tokens\": [], \"tags\": []}\n",
                tokens.clone(),
                "empty.jsonl:1: empty list 'tokens'",
            ),
            ("notag.conll", b"a\tO\n\nb\n", tokens.clone(), "notag.conll:3: 'b' has no tag column"),
            (
                "ragged.conll",
                b"a\tO\n\nb\tO\n",
                Fields::default(),
                "a CoNLL file holds tagged words",
            ),
            (
                "score.csv",
                b"text,second,label\na,b,1.5\nc,d,high\n",
                fields(Task::Regression),
                "score.csv:3: regression label 'high' in 'label' is not a finite number",
            ),
            (
                "pair.jsonl",
                b"{\"text\": \"a\", \"label\": \"x\"}\n",
                fields(Task::Classification),
                "pair.jsonl:1: missing field 'second'",
            ),
            (
                "pair.csv",
                b"text,second,label\na,,x\n",
                fields(Task::Classification),
                "pair.csv:2: empty 'second'",
            ),
            (
                "labels.jsonl",
                b"{\"text\": \"a\", \"labels\": []}\n{\"text\": \"b\", \"labels\": \"x\"}\n",
                Fields { task: Task::MultiLabel, ..Fields::default() },
                "labels.jsonl:2: field 'labels' must be a list of labels (write [] when none applies)",
            ),
            (
                "twice.jsonl",
                b"{\"text\": \"a\", \"labels\": [\"x\", \"y\", \"x\"]}\n",
                Fields { task: Task::MultiLabel, ..Fields::default() },
                "twice.jsonl:1: label 'x' is listed twice in 'labels'",
            ),
            (
                "labels.csv",
                b"text,labels\na,x\n",
                Fields { task: Task::MultiLabel, ..Fields::default() },
                "labels.csv:1: multi-label data is read from JSONL rows",
            ),
        ];
        for (name, body, fields, want) in cases {
            let p = write(dir.path(), name, body);
            let got = read_examples(&p, &fields).expect_err(name).to_string();
            assert!(got.contains(want), "{name}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn an_unknown_test_tag_names_its_sentence_line() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "train.conll", b"a\tB-X\nb\tO\n\nc\tO\n");
        let test = write(dir.path(), "test.conll", b"a\tO\n\n-DOCSTART- O\n\nb\tO\nc\tB-Y\n");
        let files = DataFiles {
            train: train.clone(),
            validation: Some(train),
            test: Some(test),
            fields: Fields { task: Task::Tokens, ..Fields::default() },
        };
        let msg = err_of(load_splits(&files, &SplitOptions::default()));
        assert!(msg.contains("test.conll:5: test tags 'B-Y' never occurs in train"), "{msg}");
    }

    #[test]
    fn label_sets_may_be_empty_and_become_one_yes_or_no_per_train_label() {
        let dir = tempfile::tempdir().unwrap();
        let rows = b"{\"text\": \"bake bread\", \"labels\": [\"baking\", \"bread\"]}\n\
            {\"text\": \"boil eggs\", \"labels\": []}\n{\"text\": \"bread flour\", \"labels\": [\"bread\"]}\n";
        let train = write(dir.path(), "train.jsonl", rows);
        let files = DataFiles {
            train: train.clone(),
            validation: Some(train.clone()),
            test: Some(train),
            fields: Fields { task: Task::MultiLabel, ..Fields::default() },
        };
        let splits = load_splits(&files, &SplitOptions::default()).unwrap();
        assert_eq!(splits.labels, ["baking", "bread"]);
        let want = vec![vec![true, true], vec![false, false], vec![false, true]];
        assert_eq!(splits.targets(&splits.test), Targets::LabelSets(want));
    }
}
