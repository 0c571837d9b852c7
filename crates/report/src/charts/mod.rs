//! Charts of a sweep, each written as PNG and SVG with plotters.
//!
//! Text is drawn with DejaVu Sans compiled into the binary (through ab_glyph), so rendering
//! needs no fontconfig or system fonts and looks the same on every machine.

pub(crate) mod curves;
mod mlm_grid;
pub(crate) mod pareto;
mod sizes;
mod unfrozen;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use thaw_analysis::MajorityBaseline;
use thaw_store::{EpochRow, JobResultRow};

use thaw_analysis::Split;
use thaw_analysis::cells::{Cell, SeriesKey};
use thaw_analysis::labels::{self, Names};

/// One chart on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartFile {
    /// File stem, e.g. "accuracy_vs_unfrozen".
    pub stem: &'static str,
    pub title: String,
    /// What the chart shows and how to read it, for the report.
    pub caption: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

/// Everything the charts read; all of it comes from the store.
pub struct ChartData<'a> {
    pub model: &'a str,
    pub dataset: &'a str,
    pub split: Split,
    pub cells: &'a [Cell],
    pub rows: &'a [JobResultRow],
    pub epochs: &'a [EpochRow],
    pub show_all_lrs: bool,
    /// The size of the whole training split, to place "all examples" on the train-size axis.
    pub full_train_size: Option<i64>,
    /// The sweep's metric, which every chart's axis names.
    pub metric: thaw_metrics::Metric,
    /// Always predicting the displayed split's most frequent label, drawn across the accuracy chart.
    pub baseline: Option<&'a MajorityBaseline>,
}

impl ChartData<'_> {
    /// With several training-set sizes, the per-layer charts show the largest (all data when
    /// present); the train-size chart shows the rest.
    fn primary_train_size(&self) -> Option<i64> {
        let sizes: BTreeSet<Option<i64>> = self.cells.iter().map(|c| c.key.train_size).collect();
        if sizes.contains(&None) { None } else { sizes.into_iter().flatten().max() }
    }

    fn several_train_sizes(&self) -> bool {
        self.cells.iter().map(|c| c.key.train_size).collect::<BTreeSet<_>>().len() > 1
    }

    fn primary_cells(&self) -> Vec<&Cell> {
        let size = self.primary_train_size();
        self.cells.iter().filter(|c| c.key.train_size == size).collect()
    }

    fn num_layers(&self) -> i64 {
        self.cells.iter().map(|c| c.num_layers).max().unwrap_or(0)
    }

    /// Where a cell sits on an "unfrozen layers" axis: the axis's depth minus the cell's
    /// freeze depth, so a smaller model trained whole (scratch-own-vocab) is drawn at full
    /// fine-tuning, not among the partly frozen.
    fn unfrozen_x(&self, cell: &Cell) -> i64 {
        self.num_layers() - cell.key.freeze
    }

    fn title_subject(&self) -> String {
        format!("{} on {}", labels::short_model(self.model), self.dataset)
    }

    /// Appended to subtitles when the chart shows only one of several training-set sizes.
    fn train_size_note(&self) -> String {
        if self.several_train_sizes() {
            format!("; train size {}", labels::train_size_text(self.primary_train_size()))
        } else {
            String::new()
        }
    }

    fn names(&self) -> Names {
        Names::new(self.cells)
    }

    /// Every series of the sweep in display order, with its fixed style (the same series
    /// keeps its colour across charts).
    fn series(&self) -> Vec<(SeriesKey, SeriesStyle)> {
        let keys: BTreeSet<SeriesKey> = self.cells.iter().map(|c| c.key.series()).collect();
        keys.into_iter()
            .enumerate()
            .map(|(i, k)| {
                let style = SeriesStyle::for_series(i, &k);
                (k, style)
            })
            .collect()
    }
}

/// Renders every chart that the data supports into `dir`, as PNG and SVG files.
pub fn render_all(data: &ChartData, dir: &Path) -> Result<Vec<ChartFile>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut files = FileWriter { dir, files: Vec::new() };
    visit_all(data, &mut files)?;
    Ok(files.files)
}

/// One chart drawn in memory as SVG text, for pages that inline it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSvg {
    pub stem: &'static str,
    pub title: String,
    pub caption: String,
    pub svg: String,
}

