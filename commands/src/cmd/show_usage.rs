//! `show-usage`: bar chart of the top job usage.

use std::path::PathBuf;

use projections::model::State;

use crate::context::{Context, Output};
use crate::error::{Error, Result};

/// Show a horizontal bar chart of the top job usage (as of the last
/// `update-usage`), by association (`username / bank`) or by bank (the root
/// excluded), highest first.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// associations or banks.
    #[arg(value_parser = ["associations", "banks"])]
    pub table: String,
    /// How many bars.
    #[arg(short = 'n', long, default_value_t = 10)]
    pub limit: usize,
    /// Also write the chart as an SVG image to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Terminal width used for the bars.
    #[arg(long, default_value_t = 80, hide = true)]
    pub columns: usize,
}

/// The (label, value) pairs, highest first (ties by label).
pub fn data(state: &State<'_>, args: &Args) -> Result<Vec<(String, f64)>> {
    let mut rows: Vec<(String, f64)> = if args.table == "banks" {
        state.banks()?.into_iter().filter(|b| !b.parent_bank.is_empty()).map(|b| (b.bank, b.job_usage)).collect()
    } else {
        state.associations()?.into_iter().map(|a| (format!("{} / {}", a.username, a.bank), a.job_usage)).collect()
    };
    rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(args.limit);
    Ok(rows)
}

/// The terminal chart: `label | bar value` per row.
pub fn chart(rows: &[(String, f64)], columns: usize) -> String {
    if rows.is_empty() {
        return "no data to display\n".into();
    }
    let maxlabel = rows.iter().map(|r| crate::format::display_width(&r.0)).max().unwrap_or(0);
    let maxlen = rows.iter().map(|r| format!("{:.2}", r.1).len()).max().unwrap_or(0);
    let max_bar = columns.saturating_sub(maxlabel + 10 + maxlen).max(10);
    let maxval = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    let mut out = String::new();
    for (label, v) in rows {
        let n = if maxval > 0.0 { (v * max_bar as f64 / maxval) as usize } else { 0 };
        let bar = "█".repeat(n.min(max_bar));
        let pad = " ".repeat(maxlabel - crate::format::display_width(label));
        let barpad = " ".repeat(max_bar - n.min(max_bar));
        let sign = if *v < 0.0 { "" } else { " " };
        out.push_str(&format!("{label}{pad} | {bar}{barpad}{sign}{v:.2}\n"));
    }
    out
}

