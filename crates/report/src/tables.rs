//! The tables `thaw results` prints: one row per job, or one per cell with `--aggregate`,
//! as aligned text, CSV or JSON.

use anyhow::Result;
use serde::Serialize;
use thaw_store::JobResultRow;

use thaw_analysis::Split;
use thaw_analysis::cells::{CellSummary, format_lr, percent_with_ci};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Format {
    /// Aligned columns for a terminal.
    #[default]
    Table,
    Csv,
    Json,
}

/// Every job of the plan with its result, if any.
pub fn jobs(rows: &[JobResultRow], format: Format) -> Result<String> {
    const COLUMNS: [&str; 19] = [
        "job_key",
        "init",
        "intermediate",
        "freeze",
        "unfrozen_layers",
        "seed",
        "lr",
        "train_size",
        "pooling",
        "strategy",
        "metric",
        "val_metric",
        "test_metric",
        "val_accuracy",
        "test_accuracy",
        "test_macro_f1",
        "train_seconds",
        "status",
        "error",
    ];
    let cells: Vec<Vec<String>> = rows.iter().map(job_cells).collect();
    match format {
        Format::Json => json(rows),
        Format::Csv => csv_text(&COLUMNS, &cells),
        // The error column is long and free text: CSV and JSON carry it, the terminal table does not.
        Format::Table => {
            let without_error: Vec<Vec<String>> =
                cells.into_iter().map(|mut r| r.drain(..18).collect()).collect();
            Ok(text(&COLUMNS[..18], &without_error))
        }
    }
}

/// One row per cell, each at its selected learning rate.
pub fn cells(summaries: &[CellSummary], format: Format) -> Result<String> {
    match format {
        Format::Json => json(summaries),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for s in summaries {
                w.serialize(s)?;
            }
            Ok(String::from_utf8(w.into_inner()?)?)
        }
        Format::Table => {
            let split = summaries.first().map_or(Split::Test, |s| s.split);
            let accuracy = format!("{split} metric % (95% CI)");
            let header = [
                "init",
                "intermediate",
                "mlm_freeze",
                "pooling",
                "strategy",
                "unfrozen",
                "train_size",
                accuracy.as_str(),
                "n",
                "failed",
                "pending",
                "lr",
                "lr note",
                "train s",
            ];
            Ok(text(&header, &summaries.iter().map(cell_cells).collect::<Vec<_>>()))
        }
    }
}

fn job_cells(j: &JobResultRow) -> Vec<String> {
    let fixed =
        |v: Option<f64>, digits: usize| v.map(|x| format!("{x:.digits$}")).unwrap_or_default();
    vec![
        j.job_key.clone(),
        j.init.to_string(),
        j.intermediate.clone(),
        j.freeze.to_string(),
        j.unfrozen_layers.to_string(),
        j.seed.to_string(),
        format_lr(j.lr),
        j.train_size.map_or("all".to_string(), |n| n.to_string()),
        j.pooling.clone(),
        j.strategy.clone(),
        j.metric.clone().unwrap_or_default(),
        fixed(j.val_metric, 4),
        fixed(j.test_metric, 4),
        fixed(j.val_accuracy, 4),
        fixed(j.test_accuracy, 4),
        fixed(j.test_macro_f1, 4),
        fixed(j.train_seconds, 1),
        j.status.to_string(),
        j.error.clone().unwrap_or_default(),
    ]
}

fn cell_cells(s: &CellSummary) -> Vec<String> {
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    vec![
        s.init.to_string(),
        s.intermediate.clone(),
        opt(s.mlm_freeze),
        s.pooling.clone(),
        s.strategy.clone(),
        format!("{}/{}", s.unfrozen_layers, s.num_layers),
        s.train_size.map_or("all".to_string(), |v| v.to_string()),
        percent_with_ci(s.metric_mean, s.metric_ci95, s.n),
        s.n.to_string(),
        s.failed.to_string(),
        s.unfinished.to_string(),
        s.selected_lr.map_or("-".to_string(), format_lr),
        s.edge.map_or(String::new(), |e| e.to_string()),
        s.train_seconds_mean.map_or("-".to_string(), |t| format!("{t:.1}")),
    ]
}

/// Left-aligned columns two spaces apart, one line per row, trailing spaces trimmed.
pub fn text(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
            + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for r in rows {
        out.push_str(&line(&mut r.iter().map(String::as_str)));
    }
    out
}

fn csv_text(header: &[&str], rows: &[Vec<String>]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for r in rows {
        w.write_record(r)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

#[cfg(test)]
mod tests {
    use thaw_analysis::cells::aggregate;
    use thaw_analysis::testing::done;

    use super::*;

    #[test]
    fn summaries_serialise_to_json_and_table() {
        let rows = vec![
            done(0, 2e-5, 0, 0.8, 0.7),
            done(0, 2e-5, 1, 0.8, 0.72),
            done(0, 1e-5, 0, 0.6, 0.9),
        ];
        let s = aggregate(&rows, Split::Test);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json[0]["split"], "test");
        assert_eq!(json[0]["edge"], "edge: try larger");
        let table = cells(&s, Format::Table).unwrap();
        assert!(table.contains("71.0 ± "), "{table}");
        assert!(table.contains("2e-5"), "{table}");
        assert!(
            "validation".parse::<Split>().unwrap() == Split::Validation
                && "x".parse::<Split>().is_err()
        );
    }

    #[test]
    fn summaries_write_as_csv_with_a_header() {
        let rows = vec![
            done(0, 2e-5, 0, 0.8, 0.7),
            done(0, 2e-5, 1, 0.8, 0.72),
            done(0, 1e-5, 0, 0.6, 0.9),
            done(2, 1e-5, 0, 0.6, 0.9),
        ];
        let mut writer = csv::Writer::from_writer(Vec::new());
        for s in aggregate(&rows, Split::Test) {
            writer.serialize(s).expect("flat record");
        }
        let text = String::from_utf8(writer.into_inner().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with(
                "init,intermediate,mlm_freeze,pooling,strategy,freeze,unfrozen_layers,"
            ),
            "{text}"
        );
        // Fewer unfrozen layers first; one seed leaves the interval columns empty.
        assert_eq!(
            lines[1],
            "pretrained,none,,cls,plain,2,2,4,,test,1,0.00001,,1,0,0,0.9,,,0.89,,10.0,,0.6"
        );
        assert!(
            lines[2].starts_with(
                "pretrained,none,,cls,plain,0,4,4,,test,2,0.00002,edge: try larger,2,0,0,0.71,0.127"
            ),
            "{text}"
        );
    }
}
