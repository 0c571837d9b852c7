//! `mlm_freeze_grid`: accuracy over (MLM freeze, downstream freeze), one panel per MLM
//! corpus, with the no-MLM cells as the reference row on top.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::unfrozen::capitalise;
use super::{Chart, ChartData, draw_err, text_style};
use crate::mlm_freeze::{crossed_corpora, find};
use thaw_analysis::cells::Cell;

pub struct MlmGridChart<'a, 'b> {
    pub data: &'b ChartData<'a>,
    corpora: Vec<(String, Vec<i64>)>,
}

const PANEL_WIDTH: u32 = 520;
const ROW_LABEL_WIDTH: i32 = 150;
const COLUMN_LABEL_HEIGHT: i32 = 56;
const CELL_HEIGHT: i32 = 64;

impl<'a, 'b> MlmGridChart<'a, 'b> {
    /// None unless the sweep crosses MLM freeze with downstream freeze.
    pub fn new(data: &'b ChartData<'a>) -> Option<Self> {
        let corpora = crossed_corpora(data.cells);
        (!corpora.is_empty()).then_some(MlmGridChart { data, corpora })
    }

    fn depths(&self) -> Vec<i64> {
        let mut d: Vec<i64> = self.data.cells.iter().map(|c| c.key.freeze).collect();
        d.sort();
        d.dedup();
        d
    }

    fn rows(&self) -> usize {
        1 + self.corpora.iter().map(|(_, m)| m.len()).max().unwrap_or(0)
    }

    /// Every accuracy shown, for one colour scale across panels.
    fn range(&self) -> (f64, f64) {
        let values: Vec<f64> =
            self.data.cells.iter().filter_map(|c| c.metric()).map(|e| e.mean).collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo { (lo, hi) } else { (0.0, 1.0) }
    }
}

/// White to Tableau blue.
fn shade(fraction: f64) -> RGBColor {
    let f = fraction.clamp(0.0, 1.0);
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    RGBColor(mix(0xF4, 0x2F), mix(0xF7, 0x5B), mix(0xFB, 0x8C))
}

impl Chart for MlmGridChart<'_, '_> {
    fn stem(&self) -> &'static str {
        "mlm_freeze_grid"
    }

    fn title(&self) -> String {
        format!(
            "{} {} by MLM freeze and downstream freeze: {}",
            capitalise(self.data.split.name()),
            self.data.metric.title(),
            self.data.title_subject()
        )
    }

    fn subtitle(&self) -> String {
        "mean ± 95% CI over n seeds, each cell at its best validation lr; top row: no MLM (the reference)"
            .to_string()
    }

    fn caption(&self) -> String {
        format!(
            "{} accuracy for every pair of MLM freeze depth (rows: layers frozen during intermediate MLM) and downstream freeze depth \
             (columns: layers frozen during fine-tuning), one panel per MLM corpus; the top row is the same model without MLM. \
             Darker is better, on one scale for all panels. The cells on the diagonal freeze the same layers in both stages.",
            capitalise(self.data.split.name())
        )
    }

    fn size(&self) -> (u32, u32) {
        let height = 80 + COLUMN_LABEL_HEIGHT + CELL_HEIGHT * self.rows() as i32 + 40;
        // Wide enough for the title whatever the number of panels.
        ((PANEL_WIDTH * self.corpora.len() as u32 + 20).max(1000), height.max(360) as u32)
    }

    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()> {
        let panels = body.split_evenly((1, self.corpora.len()));
        for (panel, (corpus, mlm_depths)) in panels.iter().zip(&self.corpora) {
            self.draw_panel(panel, corpus, mlm_depths)?;
        }
        Ok(())
    }
}

