//! Charts a and b: a quantity (accuracy or training time) against the number of unfrozen
//! encoder layers, one line per series, each cell at its selected lr.

use super::*;
use thaw_analysis::cells::{LrSummary, format_lr};
use thaw_analysis::stats::Estimate;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Quantity {
    Accuracy,
    TrainSeconds,
}

pub struct UnfrozenChart<'a> {
    data: &'a ChartData<'a>,
    quantity: Quantity,
}

/// A point with its interval, already in display units.
#[derive(Debug, Clone, Copy)]
struct Point {
    x: f64,
    mean: f64,
    low: f64,
    high: f64,
    /// The cell's selected learning rate.
    lr: f64,
}

struct SeriesLine {
    label: String,
    style: SeriesStyle,
    points: Vec<Point>,
    /// Mean at every lr tried (faint lines), one Vec per lr.
    per_lr: Vec<Vec<(f64, f64)>>,
}

impl<'a> UnfrozenChart<'a> {
    pub fn accuracy(data: &'a ChartData<'a>) -> Self {
        UnfrozenChart { data, quantity: Quantity::Accuracy }
    }

    pub fn train_time(data: &'a ChartData<'a>) -> Self {
        UnfrozenChart { data, quantity: Quantity::TrainSeconds }
    }

    fn value(&self, lr: &LrSummary) -> Option<Estimate> {
        match self.quantity {
            Quantity::Accuracy => lr.metric,
            Quantity::TrainSeconds => lr.train_seconds,
        }
    }

    /// Accuracy is shown in percent, time in seconds.
    fn scale(&self) -> f64 {
        match self.quantity {
            Quantity::Accuracy => 100.0,
            Quantity::TrainSeconds => 1.0,
        }
    }

    fn y_desc(&self) -> String {
        match self.quantity {
            Quantity::Accuracy => format!("{} {} (%)", self.data.split, self.data.metric.title()),
            Quantity::TrainSeconds => "training time per job (s)".to_string(),
        }
    }

    fn lines(&self) -> Vec<SeriesLine> {
        let cells = self.data.primary_cells();
        let names = self.data.names();
        self.data
            .series()
            .into_iter()
            .filter_map(|(key, style)| {
                let mine: Vec<&&Cell> = cells.iter().filter(|c| c.key.series() == key).collect();
                let points: Vec<Point> = mine
                    .iter()
                    .filter_map(|c| {
                        c.selected_lr().and_then(|l| {
                            self.value(l).map(|e| self.point(self.data.unfrozen_x(c), e, l.lr))
                        })
                    })
                    .collect();
                if points.is_empty() {
                    return None;
                }
                Some(SeriesLine {
                    label: names.series(&key),
                    style,
                    points,
                    per_lr: self.per_lr_lines(&mine),
                })
            })
            .collect()
    }

    fn point(&self, unfrozen: i64, e: Estimate, lr: f64) -> Point {
        let s = self.scale();
        // A t-interval over two noisy timings can reach below zero; no job takes negative time.
        let floor = match self.quantity {
            Quantity::TrainSeconds => 0.0,
            Quantity::Accuracy => f64::NEG_INFINITY,
        };
        Point {
            x: unfrozen as f64,
            mean: s * e.mean,
            low: (s * e.low()).max(floor),
            high: s * e.high(),
            lr,
        }
    }