/// An axis tick label: the number without a trailing `.0` (`2`, `2.5`).
fn tick_label(x: f64) -> String {
    let s = format!("{x:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Writes the same chart as an SVG image (plotters, SVG backend): one slot
/// per row, highest at the top, a gap between bars.
pub fn write_svg(rows: &[(String, f64)], title: &str, path: &std::path::Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: String| Error::io_msg(format!("cannot write {}: {e}", path.display()));
    let n = rows.len().max(1);
    let height = 80 + 30 * n as u32;
    let maxval = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1e-9);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    // A discrete integer axis over `0..=last` has exactly `n` segments
    // (plotters' segmented ranges are inclusive).
    let last = n as i32 - 1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(220)
        .build_cartesian_2d(0.0..maxval * 1.05, (0..last).into_segmented())
        .map_err(|e| err(e.to_string()))?;
    // Row i sits in slot `last - i`, so the highest is at the top.
    let label_of = |slot: i32| rows.get((last - slot) as usize).map(|r| r.0.clone()).unwrap_or_default();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(slot) => label_of(*slot),
            _ => String::new(),
        })
        .x_label_formatter(&|x| tick_label(*x))
        .x_desc("job usage")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
            let slot = last - i as i32;
            let mut bar = Rectangle::new(
                [(0.0, SegmentValue::Exact(slot)), (*v, SegmentValue::Exact(slot + 1))],
                BLUE.mix(0.6).filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Read-only: renders the chart (and writes the SVG when asked).
pub fn view(state: &State<'_>, args: &Args) -> Result<Output> {
    let rows = data(state, args)?;
    if let Some(path) = &args.svg {
        write_svg(&rows, &format!("job usage by {}", args.table.trim_end_matches('s')), path)?;
    }
    Ok(Output::text(chart(&rows, args.columns)))
}

/// Runs `show-usage`.
pub fn cmd_show_usage(ctx: &Context, args: &Args) -> Result<Output> {
    let db = crate::db::open_read(ctx)?;
    view(&State::new(db.conn()), args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest() {
        let rows = vec![("a / A".to_string(), 100.0), ("bb / A".to_string(), 50.0)];
        let c = chart(&rows, 80);
        let lines: Vec<&str> = c.lines().collect();
        let max_bar = 80 - (6 + 10 + 6);
        assert_eq!(lines[0], format!("a / A  | {} 100.00", "█".repeat(max_bar)));
        assert_eq!(
            lines[1],
            format!("bb / A | {}{} 50.00", "█".repeat(max_bar / 2), " ".repeat(max_bar - max_bar / 2))
        );
        assert_eq!(chart(&[], 80), "no data to display\n");
    }

    #[test]
    fn svg_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.svg");
        write_svg(&[("u / A".into(), 3.0), ("v / A".into(), 1.0)], "job usage", &p).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.starts_with("<svg"), "{s}");
        assert!(s.contains("u / A"), "{s}");
    }

    /// The value of attribute `name` in an SVG element's text.
    fn attr(el: &str, name: &str) -> f64 {
        let start = el.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        el[start..].split('"').next().unwrap().parse().unwrap()
    }

    #[test]
    fn svg_bars_fill_every_slot_with_gaps_and_ticks_have_no_trailing_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.svg");
        let rows: Vec<(String, f64)> = vec![("a / A".into(), 4.0), ("b / A".into(), 2.0), ("c / A".into(), 1.0)];
        write_svg(&rows, "job usage", &p).unwrap();
        let s = std::fs::read_to_string(&p).unwrap();
        // The bars, top to bottom: one per row, highest first.
        let mut bars: Vec<(f64, f64, f64)> = s
            .lines()
            .filter(|l| l.starts_with("<rect") && l.contains("fill=\"#0000FF\""))
            .map(|l| (attr(l, "y"), attr(l, "height"), attr(l, "width")))
            .collect();
        bars.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(bars.len(), 3, "{s}");
        assert!(bars[0].2 > bars[1].2 && bars[1].2 > bars[2].2, "highest at the top: {bars:?}");
        for w in bars.windows(2) {
            assert!(w[1].0 > w[0].0 + w[0].1, "a gap between bars: {bars:?}");
        }
        // The plot area is the y axis line; the bars share it evenly, with no
        // empty slot above or below.
        let axis = s.lines().find(|l| l.starts_with("<polyline") && l.contains("points=\"229,")).unwrap();
        let pts: Vec<f64> =
            axis.split("points=\"").nth(1).unwrap().split(['"', ' ', ',']).filter_map(|x| x.parse().ok()).collect();
        let (top, bottom) = (pts[1].min(pts[3]), pts[1].max(pts[3]));
        let slot = (bottom - top) / 3.0;
        let pitch = bars[1].0 - bars[0].0;
        assert!((pitch - slot).abs() <= 1.5, "pitch {pitch} vs slot {slot}");
        assert!(
            bars[0].0 - top < slot / 2.0 && bottom - (bars[2].0 + bars[2].1) < slot / 2.0,
            "{bars:?} in {top}..{bottom}"
        );
        // Tick labels: `0`, `1`, `1.5`, never `1.0`.
        let texts: Vec<&str> =
            s.split("<text").skip(1).map(|t| t.split('>').nth(1).unwrap().split('<').next().unwrap().trim()).collect();
        let ticks: Vec<&&str> = texts.iter().filter(|t| t.parse::<f64>().is_ok()).collect();
        assert!(ticks.len() >= 3, "{texts:?}");
        assert!(ticks.iter().all(|t| !t.ends_with(".0")), "{ticks:?}");
        assert!(ticks.contains(&&"4"), "{ticks:?}");
        for r in &rows {
            assert!(texts.contains(&r.0.as_str()), "{texts:?}");
        }
    }

    #[test]
    fn tick_labels_drop_a_trailing_zero() {
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(2.5), "2.5");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(1500.0), "1500");
    }
}
