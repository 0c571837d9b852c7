//! Chart e: accuracy against training-set size (log x), one line per series. At each size a
//! series shows its freeze depth with the best mean validation accuracy, so the test split
//! still picks nothing.

use std::collections::BTreeSet;

use super::unfrozen::{capitalise, decimals_for};
use super::*;

pub struct SizesChart<'a, 'b> {
    pub data: &'b ChartData<'a>,
}

struct SizeLine {
    label: String,
    style: SeriesStyle,
    /// (train size, mean %, low %, high %), by size.
    points: Vec<(f64, f64, f64, f64)>,
}

impl SizesChart<'_, '_> {
    /// Train-size values as numbers; "all" needs the size of the full training split.
    fn size_value(&self, size: Option<i64>) -> Option<f64> {
        size.or(self.data.full_train_size).map(|s| s as f64)
    }

    fn lines(&self) -> Vec<SizeLine> {
        let names = self.data.names();
        let sizes: BTreeSet<Option<i64>> =
            self.data.cells.iter().map(|c| c.key.train_size).collect();
        self.data
            .series()
            .into_iter()
            .map(|(key, style)| {
                let points = sizes
                    .iter()
                    .filter_map(|&size| {
                        let best = self
                            .data
                            .cells
                            .iter()
                            .filter(|c| c.key.series() == key && c.key.train_size == size)
                            .filter_map(|c| Some((c, c.selected_lr()?.val_metric?.mean)))
                            .max_by(|a, b| a.1.total_cmp(&b.1))?
                            .0;
                        let acc = best.metric()?;
                        Some((
                            self.size_value(size)?,
                            100.0 * acc.mean,
                            100.0 * acc.low(),
                            100.0 * acc.high(),
                        ))
                    })
                    .collect();
                SizeLine { label: names.series(&key), style, points }
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    }
}

impl Chart for SizesChart<'_, '_> {
    fn stem(&self) -> &'static str {
        "accuracy_vs_train_size"
    }

    fn title(&self) -> String {
        format!(
            "{} {} vs training-set size: {}",
            capitalise(self.data.split.name()),
            self.data.metric.title(),
            self.data.title_subject()
        )
    }

    fn subtitle(&self) -> String {
        let missing_all = self.data.full_train_size.is_none()
            && self.data.cells.iter().any(|c| c.key.train_size.is_none());
        let note =
            if missing_all { "; 'all examples' not shown (its size is not recorded)" } else { "" };
        format!(
            "per series, the freeze depth with the best validation {} at each size; mean ± 95% CI{note}",
            self.data.metric.title()
        )
    }

    fn caption(&self) -> String {
        "For each series and training-set size, the freeze depth whose selected learning rate gave the best mean validation \
         accuracy; points show its mean with a 95% CI error bar over seeds. Logarithmic x axis."
            .to_string()
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()> {
        let lines = self.lines();
        let (plot, legend) = body.split_horizontally(body.dim_in_pixel().0 - LEGEND_WIDTH);
        // x is log10(size) on a plain axis so the ticks sit exactly on the sizes that ran.
        let mut sizes: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
        sizes.sort_by(f64::total_cmp);
        sizes.dedup();
        let logs: Vec<f64> = sizes.iter().map(|s| s.max(1.0).log10()).collect();
        let (x_lo, x_hi) = match (logs.first(), logs.last()) {
            (Some(lo), Some(hi)) => (lo - 0.1 - 0.05 * (hi - lo), hi + 0.1 + 0.05 * (hi - lo)),
            _ => (0.0, 1.0),
        };
        let (y_lo, y_hi) =
            padded_range(lines.iter().flat_map(|l| l.points.iter().flat_map(|p| [p.2, p.3])));
        let (y_lo, y_hi) = (y_lo.max(0.0), y_hi.min(100.0));
        let mut chart = ChartBuilder::on(&plot)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(TickedAxis::new(x_lo..x_hi, logs), y_lo..y_hi)
            .map_err(draw_err)?;
        let decimals = decimals_for(y_hi - y_lo);
        let y_desc = format!("{} {} (%)", self.data.split, self.data.metric.title());
        // The full training split is marked, since the sweep named it "all" rather than a number.
        let all = self
            .data
            .cells
            .iter()
            .any(|c| c.key.train_size.is_none())
            .then_some(self.data.full_train_size)
            .flatten();
        let x_label = |x: &f64| {
            let size = 10f64.powf(*x).round() as i64;
            if Some(size) == all { format!("{size} (all)") } else { size.to_string() }
        };
        style_mesh(
            &mut chart,
            "training examples (log scale)",
            &y_desc,
            sizes.len().min(MAX_TICKS),
            &x_label,
            &|y| format!("{y:.decimals$}"),
        )?;
        for line in &lines {
            let colour = line.style.colour;
            for &(size, _, lo, hi) in &line.points {
                let x = size.log10();
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x, lo), (x, hi)],
                        colour.stroke_width(1),
                    )))
                    .map_err(draw_err)?;
            }
            let means: Vec<(f64, f64)> = line.points.iter().map(|p| (p.0.log10(), p.1)).collect();
            draw_line(&mut chart, &means, colour.stroke_width(2), line.style.dashed)?;
            draw_markers(&mut chart, &means, line.style.marker, colour.to_rgba(), 4)?;
        }
        let mut entries: Vec<LegendEntry> =
            lines.iter().map(|l| LegendEntry::series(l.label.clone(), &l.style)).collect();
        entries.push(LegendEntry { label: "bars: 95% CI over seeds".into(), swatch: Swatch::None });
        draw_legend(&legend, "Series", &entries)
    }
}
