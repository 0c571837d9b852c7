//! Reading labelled files (JSONL, CSV, TSV, CoNLL columns) and plain-text corpora into
//! [`Example`]s, each task's fields checked, with errors that name the file and line.

use std::io::{BufRead, BufReader};
use std::path::Path;

use super::{Example, Fields, Label, Task};
use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
    Tsv,
    /// CoNLL columns: a word and its tag per line (first and last column), a blank line
    /// between sentences, `-DOCSTART-` lines skipped.
    Conll,
}

fn format_of(path: &Path) -> Result<Format> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_ascii_lowercase();
    if name.ends_with(".jsonl") || name.ends_with(".ndjson") || name.ends_with(".json") {
        Ok(Format::Jsonl)
    } else if name.ends_with(".csv") {
        Ok(Format::Csv)
    } else if name.ends_with(".tsv") || name.ends_with(".tab") {
        Ok(Format::Tsv)
    } else if name.ends_with(".conll") || name.ends_with(".iob") || name.ends_with(".bio") {
        Ok(Format::Conll)
    } else {
        Err(TrainError::BadInput {
            file: path.display().to_string(),
            line: None,
            message:
                "unknown data format; name the file .jsonl, .csv, .tsv or (word tagging) .conll"
                    .into(),
        })
    }
}

pub(super) fn bad(path: &Path, line: usize, message: impl Into<String>) -> TrainError {
    TrainError::BadInput {
        file: path.display().to_string(),
        line: Some(line),
        message: message.into(),
    }
}

/// One field's value in a row: a string (JSON numbers and booleans as written), or a list.
enum Cell {
    Text(String),
    List(Vec<String>),
}

/// Reads every example of one labelled file.
pub fn read_examples(path: &Path, fields: &Fields) -> Result<Vec<Example>> {
    let format = format_of(path)?;
    let examples = match format {
        Format::Conll if fields.task == Task::Tokens => read_conll(path)?,
        Format::Conll => {
            return Err(TrainError::BadInput {
                file: path.display().to_string(),
                line: None,
                message: format!(
                    "a CoNLL file holds tagged words, but the task is '{}'; set task = \"tokens\" in [data]",
                    fields.task
                ),
            });
        }
        Format::Jsonl => read_jsonl(path, fields)?,
        Format::Csv => read_delimited(path, b',', fields)?,
        Format::Tsv => read_delimited(path, b'\t', fields)?,
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

fn read_jsonl(path: &Path, fields: &Fields) -> Result<Vec<Example>> {
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
        let field = |name: &str| -> Result<Cell> {
            match obj.get(name) {
                None => Err(bad(
                    path,
                    line_no,
                    format!(
                        "missing field '{name}' (fields here: {})",
                        obj.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some(serde_json::Value::Array(items)) => items
                    .iter()
                    .map(|item| match item {
                        serde_json::Value::String(s) => Ok(s.clone()),
                        serde_json::Value::Number(n) => Ok(n.to_string()),
                        other => Err(bad(
                            path,
                            line_no,
                            format!("field '{name}' must list strings, found {other}"),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Cell::List),
                Some(serde_json::Value::String(s)) => Ok(Cell::Text(s.clone())),
                Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                    Ok(Cell::Text(v.to_string()))
                }
                Some(other) => Err(bad(
                    path,
                    line_no,
                    format!("field '{name}' must be a string, number or list, found {other}"),
                )),
            }
        };
        out.push(example(path, line_no, fields, field)?);
    }
    Ok(out)
}

fn read_delimited(path: &Path, delimiter: u8, fields: &Fields) -> Result<Vec<Example>> {
    if fields.task == Task::Tokens {
        return Err(bad(
            path,
            1,
            "word tagging reads JSONL rows with lists of words and tags, or CoNLL columns (.conll); not CSV/TSV",
        ));
    }
    if fields.task == Task::MultiLabel {
        return Err(bad(
            path,
            1,
            "multi-label data is read from JSONL rows whose labels are a list; not CSV/TSV",
        ));
    }
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
    let mut columns = vec![(fields.text.as_str(), column(&fields.text)?)];
    if let Some(pair) = &fields.text_pair {
        columns.push((pair.as_str(), column(pair)?));
    }
    columns.push((fields.label.as_str(), column(&fields.label)?));
    let mut out = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            bad(path, line, format!("malformed row: {e}"))
        })?;
        let line_no = record.position().map(|p| p.line() as usize).unwrap_or(0);
        let cell = |name: &str| -> Result<Cell> {
            let col = columns.iter().find(|(n, _)| *n == name).expect("columns looked up").1;
            let bytes = record
                .get(col)
                .ok_or_else(|| bad(path, line_no, format!("missing field '{name}'")))?;
            String::from_utf8(bytes.to_vec()).map(Cell::Text).map_err(|e| {
                bad(
                    path,
                    line_no,
                    format!("field '{name}' is not valid UTF-8 ({e}); re-encode the file as UTF-8"),
                )
            })
        };
        out.push(example(path, line_no, fields, cell)?);
    }
    Ok(out)
}

/// The example of one row whose fields `field` looks up, checked for what its task needs.
fn example(
    path: &Path,
    line: usize,
    fields: &Fields,
    field: impl Fn(&str) -> Result<Cell>,
) -> Result<Example> {
    let text = |name: &str| -> Result<String> {
        match field(name)? {
            Cell::Text(t) if t.trim().is_empty() => Err(bad(path, line, format!("empty '{name}'"))),
            Cell::Text(t) => Ok(t),
            Cell::List(_) => {
                Err(bad(path, line, format!("field '{name}' must be a string, not a list")))
            }
        }
    };
    let list = |name: &str| -> Result<Vec<String>> {
        match field(name)? {
            Cell::List(items) if items.is_empty() => {
                Err(bad(path, line, format!("empty list '{name}'")))
            }
            Cell::List(items) => Ok(items),
            Cell::Text(_) => Err(bad(path, line, format!("field '{name}' must be a list"))),
        }
    };
    if fields.task == Task::Tokens {
        let (words, tags) = (list(&fields.tokens)?, list(&fields.tags)?);
        return tagged(path, line, words, tags);
    }
    let first = text(&fields.text)?;
    let text_pair = fields.text_pair.as_deref().map(text).transpose()?;
    if fields.task == Task::MultiLabel {
        let label = label_set(path, line, &fields.labels, field(&fields.labels)?)?;
        return Ok(Example { text: first, text_pair, words: Vec::new(), label });
    }
    let raw = text(&fields.label)?.trim().to_string();
    let label = match fields.task {
        Task::Regression => {
            Label::Score(raw.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                bad(
                    path,
                    line,
                    format!(
                        "regression label '{raw}' in '{}' is not a finite number",
                        fields.label
                    ),
                )
            })?)
        }
        _ => Label::Class(raw),
    };
    Ok(Example { text: first, text_pair, words: Vec::new(), label })
}

/// A multi-label example's labels: a list, empty when no label applies, each named once.
fn label_set(path: &Path, line: usize, name: &str, cell: Cell) -> Result<Label> {
    let Cell::List(items) = cell else {
        return Err(bad(
            path,
            line,
            format!("field '{name}' must be a list of labels (write [] when none applies)"),
        ));
    };
    let mut labels: Vec<String> = items.into_iter().map(|l| l.trim().to_string()).collect();
    if labels.iter().any(String::is_empty) {
        return Err(bad(path, line, format!("an empty label in '{name}'")));
    }
    labels.sort();
    if let Some(twice) = labels.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(path, line, format!("label '{}' is listed twice in '{name}'", twice[0])));
    }
    Ok(Label::Labels(labels))
}

