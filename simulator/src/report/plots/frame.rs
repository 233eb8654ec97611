//! The look every plot shares: size, font and palette, the chart frame and axis style, shaded
//! fault windows, legend keys and the legend box.

use super::super::Report;
use plotters::chart::SeriesAnno;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::ops::Range;

/// Pixels of every plot.
pub(super) const SIZE: (u32, u32) = (1000, 520);
/// Font family of all text (the bundled DejaVu Sans in PNGs).
pub(super) const FONT: &str = "sans-serif";
/// Series colours, in order.
pub(super) const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
/// X axis description of plots over the run.
pub(super) const RUN_TIME: &str = "seconds into the run";
const FAULT: RGBColor = RGBColor(255, 225, 170);
const PARTITION: RGBColor = RGBColor(200, 215, 255);

/// A chart with linear axes of seconds or counts.
pub(super) type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

pub(super) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Seconds the time axes span: the last sample or the scenario's duration, at least 1.
pub(super) fn run_end(r: &Report) -> f64 {
    r.samples
        .last()
        .map(|s| s.t_s)
        .unwrap_or(r.scenario.duration_s)
        .max(r.scenario.duration_s)
        .max(1.0)
}

/// A chart builder with the caption, margin and label areas of every plot.
pub(super) fn frame<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60);
    builder
}

/// Draws the mesh with the (x, y) axis descriptions in the shared label style.
pub(super) fn axes<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    (x_desc, y_desc): (&str, &str),
) -> Result<(), String>
where
    DB: DrawingBackend,
    X: Ranged + ValueFormatter<<X as Ranged>::ValueType>,
    Y: Ranged + ValueFormatter<<Y as Ranged>::ValueType>,
{
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)
}

/// A framed chart with linear axes over `x` and `y`, its mesh drawn.
pub(super) fn linear<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    x: Range<f64>,
    y: Range<f64>,
    desc: (&str, &str),
) -> Result<Chart<'a, DB>, String> {
    let mut chart = frame(area, caption).build_cartesian_2d(x, y).map_err(err)?;
    axes(&mut chart, desc)?;
    Ok(chart)
}

/// A linear chart over run time with the fault windows shaded across `y`.
pub(super) fn timed<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    r: &Report,
    caption: &str,
    x: Range<f64>,
    y: Range<f64>,
    desc: (&str, &str),
) -> Result<Chart<'a, DB>, String> {
    let mut chart = linear(area, caption, x, y.clone(), desc)?;
    shade(&mut chart, r, (y.start, y.end))?;
    Ok(chart)
}

/// Fault windows: (start, end, is a partition).
fn windows(r: &Report) -> Vec<(f64, f64, bool)> {
    let mut w: Vec<(f64, f64, bool)> = r
        .scenario
        .outages
        .iter()
        .map(|o| (o.at_s, o.at_s + o.duration_s, false))
        .collect();
    w.extend(
        r.scenario
            .partitions
            .iter()
            .map(|p| (p.at_s, p.at_s + p.duration_s, true)),
    );
    w
}

/// Shades each fault window over `y`; the first of each kind gets a legend key.
fn shade<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    r: &Report,
    y: (f64, f64),
) -> Result<(), String> {
    let mut labelled = (false, false);
    for (a, b, partition) in windows(r) {
        let color = if partition { PARTITION } else { FAULT };
        let series = chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, y.0), (b, y.1)],
                color.filled(),
            )))
            .map_err(err)?;
        let first = if partition {
            &mut labelled.1
        } else {
            &mut labelled.0
        };
        if !*first {
            *first = true;
            let label = if partition {
                "partition"
            } else {
                "region outage"
            };
            box_key(series, label, color);
        }
    }
    Ok(())
}

/// Names a series in the legend with a short line in `style`.
pub(super) fn line_key<DB: DrawingBackend>(
    series: &mut SeriesAnno<'_, DB>,
    label: impl Into<String>,
    style: impl Into<ShapeStyle>,
) {
    let style = style.into();
    series
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], style));
}

/// Names a series in the legend with a small filled box of `color`.
pub(super) fn box_key<DB: DrawingBackend>(
    series: &mut SeriesAnno<'_, DB>,
    label: impl Into<String>,
    color: RGBColor,
) {
    series
        .label(label)
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
}

/// Draws a line through `points` and names it in the legend in the same style.
pub(super) fn keyed_line<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    label: impl Into<String>,
    points: impl IntoIterator<Item = (f64, f64)>,
    style: ShapeStyle,
) -> Result<(), String> {
    let series = chart
        .draw_series(LineSeries::new(points, style))
        .map_err(err)?;
    line_key(series, label, style);
    Ok(())
}

/// Draws a horizontal reference line at `y` from 0 to `end`, named in the legend with `key`.
pub(super) fn level<DB: DrawingBackend>(
    chart: &mut Chart<'_, DB>,
    label: &str,
    y: f64,
    end: f64,
    line: impl Into<ShapeStyle>,
    key: impl Into<ShapeStyle>,
) -> Result<(), String> {
    let series = chart
        .draw_series(LineSeries::new([(0.0, y), (end, y)], line))
        .map_err(err)?;
    line_key(series, label, key);
    Ok(())
}

/// Draws the legend box at `position`.
pub(super) fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 15))
        .draw()
        .map_err(err)
}
