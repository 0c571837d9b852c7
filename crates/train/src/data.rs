//! Labelled datasets (JSONL, CSV, TSV) and plain-text corpora, read with errors that
//! name the file and line; deterministic validation/test carving and stratified
//! subsampling.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    pub text: String,
    pub label: String,
}

/// Where a labelled dataset lives and which columns hold text and label.
#[derive(Debug, Clone)]
pub struct DataFiles {
    pub train: PathBuf,
    pub validation: Option<PathBuf>,
    pub test: Option<PathBuf>,
    pub text_field: String,
    pub label_field: String,
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
    pub fn label_ids(&self, examples: &[Example]) -> Vec<usize> {
        examples
            .iter()
            .map(|e| self.labels.binary_search(&e.label).expect("labels checked at load"))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
    Tsv,
}

fn format_of(path: &Path) -> Result<Format> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        Ok(Format::Jsonl)
    } else if name.ends_with(".csv") {
        Ok(Format::Csv)
    } else if name.ends_with(".tsv") || name.ends_with(".tab") {
        Ok(Format::Tsv)
    } else {
        Err(TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message: "unknown data format; name the file .jsonl, .csv or .tsv".into(),
        })
    }
}

fn bad(path: &Path, line: usize, message: impl Into<String>) -> TrainError {
    TrainError::BadInput {
        file: path.display().to_string(),
        line: Some(line),
        message: message.into(),
    }
}

/// Reads every example of one labelled file.
pub fn read_examples(path: &Path, text_field: &str, label_field: &str) -> Result<Vec<Example>> {
    let examples = match format_of(path)? {
        Format::Jsonl => read_jsonl(path, text_field, label_field)?,
        Format::Csv => read_delimited(path, b',', text_field, label_field)?,
        Format::Tsv => read_delimited(path, b'\t', text_field, label_field)?,
    };
    if examples.is_empty() {
        return Err(TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message: "no examples".into(),
        });
    }
    Ok(examples)
}

fn read_jsonl(path: &Path, text_field: &str, label_field: &str) -> Result<Vec<Example>> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut out = Vec::new();
    for (i, raw) in BufReader::new(file).split(b'\n').enumerate() {
        let line_no = i + 1;
        let raw = raw.map_err(|e| TrainError::io(path, e))?;
        let line = std::str::from_utf8(&raw).map_err(|e| {
            bad(path, line_no, format!("not valid UTF-8 ({e}); re-encode the file as UTF-8"))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad(path, line_no, format!("not a JSON object: {e}")))?;
        let obj = value.as_object().ok_or_else(|| bad(path, line_no, "not a JSON object"))?;
        let field = |name: &str| -> Result<String> {
            match obj.get(name) {
                None => Err(bad(
                    path,
                    line_no,
                    format!(
                        "missing field '{name}' (fields here: {})",
                        obj.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some(serde_json::Value::String(s)) => Ok(s.clone()),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Ok(v.to_string())
                }
                Some(other) => Err(bad(
                    path,
                    line_no,
                    format!("field '{name}' must be a string or number, found {other}"),
                )),
            }
        };
        out.push(example(path, line_no, field(text_field)?, field(label_field)?)?);
    }
    Ok(out)
}

fn read_delimited(
    path: &Path,
    delimiter: u8,
    text_field: &str,
    label_field: &str,
) -> Result<Vec<Example>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(false)
        .from_path(path)
        .map_err(|e| bad(path, 1, format!("cannot read: {e}")))?;
    let headers = reader
        .byte_headers()
        .map_err(|e| bad(path, 1, format!("cannot read the header row: {e}")))?
        .clone();
    let column = |name: &str| -> Result<usize> {
        headers.iter().position(|h| h == name.as_bytes()).ok_or_else(|| {
            bad(
                path,
                1,
                format!(
                    "no column '{name}' in the header (columns: {})",
                    headers
                        .iter()
                        .map(|h| String::from_utf8_lossy(h).into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    };
    let (text_col, label_col) = (column(text_field)?, column(label_field)?);
    let mut out = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            bad(path, line, format!("malformed row: {e}"))
        })?;
        let line_no = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let cell = |col: usize, name: &str| -> Result<String> {
            let bytes = record
                .get(col)
                .ok_or_else(|| bad(path, line_no, format!("missing field '{name}'")))?;
            String::from_utf8(bytes.to_vec()).map_err(|e| {
                bad(
                    path,
                    line_no,
                    format!("field '{name}' is not valid UTF-8 ({e}); re-encode the file as UTF-8"),
                )
            })
        };
        out.push(example(
            path,
            line_no,
            cell(text_col, text_field)?,
            cell(label_col, label_field)?,
        )?);
    }
    Ok(out)
}

fn example(path: &Path, line: usize, text: String, label: String) -> Result<Example> {
    if text.trim().is_empty() {
        return Err(bad(path, line, "empty text"));
    }
    let label = label.trim().to_string();
    if label.is_empty() {
        return Err(bad(path, line, "empty label"));
    }
    Ok(Example { text, label })
}

/// Reads a plain-text corpus for MLM: one document per non-empty line.
pub fn read_corpus(path: &Path) -> Result<Vec<String>> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::io(path, e))?;
    let mut out = Vec::new();
    for (i, raw) in BufReader::new(file).split(b'\n').enumerate() {
        let raw = raw.map_err(|e| TrainError::io(path, e))?;
        let line = std::str::from_utf8(&raw).map_err(|e| {
            bad(path, i + 1, format!("not valid UTF-8 ({e}); re-encode the corpus as UTF-8"))
        })?;
        if !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    if out.is_empty() {
        return Err(TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message: "the corpus has no text".into(),
        });
    }
    Ok(out)
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
        by_label.entry(e.label.clone()).or_default().push(e);
    }
    let (mut kept, mut taken) = (Vec::new(), Vec::new());
    for (_, mut group) in by_label {
        group.sort_by_key(|e| stable_hash(&[salt.as_bytes(), e.text.as_bytes()]));
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
        by_label.entry(&e.label).or_default().push(e);
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
        group.sort_by_key(|e| stable_hash(&[&seed_bytes, e.text.as_bytes()]));
        out.extend(group.into_iter().take(quota).cloned());
    }
    // Back to a label-mixed order that does not depend on the input order.
    out.sort_by_key(|e| stable_hash(&[&seed_bytes, b"order", e.text.as_bytes()]));
    out
}