    fn per_lr_lines(&self, cells: &[&&Cell]) -> Vec<Vec<(f64, f64)>> {
        let mut lrs: Vec<f64> = cells.iter().flat_map(|c| c.lrs.iter().map(|l| l.lr)).collect();
        lrs.sort_by(f64::total_cmp);
        lrs.dedup();
        lrs.iter()
            .map(|lr| {
                cells
                    .iter()
                    .filter_map(|c| {
                        let at_lr = c.lrs.iter().find(|l| l.lr == *lr)?;
                        self.value(at_lr)
                            .map(|e| (self.data.unfrozen_x(c) as f64, self.scale() * e.mean))
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|line| !line.is_empty())
            .collect()
    }

    /// The majority-class rate in percent, on the accuracy chart only.
    fn baseline_percent(&self) -> Option<f64> {
        self.data
            .baseline
            .filter(|_| self.quantity == Quantity::Accuracy)
            .map(|b| 100.0 * b.metric_value)
    }

    fn y_range(&self, lines: &[SeriesLine]) -> (f64, f64) {
        let bands = lines.iter().flat_map(|l| l.points.iter().flat_map(|p| [p.low, p.high]));
        let faint: Vec<f64> = if self.data.show_all_lrs {
            lines.iter().flat_map(|l| l.per_lr.iter().flatten().map(|p| p.1)).collect()
        } else {
            vec![]
        };
        let baseline = self.baseline_percent();
        let (lo, hi) = padded_range(bands.chain(faint).chain(baseline));
        match self.quantity {
            // Time never goes below zero; starting the axis there keeps ratios honest.
            Quantity::TrainSeconds => (0.0, hi),
            Quantity::Accuracy => (lo.max(0.0), hi.min(100.0)),
        }
    }
}

/// Above this many series the selected-lr labels would collide (close lines share points);
/// the report's table names every cell's lr instead.
const LR_LABEL_MAX_SERIES: usize = 1;

impl Chart for UnfrozenChart<'_> {
    fn stem(&self) -> &'static str {
        match self.quantity {
            Quantity::Accuracy => "accuracy_vs_unfrozen",
            Quantity::TrainSeconds => "time_vs_unfrozen",
        }
    }

    fn title(&self) -> String {
        match self.quantity {
            Quantity::Accuracy => format!(
                "{} {} vs unfrozen layers: {}",
                capitalise(self.data.split.name()),
                self.data.metric.title(),
                self.data.title_subject()
            ),
            Quantity::TrainSeconds => {
                format!("Training time vs unfrozen layers: {}", self.data.title_subject())
            }
        }
    }

    fn subtitle(&self) -> String {
        let seeds = labels::seeds_text(
            self.data.primary_cells().iter().map(|c| c.selected_lr().map_or(0, |l| l.done)),
        );
        format!(
            "mean ± 95% CI over {seeds}, each cell at its best validation lr{}",
            self.data.train_size_note()
        )
    }

    fn caption(&self) -> String {
        let what = match self.quantity {
            Quantity::Accuracy => format!("{} {}", self.data.split, self.data.metric.title()),
            Quantity::TrainSeconds => "training time per job".to_string(),
        };
        let mut caption = format!(
            "Mean {what} of each cell (freeze depth) at the learning rate with the best mean validation {}; \
             the shaded band is the 95% CI over seeds. x = unfrozen encoder layers: 0 trains only the head, \
             {} is full fine-tuning. Dashed lines with triangles are scratch init.",
            self.data.metric.title(),
            self.data.num_layers()
        );
        if self.data.show_all_lrs {
            caption.push_str(" Faint thin lines: the mean at every lr tried.");
        }
        if let Some(b) = self.data.baseline.filter(|_| self.quantity == Quantity::Accuracy) {
            caption.push_str(&format!(
                " The grey dashed line is the {}: always predicting {} scores {:.1} %; a cell whose band reaches it has not learned the task measurably.",
                b.name(),
                b.predictor(),
                100.0 * b.metric_value
            ));
        }
        caption
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()> {
        let lines = self.lines();
        let (plot, legend) = body.split_horizontally(body.dim_in_pixel().0 - LEGEND_WIDTH);
        let layers = self.data.num_layers();
        let (y_lo, y_hi) = self.y_range(&lines);
        let x_range =
            TickedAxis::new(-0.4..layers as f64 + 0.4, (0..=layers).map(|u| u as f64).collect());
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_lo..y_hi)
            .map_err(draw_err)?;
        let x_desc =
            format!("unfrozen encoder layers (0 = head only, {layers} = full fine-tuning)");
        let decimals = decimals_for(y_hi - y_lo);
        style_mesh(
            &mut chart,
            &x_desc,
            &self.y_desc(),
            (layers as usize + 1).min(MAX_TICKS),
            &|x| format!("{x:.0}"),
            &|y| format!("{y:.decimals$}"),
        )?;
        let baseline_colour = RGBColor(110, 110, 110);
        if let Some(rate) = self.baseline_percent() {
            let across = [(-0.4, rate), (layers as f64 + 0.4, rate)];
            draw_line(&mut chart, &across, baseline_colour.stroke_width(2), true)?;
        }
        for line in &lines {
            draw_faint_lines(&mut chart, line, self.data.show_all_lrs)?;
        }
        for line in &lines {
            draw_band(&mut chart, line)?;
        }
        for line in &lines {
            let means: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.mean)).collect();
            draw_line(&mut chart, &means, line.style.colour.stroke_width(2), line.style.dashed)?;
            draw_markers(&mut chart, &means, line.style.marker, line.style.colour.to_rgba(), 4)?;
        }
        // Which lr each cell got, written at its point; with many series the labels would collide.
        if self.quantity == Quantity::Accuracy && lines.len() <= LR_LABEL_MAX_SERIES {
            for line in &lines {
                let labels = line.points.iter().map(|p| {
                    Text::new(
                        format!("lr {}", format_lr(p.lr)),
                        (p.x, p.mean),
                        text_style(12).pos(Pos::new(HPos::Left, VPos::Bottom)),
                    )
                });
                chart.draw_series(labels).map_err(draw_err)?;
            }
        }
        let mut entries: Vec<LegendEntry> =
            lines.iter().map(|l| LegendEntry::series(l.label.clone(), &l.style)).collect();
        entries.push(LegendEntry {
            label: "95% CI over seeds".into(),
            swatch: Swatch::Band(BLACK.mix(0.15)),
        });
        if let (Some(b), Some(rate)) = (self.data.baseline, self.baseline_percent()) {
            entries.push(LegendEntry {
                // The mean's value is in the caption; the legend has room for the idea only.
                label: match b.metric.task() {
                    thaw_metrics::Task::Regression => {
                        format!("baseline: the training mean ({rate:.1} %)")
                    }
                    _ => format!("{}: always {} ({rate:.1} %)", b.name(), b.predictor()),
                },
                swatch: Swatch::Line {
                    colour: baseline_colour.to_rgba(),
                    dashed: true,
                    marker: None,
                    width: 2,
                },
            });
        }
        // With a single lr the faint lines coincide with the series and need no entry.
        if self.data.show_all_lrs && lines.iter().any(|l| l.per_lr.len() > 1) {
            entries.push(LegendEntry {
                label: "every lr tried (mean)".into(),
                swatch: Swatch::Line {
                    colour: BLACK.mix(0.35),
                    dashed: false,
                    marker: None,
                    width: 1,
                },
            });
        }
        draw_legend(&legend, "Series", &entries)
    }
}