/// A word-tagging example, its tags as many as its words.
fn tagged(path: &Path, line: usize, words: Vec<String>, tags: Vec<String>) -> Result<Example> {
    if words.len() != tags.len() {
        return Err(bad(
            path,
            line,
            format!("{} words but {} tags; give one tag per word", words.len(), tags.len()),
        ));
    }
    if let Some(w) = words.iter().position(|w| w.trim().is_empty()) {
        return Err(bad(path, line, format!("word {} is empty", w + 1)));
    }
    let tags: Vec<String> = tags.into_iter().map(|t| t.trim().to_string()).collect();
    if let Some(t) = tags.iter().position(String::is_empty) {
        return Err(bad(path, line, format!("the tag of word {} is empty", t + 1)));
    }
    Ok(Example { text: words.join(" "), text_pair: None, words, label: Label::Tags(tags) })
}

/// CoNLL columns: each sentence is a run of non-blank lines, the word in the first column
/// and its tag in the last (tab- or space-separated); errors name the sentence's first line.
fn read_conll(path: &Path) -> Result<Vec<Example>> {
    let text = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    let text = std::str::from_utf8(&text)
        .map_err(|e| bad(path, 1, format!("not valid UTF-8 ({e}); re-encode the file as UTF-8")))?;
    let mut out = Vec::new();
    let (mut words, mut tags, mut first_line) = (Vec::new(), Vec::new(), 0);
    for (i, line) in text.lines().chain(std::iter::once("")).enumerate() {
        let line = line.trim();
        if line.starts_with("-DOCSTART-") {
            continue;
        }
        if line.is_empty() {
            if !words.is_empty() {
                out.push(tagged(
                    path,
                    first_line,
                    std::mem::take(&mut words),
                    std::mem::take(&mut tags),
                )?);
            }
            continue;
        }
        let columns: Vec<&str> = line.split(['\t', ' ']).filter(|c| !c.is_empty()).collect();
        if columns.len() < 2 {
            return Err(bad(
                path,
                i + 1,
                format!("'{line}' has no tag column; write the word, then its tag"),
            ));
        }
        if words.is_empty() {
            first_line = i + 1;
        }
        words.push(columns[0].to_string());
        tags.push(columns[columns.len() - 1].to_string());
    }
    Ok(out)
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

pub(super) fn line_of_nth_record(path: &Path, n: usize) -> Option<usize> {
    match format_of(path).ok()? {
        Format::Jsonl => {
            let text = std::fs::read(path).ok()?;
            text.split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))
                .nth(n)
                .map(|(i, _)| i + 1)
        }
        Format::Conll => {
            let text = std::fs::read_to_string(path).ok()?;
            let mut starts = Vec::new();
            let mut inside = false;
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.starts_with("-DOCSTART-") {
                    continue;
                }
                if !line.is_empty() && !inside {
                    starts.push(i + 1);
                }
                inside = !line.is_empty();
            }
            starts.get(n).copied()
        }
        fmt => {
            let delimiter = if fmt == Format::Csv { b',' } else { b'\t' };
            let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).from_path(path).ok()?;
            reader.byte_records().nth(n)?.ok()?.position().map(|p| p.line() as usize)
        }
    }
}