/// Every chart that the data supports, as SVG text (nothing is written).
pub fn render_svgs(data: &ChartData) -> Result<Vec<ChartSvg>> {
    let mut svgs = SvgCollector(Vec::new());
    visit_all(data, &mut svgs)?;
    Ok(svgs.0)
}

/// What is done with each chart of a sweep, in the report's order.
trait ChartVisitor {
    fn visit<C: Chart>(&mut self, chart: &C) -> Result<()>;
}

fn visit_all(data: &ChartData, v: &mut impl ChartVisitor) -> Result<()> {
    register_fonts()?;
    v.visit(&unfrozen::UnfrozenChart::accuracy(data))?;
    v.visit(&unfrozen::UnfrozenChart::train_time(data))?;
    v.visit(&pareto::ParetoChart { data })?;
    if curves::CurvesChart::has_epochs(data) {
        v.visit(&curves::CurvesChart::new(data))?;
    }
    if data.several_train_sizes() {
        v.visit(&sizes::SizesChart { data })?;
    }
    if let Some(grid) = mlm_grid::MlmGridChart::new(data) {
        v.visit(&grid)?;
    }
    Ok(())
}

struct FileWriter<'a> {
    dir: &'a Path,
    files: Vec<ChartFile>,
}

impl ChartVisitor for FileWriter<'_> {
    fn visit<C: Chart>(&mut self, chart: &C) -> Result<()> {
        self.files.push(render(chart, self.dir)?);
        Ok(())
    }
}

struct SvgCollector(Vec<ChartSvg>);

impl ChartVisitor for SvgCollector {
    fn visit<C: Chart>(&mut self, chart: &C) -> Result<()> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, chart.size()).into_drawing_area();
            chart.draw(&root).with_context(|| format!("drawing {}", chart.stem()))?;
            root.present().map_err(draw_err)?;
        }
        self.0.push(ChartSvg {
            stem: chart.stem(),
            title: chart.title(),
            caption: chart.caption(),
            svg,
        });
        Ok(())
    }
}

/// One chart, drawable on any plotters backend so PNG and SVG come from the same code.
trait Chart {
    fn stem(&self) -> &'static str;
    fn title(&self) -> String;
    fn subtitle(&self) -> String;
    fn caption(&self) -> String;
    fn size(&self) -> (u32, u32) {
        (1100, 620)
    }
    /// Draws below the title into `body`.
    fn draw_body<DB: DrawingBackend>(&self, body: &DrawingArea<DB, Shift>) -> Result<()>;

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(draw_err)?;
        let body = draw_title(root, &self.title(), &self.subtitle())?;
        self.draw_body(&body)
    }
}

fn render<C: Chart>(chart: &C, dir: &Path) -> Result<ChartFile> {
    let png = dir.join(format!("{}.png", chart.stem()));
    let svg = dir.join(format!("{}.svg", chart.stem()));
    {
        let root = BitMapBackend::new(&png, chart.size()).into_drawing_area();
        chart.draw(&root).with_context(|| format!("drawing {}", png.display()))?;
        root.present().map_err(draw_err).with_context(|| format!("writing {}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, chart.size()).into_drawing_area();
        chart.draw(&root).with_context(|| format!("drawing {}", svg.display()))?;
        root.present().map_err(draw_err).with_context(|| format!("writing {}", svg.display()))?;
    }
    Ok(ChartFile { stem: chart.stem(), title: chart.title(), caption: chart.caption(), png, svg })
}

/// plotters' errors are generic over the backend; flatten them to text.
fn draw_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("plotting failed: {e:?}")
}

pub(crate) const FONT: &str = "sans-serif";

fn register_fonts() -> Result<()> {
    static REGISTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
                .and_then(|_| {
                    plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold())
                })
                .map_err(|_| "the embedded DejaVu Sans font could not be parsed".to_string())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

// ---- look -----------------------------------------------------------------------------

/// Tableau 10: distinct hues that stay apart for common colour-vision deficiencies.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4E, 0x79, 0xA7),
    RGBColor(0xF2, 0x8E, 0x2B),
    RGBColor(0xE1, 0x57, 0x59),
    RGBColor(0x59, 0xA1, 0x4F),
    RGBColor(0xB0, 0x7A, 0xA1),
    RGBColor(0x76, 0xB7, 0xB2),
    RGBColor(0xED, 0xC9, 0x48),
    RGBColor(0x9C, 0x75, 0x5F),
    RGBColor(0xFF, 0x9D, 0xA7),
    RGBColor(0xBA, 0xB0, 0xAC),
];