fn draw_faint_lines<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    line: &SeriesLine,
    show: bool,
) -> Result<()> {
    if !show {
        return Ok(());
    }
    for lr_line in &line.per_lr {
        chart
            .draw_series(LineSeries::new(
                lr_line.clone(),
                line.style.colour.mix(0.35).stroke_width(1),
            ))
            .map_err(draw_err)?;
    }
    Ok(())
}

/// The 95% CI as a shaded band (or an error bar when the series has a single point).
fn draw_band<DB: DrawingBackend, X: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    line: &SeriesLine,
) -> Result<()> {
    let fill = line.style.colour.mix(0.15);
    if line.points.len() == 1 {
        let p = line.points[0];
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(p.x, p.low), (p.x, p.high)],
                line.style.colour.stroke_width(1),
            )))
            .map_err(draw_err)?;
        return Ok(());
    }
    let mut outline: Vec<(f64, f64)> = line.points.iter().map(|p| (p.x, p.high)).collect();
    outline.extend(line.points.iter().rev().map(|p| (p.x, p.low)));
    chart.draw_series(std::iter::once(Polygon::new(outline, fill.filled()))).map_err(draw_err)?;
    Ok(())
}

/// Enough decimals that neighbouring axis labels differ.
pub(super) fn decimals_for(span: f64) -> usize {
    match span {
        s if s < 0.5 => 2,
        s if s < 8.0 => 1,
        _ => 0,
    }
}

pub(super) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
}
