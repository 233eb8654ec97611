//! Plots of a report (plotters), each written as SVG and PNG: fetch success over time, fetch
//! latency CDF, running holders per session, rotations by cause, quarantines and detections,
//! credited entropy per device, and process memory. Fault windows are shaded on time plots.

use super::Report;
use crate::Role;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const SIZE: (u32, u32) = (1000, 520);
const FONT: &str = "sans-serif";
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
const FAULT: RGBColor = RGBColor(255, 225, 170);
const PARTITION: RGBColor = RGBColor(200, 215, 255);

static FONT_ONCE: Once = Once::new();

/// Registers the bundled font for PNG text (SVG text is left to the viewer).
fn register_font() {
    FONT_ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        if plotters::style::register_font(FONT, FontStyle::Normal, bytes).is_err() {
            tracing::warn!("bundled font rejected: PNG plots will have no text");
        }
    });
}

type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

type SampleValue = fn(&crate::observe::Sample) -> f64;

type Plot<DB> = fn(&DrawingArea<DB, Shift>, &Report) -> Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

macro_rules! both {
    ($dir:expr, $report:expr, $stem:expr, $f:ident) => {{
        let svg = $dir.join(format!("{}.svg", $stem));
        let png = $dir.join(format!("{}.png", $stem));
        {
            let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
            let f: Plot<SVGBackend> = $f;
            f(&root, $report)?;
            root.present().map_err(err)?;
        }
        {
            let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
            let f: Plot<BitMapBackend> = $f;
            f(&root, $report)?;
            root.present().map_err(err)?;
        }
    }};
}

/// Draws every plot into `dir`; returns (title, file stem) of each.
pub fn draw_all(report: &Report, dir: &Path) -> Result<Vec<(String, String)>, String> {
    register_font();
    both!(dir, report, "fetch_success", fetch_success);
    both!(dir, report, "fetch_latency_cdf", latency_cdf);
    both!(dir, report, "live_holders", live_holders);
    both!(dir, report, "rotations", rotations);
    both!(dir, report, "quarantines", quarantines);
    both!(dir, report, "credited_entropy", credited);
    both!(dir, report, "memory", memory);
    Ok([
        ("Fetch success over time", "fetch_success"),
        ("Fetch latency (CDF)", "fetch_latency_cdf"),
        ("Running holders per session", "live_holders"),
        ("Rotations by cause", "rotations"),
        ("Quarantines and detections", "quarantines"),
        ("Credited entropy per device", "credited_entropy"),
        ("Process memory", "memory"),
    ]
    .iter()
    .map(|(t, s)| (t.to_string(), s.to_string()))
    .collect())
}

fn run_end(r: &Report) -> f64 {
    r.samples
        .last()
        .map(|s| s.t_s)
        .unwrap_or(r.scenario.duration_s)
        .max(r.scenario.duration_s)
        .max(1.0)
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

fn shade<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
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
            series
                .label(if partition {
                    "partition"
                } else {
                    "region outage"
                })
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                });
        }
    }
    Ok(())
}

fn legend<'a, DB: DrawingBackend + 'a>(
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

fn fetch_success<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &Report,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let end = run_end(r);
    let bucket = (end / 40.0).max(2.0);
    let buckets = (end / bucket).ceil() as usize;
    let mut ok = vec![0u64; buckets + 1];
    let mut all = vec![0u64; buckets + 1];
    for f in &r.fetches {
        let i = ((f.at_s.max(0.0) / bucket) as usize).min(buckets);
        if let (Some(a), Some(o)) = (all.get_mut(i), ok.get_mut(i)) {
            *a += 1;
            *o += u64::from(f.ok);
        }
    }
    let points: Vec<(f64, f64)> = all
        .iter()
        .zip(&ok)
        .enumerate()
        .filter(|(_, (a, _))| **a > 0)
        .map(|(i, (a, o))| ((i as f64 + 0.5) * bucket, *o as f64 * 100.0 / *a as f64))
        .collect();
    let low = points.iter().map(|p| p.1).fold(100.0, f64::min);
    let floor = if low >= 99.0 {
        98.0
    } else {
        (low - 2.0).max(0.0).floor()
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Fetch success — {:.3} % of {} fetches ({} failed, {} wrong keys)",
                r.fetch.success_rate * 100.0,
                r.fetch.operations,
                r.fetch.failed,
                r.wrong_keys_accepted
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, floor..100.5)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc(format!("% of fetches per {bucket:.0} s"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    shade(&mut chart, r, (floor, 100.5))?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 99.9), (end, 99.9)],
            RED.mix(0.6).stroke_width(1),
        ))
        .map_err(err)?
        .label("99.9 % target")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], RED));
    let blue = PALETTE[0];
    chart
        .draw_series(LineSeries::new(points.clone(), blue.stroke_width(2)))
        .map_err(err)?
        .label("success rate")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], blue.stroke_width(2)));
    chart
        .draw_series(points.iter().map(|p| Circle::new(*p, 3, blue.filled())))
        .map_err(err)?;
    legend(&mut chart, SeriesLabelPosition::LowerLeft)
}

fn latency_cdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &Report,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
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
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Fetch latency — p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                q.p50, q.p90, q.p99, q.max
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("latency of a successful fetch (ticket + k shares), ms, log scale")
        .y_desc("fraction of fetches at or below")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
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

