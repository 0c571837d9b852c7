//! Chart d: learning curves (validation accuracy per epoch), one panel per series and one
//! line per cell, each the mean over the seeds at the cell's selected lr.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;

pub struct CurvesChart<'a, 'b> {
    data: &'b ChartData<'a>,
    panels: Vec<Panel>,
}

struct Panel {
    label: String,
    /// (unfrozen layers, [(epoch, mean validation accuracy %)]).
    lines: Vec<(i64, Vec<(f64, f64)>)>,
}

const PANEL_HEIGHT: u32 = 300;
const CURVES_LEGEND_WIDTH: u32 = 220;

impl<'a, 'b> CurvesChart<'a, 'b> {
    pub fn new(data: &'b ChartData<'a>) -> Self {
        CurvesChart { data, panels: panels(data) }
    }

    pub fn has_epochs(data: &ChartData) -> bool {
        !panels(data).is_empty()
    }

    fn grid(&self) -> (usize, usize) {
        let cols = if self.panels.len() > 1 { 2 } else { 1 };
        (self.panels.len().div_ceil(cols), cols)
    }

    fn unfrozen_values(&self) -> BTreeSet<i64> {
        self.panels.iter().flat_map(|p| p.lines.iter().map(|l| l.0)).collect()
    }
}

fn panels(data: &ChartData) -> Vec<Panel> {
    let mut by_job: HashMap<&str, Vec<&EpochRow>> = HashMap::new();
    for e in data.epochs {
        by_job.entry(e.job_key.as_str()).or_default().push(e);
    }
    let cells = data.primary_cells();
    let names = data.names();
    data.series()
        .into_iter()
        .map(|(key, _)| {
            let lines = cells
                .iter()
                .filter(|c| c.key.series() == key)
                .filter_map(|c| {
                    let curve = mean_curve(
                        c.selected_lr()?
                            .done_job_keys
                            .iter()
                            .filter_map(|k| by_job.get(k.as_str())),
                    );
                    (!curve.is_empty()).then_some((c.unfrozen_layers(), curve))
                })
                .collect();
            Panel { label: names.series(&key), lines }
        })
        .filter(|p: &Panel| !p.lines.is_empty())
        .collect()
}

/// Mean validation accuracy (%) per epoch over the given jobs' epoch rows.
fn mean_curve<'e>(jobs: impl Iterator<Item = &'e Vec<&'e EpochRow>>) -> Vec<(f64, f64)> {
    let mut per_epoch: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for job in jobs {
        for e in job {
            per_epoch.entry(e.epoch).or_default().push(e.val_metric);
        }
    }
    per_epoch
        .into_iter()
        .map(|(epoch, accs)| (epoch as f64, 100.0 * accs.iter().sum::<f64>() / accs.len() as f64))
        .collect()
}

/// Viridis from dark purple (few unfrozen layers) to green (all), stopping before its pale
/// yellow end, which is hard to see on white.
pub(crate) fn depth_colour(unfrozen: i64, num_layers: i64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if num_layers > 0 { 0.8 * unfrozen as f64 / num_layers as f64 } else { 0.0 };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let mix = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Chart for CurvesChart<'_, '_> {
    fn stem(&self) -> &'static str {
        "learning_curves"
    }

    fn title(&self) -> String {
        format!("Learning curves: {}", self.data.title_subject())
    }

    fn subtitle(&self) -> String {
        format!(
            "validation {} per epoch, mean over seeds at each cell's best validation lr{}",
            self.data.metric.title(),
            self.data.train_size_note()
        )
    }

    fn caption(&self) -> String {
        "Validation accuracy after each epoch, averaged over the seeds at each cell's selected learning rate. One panel per \
         series; line colour gives the number of unfrozen encoder layers (dark = few, green = all). All panels share the y axis."
            .to_string()
    }

    fn size(&self) -> (u32, u32) {
        let (rows, _) = self.grid();
        (1100, (TITLE_HEIGHT + rows as u32 * PANEL_HEIGHT + 10).max(620))
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()> {
        let (plots, legend) = body.split_horizontally(body.dim_in_pixel().0 - CURVES_LEGEND_WIDTH);
        let layers = self.data.num_layers();
        let all: Vec<(f64, f64)> = self
            .panels
            .iter()
            .flat_map(|p| p.lines.iter().flat_map(|l| l.1.iter().copied()))
            .collect();
        let (y_lo, y_hi) = padded_range(all.iter().map(|p| p.1));
        let (y_lo, y_hi) = (y_lo.max(0.0), y_hi.min(100.0));
        let epochs: BTreeSet<i64> = all.iter().map(|p| p.0 as i64).collect();
        let (first, last) = (*epochs.first().unwrap_or(&0), *epochs.last().unwrap_or(&1));
        let decimals = super::unfrozen::decimals_for(y_hi - y_lo);
        let areas = plots.split_evenly(self.grid());
        for (panel, area) in self.panels.iter().zip(areas.iter()) {
            let x_range = TickedAxis::new(
                first as f64 - 0.2..last as f64 + 0.2,
                epochs.iter().map(|&e| e as f64).collect(),
            );
            let caption =
                fit_text(area, &panel.label, &text_style(16), area.dim_in_pixel().0 as i32 - 20);
            let mut chart = ChartBuilder::on(area)
                .caption(caption, text_style(16))
                .margin(10)
                .margin_right(20)
                .x_label_area_size(45)
                .y_label_area_size(70)
                .build_cartesian_2d(x_range, y_lo..y_hi)
                .map_err(draw_err)?;
            style_mesh(
                &mut chart,
                "epoch",
                &format!("validation {} (%)", self.data.metric.title()),
                epochs.len().min(MAX_TICKS),
                &|x| format!("{x:.0}"),
                &|y| format!("{y:.decimals$}"),
            )?;
            for (unfrozen, curve) in &panel.lines {
                let colour = depth_colour(*unfrozen, layers);
                chart
                    .draw_series(LineSeries::new(curve.clone(), colour.stroke_width(2)))
                    .map_err(draw_err)?;
                draw_markers(&mut chart, curve, Marker::Circle, colour.to_rgba(), 3)?;
            }
        }
        let entries: Vec<LegendEntry> = self
            .unfrozen_values()
            .into_iter()
            .map(|u| LegendEntry {
                label: match u {
                    0 => "0 (head only)".to_string(),
                    u if u == layers => format!("{u} (full)"),
                    u => u.to_string(),
                },
                swatch: Swatch::Line {
                    colour: depth_colour(u, layers).to_rgba(),
                    dashed: false,
                    marker: Some(Marker::Circle),
                    width: 2,
                },
            })
            .collect();
        draw_legend(&legend, "Unfrozen layers", &entries)
    }
}
