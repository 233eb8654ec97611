//! Plots of distributions over the whole run: fetch latency as a CDF and credited entropy per
//! device.

use super::Figure;
use super::frame::{FONT, PALETTE, axes, box_key, err, frame, legend, linear};
use crate::Role;
use crate::report::Report;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Latency of successful fetches as a CDF on a log axis, with p50 and p99 marked.
pub(super) struct LatencyCdf;

impl Figure for LatencyCdf {
    const TITLE: &'static str = "Fetch latency (CDF)";
    const STEM: &'static str = "fetch_latency_cdf";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
        let mut lat: Vec<f64> = r
            .fetches
            .iter()
            .filter(|f| f.ok)
            .map(|f| f.latency_ms.max(0.1))
            .collect();
        lat.sort_by(f64::total_cmp);
        let lo = lat.first().copied().unwrap_or(1.0).max(0.1) * 0.8;
        let hi = lat.last().copied().unwrap_or(10.0).max(lo * 10.0) * 1.2;
        let q = &r.fetch.latency_ms;
        let caption = format!(
            "Fetch latency — p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            q.p50, q.p90, q.p99, q.max
        );
        let mut chart = frame(area, &caption)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
            .map_err(err)?;
        let desc = (
            "latency of a successful fetch (ticket + k shares), ms, log scale",
            "fraction of fetches at or below",
        );
        axes(&mut chart, desc)?;
        let n = lat.len().max(1) as f64;
        let points: Vec<(f64, f64)> = lat
            .iter()
            .enumerate()
            .map(|(i, v)| (*v, (i + 1) as f64 / n))
            .collect();
        let color = PALETTE[0];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?;
        for (p, label) in [(q.p50, "p50"), (q.p99, "p99")] {
            chart
                .draw_series(LineSeries::new(
                    [(p.max(lo), 0.0), (p.max(lo), 1.0)],
                    BLACK.mix(0.3),
                ))
                .map_err(err)?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.to_string(),
                    (p.max(lo) * 1.05, 0.05),
                    (FONT, 14),
                )))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Credited entropy per device as bars, most credited first, misbehaving devices in red.
pub(super) struct CreditedEntropy;

impl Figure for CreditedEntropy {
    const TITLE: &'static str = "Credited entropy per device";
    const STEM: &'static str = "credited_entropy";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
        let mut devices = r.credited.clone();
        devices.sort_by(|a, b| b.bits.cmp(&a.bits).then(a.index.cmp(&b.index)));
        let count = devices.len().max(1) as f64;
        let top = devices.first().map(|d| d.bits).unwrap_or(1).max(1) as f64 * 1.1 / 1000.0;
        let honest: Vec<u64> = devices
            .iter()
            .filter(|d| d.role == Role::Honest)
            .map(|d| d.bits)
            .collect();
        let mean = honest.iter().sum::<u64>() as f64 / honest.len().max(1) as f64;
        let byzantine: u64 = devices
            .iter()
            .filter(|d| d.role != Role::Honest)
            .map(|d| d.bits)
            .sum();
        let caption = format!(
            "Credited entropy per device — honest mean {:.1} kbit, all misbehaving devices {:.1} kbit",
            mean / 1000.0,
            byzantine as f64 / 1000.0
        );
        let desc = ("devices, most credited first", "credited kbit");
        let mut chart = linear(area, &caption, 0.0..count, 0.0..top, desc)?;
        // (label, honest devices or not, least bar height, colour)
        let groups = [
            ("honest", true, 0.0, PALETTE[0]),
            (
                "misbehaving (drawn at least 1 % high to be seen)",
                false,
                top * 0.01,
                PALETTE[1],
            ),
        ];
        for (label, honest, least, color) in groups {
            let bars = devices
                .iter()
                .enumerate()
                .filter(|(_, d)| (d.role == Role::Honest) == honest)
                .map(|(i, d)| {
                    let height = (d.bits as f64 / 1000.0).max(least);
                    Rectangle::new([(i as f64, 0.0), (i as f64 + 1.0, height)], color.filled())
                });
            let series = chart.draw_series(bars).map_err(err)?;
            box_key(series, label, color);
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)
    }
}
