//! Plots of a report (plotters), each written as SVG and PNG: fetch success over time, fetch
//! latency CDF, running holders per session, rotations by cause, quarantines and detections,
//! credited entropy per device, and process memory. Fault windows are shaded on time plots.

mod distributions;
mod frame;
mod timeline;

use super::Report;
use distributions::{CreditedEntropy, LatencyCdf};
use frame::{FONT, SIZE, err};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;
use timeline::{FetchSuccess, LiveHolders, ProcessMemory, Quarantines, Rotations};

static FONT_ONCE: Once = Once::new();

/// Registers the bundled font for PNG text (SVG text is left to the viewer).
fn register_font() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            tracing::warn!("bundled font rejected: PNG plots will have no text");
        }
    });
}

/// One plot: its title in `report.md`, its file stem, and how it is drawn on any backend.
trait Figure {
    /// Title shown above the plot in `report.md`.
    const TITLE: &'static str;
    /// File name without extension.
    const STEM: &'static str;
    /// Draws the plot on a white `area`.
    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String>;
}

/// Draws `F` on a white background of `backend` and writes it out.
fn paint<F: Figure, DB: DrawingBackend>(backend: DB, r: &Report) -> Result<(), String> {
    let root = backend.into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    F::draw(&root, r)?;
    root.present().map_err(err)
}

/// Draws `F` as `<stem>.svg` and `<stem>.png` in `dir`; returns its (title, file stem).
fn render<F: Figure>(r: &Report, dir: &Path) -> Result<(String, String), String> {
    paint::<F, _>(
        SVGBackend::new(&dir.join(format!("{}.svg", F::STEM)), SIZE),
        r,
    )?;
    paint::<F, _>(
        BitMapBackend::new(&dir.join(format!("{}.png", F::STEM)), SIZE),
        r,
    )?;
    Ok((F::TITLE.to_string(), F::STEM.to_string()))
}

/// Draws every plot into `dir`; returns (title, file stem) of each.
pub fn draw_all(report: &Report, dir: &Path) -> Result<Vec<(String, String)>, String> {
    register_font();
    Ok(vec![
        render::<FetchSuccess>(report, dir)?,
        render::<LatencyCdf>(report, dir)?,
        render::<LiveHolders>(report, dir)?,
        render::<Rotations>(report, dir)?,
        render::<Quarantines>(report, dir)?,
        render::<CreditedEntropy>(report, dir)?,
        render::<ProcessMemory>(report, dir)?,
    ])
}
