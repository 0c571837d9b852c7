//! Chart c: accuracy against training time, one point per job, with the Pareto front.

use std::collections::HashMap;

use super::unfrozen::{capitalise, decimals_for};
use super::*;
use thaw_analysis::costs::JobCosts;

pub struct ParetoChart<'a, 'b> {
    pub data: &'b ChartData<'a>,
}

struct JobPoints {
    label: String,
    style: SeriesStyle,
    /// (seconds, accuracy %) of the jobs at each cell's selected lr.
    selected: Vec<(f64, f64)>,
    /// The same for every other lr, shown faintly when asked.
    others: Vec<(f64, f64)>,
}

impl ParetoChart<'_, '_> {
    fn points(&self) -> Vec<JobPoints> {
        let by_key: HashMap<&str, &JobResultRow> =
            self.data.rows.iter().map(|r| (r.job_key.as_str(), r)).collect();
        let split = self.data.split;
        let costs = JobCosts::of(self.data.rows);
        let to_point = |key: &String| -> Option<(f64, f64)> {
            let row = by_key.get(key.as_str())?;
            Some((costs.get(&row.job_key)?, 100.0 * split.metric(row)?))
        };
        let cells = self.data.primary_cells();
        let names = self.data.names();
        self.data
            .series()
            .into_iter()
            .map(|(key, style)| {
                let mut selected = Vec::new();
                let mut others = Vec::new();
                for cell in cells.iter().filter(|c| c.key.series() == key) {
                    for (i, lr) in cell.lrs.iter().enumerate() {
                        let target =
                            if cell.selected == Some(i) { &mut selected } else { &mut others };
                        target.extend(lr.done_job_keys.iter().filter_map(to_point));
                    }
                }
                JobPoints { label: names.series(&key), style, selected, others }
            })
            .filter(|p| !p.selected.is_empty())
            .collect()
    }
}

/// The staircase of the best accuracy reachable within each training time, drawn up to `x_end`.
pub(crate) fn pareto_steps(points: &[(f64, f64)], x_end: f64) -> Vec<(f64, f64)> {
    let mut sorted = points.to_vec();
    // Fastest first; at equal time the most accurate first so the slower duplicates drop out.
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
    let mut steps: Vec<(f64, f64)> = Vec::new();
    for (t, acc) in sorted {
        match steps.last().copied() {
            None => steps.push((t, acc)),
            Some((_, best)) if acc > best => {
                steps.push((t, best));
                steps.push((t, acc));
            }
            Some(_) => {}
        }
    }
    if let Some(&(t, best)) = steps.last()
        && x_end > t
    {
        steps.push((x_end, best));
    }
    steps
}

impl Chart for ParetoChart<'_, '_> {
    fn stem(&self) -> &'static str {
        "accuracy_vs_time"
    }

    fn title(&self) -> String {
        format!(
            "{} {} vs training time: {}",
            capitalise(self.data.split.name()),
            self.data.metric.title(),
            self.data.title_subject()
        )
    }

    fn subtitle(&self) -> String {
        format!(
            "one point per job (seed) at its cell's best validation lr; black steps: Pareto front{}",
            self.data.train_size_note()
        )
    }

    fn caption(&self) -> String {
        let mut caption = "Each point is one finished job (one seed) at its cell's selected learning rate, coloured by series \
                           (triangles: scratch init). The black step line is the Pareto front over those jobs: the best accuracy \
                           reached within a given training time; configurations below it are dominated."
            .to_string();
        if self.data.show_all_lrs {
            caption.push_str(
                " Faint small points: jobs at the other learning rates (not used for the front).",
            );
        }
        caption
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()> {
        let series = self.points();
        let (plot, legend) = body.split_horizontally(body.dim_in_pixel().0 - LEGEND_WIDTH);
        let shown: Vec<(f64, f64)> = series
            .iter()
            .flat_map(|s| {
                s.selected.iter().chain(if self.data.show_all_lrs {
                    s.others.iter()
                } else {
                    [].iter()
                })
            })
            .copied()
            .collect();
        let (x_lo, x_hi) = padded_range(shown.iter().map(|p| p.0));
        let (y_lo, y_hi) = padded_range(shown.iter().map(|p| p.1));
        let (x_lo, y_lo, y_hi) = (x_lo.max(0.0), y_lo.max(0.0), y_hi.min(100.0));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(draw_err)?;
        let (x_dec, y_dec) = (decimals_for(x_hi - x_lo), decimals_for(y_hi - y_lo));
        let y_desc = format!("{} {} (%)", self.data.split, self.data.metric.title());
        style_mesh(
            &mut chart,
            "training time per job (s)",
            &y_desc,
            DEFAULT_X_LABELS,
            &|x| format!("{x:.x_dec$}"),
            &|y| format!("{y:.y_dec$}"),
        )?;
        if self.data.show_all_lrs {
            for s in &series {
                draw_markers(&mut chart, &s.others, s.style.marker, s.style.colour.mix(0.3), 2)?;
            }
        }
        for s in &series {
            draw_markers(&mut chart, &s.selected, s.style.marker, s.style.colour.mix(0.85), 4)?;
        }
        let all_selected: Vec<(f64, f64)> =
            series.iter().flat_map(|s| s.selected.iter().copied()).collect();
        let front = pareto_steps(&all_selected, x_hi);
        chart.draw_series(LineSeries::new(front, BLACK.stroke_width(2))).map_err(draw_err)?;
        let mut entries: Vec<LegendEntry> = series
            .iter()
            .map(|s| LegendEntry {
                label: s.label.clone(),
                swatch: Swatch::Point(s.style.colour.to_rgba(), s.style.marker),
            })
            .collect();
        entries.push(LegendEntry {
            label: "Pareto front".into(),
            swatch: Swatch::Line { colour: BLACK.to_rgba(), dashed: false, marker: None, width: 2 },
        });
        if self.data.show_all_lrs && series.iter().any(|s| !s.others.is_empty()) {
            entries.push(LegendEntry {
                label: "other lrs (faint)".into(),
                swatch: Swatch::Point(BLACK.mix(0.3), Marker::Circle),
            });
        }
        draw_legend(&legend, "Series", &entries)
    }
}