pub(crate) fn series_colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Marker {
    Circle,
    Triangle,
}

/// How one series looks everywhere: scratch gets dashed lines and triangles so it stands
/// out from pretrained at a glance, even in greyscale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SeriesStyle {
    pub colour: RGBColor,
    pub dashed: bool,
    pub marker: Marker,
}

impl SeriesStyle {
    fn for_series(index: usize, key: &SeriesKey) -> SeriesStyle {
        let scratch = key.is_scratch();
        SeriesStyle {
            colour: series_colour(index),
            dashed: scratch,
            marker: if scratch { Marker::Triangle } else { Marker::Circle },
        }
    }
}

const TITLE_HEIGHT: u32 = 70;
const LEGEND_WIDTH: u32 = 300;

fn text_style(size: u32) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(&BLACK)
}

/// Title and subtitle centred on top; returns the area below them.
fn draw_title<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>> {
    let (top, body) = root.split_vertically(TITLE_HEIGHT);
    let width = top.dim_in_pixel().0 as i32;
    let centre = Pos::new(HPos::Center, VPos::Top);
    let title_style =
        TextStyle::from((FONT, 24).into_font().style(FontStyle::Bold)).color(&BLACK).pos(centre);
    top.draw(&Text::new(
        fit_text(&top, title, &title_style, width - 20),
        (width / 2, 12),
        title_style.clone(),
    ))
    .map_err(draw_err)?;
    let sub_style = text_style(16).color(&RGBColor(0x44, 0x44, 0x44)).pos(centre);
    top.draw(&Text::new(
        fit_text(&top, subtitle, &sub_style, width - 20),
        (width / 2, 44),
        sub_style.clone(),
    ))
    .map_err(draw_err)?;
    Ok(body)
}

/// Cuts `text` with an ellipsis so it fits `max_width` pixels.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    max_width: i32,
) -> String {
    let width = |t: &str| area.estimate_text_size(t, style).map(|(w, _)| w as i32).unwrap_or(0);
    if width(text) <= max_width {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate = format!("{}…", chars.iter().collect::<String>().trim_end());
        if width(&candidate) <= max_width {
            return candidate;
        }
    }
    String::new()
}

/// What a legend row shows left of its label.
#[derive(Debug, Clone, PartialEq)]
enum Swatch {
    /// A line sample with an optional marker in its middle.
    Line { colour: RGBAColor, dashed: bool, marker: Option<Marker>, width: u32 },
    /// A shaded box (confidence bands).
    Band(RGBAColor),
    /// A lone marker (scatter points).
    Point(RGBAColor, Marker),
    /// Text only, e.g. a note.
    None,
}

struct LegendEntry {
    label: String,
    swatch: Swatch,
}

impl LegendEntry {
    fn series(label: String, style: &SeriesStyle) -> LegendEntry {
        LegendEntry {
            label,
            swatch: Swatch::Line {
                colour: style.colour.to_rgba(),
                dashed: style.dashed,
                marker: Some(style.marker),
                width: 2,
            },
        }
    }
}

/// Draws the legend in its own column beside the plot, so it never hides data.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[LegendEntry],
) -> Result<()> {
    const ROW: i32 = 26;
    let width = area.dim_in_pixel().0 as i32;
    let left = Pos::new(HPos::Left, VPos::Center);
    let heading_style =
        TextStyle::from((FONT, 16).into_font().style(FontStyle::Bold)).color(&BLACK).pos(left);
    area.draw(&Text::new(heading.to_string(), (10, 30), heading_style)).map_err(draw_err)?;
    let label_style = text_style(14).pos(left);
    for (i, entry) in entries.iter().enumerate() {
        let y = 30 + ROW * (i as i32 + 1);
        draw_swatch(area, &entry.swatch, (10, y))?;
        let x = if entry.swatch == Swatch::None { 10 } else { 56 };
        let label = fit_text(area, &entry.label, &label_style, width - x - 6);
        area.draw(&Text::new(label, (x, y), label_style.clone())).map_err(draw_err)?;
    }
    Ok(())
}

fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: &Swatch,
    (x, y): (i32, i32),
) -> Result<()> {
    match swatch {
        Swatch::Line { colour, dashed, marker, width } => {
            let style = colour.stroke_width(*width);
            if *dashed {
                area.draw(&DashedPathElement::new(vec![(x, y), (x + 38, y)], 7, 4, style))
                    .map_err(draw_err)?;
            } else {
                area.draw(&PathElement::new(vec![(x, y), (x + 38, y)], style)).map_err(draw_err)?;
            }
            if let Some(m) = marker {
                draw_pixel_marker(area, *m, *colour, (x + 19, y))?;
            }
        }
        Swatch::Band(colour) => {
            area.draw(&Rectangle::new([(x, y - 7), (x + 38, y + 7)], colour.filled()))
                .map_err(draw_err)?;
        }
        Swatch::Point(colour, m) => draw_pixel_marker(area, *m, *colour, (x + 19, y))?,
        Swatch::None => {}
    }
    Ok(())
}

fn draw_pixel_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    marker: Marker,
    colour: RGBAColor,
    at: (i32, i32),
) -> Result<()> {
    match marker {
        Marker::Circle => area.draw(&Circle::new(at, 4, colour.filled())),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, 6, colour.filled())),
    }
    .map_err(draw_err)
}

/// Draws markers at data coordinates in a chart.
fn draw_markers<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    points: &[(X::ValueType, Y::ValueType)],
    marker: Marker,
    colour: RGBAColor,
    size: i32,
) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    match marker {
        Marker::Circle => chart
            .draw_series(points.iter().map(|p| Circle::new(p.clone(), size, colour.filled())))
            .map(|_| ()),
        Marker::Triangle => chart
            .draw_series(
                points.iter().map(|p| TriangleMarker::new(p.clone(), size + 2, colour.filled())),
            )
            .map(|_| ()),
    }
    .map_err(draw_err)
}

/// A series line through data points, dashed for scratch.
fn draw_line<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    points: &[(X::ValueType, Y::ValueType)],
    style: ShapeStyle,
    dashed: bool,
) -> Result<()>
where
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    if dashed {
        chart.draw_series(DashedLineSeries::new(points.to_vec(), 10, 6, style)).map(|_| ())
    } else {
        chart.draw_series(LineSeries::new(points.to_vec(), style)).map(|_| ())
    }
    .map_err(draw_err)
}

/// A linear f64 axis whose ticks sit on given values (integer layer counts, epochs), thinned
/// evenly when there are more than fit. plotters' own `with_key_points` cannot take a label
/// formatter for f64 axes, hence this small type.
pub(crate) struct TickedAxis {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl TickedAxis {
    pub(crate) fn new(range: std::ops::Range<f64>, ticks: Vec<f64>) -> TickedAxis {
        TickedAxis { inner: range.into(), ticks }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        let step = self.ticks.len().div_ceil(hint.max_num_points().max(1)).max(1);
        self.ticks.iter().step_by(step).copied().collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// y range covering `values`, padded 6% each side so markers and bands are not cut.
fn padded_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = if hi - lo < 1e-9 { hi.abs().max(1.0) * 0.05 } else { hi - lo };
    (lo - 0.06 * span, hi + 0.06 * span)
}

/// How many x labels a plain numeric axis asks for.
const DEFAULT_X_LABELS: usize = 10;
/// A ticked axis labels every tick up to this many (0..=24 layers), then thins them.
const MAX_TICKS: usize = 25;

/// Common axis look: light grid, readable labels.
fn style_mesh<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_labels: usize,
    x_format: &dyn Fn(&f64) -> String,
    y_format: &dyn Fn(&f64) -> String,
) -> Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_labels(x_labels)
        .x_label_formatter(x_format)
        .y_label_formatter(y_format)
        .label_style(text_style(14))
        .axis_desc_style(text_style(16))
        .bold_line_style(BLACK.mix(0.12))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(draw_err)
}