/// Loads and checks the three splits.
pub fn load_splits(files: &DataFiles, options: &SplitOptions) -> Result<Splits> {
    let mut train = read_examples(&files.train, &files.text_field, &files.label_field)?;
    let validation = match &files.validation {
        Some(path) => read_examples(path, &files.text_field, &files.label_field)?,
        None => {
            let (kept, taken) = carve(train, options.holdout_fraction, "validation");
            train = kept;
            taken
        }
    };
    let test = match &files.test {
        Some(path) => read_examples(path, &files.text_field, &files.label_field)?,
        None => {
            let (kept, taken) = carve(train, options.holdout_fraction, "test");
            train = kept;
            taken
        }
    };
    let labels: Vec<String> =
        train.iter().map(|e| e.label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    if labels.len() < 2 {
        return Err(TrainError::BadInput {
            file: files.train.display().to_string(),
            line: None,
            message: format!(
                "needs at least two labels in '{}', found {:?}",
                files.label_field, labels
            ),
        });
    }
    for (split, path, examples) in
        [("validation", &files.validation, &validation), ("test", &files.test, &test)]
    {
        check_labels_known(split, path.as_deref(), &files.label_field, examples, &labels)?;
    }
    if let Some(n) = options.train_size {
        if n < labels.len() {
            return Err(TrainError::Invalid(format!(
                "train_size {n} is smaller than the number of labels ({})",
                labels.len()
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

fn check_labels_known(
    split: &str,
    path: Option<&Path>,
    field: &str,
    examples: &[Example],
    labels: &[String],
) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    for (i, e) in examples.iter().enumerate() {
        if labels.binary_search(&e.label).is_err() {
            // Re-scan for the line number only on the error path.
            let line = line_of_nth_record(path, i).unwrap_or(0);
            return Err(bad(
                path,
                line,
                format!(
                    "{split} {field} '{}' never occurs in train (train labels: {}); a model cannot predict it",
                    e.label,
                    labels.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn line_of_nth_record(path: &Path, n: usize) -> Option<usize> {
    match format_of(path).ok()? {
        Format::Jsonl => {
            let text = std::fs::read(path).ok()?;
            text.split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .nth(n)
                .map(|(i, _)| i + 1)
        }
        fmt => {
            let delimiter = if fmt == Format::Csv { b',' } else { b'\t' };
            let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_path(path).ok()?;
            reader.byte_records().nth(n)?.ok()?.position().map(|p| p.line() as usize)
        }
    }
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
        DataFiles {
            train,
            validation,
            test,
            text_field: "text".into(),
            label_field: "label".into(),
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
        let expect = vec![
            Example { text: "good".into(), label: "1".into() },
            Example { text: "bad".into(), label: "0".into() },
        ];
        for p in [j, c, t] {
            assert_eq!(read_examples(&p, "text", "label").unwrap(), expect, "{}", p.display());
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
                "empty.jsonl:2: empty text",
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
            let got = read_examples(&p, "text", "label").expect_err(name).to_string();
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
        assert_eq!(s1.validation.iter().filter(|e| e.label == "a").count(), 5);
        let texts: BTreeSet<_> =
            s1.train.iter().chain(&s1.validation).chain(&s1.test).map(|e| &e.text).collect();
        assert_eq!(texts.len(), 200);
    }

    #[test]
    fn subsample_is_stratified_seeded_and_nested() {
        let pool: Vec<Example> = (0..100)
            .map(|i| Example {
                text: format!("t{i}"),
                label: if i < 30 { "a" } else { "b" }.into(),
            })
            .collect();
        let s20 = subsample(&pool, 20, 7);
        assert_eq!(s20.len(), 20);
        assert_eq!(s20.iter().filter(|e| e.label == "a").count(), 6);
        let s40 = subsample(&pool, 40, 7);
        assert!(s20.iter().all(|e| s40.contains(e)), "smaller subsample is inside the larger one");
        assert_ne!(subsample(&pool, 20, 8), s20);
        assert_eq!(subsample(&pool, 20, 7), s20);
    }
}
