//! Plots over the run's time: fetch success, running holders per session, rotations by cause,
//! misbehaving devices caught, and process memory.

use super::Figure;
use super::frame::{
    FONT, PALETTE, RUN_TIME, axes, err, frame, keyed_line, legend, level, line_key, run_end, timed,
};
use crate::report::Report;
use plotters::coord::Shift;
use plotters::prelude::*;

type SampleValue = fn(&crate::observe::Sample) -> f64;

/// Share of fetches that succeeded, per time bucket, against the 99.9 % target.
pub(super) struct FetchSuccess;

impl Figure for FetchSuccess {
    const TITLE: &'static str = "Fetch success over time";
    const STEM: &'static str = "fetch_success";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
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
        let caption = format!(
            "Fetch success — {:.3} % of {} fetches ({} failed, {} wrong keys)",
            r.fetch.success_rate * 100.0,
            r.fetch.operations,
            r.fetch.failed,
            r.wrong_keys_accepted
        );
        let y_desc = format!("% of fetches per {bucket:.0} s");
        let mut chart = timed(
            area,
            r,
            &caption,
            0.0..end,
            floor..100.5,
            (RUN_TIME, &y_desc),
        )?;
        let target = RED.mix(0.6).stroke_width(1);
        level(&mut chart, "99.9 % target", 99.9, end, target, RED)?;
        let blue = PALETTE[0];
        keyed_line(
            &mut chart,
            "success rate",
            points.clone(),
            blue.stroke_width(2),
        )?;
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, blue.filled())))
            .map_err(err)?;
        legend(&mut chart, SeriesLabelPosition::LowerLeft)
    }
}

/// Median and fewest running holders per session, against k and n.
pub(super) struct LiveHolders;

impl Figure for LiveHolders {
    const TITLE: &'static str = "Running holders per session";
    const STEM: &'static str = "live_holders";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
        let end = run_end(r);
        let (n, k) = (
            f64::from(r.scenario.sessions.n),
            f64::from(r.scenario.sessions.k),
        );
        let top = n + 1.0;
        let caption = format!(
            "Running holders per session — fewest seen {}, threshold k = {}",
            r.min_running_holders, r.scenario.sessions.k
        );
        let desc = (RUN_TIME, "holders whose device is running");
        let mut chart = timed(area, r, &caption, 0.0..end, 0.0..top, desc)?;
        for (value, label, color) in [(k, "k (threshold)", RED), (n, "n (shares)", BLACK)] {
            level(&mut chart, label, value, end, color.mix(0.5), color)?;
        }
        let series: [(&str, RGBColor, SampleValue); 2] = [
            ("median over sessions", PALETTE[0], |s| s.holders_median),
            ("fewest of any session", PALETTE[3], |s| {
                s.holders_min as f64
            }),
        ];
        for (label, color, f) in series {
            let points = r
                .samples
                .iter()
                .filter(|s| s.sessions > 0)
                .map(|s| (s.t_s, f(s)));
            keyed_line(&mut chart, label, points, color.stroke_width(2))?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// Committed rotations so far, one line per cause.
pub(super) struct Rotations;

impl Figure for Rotations {
    const TITLE: &'static str = "Rotations by cause";
    const STEM: &'static str = "rotations";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
        let end = run_end(r);
        let top = r
            .rotations_by_cause
            .values()
            .copied()
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let total: u64 = r.rotations_by_cause.values().sum();
        let caption = format!(
            "Rotations committed by cause — {total} in all ({})",
            r.rotations_by_cause
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let desc = (RUN_TIME, "rotations so far");
        let mut chart = timed(area, r, &caption, 0.0..end, 0.0..top, desc)?;
        for (i, cause) in r.rotations_by_cause.keys().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points = r
                .samples
                .iter()
                .map(|s| (s.t_s, s.rotations.get(cause).copied().unwrap_or(0) as f64));
            keyed_line(&mut chart, cause.clone(), points, color.stroke_width(2))?;
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

/// Misbehaving devices caught so far by kind, and quarantines, as step lines.
pub(super) struct Quarantines;

impl Figure for Quarantines {
    const TITLE: &'static str = "Quarantines and detections";
    const STEM: &'static str = "quarantines";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
        let end = run_end(r);
        let by_kind = r.detections_by_kind();
        let top = by_kind
            .values()
            .map(|v| v.len())
            .chain(std::iter::once(r.quarantines.len()))
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.15;
        let caption = format!(
            "Misbehaving devices caught over time — {} quarantined ({} honest)",
            r.quarantines.len(),
            r.honest_quarantined
        );
        let desc = (
            "seconds into the run (negative: during warm-up)",
            "devices caught so far",
        );
        let mut chart = timed(area, r, &caption, -5.0..end, 0.0..top, desc)?;
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
        for (i, (kind, times)) in by_kind.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let label = format!("{kind} detected");
            keyed_line(&mut chart, label, step(times), color.stroke_width(2))?;
        }
        let q: Vec<f64> = r.quarantines.iter().map(|q| q.at_s).collect();
        let label = "quarantined (any reason)";
        keyed_line(&mut chart, label, step(&q), BLACK.stroke_width(1))?;
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}

/// Resident memory over the run, with the devices running on a second axis.
pub(super) struct ProcessMemory;

impl Figure for ProcessMemory {
    const TITLE: &'static str = "Process memory";
    const STEM: &'static str = "memory";

    fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, r: &Report) -> Result<(), String> {
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
        let caption = format!(
            "Process memory (RSS) — peak {:.0} MiB, {:.0} KiB per device",
            m.peak_mib, m.per_device_kib_peak
        );
        let mut chart = frame(area, &caption)
            .right_y_label_area_size(60)
            .build_cartesian_2d(0.0..end, 0.0..top)
            .map_err(err)?
            .set_secondary_coord(0.0..end, 0.0..max_peers);
        axes(&mut chart, (RUN_TIME, "RSS, MiB"))?;
        chart
            .configure_secondary_axes()
            .y_desc("devices running")
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()
            .map_err(err)?;
        let (blue, green) = (PALETTE[0], PALETTE[2]);
        let baseline = BLACK.mix(0.4);
        level(
            &mut chart,
            "coordinator alone",
            m.baseline_mib,
            end,
            baseline,
            baseline,
        )?;
        let rss = r.samples.iter().map(|s| (s.t_s, s.rss_mib));
        keyed_line(&mut chart, "RSS", rss, blue.stroke_width(2))?;
        let series = chart
            .draw_secondary_series(LineSeries::new(
                r.samples.iter().map(|s| (s.t_s, s.live_peers as f64)),
                green.stroke_width(2),
            ))
            .map_err(err)?;
        line_key(
            series,
            "devices running (right axis)",
            green.stroke_width(2),
        );
        legend(&mut chart, SeriesLabelPosition::LowerRight)
    }
}