impl MlmGridChart<'_, '_> {
    fn draw_panel<DB: DrawingBackend>(
        &self,
        panel: &DrawingArea<DB, Shift>,
        corpus: &str,
        mlm_depths: &[i64],
    ) -> Result<()> {
        let (width, _) = panel.dim_in_pixel();
        let depths = self.depths();
        let num_layers = self.data.num_layers();
        let cell_width = (width as i32 - ROW_LABEL_WIDTH - 20) / depths.len().max(1) as i32;
        let centre = Pos::new(HPos::Center, VPos::Center);
        let heading = text_style(17).pos(Pos::new(HPos::Center, VPos::Top));
        panel
            .draw(&Text::new(format!("{corpus} MLM"), (width as i32 / 2, 4), heading))
            .map_err(draw_err)?;
        for (j, &k) in depths.iter().enumerate() {
            let x = ROW_LABEL_WIDTH + j as i32 * cell_width + cell_width / 2;
            let label = match k {
                0 => "freeze 0 (full)".to_string(),
                k if k == num_layers => format!("freeze {k} (head only)"),
                k => format!("freeze {k}"),
            };
            panel
                .draw(&Text::new(label, (x, COLUMN_LABEL_HEIGHT - 16), text_style(13).pos(centre)))
                .map_err(draw_err)?;
        }
        let mut rows: Vec<(String, Vec<Option<&Cell>>)> = vec![(
            "no MLM".to_string(),
            depths.iter().map(|&k| find(self.data.cells, "none", None, k)).collect(),
        )];
        for &m in mlm_depths {
            let label = match m {
                0 => "MLM freeze 0".to_string(),
                m if m == num_layers => format!("MLM freeze {m} (head)"),
                m => format!("MLM freeze {m}"),
            };
            rows.push((
                label,
                depths.iter().map(|&k| find(self.data.cells, corpus, Some(m), k)).collect(),
            ));
        }
        let (lo, hi) = self.range();
        for (i, (label, cells)) in rows.iter().enumerate() {
            let y0 = COLUMN_LABEL_HEIGHT + i as i32 * CELL_HEIGHT;
            let row_style = text_style(13).pos(Pos::new(HPos::Right, VPos::Center));
            panel
                .draw(&Text::new(
                    label.clone(),
                    (ROW_LABEL_WIDTH - 8, y0 + CELL_HEIGHT / 2),
                    row_style,
                ))
                .map_err(draw_err)?;
            for (j, cell) in cells.iter().enumerate() {
                let x0 = ROW_LABEL_WIDTH + j as i32 * cell_width;
                let rect = [(x0 + 2, y0 + 2), (x0 + cell_width - 2, y0 + CELL_HEIGHT - 2)];
                let Some(e) = cell.and_then(|c| c.metric()) else {
                    panel
                        .draw(&Rectangle::new(rect, RGBColor(0xDD, 0xDD, 0xDD).stroke_width(1)))
                        .map_err(draw_err)?;
                    continue;
                };
                let fraction = (e.mean - lo) / (hi - lo);
                panel.draw(&Rectangle::new(rect, shade(fraction).filled())).map_err(draw_err)?;
                if i == 0 {
                    panel
                        .draw(&Rectangle::new(rect, RGBColor(0x55, 0x55, 0x55).stroke_width(2)))
                        .map_err(draw_err)?;
                }
                let ink = if fraction > 0.55 { WHITE } else { BLACK };
                let value = match e.ci95 {
                    Some(h) => format!("{:.1} ± {:.1}", 100.0 * e.mean, 100.0 * h),
                    None => format!("{:.1}", 100.0 * e.mean),
                };
                let x = x0 + cell_width / 2;
                panel
                    .draw(&Text::new(
                        value,
                        (x, y0 + CELL_HEIGHT / 2 - 9),
                        text_style(15).color(&ink).pos(centre),
                    ))
                    .map_err(draw_err)?;
                panel
                    .draw(&Text::new(
                        format!("n = {}", e.n),
                        (x, y0 + CELL_HEIGHT / 2 + 12),
                        text_style(12).color(&ink).pos(centre),
                    ))
                    .map_err(draw_err)?;
            }
        }
        Ok(())
    }
}
