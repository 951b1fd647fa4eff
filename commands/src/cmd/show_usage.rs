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
    let maxlabel = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let maxlen = rows.iter().map(|r| format!("{:.2}", r.1).len()).max().unwrap_or(0);
    let max_bar = columns.saturating_sub(maxlabel + 10 + maxlen).max(10);
    let maxval = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max);
    let mut out = String::new();
    for (label, v) in rows {
        let n = if maxval > 0.0 { (v * max_bar as f64 / maxval) as usize } else { 0 };
        let bar = "█".repeat(n.min(max_bar));
        let pad = " ".repeat(maxlabel - label.chars().count());
        let barpad = " ".repeat(max_bar - n.min(max_bar));
        let sign = if *v < 0.0 { "" } else { " " };
        out.push_str(&format!("{label}{pad} | {bar}{barpad}{sign}{v:.2}\n"));
    }
    out
}

/// Writes the same chart as an SVG image (plotters, SVG backend).
pub fn write_svg(rows: &[(String, f64)], title: &str, path: &std::path::Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: String| Error::io_msg(format!("cannot write {}: {e}", path.display()));
    let n = rows.len().max(1);
    let height = 80 + 30 * n as u32;
    let maxval = rows.iter().map(|r| r.1).fold(0.0_f64, f64::max).max(1e-9);
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(220)
        .build_cartesian_2d(0.0..maxval * 1.05, (0..n).into_segmented())
        .map_err(|e| err(e.to_string()))?;
    let labels: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("job usage")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
            Rectangle::new([(0.0, SegmentValue::Exact(i)), (*v, SegmentValue::Exact(i + 1))], BLUE.mix(0.6).filled())
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
}