fn live_holders<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &Report,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let end = run_end(r);
    let (n, k) = (
        f64::from(r.scenario.sessions.n),
        f64::from(r.scenario.sessions.k),
    );
    let top = n + 1.0;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Running holders per session — fewest seen {}, threshold k = {}",
                r.min_running_holders, r.scenario.sessions.k
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("holders whose device is running")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    shade(&mut chart, r, (0.0, top))?;
    for (value, label, color) in [(k, "k (threshold)", RED), (n, "n (shares)", BLACK)] {
        chart
            .draw_series(LineSeries::new(
                [(0.0, value), (end, value)],
                color.mix(0.5),
            ))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color));
    }
    let series: [(&str, RGBColor, SampleValue); 2] = [
        ("median over sessions", PALETTE[0], |s| s.holders_median),
        ("fewest of any session", PALETTE[3], |s| {
            s.holders_min as f64
        }),
    ];
    for (label, color, f) in series {
        chart
            .draw_series(LineSeries::new(
                r.samples
                    .iter()
                    .filter(|s| s.sessions > 0)
                    .map(|s| (s.t_s, f(s))),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn rotations<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let end = run_end(r);
    let causes: Vec<String> = r.rotations_by_cause.keys().cloned().collect();
    let top = r
        .rotations_by_cause
        .values()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let total: u64 = r.rotations_by_cause.values().sum();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Rotations committed by cause — {total} in all ({})",
                r.rotations_by_cause
                    .iter()
                    .map(|(c, n)| format!("{c} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("rotations so far")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    shade(&mut chart, r, (0.0, top))?;
    for (i, cause) in causes.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                r.samples
                    .iter()
                    .map(|s| (s.t_s, s.rotations.get(cause).copied().unwrap_or(0) as f64)),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(cause.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

fn quarantines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: &Report,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let end = run_end(r);
    let by_kind = r.detections_by_kind();
    let kinds: Vec<String> = by_kind.keys().cloned().collect();
    let top = by_kind
        .values()
        .map(|v| v.len())
        .chain(std::iter::once(r.quarantines.len()))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Misbehaving devices caught over time — {} quarantined ({} honest)",
                r.quarantines.len(),
                r.honest_quarantined
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(-5.0..end, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run (negative: during warm-up)")
        .y_desc("devices caught so far")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    shade(&mut chart, r, (0.0, top))?;
    let step = |times: &[f64]| -> Vec<(f64, f64)> {
        let mut t: Vec<f64> = times.to_vec();
        t.sort_by(f64::total_cmp);
        let mut points = vec![(-5.0, 0.0)];
        for (i, x) in t.iter().enumerate() {
            let x = x.max(-5.0);
            points.push((x, i as f64));
            points.push((x, (i + 1) as f64));
        }
        points.push((end, t.len() as f64));
        points
    };
    for (i, kind) in kinds.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let times = by_kind.get(kind).cloned().unwrap_or_default();
        chart
            .draw_series(LineSeries::new(step(&times), color.stroke_width(2)))
            .map_err(err)?
            .label(format!("{kind} detected"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], color.stroke_width(2)));
    }
    let q: Vec<f64> = r.quarantines.iter().map(|q| q.at_s).collect();
    chart
        .draw_series(LineSeries::new(step(&q), BLACK.stroke_width(1)))
        .map_err(err)?
        .label("quarantined (any reason)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLACK));
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn credited<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
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
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Credited entropy per device — honest mean {:.1} kbit, all misbehaving devices {:.1} kbit",
                mean / 1000.0,
                byzantine as f64 / 1000.0
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..count, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("devices, most credited first")
        .y_desc("credited kbit")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    let (blue, red) = (PALETTE[0], PALETTE[1]);
    chart
        .draw_series(
            devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.role == Role::Honest)
                .map(|(i, d)| {
                    Rectangle::new(
                        [(i as f64, 0.0), (i as f64 + 1.0, d.bits as f64 / 1000.0)],
                        blue.filled(),
                    )
                }),
        )
        .map_err(err)?
        .label("honest")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], blue.filled()));
    chart
        .draw_series(
            devices
                .iter()
                .enumerate()
                .filter(|(_, d)| d.role != Role::Honest)
                .map(|(i, d)| {
                    Rectangle::new(
                        [
                            (i as f64, 0.0),
                            (i as f64 + 1.0, (d.bits as f64 / 1000.0).max(top * 0.01)),
                        ],
                        red.filled(),
                    )
                }),
        )
        .map_err(err)?
        .label("misbehaving (drawn at least 1 % high to be seen)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], red.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn memory<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
    area.fill(&WHITE).map_err(err)?;
    let end = run_end(r);
    let m = &r.memory;
    let top = m.peak_mib.max(1.0) * 1.15;
    let max_peers = r
        .samples
        .iter()
        .map(|s| s.live_peers)
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!(
                "Process memory (RSS) — peak {:.0} MiB, {:.0} KiB per device",
                m.peak_mib, m.per_device_kib_peak
            ),
            (FONT, 20),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(err)?
        .set_secondary_coord(0.0..end, 0.0..max_peers);
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("RSS, MiB")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    chart
        .configure_secondary_axes()
        .y_desc("devices running")
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()
        .map_err(err)?;
    let (blue, green) = (PALETTE[0], PALETTE[2]);
    chart
        .draw_series(LineSeries::new(
            [(0.0, m.baseline_mib), (end, m.baseline_mib)],
            BLACK.mix(0.4),
        ))
        .map_err(err)?
        .label("coordinator alone")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 15, y)], BLACK.mix(0.4)));
    chart
        .draw_series(LineSeries::new(
            r.samples.iter().map(|s| (s.t_s, s.rss_mib)),
            blue.stroke_width(2),
        ))
        .map_err(err)?
        .label("RSS")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], blue.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            r.samples.iter().map(|s| (s.t_s, s.live_peers as f64)),
            green.stroke_width(2),
        ))
        .map_err(err)?
        .label("devices running (right axis)")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 15, y)], green.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font((FONT, 15))
        .draw()
        .map_err(err)
}
